package milter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	gomilter "github.com/emersion/go-milter"

	"chainmail/checks"
)

// Outcome is what a milter answered for one message, as the MTA would see
// it.
type Outcome struct {
	// Action is accept, tempfail, reject, discard, quarantine (accept with
	// a quarantine request) or continue.
	Action string `json:"action"`
	// Reply is the SMTP reply for reply-code answers ("550 5.7.1 …").
	Reply string `json:"reply,omitempty"`
	// Headers lists header additions and changes in the order sent; a
	// change or deletion is written "Name[index]: value".
	Headers []checks.Header `json:"headers"`
	// Body is the replacement body, when the milter replaced it.
	Body []byte `json:"body,omitempty"`
	// Quarantine is the hold reason, when one was sent.
	Quarantine string `json:"quarantine,omitempty"`
	// Refused lists recipients refused at RCPT time ("addr: 451 4.7.1 …");
	// the message goes on to the others, as with an MTA.
	Refused []string `json:"refused,omitempty"`
	// Stage names the protocol step that ended the message early
	// ("connect", "helo", "mail", "rcpt", "header", "eoh", "body"), "" when
	// it reached end of message.
	Stage string `json:"stage,omitempty"`
}

// ParseAddr splits a milter address: "inet:HOST:PORT", "tcp:HOST:PORT",
// "inet:PORT@HOST" (sendmail's spelling), "unix:PATH" or "local:PATH", or
// a bare "HOST:PORT".
func ParseAddr(addr string) (network, address string, err error) {
	scheme, rest, ok := strings.Cut(addr, ":")
	if !ok {
		return "", "", fmt.Errorf("milter: address %q: want inet:HOST:PORT or unix:PATH", addr)
	}
	switch scheme {
	case "inet", "tcp", "inet4", "inet6":
		if port, host, ok := strings.Cut(rest, "@"); ok {
			rest = net.JoinHostPort(host, port)
		}
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("milter: address %q: %v", addr, err)
		}
		return "tcp", rest, nil
	case "unix", "local":
		if rest == "" {
			return "", "", fmt.Errorf("milter: address %q: empty socket path", addr)
		}
		return "unix", rest, nil
	default:
		if _, _, err := net.SplitHostPort(addr); err == nil {
			return "tcp", addr, nil
		}
		return "", "", fmt.Errorf("milter: address %q: unknown scheme %q (want inet or unix)", addr, scheme)
	}
}

// Client sends messages to a milter the way an MTA does.
type Client struct {
	Network, Address string
	Timeout          time.Duration
}

// Session is one milter connection: several messages may be sent over it,
// as over one SMTP connection.
type Session struct {
	s *gomilter.ClientSession
}

// Dial opens a session and sends the connection facts (Connect and HELO).
func (c *Client) Dial(env checks.Envelope) (*Session, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	cl := gomilter.NewClientWithOptions(c.Network, c.Address, gomilter.ClientOptions{
		Dialer:       &net.Dialer{Timeout: 10 * time.Second},
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		// Version-2 action bits only: what a v2 server may ask for.
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptQuarantine |
			gomilter.OptChangeBody | gomilter.OptAddRcpt | gomilter.OptRemoveRcpt,
	})
	s, err := cl.Session()
	if err != nil {
		return nil, err
	}
	sess := &Session{s: s}
	host := env.ClientName
	if host == "" {
		host = "unknown"
	}
	family, addr := gomilter.FamilyUnknown, ""
	if env.ClientIP != nil {
		addr = env.ClientIP.String()
		family = gomilter.FamilyInet
		if env.ClientIP.To4() == nil {
			family = gomilter.FamilyInet6
		}
	}
	if err := s.Macros(gomilter.CodeConn, "j", "chainmail-client", "{daemon_name}", "chainmail-client",
		"{client_addr}", addr, "{client_name}", host); err != nil {
		s.Close()
		return nil, err
	}
	act, err := s.Conn(host, family, uint16(env.ClientPort), addr)
	if err != nil {
		s.Close()
		return nil, err
	}
	if act.Code != gomilter.ActContinue {
		s.Close()
		return nil, fmt.Errorf("milter: connection refused at connect: %s", describe(act))
	}
	if env.HELO != "" {
		act, err = s.Helo(env.HELO)
		if err != nil {
			s.Close()
			return nil, err
		}
		if act.Code != gomilter.ActContinue {
			s.Close()
			return nil, fmt.Errorf("milter: connection refused at HELO: %s", describe(act))
		}
	}
	return sess, nil
}

// Close ends the session.
func (s *Session) Close() error { return s.s.Close() }

func describe(a *gomilter.Action) string {
	if a.Code == gomilter.ActReplyCode {
		return fmt.Sprintf("%d %s", a.SMTPCode, a.SMTPText)
	}
	return string(rune(a.Code))
}

// early converts an action that ended the message before its end.
func early(stage string, a *gomilter.Action) *Outcome {
	o := &Outcome{Stage: stage}
	fill(o, a)
	return o
}

