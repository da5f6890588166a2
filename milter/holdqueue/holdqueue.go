package holdqueue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config names Postfix's commands and configuration directory. Each
// command is a command line split on spaces (a wrapper such as
// "sudo -n /usr/sbin/postsuper" is allowed); "" is Debian's path.
type Config struct {
	Postqueue string `yaml:"postqueue"` // default /usr/sbin/postqueue
	Postsuper string `yaml:"postsuper"` // default /usr/sbin/postsuper
	Postcat   string `yaml:"postcat"`   // default /usr/sbin/postcat
	// ConfigDir is Postfix's configuration directory, passed as -c DIR;
	// "" is Postfix's default (/etc/postfix, or $MAIL_CONFIG).
	ConfigDir string `yaml:"config_dir"`
	// Socket, when set, is the unix socket of the hold queue helper
	// (chainmail holdqueue serve, running as root): every operation is
	// sent there instead of running a command, and the settings above
	// are the helper's own, not this side's.
	Socket string `yaml:"socket"`
}

// Default command paths (Debian's postfix package).
const (
	DefaultPostqueue = "/usr/sbin/postqueue"
	DefaultPostsuper = "/usr/sbin/postsuper"
	DefaultPostcat   = "/usr/sbin/postcat"
)

const (
	// Timeout bounds every command, whatever the caller's context allows.
	Timeout = 30 * time.Second
	// MaxMessage is the largest message Message returns (Postfix's default
	// message_size_limit is 10 MB).
	MaxMessage = 64 << 20
	// maxStderr is how much of a command's standard error is kept.
	maxStderr = 8 << 10
)

var (
	// ErrBadID is returned for a string that is not a Postfix queue id;
	// no command was run.
	ErrBadID = errors.New("not a Postfix queue id")
	// ErrNotFound is returned when the hold queue has no message with the
	// id (it was released, deleted or delivered meanwhile, or never held).
	ErrNotFound = errors.New("no such message in the hold queue")
	// ErrTooLarge is returned by Message for a message over MaxMessage.
	ErrTooLarge = errors.New("message too large to read")
	// ErrNotFlushed is returned by Release when the message was released
	// but asking Postfix to deliver it at once failed: it leaves the queue
	// at the next deferred-queue run instead.
	ErrNotFlushed = errors.New("released, but immediate delivery could not be requested")
)

// Held is one message in the hold queue.
type Held struct {
	QueueID string
	Arrival time.Time
	Sender  string   // envelope sender, "" for the null sender
	Rcpts   []string // envelope recipients still to deliver
	Size    int64    // header and body, about as sent over SMTP
}

// Queue runs Postfix's queue commands. It is safe for concurrent use.
type Queue struct {
	postqueue, postsuper, postcat []string
	configDir                     string
	maxMessage                    int64
	socket                        string
}

// New returns a Queue for cfg, defaults filled in. It runs nothing.
func New(cfg Config) *Queue {
	return &Queue{
		postqueue:  argv(cfg.Postqueue, DefaultPostqueue),
		postsuper:  argv(cfg.Postsuper, DefaultPostsuper),
		postcat:    argv(cfg.Postcat, DefaultPostcat),
		configDir:  cfg.ConfigDir,
		maxMessage: MaxMessage,
		socket:     cfg.Socket,
	}
}

func argv(line, def string) []string {
	if f := strings.Fields(line); len(f) > 0 {
		return f
	}
	return []string{def}
}

// Queue id alphabets: short ids are upper-case hexadecimal; long ids
// encode the arrival time (seconds, then four digits of microseconds) in
// base 52 over digits and consonants, then 'z', then the inode number in
// base 51 (the same alphabet without 'z', so the last 'z' separates).
var (
	shortID = regexp.MustCompile(`^[0-9A-F]{6,}$`)
	longID  = regexp.MustCompile(`^[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+$`)
)

// maxIDLen is far above any real queue id (a long one with a 64-bit inode
// number has 23 characters).
const maxIDLen = 40

