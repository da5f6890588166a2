package holdqueue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The helper protocol (see doc.go, "Privilege separation"): one request
// per connection, a single line of at most MaxRequest bytes:
//
//	list
//	message ID
//	release ID
//	delete ID
//
// answered by one line of JSON (a Reply), followed, for a message, by
// exactly Reply.Size bytes of the message.

// MaxRequest bounds a request line, its LF included.
const MaxRequest = 64

// Operations of the helper protocol.
const (
	OpList    = "list"
	OpMessage = "message"
	OpRelease = "release"
	OpDelete  = "delete"
)

// Error codes of a Reply; each maps to one of the package's errors.
const (
	CodeNotFound   = "not_found"   // ErrNotFound
	CodeBadID      = "bad_id"      // ErrBadID
	CodeTooLarge   = "too_large"   // ErrTooLarge
	CodeNotFlushed = "not_flushed" // ErrNotFlushed
	CodeBadRequest = "bad_request" // ErrBadRequest
	CodeDenied     = "denied"      // ErrDenied
	CodeBusy       = "busy"        // ErrBusy
	CodeFailed     = "failed"      // anything else: the command failed
)

var (
	// ErrBadRequest is a request line the helper does not understand.
	ErrBadRequest = errors.New("not a hold queue request")
	// ErrDenied is the helper refusing a peer that is neither root nor
	// in its group.
	ErrDenied = errors.New("not allowed to use the hold queue helper")
	// ErrBusy is the helper at its connection limit.
	ErrBusy = errors.New("the hold queue helper is busy")
)

var codeErrors = map[string]error{
	CodeNotFound: ErrNotFound, CodeBadID: ErrBadID, CodeTooLarge: ErrTooLarge, CodeNotFlushed: ErrNotFlushed,
	CodeBadRequest: ErrBadRequest, CodeDenied: ErrDenied, CodeBusy: ErrBusy,
}

// Reply is the helper's answer line.
type Reply struct {
	Error   string `json:"error,omitempty"`   // a Code…, "" for success
	Message string `json:"message,omitempty"` // the error in words
	Held    []Held `json:"held,omitempty"`    // list
	Size    int64  `json:"size,omitempty"`    // message: the bytes that follow
}

// ParseRequest reads one request line (without its LF): the operation
// and, for all but list, a queue id that passes ValidID. Anything else,
// extra spaces and fields included, is ErrBadRequest or ErrBadID.
func ParseRequest(line string) (op, id string, err error) {
	if len(line) >= MaxRequest {
		return "", "", fmt.Errorf("request over %d bytes: %w", MaxRequest, ErrBadRequest)
	}
	op, id, hasID := strings.Cut(line, " ")
	switch op {
	case OpList:
		if hasID {
			return "", "", fmt.Errorf("list takes no argument: %w", ErrBadRequest)
		}
		return op, "", nil
	case OpMessage, OpRelease, OpDelete:
		if !hasID {
			return "", "", fmt.Errorf("%s needs a queue id: %w", op, ErrBadRequest)
		}
		if !ValidID(id) {
			return "", "", fmt.Errorf("%q: %w", truncate(id, 64), ErrBadID)
		}
		return op, id, nil
	}
	return "", "", fmt.Errorf("%q: %w", truncate(line, 32), ErrBadRequest)
}

// Server answers the helper protocol with a Queue that runs Postfix's
// commands (as root, in the packaged helper). It is configured by its own
// side only: the client names an operation and a queue id, nothing else.
type Server struct {
	Queue *Queue
	// Allow reports whether a peer (its credentials from SO_PEERCRED) may
	// use the helper; nil allows root only. See AllowGroup.
	Allow func(uid, gid uint32) bool
	// MaxConns bounds the connections served at once (default 8); more
	// are answered ErrBusy and closed.
	MaxConns int
	// Log, when set, gets one line per request and per refusal.
	Log func(format string, args ...any)

	wg sync.WaitGroup
}

// ReadTimeout bounds how long a client may take to send its request;
// WriteTimeout how long the answer may take to be read.
const (
	ReadTimeout  = 5 * time.Second
	WriteTimeout = 60 * time.Second
)

// AllowGroup allows root and the members of group gid: a peer whose
// primary group is gid, or whose user is in it in the group database.
func AllowGroup(gid uint32) func(uid, gid uint32) bool {
	want := strconv.FormatUint(uint64(gid), 10)
	return func(puid, pgid uint32) bool {
		if puid == 0 || pgid == gid {
			return true
		}
		u, err := user.LookupId(strconv.FormatUint(uint64(puid), 10))
		if err != nil {
			return false
		}
		gids, err := u.GroupIds()
		if err != nil {
			return false
		}
		for _, g := range gids {
			if g == want {
				return true
			}
		}
		return false
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.Log != nil {
		s.Log(format, args...)
	}
}

// Serve answers connections on l, a unix socket, until l is closed; it
// then waits for the requests in progress and returns nil.
func (s *Server) Serve(l net.Listener) error {
	max := s.MaxConns
	if max <= 0 {
		max = 8
	}
	sem := make(chan struct{}, max)
	defer s.wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
		select {
		case sem <- struct{}{}:
		default:
			s.logf("holdqueue helper: connection refused: %d connections in progress", max)
			c.SetWriteDeadline(time.Now().Add(time.Second))
			writeReply(c, errReply(ErrBusy))
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			defer c.Close()
			s.serveConn(c)
		}()
	}
}

