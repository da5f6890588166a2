package milter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	gomilter "github.com/emersion/go-milter"

	"chainmail/checks"
	"chainmail/store"
)

// session is one milter connection: the connection facts that must
// survive go-milter's backend resets, and the message in progress.
type session struct {
	srv  *Server
	conn *conn
	id   uint64

	mu sync.Mutex
	// Connection facts.
	clientName string
	clientIP   net.IP
	clientPort int
	helo       string
	connMacros map[string]string

	// The message in progress.
	macros      map[string]string
	mailFrom    string
	rcpts       []string
	header      []checks.HeaderField
	headerBytes int
	headerOver  bool
	spool       *checks.Spool
	spoolErr    error
	started     bool
	storeBudget *store.Budget
	// engine is the configuration the message was taken under, at MAIL:
	// its recipients and its content are checked by the same one.
	engine *checks.Engine
}

func (ss *session) resetMessage() {
	if ss.spool != nil {
		ss.spool.Close()
	}
	ss.macros = map[string]string{}
	ss.mailFrom = ""
	ss.rcpts = nil
	ss.header = nil
	ss.headerBytes = 0
	ss.headerOver = false
	ss.spool = nil
	ss.spoolErr = nil
	ss.started = false
	ss.storeBudget = store.NewBudget() // one state-store time budget per message
	ss.engine = nil
}

// messageEngine is the engine of the message in progress, taken once.
func (ss *session) messageEngine() *checks.Engine {
	if ss.engine == nil {
		ss.engine = ss.srv.opts.Engine()
	}
	return ss.engine
}

// mergeMacros accumulates the macros of the latest packet: go-milter's
// Modifier only carries the last macro packet.
func (ss *session) mergeMacros(conn bool, m map[string]string) {
	for k, v := range m {
		k = strings.TrimSuffix(strings.TrimPrefix(k, "{"), "}")
		if conn {
			ss.connMacros[k] = v
		}
		ss.macros[k] = v
	}
}

// guard turns a panic in the session code into a logged error that ends
// this milter connection only (the MTA then applies its default action to
// the message, never an accept from us).
func (ss *session) guard(resp *gomilter.Response, err *error) {
	if v := recover(); v != nil {
		ss.srv.logf("milter: session %d: internal error, closing the connection: panic: %v\n%s", ss.id, v, debug.Stack())
		if resp != nil {
			*resp = nil
		}
		*err = errorf("session %d: panic: %v", ss.id, v)
	}
}

// backend is what go-milter calls; it forwards to the connection's
// session, which outlives it.
type backend struct{ s *session }

func (b *backend) Connect(host, family string, port uint16, addr net.IP, m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.clientName = host
	ss.clientIP = addr
	ss.clientPort = int(port)
	ss.mergeMacros(true, m.Macros)
	return gomilter.RespContinue, nil
}

func (b *backend) Helo(name string, m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.helo = name
	ss.mergeMacros(true, m.Macros)
	return gomilter.RespContinue, nil
}

func (b *backend) MailFrom(from string, m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.resetMessage()
	for k, v := range ss.connMacros {
		ss.macros[k] = v
	}
	ss.mergeMacros(false, m.Macros)
	ss.started = true
	if ss.srv.draining.Load() {
		return shutdownReply, nil
	}
	// go-milter trims the angle brackets; ESMTP parameters are not passed.
	ss.mailFrom = from
	ss.messageEngine()
	return gomilter.RespContinue, nil
}

// shutdownReply answers messages that start while the server drains.
var shutdownReply = gomilter.NewResponseStr('y', "451 4.3.2 chainmail is shutting down, try again later")

func (b *backend) RcptTo(rcpt string, m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.mergeMacros(false, m.Macros)
	eng := ss.messageEngine()
	env := ss.envelope()
	ctx, cancel := context.WithTimeout(store.WithBudget(context.Background(), ss.storeBudget), ss.srv.opts.Timeout)
	defer cancel()
	r, _ := eng.CheckRcpt(ctx, &env, rcpt)
	if r.Action == checks.Reject || r.Action == checks.Tempfail {
		// Only this recipient is refused (a reply code, which go-milter
		// does not treat as the end of the message).
		return reply(r.Code, r.Reply), nil
	}
	ss.rcpts = append(ss.rcpts, rcpt)
	return gomilter.RespContinue, nil
}

