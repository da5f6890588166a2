// Package antivirus is the antivirus check: it sends each message to
// clamd over its INSTREAM command and reports what clamd found.
//
// The whole message (header block and body) is streamed, so clamd's own
// mail parser decodes the MIME parts and its unpackers open archives:
// a virus in a plain attachment and one in a zip inside a zip are both
// found. The protocol (clamd(8)): connect to the unix or TCP socket, send
// "zINSTREAM\0", then chunks each prefixed by its length as a 4-byte
// big-endian number, then a zero-length chunk; clamd answers one
// NUL-terminated line: "stream: OK", "stream: <signature> FOUND", or
// "<reason> ERROR" (for instance "INSTREAM size limit exceeded. ERROR").
//
// Failure policy: when clamd cannot be reached, does not answer within the
// configured timeout, or answers with an error, the status is temperror
// (the default policy tempfails the message) — never "clean". A message
// larger than stream_max_length is not sent and is "unscannable" (the default
// policy quarantines it), because clamd would refuse it anyway.
package antivirus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/verdictlog"
)

// StatusUnscannable is the status of a message too big to send.
const StatusUnscannable checks.Status = "unscannable"

// Symbol is the symbol of an infected message.
const Symbol = "CLAM_VIRUS"

// Config is the antivirus check's configuration.
type Config struct {
	// Address of clamd: unix:/path/to/clamd.ctl, or tcp:HOST:PORT
	// (inet:HOST:PORT is read the same way).
	Address string `yaml:"address"`
	// Timeout bounds one scan, connection included (default 20s). Keep it
	// below the check's chain timeout so that a slow clamd gives
	// temperror rather than a chain timeout.
	Timeout checks.Duration `yaml:"timeout"`
	// StreamMaxLength is the largest message sent (default 25 MiB,
	// clamd's StreamMaxLength default); a bigger one is unscannable. It
	// is not the chain entry's max_size, which holds a message back from
	// the whole check.
	StreamMaxLength checks.Size `yaml:"stream_max_length"`
	// ChunkSize of the INSTREAM chunks (default 64 KiB).
	ChunkSize int `yaml:"chunk_size"`
	// Score of an infected message (default 100).
	Score float64 `yaml:"score"`
}

// DefaultConfig returns the defaults: Debian's clamd socket.
func DefaultConfig() Config {
	return Config{
		Address:         "unix:/var/run/clamav/clamd.ctl",
		Timeout:         checks.Duration(20 * time.Second),
		StreamMaxLength: 25 << 20,
		ChunkSize:       64 << 10,
		Score:           100,
	}
}

// Check is the antivirus check.
type Check struct {
	cfg              Config
	network, address string
}

// New returns the check.
func New(cfg Config) (*Check, error) {
	d := DefaultConfig()
	if cfg.Timeout <= 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.StreamMaxLength <= 0 {
		cfg.StreamMaxLength = d.StreamMaxLength
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = d.ChunkSize
	}
	network, address, err := checks.ParseDaemonAddress(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("antivirus: %w", err)
	}
	return &Check{cfg: cfg, network: network, address: address}, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return "antivirus" }

// Errors.
var (
	ErrUnavailable = errors.New("antivirus: clamd unavailable")
	ErrProtocol    = errors.New("antivirus: unexpected clamd answer")
)

