// Package milter is the glue between the MTA's milter protocol
// (github.com/emersion/go-milter) and chainmail's check engine.
//
// go-milter negotiates protocol version 2 and, after every accept, reject,
// tempfail or discard response, replaces the connection's backend with a
// new one from Server.NewMilter without saying which connection it is for.
// Connect and HELO are not sent again for the next message on the same
// SMTP connection, so a naive backend loses the client address and HELO
// from the second message on. This package keeps one session object per
// milter connection and hands it to every backend the library creates for
// that connection: the listener wraps each accepted connection, and the
// wrapper watches the responses written to it; whenever a complete
// connection-resetting response has been written, the session is queued on
// a one-slot channel that the next NewMilter call (made by the same
// goroutine, right after the write) takes from. Every producer blocks until
// its own item is taken, and every consumer has just produced, so each
// NewMilter call receives its own connection's session.
package milter

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/prometheus/client_golang/prometheus"

	"chainmail/checks"
)

// Options configure a Server.
type Options struct {
	// Engine returns the engine to use for the next message; it is called
	// once per message so a reload takes effect between messages.
	Engine func() *checks.Engine
	// SpoolThreshold is the body size kept in memory (default 1 MiB);
	// SpoolDir is where larger bodies go (default os.TempDir()).
	SpoolThreshold int
	SpoolDir       string
	// MaxHeaderBytes bounds the header block kept per message (default
	// 4 MiB); a larger one is rejected with 552 5.3.4.
	MaxHeaderBytes int
	// Timeout bounds one message's evaluation at end of body (default
	// 120 s, well inside Postfix's 300 s milter_content_timeout).
	Timeout time.Duration
	// Logf receives operational messages; default log.Printf.
	Logf func(format string, args ...any)
	// Metrics, when set, is updated per session and message.
	Metrics *Metrics
	// MaxConcurrent bounds the messages evaluated at once (admission.go);
	// 0 means runtime.NumCPU().
	MaxConcurrent int

	// Connection limits (limits.go). ConnectTimeout bounds the wait for
	// the MTA's first packet (default 30 s, as Postfix's
	// milter_connect_timeout); CommandTimeout a whole packet once it
	// began, and the whole reply to one (default 30 s, as
	// milter_command_timeout); IdleTimeout the wait between packets
	// (default 330 s: the MTA is silent while its SMTP client is, up to
	// Postfix's smtpd_timeout of 300 s). Connections beyond MaxConnections
	// (default 1000) are closed at once.
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	IdleTimeout    time.Duration
	MaxConnections int
}

// Server serves the milter protocol.
type Server struct {
	opts    Options
	inner   *gomilter.Server
	handoff chan *session

	mu        sync.Mutex
	sessions  map[*session]struct{}
	listeners []net.Listener
	draining  atomic.Bool
	// busy counts messages being evaluated; idle is closed when it drops
	// to zero during a shutdown.
	busy   int
	idle   chan struct{}
	nextID atomic.Uint64
	admit  *admission

	acceptLog, refuseLog everyLog
}

// Actions the server asks for. Only version-2 action bits: go-milter's
// client (and older MTAs) refuse v6 bits from a v2 server.
const actions = gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine | gomilter.OptChangeBody

// NewServer returns a server for opts.
func NewServer(opts Options) *Server {
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 4 << 20
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 120 * time.Second
	}
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&opts.ConnectTimeout, defaultConnectTimeout}, {&opts.CommandTimeout, defaultCommandTimeout}, {&opts.IdleTimeout, defaultIdleTimeout}} {
		if *d.p <= 0 {
			*d.p = d.v
		}
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = defaultMaxConnections
	}
	s := &Server{
		opts:     opts,
		handoff:  make(chan *session, 1),
		sessions: map[*session]struct{}{},
	}
	var waiting prometheus.Gauge
	if opts.Metrics != nil {
		waiting = opts.Metrics.Waiting
	}
	s.admit = newAdmission(opts.MaxConcurrent, waiting)
	s.inner = &gomilter.Server{
		NewMilter: s.newMilter,
		Actions:   actions,
	}
	return s
}

// Serve accepts milter connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	if s.draining.Load() {
		ln.Close()
		return nil
	}
	err := s.inner.Serve(&listener{Listener: ln, s: s})
	if errors.Is(err, gomilter.ErrServerClosed) || s.draining.Load() {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, lets messages being evaluated
// finish (until ctx ends), answers every other message in progress with a
// temporary failure and closes the connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.admit.stop()
	// Closing the listeners ends go-milter's accept loop. (Its own Close
	// writes a flag the accept loop reads without synchronisation.)
	var err error
	s.mu.Lock()
	for _, ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	s.mu.Unlock()
	s.mu.Lock()
	done := make(chan struct{})
	if s.busy == 0 {
		close(done)
	} else {
		s.idle = done
	}
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.mu.Lock()
	open := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		open = append(open, ss)
	}
	s.mu.Unlock()
	for _, ss := range open {
		ss.conn.Close()
	}
	return err
}

func (s *Server) begin() {
	s.mu.Lock()
	s.busy++
	s.mu.Unlock()
}