func (b *backend) Header(name, value string, m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.mergeMacros(false, m.Macros)
	if ss.headerOver {
		return gomilter.RespContinue, nil
	}
	ss.headerBytes += len(name) + len(value) + 4
	if ss.headerBytes > ss.srv.opts.MaxHeaderBytes {
		ss.headerOver = true
		return gomilter.RespContinue, nil
	}
	ss.header = append(ss.header, checks.HeaderField{Name: name, Value: value})
	return gomilter.RespContinue, nil
}

func (b *backend) Headers(h textproto.MIMEHeader, m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.mergeMacros(false, m.Macros)
	return gomilter.RespContinue, nil
}

func (b *backend) BodyChunk(chunk []byte, m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.spoolErr != nil || ss.headerOver {
		return gomilter.RespContinue, nil
	}
	if ss.spool == nil {
		ss.spool = checks.NewSpool(ss.srv.opts.SpoolThreshold, ss.srv.opts.SpoolDir)
	}
	if _, err := ss.spool.Write(chunk); err != nil {
		ss.spoolErr = err
	}
	return gomilter.RespContinue, nil
}

func (b *backend) Abort(m *gomilter.Modifier) (err error) {
	defer b.s.guard(nil, &err)
	ss := b.s
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.resetMessage()
	return nil
}