func fill(o *Outcome, a *gomilter.Action) {
	switch a.Code {
	case gomilter.ActAccept:
		o.Action = "accept"
	case gomilter.ActContinue:
		o.Action = "continue"
	case gomilter.ActReject:
		o.Action, o.Reply = "reject", "550 5.7.1 Command rejected"
	case gomilter.ActTempFail:
		o.Action, o.Reply = "tempfail", "451 4.7.1 Service unavailable - try again later"
	case gomilter.ActDiscard:
		o.Action = "discard"
	case gomilter.ActReplyCode:
		o.Reply = fmt.Sprintf("%d %s", a.SMTPCode, a.SMTPText)
		if a.SMTPCode >= 500 {
			o.Action = "reject"
		} else {
			o.Action = "tempfail"
		}
	default:
		o.Action = fmt.Sprintf("unknown(%c)", a.Code)
	}
}

// Send sends one message: envelope from env (its QueueID is sent as macro
// i, its AuthUser as {auth_authen}), then the raw message.
func (s *Session) Send(env checks.Envelope, raw io.Reader) (*Outcome, error) {
	c := s.s
	qid := env.QueueID
	if qid == "" {
		qid = "NOQUEUE"
	}
	if err := c.Macros(gomilter.CodeMail, "i", qid, "{auth_authen}", env.AuthUser, "{mail_addr}", env.MailFrom); err != nil {
		return nil, err
	}
	act, err := c.Mail("<"+env.MailFrom+">", nil)
	if err != nil {
		return nil, err
	}
	if act.Code != gomilter.ActContinue {
		return early("mail", act), nil
	}
	var refused []string
	var last *gomilter.Action
	for _, r := range env.Rcpts {
		if err := c.Macros(gomilter.CodeRcpt, "i", qid, "{rcpt_addr}", r); err != nil {
			return nil, err
		}
		act, err := c.Rcpt("<"+r+">", nil)
		if err != nil {
			return nil, err
		}
		switch act.Code {
		case gomilter.ActContinue:
		case gomilter.ActReplyCode, gomilter.ActReject, gomilter.ActTempFail:
			// Only this recipient is refused.
			o := early("rcpt", act)
			refused = append(refused, r+": "+o.Reply)
			last = act
		default:
			return early("rcpt", act), nil
		}
	}
	if len(env.Rcpts) > 0 && len(refused) == len(env.Rcpts) {
		o := early("rcpt", last)
		o.Refused = refused
		return o, nil
	}
	br := bufio.NewReaderSize(raw, 64*1024)
	fields, err := checks.ParseHeader(br, 0)
	var bodyStart string
	var bs *checks.BodyStartError
	if errors.As(err, &bs) {
		bodyStart = bs.Line
	} else if err != nil {
		return nil, err
	}
	if err := c.Macros(gomilter.CodeHeader, "i", qid); err != nil {
		return nil, err
	}
	for _, f := range fields {
		// The MTA sends values with LF line ends and without the space
		// after the colon.
		act, err := c.HeaderField(f.Name, strings.ReplaceAll(f.Value, "\r\n", "\n"))
		if err != nil {
			return nil, err
		}
		if act.Code != gomilter.ActContinue {
			return early("header", act), nil
		}
	}
	if err := c.Macros(gomilter.CodeEOH, "i", qid); err != nil {
		return nil, err
	}
	act, err = c.HeaderEnd()
	if err != nil {
		return nil, err
	}
	if act.Code != gomilter.ActContinue {
		return early("eoh", act), nil
	}
	body := io.MultiReader(strings.NewReader(bodyStart), br)
	buf := make([]byte, 32*1024)
	prevCR := false
	for {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			chunk := toCRLF(buf[:n], prevCR)
			prevCR = buf[n-1] == '\r'
			act, err := c.BodyChunk(chunk)
			if err != nil {
				return nil, err
			}
			if act.Code != gomilter.ActContinue {
				return early("body", act), nil
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if err := c.Macros(gomilter.CodeEOB, "i", qid); err != nil {
		return nil, err
	}
	mods, act, err := c.End()
	if err != nil {
		return nil, err
	}
	o := &Outcome{Refused: refused}
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActAddHeader:
			o.Headers = append(o.Headers, checks.Header{Name: m.HeaderName, Value: m.HeaderValue})
		case gomilter.ActChangeHeader, gomilter.ActInsertHeader:
			o.Headers = append(o.Headers, checks.Header{Name: fmt.Sprintf("%s[%d]", m.HeaderName, m.HeaderIndex), Value: m.HeaderValue})
		case gomilter.ActQuarantine:
			o.Quarantine = m.Reason
		case gomilter.ActReplBody:
			if o.Body == nil {
				o.Body = []byte{}
			}
			o.Body = append(o.Body, m.Body...)
		}
	}
	fill(o, act)
	if o.Quarantine != "" && (o.Action == "accept" || o.Action == "continue") {
		o.Action = "quarantine"
	}
	return o, nil
}

// toCRLF is a no-op for CRLF input; bare LF bodies (files written on Unix)
// are sent as the MTA would, with CRLF.
// prevCR says whether the previous chunk ended with CR.
func toCRLF(b []byte, prevCR bool) []byte {
	out := make([]byte, 0, len(b)+len(b)/40)
	for i, c := range b {
		if c == '\n' && ((i == 0 && !prevCR) || (i > 0 && b[i-1] != '\r')) {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