// Verdict is clamd's answer for one stream.
type Verdict struct {
	Infected bool
	// Signature is the name of what was found.
	Signature string
	// Raw is the answer line.
	Raw string
}

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	if size := m.Size(); size > int64(c.cfg.StreamMaxLength) {
		return checks.Result{Status: StatusUnscannable, Reason: fmt.Sprintf("too big for clamd (%d > %d)", size, c.cfg.StreamMaxLength),
			Facts: map[string]any{"virus": "", "unscannable": true}}
	}
	v, err := c.Scan(ctx, m.Reader())
	if err == nil && !v.Infected {
		if bare, _ := attachments.HasBareCR(m.Reader()); bare {
			// clamd reads lines that end with LF: a message with bare CR
			// line ends is one line to it, while mail clients and the
			// other checks see its parts. Scan it again as they read it.
			v, err = c.Scan(ctx, attachments.NormalizeCR(m.Reader()))
		}
	}
	if err != nil {
		return checks.Result{Status: checks.StatusTemperror, Reason: err.Error(), Err: err, Facts: map[string]any{"virus": "", "unscannable": false}}
	}
	if !v.Infected {
		return checks.Result{Status: checks.StatusClean, Facts: map[string]any{"virus": "", "unscannable": false}}
	}
	ip := ""
	if m.ClientIP != nil {
		ip = m.ClientIP.String()
	}
	return checks.Result{
		Status:  checks.StatusInfected,
		Symbols: []checks.Symbol{{Name: Symbol, Score: c.cfg.Score, Detail: v.Signature}},
		Reason:  "clamd: " + v.Signature + " FOUND",
		Facts:   map[string]any{"virus": v.Signature, "unscannable": false},
		Events:  []checks.Event{verdictlog.Infected(m.QueueID, ip, v.Signature, "clamd")},
	}
}

// Scan streams r to clamd and returns its verdict.
func (c *Check) Scan(ctx context.Context, r io.Reader) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// Closing the connection when ctx ends unblocks any read or write.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	fail := func(what string, err error) (Verdict, error) {
		if ctx.Err() != nil {
			return Verdict{}, fmt.Errorf("%w: no answer within %s", ErrUnavailable, time.Duration(c.cfg.Timeout))
		}
		return Verdict{}, fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	w := bufio.NewWriterSize(conn, c.cfg.ChunkSize+4)
	if _, err := w.WriteString("zINSTREAM\x00"); err != nil {
		return fail("write", err)
	}
	buf := make([]byte, c.cfg.ChunkSize)
	var lenb [4]byte
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			binary.BigEndian.PutUint32(lenb[:], uint32(n))
			w.Write(lenb[:])
			if _, err := w.Write(buf[:n]); err != nil {
				// clamd closes the connection when the stream is over its
				// limit: its answer says so.
				break
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return Verdict{}, fmt.Errorf("antivirus: reading the message: %w", rerr)
		}
	}
	w.Write([]byte{0, 0, 0, 0})
	if err := w.Flush(); err != nil && !isReset(err) {
		return fail("write", err)
	}
	line, err := bufio.NewReader(conn).ReadString(0)
	if err != nil {
		// No NUL terminator: the answer was cut short.
		return fail("read", fmt.Errorf("%v (answer so far %q)", err, line))
	}
	return parseAnswer(strings.TrimRight(line, "\x00\n"))
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// parseAnswer reads clamd's reply to INSTREAM.
func parseAnswer(line string) (Verdict, error) {
	v := Verdict{Raw: line}
	rest := strings.TrimPrefix(line, "stream: ")
	switch {
	case line == "stream: OK":
		return v, nil
	case strings.HasSuffix(rest, " FOUND"):
		v.Infected = true
		v.Signature = strings.TrimSuffix(rest, " FOUND")
		return v, nil
	case strings.HasSuffix(line, " ERROR"):
		return v, fmt.Errorf("%w: %s", ErrUnavailable, line)
	}
	return v, fmt.Errorf("%w: %q", ErrProtocol, line)
}

// Ping checks that clamd answers PONG.
func (c *Check) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	b, err := bufio.NewReader(conn).ReadBytes(0)
	if err != nil || !bytes.Equal(bytes.TrimRight(b, "\x00"), []byte("PONG")) {
		return fmt.Errorf("%w: PING: %q %v", ErrUnavailable, b, err)
	}
	return nil
}

// Facts implements checks.Factual: the facts rules see, with the values
// they have when the check did not run.
func (*Check) Facts() map[string]any {
	return map[string]any{"virus": "", "unscannable": false}
}