// peerCred returns the credentials of a unix socket's peer.
func peerCred(c net.Conn) (*syscall.Ucred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("not a unix socket (%T)", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

func (s *Server) serveConn(c net.Conn) {
	cred, err := peerCred(c)
	if err != nil {
		s.logf("holdqueue helper: refused a peer: no credentials: %v", err)
		return
	}
	allow := s.Allow
	if allow == nil {
		allow = func(uid, _ uint32) bool { return uid == 0 }
	}
	if !allow(cred.Uid, cred.Gid) {
		s.logf("holdqueue helper: refused pid %d uid %d gid %d: neither root nor in the allowed group", cred.Pid, cred.Uid, cred.Gid)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeReply(c, errReply(ErrDenied))
		return
	}
	c.SetReadDeadline(time.Now().Add(ReadTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(c, MaxRequest), MaxRequest).ReadString('\n')
	if err != nil {
		s.logf("holdqueue helper: uid %d: no request line within %d bytes and %v: %v", cred.Uid, MaxRequest, ReadTimeout, err)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeReply(c, errReply(fmt.Errorf("no request line within %d bytes and %v: %w", MaxRequest, ReadTimeout, ErrBadRequest)))
		return
	}
	op, id, err := ParseRequest(strings.TrimSuffix(line, "\n"))
	if err != nil {
		s.logf("holdqueue helper: uid %d: %v", cred.Uid, err)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeReply(c, errReply(err))
		return
	}
	// The commands' time limit is the Queue's; a client that goes away
	// does not stop a release half done.
	ctx := context.Background()
	start := time.Now()
	var rep Reply
	var msg []byte
	switch op {
	case OpList:
		rep.Held, err = s.Queue.List(ctx)
	case OpMessage:
		msg, err = s.Queue.Message(ctx, id)
		rep.Size = int64(len(msg))
	case OpRelease:
		err = s.Queue.Release(ctx, id)
	case OpDelete:
		err = s.Queue.Delete(ctx, id)
	}
	if err != nil {
		rep, msg = errReply(err), nil
	}
	s.logf("holdqueue helper: uid %d pid %d: %s: %s (%v)", cred.Uid, cred.Pid, strings.TrimSpace(op+" "+id), outcome(err), time.Since(start).Round(time.Millisecond))
	c.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if err := writeReply(c, rep); err != nil {
		return
	}
	if msg != nil {
		c.Write(msg)
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func errReply(err error) Reply {
	code := CodeFailed
	for c, e := range codeErrors {
		if errors.Is(err, e) {
			code = c
			break
		}
	}
	return Reply{Error: code, Message: err.Error()}
}

func writeReply(w io.Writer, r Reply) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// maxReplyLine bounds the reply line a client reads (a list of held
// messages; 64 MiB is some 200 000 of them).
const maxReplyLine = 64 << 20

// RemoteError is an error the helper reported.
type RemoteError struct {
	Code, Message string
}

func (e *RemoteError) Error() string {
	return "holdqueue helper: " + e.Message
}

// Unwrap maps the code back to the package's error.
func (e *RemoteError) Unwrap() error { return codeErrors[e.Code] }

// remote sends one request to the helper at q.socket and reads its reply;
// for a message, the bytes that follow it.
func (q *Queue) remote(ctx context.Context, op, id string) (Reply, []byte, error) {
	var rep Reply
	req := op
	if id != "" {
		req += " " + id
	}
	ctx, cancel := context.WithTimeout(ctx, 2*Timeout+10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", q.socket)
	if err != nil {
		return rep, nil, fmt.Errorf("holdqueue: the helper at %s: %w", q.socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	// A helper that refuses the peer (denied, busy) answers and closes
	// before reading: its answer counts more than a failed write.
	_, werr := io.WriteString(c, req+"\n")
	br := bufio.NewReader(c)
	line, err := readLine(br, maxReplyLine)
	if err != nil {
		if werr != nil {
			err = werr
		}
		return rep, nil, fmt.Errorf("holdqueue: the helper at %s: %s: %w", q.socket, op, err)
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return rep, nil, fmt.Errorf("holdqueue: the helper at %s: answer to %q: %w", q.socket, op, err)
	}
	if rep.Error != "" {
		return rep, nil, &RemoteError{Code: rep.Error, Message: rep.Message}
	}
	if op != OpMessage {
		return rep, nil, nil
	}
	if rep.Size < 0 || rep.Size > q.maxMessage {
		return rep, nil, fmt.Errorf("holdqueue: %s: %d bytes, over %d: %w", id, rep.Size, q.maxMessage, ErrTooLarge)
	}
	msg := make([]byte, rep.Size)
	if _, err := io.ReadFull(br, msg); err != nil {
		return rep, nil, fmt.Errorf("holdqueue: the helper at %s: reading message %s (%d bytes): %w", q.socket, id, rep.Size, err)
	}
	return rep, msg, nil
}

// readLine reads up to LF, at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var buf bytes.Buffer
	for {
		frag, err := br.ReadSlice('\n')
		buf.Write(frag)
		if buf.Len() > max {
			return nil, fmt.Errorf("answer line over %d bytes", max)
		}
		switch {
		case err == nil:
			return buf.Bytes(), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && buf.Len() == 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