func (s *Server) end() {
	s.mu.Lock()
	s.busy--
	if s.busy == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// Sessions returns the number of open milter connections.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// newMilter is go-milter's backend factory: it takes the session queued by
// the listener (new connection) or by the connection's write hook (after a
// resetting response).
func (s *Server) newMilter() gomilter.Milter {
	select {
	case ss := <-s.handoff:
		return &backend{s: ss}
	default:
		// Not reachable with go-milter v0.5.0; keep the message checked
		// anyway, only without connection facts.
		s.opts.Logf("milter: backend requested without a connection; connection facts unknown")
		return &backend{s: s.newSession(nil)}
	}
}

func (s *Server) newSession(c *conn) *session {
	ss := &session{srv: s, conn: c, id: s.nextID.Add(1), connMacros: map[string]string{}}
	ss.resetMessage()
	return ss
}

type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.accept()
	if err != nil {
		return nil, err
	}
	wc := &conn{Conn: c, r: bufio.NewReaderSize(c, 64*1024), accepted: time.Now()}
	ss := l.s.newSession(wc)
	wc.sess = ss
	l.s.mu.Lock()
	l.s.sessions[ss] = struct{}{}
	l.s.mu.Unlock()
	if m := l.s.opts.Metrics; m != nil {
		m.Sessions.Inc()
	}
	// go-milter calls NewMilter on this goroutine right after we return.
	l.s.handoff <- ss
	return wc, nil
}

// conn watches the milter responses written to the MTA to know when
// go-milter is about to replace the backend.
type conn struct {
	net.Conn
	sess *session
	// r buffers reads: go-milter reads each packet's length and payload
	// straight from the connection, two system calls per packet.
	r *bufio.Reader

	// Outgoing packet parser state: header bytes of the current packet
	// seen so far, and payload bytes still to come.
	hdr    [5]byte
	nhdr   int
	remain uint32
	closed atomic.Bool

	// Read side (limits.go): when the connection was accepted, the
	// framing of what was read, when the packet being read began, whether
	// a timeout was logged.
	accepted      time.Time
	in            inbound
	packetStart   time.Time
	timeoutLogged atomic.Bool
	// Write side: the deadline shared by every write answering one
	// packet, and the packet (count of packets read) it was set for.
	writeBy  time.Time
	writeFor uint64
	// owe is set while an end-of-message reply is due (Body): the server
	// counts the message as busy until the reply is written or the
	// connection closes.
	owe atomic.Bool
}

// resets reports whether go-milter replaces the backend after writing a
// response with this code (milter.SimpleResponse.Continue is false for
// them).
func resets(code byte) bool {
	switch gomilter.ActionCode(code) {
	case gomilter.ActAccept, gomilter.ActReject, gomilter.ActTempFail, gomilter.ActDiscard:
		return true
	}
	return false
}

// final reports whether a packet with this code answers a command (as
// opposed to a modification sent before the answer at end of message).
func final(code byte) bool {
	switch gomilter.ActionCode(code) {
	case gomilter.ActAccept, gomilter.ActContinue, gomilter.ActDiscard, gomilter.ActReject, gomilter.ActTempFail, gomilter.ActReplyCode:
		return true
	}
	return false
}

func (c *conn) Read(p []byte) (int, error) {
	which := ""
	if c.r.Buffered() == 0 {
		var at time.Time
		at, which = c.readTimeout()
		c.Conn.SetReadDeadline(at)
	}
	mid, packets := c.in.hdr > 0, c.in.packets
	n, err := c.r.Read(p)
	c.in.consumed(p[:n])
	if c.in.hdr > 0 && (!mid || c.in.packets != packets) {
		c.packetStart = time.Now()
	}
	if err != nil && which != "" {
		c.timedOut(err, which)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(c.writeDeadline())
	n, err := c.Conn.Write(p)
	if err != nil {
		c.timedOut(err, "command_timeout")
		return n, err
	}
	handoff, replied := false, false
	for b := p; len(b) > 0; {
		if c.remain > 0 {
			k := uint32(len(b))
			if k > c.remain {
				k = c.remain
			}
			c.remain -= k
			b = b[k:]
			continue
		}
		c.hdr[c.nhdr] = b[0]
		c.nhdr++
		b = b[1:]
		if c.nhdr == 5 {
			length := binary.BigEndian.Uint32(c.hdr[:4])
			code := c.hdr[4]
			c.nhdr = 0
			if length > 0 {
				c.remain = length - 1
			}
			if c.remain == 0 && resets(code) {
				handoff = true
			}
			if final(code) {
				replied = true
			}
		}
	}
	if replied && c.remain == 0 && c.owe.CompareAndSwap(true, false) {
		c.sess.srv.end()
	}
	if handoff {
		c.sess.srv.handoff <- c.sess
	}
	return n, nil
}

func (c *conn) Close() error {
	// A reply that will not be written is no longer awaited.
	if c.owe.CompareAndSwap(true, false) {
		c.sess.srv.end()
	}
	if c.closed.CompareAndSwap(false, true) {
		s := c.sess.srv
		s.mu.Lock()
		delete(s.sessions, c.sess)
		s.mu.Unlock()
		if m := s.opts.Metrics; m != nil {
			m.Sessions.Dec()
		}
		err := c.Conn.Close()
		// Release the spool of a message cut short; a message being
		// evaluated holds the lock until its verdict is written.
		go func(ss *session) {
			ss.mu.Lock()
			ss.resetMessage()
			ss.mu.Unlock()
		}(c.sess)
		return err
	}
	return c.Conn.Close()
}

var _ io.Writer = (*conn)(nil)

func (s *Server) logf(format string, args ...any) { s.opts.Logf(format, args...) }

// errorf is a helper for wrapping errors with the package prefix.
func errorf(format string, args ...any) error { return fmt.Errorf("milter: "+format, args...) }