// ValidID reports whether id has the form of a Postfix queue id, short or
// long. Only such ids reach a command line.
func ValidID(id string) bool {
	return len(id) <= maxIDLen && (shortID.MatchString(id) || longID.MatchString(id))
}

func checkID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("holdqueue: %q: %w", truncate(id, 64), ErrBadID)
	}
	return nil
}

// postqueueJSON is one line of postqueue -j (postqueue(1), "JSON OBJECT
// FORMAT"); members not listed are ignored, as the manual asks.
type postqueueJSON struct {
	QueueName   string `json:"queue_name"`
	QueueID     string `json:"queue_id"`
	ArrivalTime int64  `json:"arrival_time"`
	MessageSize int64  `json:"message_size"`
	Sender      string `json:"sender"`
	Recipients  []struct {
		Address string `json:"address"`
	} `json:"recipients"`
}

// List returns the messages in the hold queue, newest first (ties by
// queue id).
func (q *Queue) List(ctx context.Context) ([]Held, error) {
	if q.socket != "" {
		rep, _, err := q.remote(ctx, OpList, "")
		return rep.Held, err
	}
	var held []Held
	err := q.run(ctx, q.postqueue, []string{"-j"}, func(stdout io.Reader) error {
		dec := json.NewDecoder(stdout)
		for {
			var m postqueueJSON
			if err := dec.Decode(&m); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("reading postqueue -j output: %w", err)
			}
			if m.QueueName != "hold" {
				continue
			}
			h := Held{QueueID: m.QueueID, Arrival: time.Unix(m.ArrivalTime, 0), Sender: m.Sender, Size: m.MessageSize}
			for _, r := range m.Recipients {
				h.Rcpts = append(h.Rcpts, r.Address)
			}
			held = append(held, h)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(held, func(i, j int) bool {
		if !held[i].Arrival.Equal(held[j].Arrival) {
			return held[i].Arrival.After(held[j].Arrival)
		}
		return held[i].QueueID < held[j].QueueID
	})
	return held, nil
}

// Message returns the message queued under id as Postfix stores it: header
// and body with LF line ends, no envelope. postcat finds it in any queue,
// so a message released a moment ago is still readable until delivered.
func (q *Queue) Message(ctx context.Context, id string) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if q.socket != "" {
		_, msg, err := q.remote(ctx, OpMessage, id)
		return msg, err
	}
	var msg []byte
	err := q.run(ctx, q.postcat, []string{"-bh", "-q", id}, func(stdout io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(stdout, q.maxMessage+1))
		if err != nil {
			return err
		}
		if int64(len(b)) > q.maxMessage {
			return fmt.Errorf("%s: over %d bytes: %w", id, q.maxMessage, ErrTooLarge)
		}
		msg = b
		return nil
	})
	if err != nil {
		// postcat: fatal: open queue file ID: No such file or directory
		var ce *cmdError
		if errors.As(err, &ce) && strings.Contains(ce.stderr, "open queue file") && strings.Contains(ce.stderr, "No such file or directory") {
			return nil, fmt.Errorf("holdqueue: %s: %w", id, ErrNotFound)
		}
		return nil, err
	}
	return msg, nil
}

// Release moves the message id from the hold queue to the deferred queue
// and asks Postfix to deliver it now. ErrNotFound when it is not held;
// ErrNotFlushed (wrapped) when it was released but the request for
// immediate delivery failed.
func (q *Queue) Release(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if q.socket != "" {
		_, _, err := q.remote(ctx, OpRelease, id)
		return err
	}
	if err := q.super(ctx, "-H", id, "Released from hold"); err != nil {
		return err
	}
	// A released message waits in the deferred queue for the next queue
	// run (queue_run_delay, 300 s by default); the flush service schedules
	// it at once.
	if err := q.run(ctx, q.postqueue, []string{"-i", id}, nil); err != nil {
		return fmt.Errorf("holdqueue: %s: %w: %v", id, ErrNotFlushed, err)
	}
	return nil
}