// Body is the end of the message: run the engine and apply the verdict.
func (b *backend) Body(m *gomilter.Modifier) (resp gomilter.Response, err error) {
	defer b.s.guard(&resp, &err)
	ss := b.s
	srv := ss.srv
	srv.begin()
	// The message counts as in evaluation, for Shutdown, until its reply
	// is written: a connection closed between the verdict and its reply
	// leaves the message to the MTA's milter_default_action.
	if ss.conn != nil {
		ss.conn.owe.Store(true)
	} else {
		defer srv.end()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.mergeMacros(false, m.Macros)
	defer ss.resetMessage()

	if ss.spoolErr != nil {
		srv.logf("milter: session %d: cannot store message body: %v", ss.id, ss.spoolErr)
		return reply("451", "4.3.0 Cannot store the message, try again later"), nil
	}
	if ss.headerOver {
		return reply("552", "5.3.4 Message header too large"), nil
	}
	msg := ss.message()
	eng := ss.messageEngine()
	ctx, cancel := context.WithTimeout(store.WithBudget(context.Background(), ss.storeBudget), srv.opts.Timeout)
	defer cancel()
	release, ok := srv.admit.admit(ctx)
	if !ok {
		// Never accepted unchecked: not admitted in time is a deferral.
		if mt := srv.opts.Metrics; mt != nil {
			mt.Messages.WithLabelValues(checks.Tempfail.String()).Inc()
		}
		if srv.draining.Load() {
			return shutdownReply, nil
		}
		srv.logf("milter: session %d: message %s not admitted for evaluation within %s, deferred", ss.id, msg.QueueID, srv.opts.Timeout)
		code, text := eng.Policy.ErrorCode, eng.Policy.ErrorReply
		if code == "" {
			code, text = "451", "4.7.1 Temporary failure while checking the message, try again later"
		}
		return reply(code, text), nil
	}
	defer ss.settle(msg, release)
	v, _ := eng.Evaluate(ctx, msg)
	if mt := srv.opts.Metrics; mt != nil {
		mt.Messages.WithLabelValues(v.Action.String()).Inc()
	}
	return apply(m, msg, v)
}

// settle gives the admission slot back once every check started on msg
// has returned. A check that ran out of time was given up on, not
// stopped: it may still use the CPU and read the body after the verdict.
// Its message keeps the slot, so the number of messages being worked on
// stays within the admission limit however many checks time out, and
// keeps the body, which resetMessage (deferred before settle) must not
// close under it. The session's mutex is held.
func (ss *session) settle(msg *checks.Message, release func()) {
	if msg.Running() == 0 {
		release()
		return
	}
	spool := ss.spool
	ss.spool = nil
	mt := ss.srv.opts.Metrics
	if mt != nil {
		mt.Overrunning.Inc()
	}
	go func() {
		msg.Wait()
		if spool != nil {
			spool.Close()
		}
		release()
		if mt != nil {
			mt.Overrunning.Dec()
		}
	}()
}

// message builds the checks' view of the message in progress.
func (ss *session) message() *checks.Message {
	env := ss.envelope()
	msg := &checks.Message{Envelope: env, Header: append([]checks.HeaderField(nil), ss.header...)}
	if ss.spool != nil {
		msg.Body = ss.spool
	}
	return msg
}

// envelope is what is known of the transaction so far.
func (ss *session) envelope() checks.Envelope {
	macros := make(map[string]string, len(ss.macros))
	for k, v := range ss.macros {
		macros[k] = v
	}
	// Rcpts is shared, not copied (a copy per RCPT made the RCPT stage
	// quadratic): ss.rcpts is only appended to, and the full slice
	// expression makes an append through env.Rcpts copy.
	env := checks.Envelope{
		ClientIP:   ss.clientIP,
		ClientName: ss.clientName,
		ClientPort: ss.clientPort,
		HELO:       ss.helo,
		MailFrom:   ss.mailFrom,
		Rcpts:      ss.rcpts[:len(ss.rcpts):len(ss.rcpts)],
		AuthUser:   macros["auth_authen"],
		QueueID:    macros["i"],
		Macros:     macros,
	}
	// Fall back on macros when Connect did not carry the facts (a
	// Connect with family "unknown", or a session whose Connect was lost).
	if env.ClientIP == nil {
		if ip := net.ParseIP(strings.Trim(macros["client_addr"], "[]")); ip != nil {
			env.ClientIP = ip
		}
	}
	if env.ClientName == "" {
		env.ClientName = macros["client_name"]
	}
	if env.ClientPort == 0 {
		env.ClientPort, _ = strconv.Atoi(macros["client_port"])
	}
	if env.QueueID == "" {
		env.QueueID = "NOQUEUE"
	}
	return env
}

func reply(code, text string) gomilter.Response {
	return gomilter.NewResponseStr('y', code+" "+sanitizeReply(text))
}

// sanitizeReply keeps an SMTP reply on one line of printable ASCII.
func sanitizeReply(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

// apply turns a verdict into milter modifications and the final response.
// Modifications are only allowed at end of message; a quarantine is sent
// before the accept, as Postfix requires.
func apply(m *gomilter.Modifier, msg *checks.Message, v *checks.Verdict) (gomilter.Response, error) {
	switch v.Action {
	case checks.Reject:
		return reply(v.Code, v.Reply), nil
	case checks.Tempfail:
		return reply(v.Code, v.Reply), nil
	case checks.Discard:
		return gomilter.RespDiscard, nil
	}
	// Forged Authentication-Results with our authserv-id (RFC 8601 §5)
	// and spam verdict fields, on every delivering path, before ours are
	// added (Verdict.Remove is in removal order).
	for _, r := range v.Remove {
		if err := m.ChangeHeader(r.Index, r.Name, ""); err != nil {
			return nil, err
		}
	}
	for _, h := range v.Headers {
		if err := m.AddHeader(h.Name, h.Value); err != nil {
			return nil, err
		}
	}
	if v.Subject != "" {
		if i := headerIndex(msg.Header, "Subject"); i > 0 {
			if err := m.ChangeHeader(i, "Subject", v.Subject); err != nil {
				return nil, err
			}
		} else if err := m.AddHeader("Subject", v.Subject); err != nil {
			return nil, err
		}
	}
	if v.NewBody != nil {
		if err := replaceBody(m, v.NewBody); err != nil {
			return nil, err
		}
	}
	if v.Action == checks.Quarantine {
		if err := m.Quarantine(v.QuarantineReason); err != nil {
			return nil, err
		}
	}
	return gomilter.RespAccept, nil
}

// replaceBody sends the new body in chunks the size MTAs read body
// packets in (the MTA concatenates the replace-body packets). go-milter
// turns CRLF into LF for Postfix, so chunks end at a line end: a CR LF
// pair split across two packets would reach the MTA as CR CR LF.
func replaceBody(m *gomilter.Modifier, body checks.Body) error {
	buf := make([]byte, 65535)
	for off := int64(0); off < body.Size(); {
		n, err := body.ReadAt(buf, off)
		if n > 0 && off+int64(n) < body.Size() {
			if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
				n, err = i+1, nil
			}
		}
		if n > 0 {
			if werr := m.ReplaceBody(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if n == 0 {
			break
		}
	}
	if body.Size() == 0 {
		return m.ReplaceBody(nil)
	}
	return nil
}

// headerIndex returns the 1-based index among fields of that name of the
// first one, 0 when absent.
func headerIndex(fields []checks.HeaderField, name string) int {
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return 1
		}
	}
	return 0
}