// Delete removes the message id from the hold queue for good; it is never
// delivered. ErrNotFound when it is not held.
func (q *Queue) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if q.socket != "" {
		_, _, err := q.remote(ctx, OpDelete, id)
		return err
	}
	return q.super(ctx, "-d", id, "Deleted")
}

// postsuper's report, written to its standard error: "Deleted: 1 message",
// "Released from hold: 0 messages".
var superCount = regexp.MustCompile(`(?m)^postsuper: (Deleted|Released from hold): (\d+) messages?$`)

// super runs postsuper OP ID hold and checks its report that one message
// was affected (report is "Deleted" or "Released from hold").
func (q *Queue) super(ctx context.Context, op, id, report string) error {
	var stderr string
	err := q.runStderr(ctx, q.postsuper, []string{op, id, "hold"}, nil, &stderr)
	if err != nil {
		return err
	}
	for _, m := range superCount.FindAllStringSubmatch(stderr, -1) {
		if m[1] != report {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		switch n {
		case 0:
			return fmt.Errorf("holdqueue: %s: %w", id, ErrNotFound)
		case 1:
			return nil
		}
		return fmt.Errorf("holdqueue: postsuper %s %s: %d messages affected: %s", op, id, n, strings.TrimSpace(stderr))
	}
	return fmt.Errorf("holdqueue: postsuper %s %s: no %q count in its report: %q", op, id, report, strings.TrimSpace(stderr))
}

// cmdError is a command that failed; its standard error is in the message.
type cmdError struct {
	argv   []string
	err    error
	stderr string
}

func (e *cmdError) Error() string {
	s := fmt.Sprintf("holdqueue: %s: %v", strings.Join(e.argv, " "), e.err)
	if e.stderr != "" {
		s += ": " + strings.TrimSpace(e.stderr)
	}
	return s
}

func (e *cmdError) Unwrap() error { return e.err }

// run runs cmd with args (after -c DIR when a configuration directory is
// set), hands its standard output to read (discarded when read is nil) and
// returns an error for a command that could not start, timed out, exited
// non-zero or whose output read rejected.
func (q *Queue) run(ctx context.Context, cmd, args []string, read func(io.Reader) error) error {
	var stderr string
	return q.runStderr(ctx, cmd, args, read, &stderr)
}

func (q *Queue) runStderr(ctx context.Context, cmd, args []string, read func(io.Reader) error, stderrOut *string) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	full := append([]string{}, cmd[1:]...)
	if q.configDir != "" {
		full = append(full, "-c", q.configDir)
	}
	full = append(full, args...)
	argv := append([]string{cmd[0]}, full...)

	c := exec.CommandContext(ctx, cmd[0], full...)
	c.WaitDelay = 2 * time.Second
	var stderr limitedBuffer
	stderr.max = maxStderr
	c.Stderr = &stderr
	stdout, err := c.StdoutPipe()
	if err != nil {
		return &cmdError{argv: argv, err: err}
	}
	if err := c.Start(); err != nil {
		return &cmdError{argv: argv, err: fmt.Errorf("cannot run it: %w", err)}
	}
	var readErr error
	if read != nil {
		readErr = read(stdout)
	}
	if readErr != nil {
		// Stop the command rather than wait for output nobody reads.
		c.Process.Kill()
	} else {
		io.Copy(io.Discard, stdout)
	}
	waitErr := c.Wait()
	*stderrOut = stderr.String()
	switch {
	case errors.Is(readErr, ErrTooLarge):
		return fmt.Errorf("holdqueue: %w", readErr)
	case ctx.Err() != nil:
		return &cmdError{argv: argv, err: fmt.Errorf("no answer within the time limit: %w", ctx.Err()), stderr: stderr.String()}
	case readErr != nil:
		return &cmdError{argv: argv, err: readErr, stderr: stderr.String()}
	case waitErr != nil:
		return &cmdError{argv: argv, err: waitErr, stderr: stderr.String()}
	}
	return nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
