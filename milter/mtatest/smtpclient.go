package mtatest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultReplyTimeout bounds every read of an SMTPClient unless the client's
// Timeout field says otherwise. It is well above anything a test milter should
// need and well below Postfix's own 300 s content timeout.
const DefaultReplyTimeout = 30 * time.Second

// Reply is one (possibly multi-line) SMTP reply.
type Reply struct {
	Code     int      // three-digit reply code, e.g. 250
	Enhanced string   // RFC 3463 enhanced status code of the last line, e.g. "5.7.1"; "" if none
	Text     string   // text of the last line without code and enhanced code
	Lines    []string // every line's text after "NNN-" / "NNN ", in order
}

// String renders the reply roughly as it came over the wire (last line).
func (r Reply) String() string {
	if r.Enhanced != "" {
		return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
	}
	return fmt.Sprintf("%d %s", r.Code, r.Text)
}

// Positive reports whether the reply is 2xx or 3xx.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code < 400 }

// Class is the first digit of the code: 2, 3, 4 or 5.
func (r Reply) Class() int { return r.Code / 100 }

// SMTPClient is a deliberately small, line-based SMTP client for tests. Unlike
// net/smtp it speaks XCLIENT, returns every reply (never hides a 4xx/5xx as an
// error) and lets one session carry several messages. Network failures and
// unparseable replies end the test with t.Fatal; SMTP-level failures are
// returned as Reply values for the test to judge.
//
// The helper methods (Ehlo, XClient, Mail, Rcpt, Data, Send, Quit) report
// failures on the testing.TB given to Dial; Cmd takes its own.
type SMTPClient struct {
	// Greeting is the server's 220 banner read by Dial.
	Greeting Reply
	// Timeout bounds each read and write; DefaultReplyTimeout when zero.
	Timeout time.Duration

	t        testing.TB
	addr     string
	conn     net.Conn
	r        *bufio.Reader
	heloName string
	closed   bool
}

// Dial connects to addr (host:port), reads the greeting and registers a
// t.Cleanup that closes the connection. A greeting other than 220 fails the
// test.
func Dial(t testing.TB, addr string) *SMTPClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("mtatest: dial %s: %v", addr, err)
	}
	c := &SMTPClient{t: t, addr: addr, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(c.close)
	c.Greeting = c.readReply(t)
	if c.Greeting.Code != 220 {
		t.Fatalf("mtatest: %s greeted with %v", addr, c.Greeting)
	}
	return c
}

func (c *SMTPClient) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultReplyTimeout
}

func (c *SMTPClient) close() {
	if !c.closed {
		c.closed = true
		c.conn.Close()
	}
}

// Cmd sends one command line (without CRLF) and returns the reply.
func (c *SMTPClient) Cmd(t testing.TB, line string) Reply {
	t.Helper()
	if strings.ContainsAny(line, "\r\n") {
		t.Fatalf("mtatest: SMTP command contains CR/LF: %q", line)
	}
	c.write(t, []byte(line+"\r\n"))
	return c.readReply(t)
}

func (c *SMTPClient) write(t testing.TB, b []byte) {
	t.Helper()
	if c.closed {
		t.Fatalf("mtatest: SMTP connection to %s already closed", c.addr)
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout()))
	if _, err := c.conn.Write(b); err != nil {
		t.Fatalf("mtatest: write to %s: %v", c.addr, err)
	}
}

// readReply reads one complete reply, following "NNN-" continuation lines.
func (c *SMTPClient) readReply(t testing.TB) Reply {
	t.Helper()
	var rep Reply
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.timeout()))
		raw, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("mtatest: reading SMTP reply from %s (after %q): %v", c.addr, raw, err)
		}
		line := strings.TrimRight(raw, "\r\n")
		if len(line) < 3 {
			t.Fatalf("mtatest: short SMTP reply line from %s: %q", c.addr, line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			t.Fatalf("mtatest: bad SMTP reply line from %s: %q", c.addr, line)
		}
		if rep.Code != 0 && code != rep.Code {
			t.Fatalf("mtatest: SMTP reply from %s changes code mid-reply: %q", c.addr, line)
		}
		rep.Code = code
		more := len(line) > 3 && line[3] == '-'
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		rep.Lines = append(rep.Lines, text)
		rep.Enhanced, rep.Text = splitEnhanced(code, text)
		if !more {
			return rep
		}
	}
}

// splitEnhanced separates an RFC 3463 status code ("5.7.1") from the reply
// text when its class matches the reply code's class.
func splitEnhanced(code int, text string) (enh, rest string) {
	first, after, _ := strings.Cut(text, " ")
	parts := strings.Split(first, ".")
	if len(parts) != 3 || parts[0] != strconv.Itoa(code/100) {
		return "", text
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil || len(p) > 3 {
			return "", text
		}
	}
	return first, after
}

// Ehlo sends EHLO name and returns the reply; the extension keywords are in
// Reply.Lines[1:]. The name is remembered for the EHLO that XClient repeats.
func (c *SMTPClient) Ehlo(name string) Reply {
	c.t.Helper()
	c.heloName = name
	return c.Cmd(c.t, "EHLO "+name)
}

// XClient sends "XCLIENT attrs" (e.g. "ADDR=192.0.2.1 NAME=mail.example.com
// HELO=mail.example.com") and returns its reply. Postfix answers a successful
// XCLIENT with a fresh 220 greeting and forgets the EHLO; XClient then sends
// EHLO again — with the HELO= attribute if there is one, else the last EHLO
// name — so that the session can continue with MAIL at once. A failing
// repeated EHLO ends the test.
func (c *SMTPClient) XClient(attrs string) Reply {
	c.t.Helper()
	rep := c.Cmd(c.t, "XCLIENT "+attrs)
	if rep.Code != 220 {
		return rep
	}
	name := c.heloName
	for _, f := range strings.Fields(attrs) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "HELO") && v != "[UNAVAILABLE]" && v != "[TEMPUNAVAIL]" {
			name = xtextDecode(v)
		}
	}
	if name == "" {
		name = "client.example"
	}
	if e := c.Ehlo(name); e.Code != 250 {
		c.t.Fatalf("mtatest: EHLO %s after XCLIENT: %v", name, e)
	}
	return rep
}

// xtextDecode undoes RFC 1891 xtext (+XX hex escapes) used by XCLIENT values.
func xtextDecode(s string) string {
	if !strings.Contains(s, "+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Mail sends MAIL FROM:<from>. Extra ESMTP parameters may follow the address
// after a space: Mail("a@example.org BODY=8BITMIME").
func (c *SMTPClient) Mail(from string) Reply {
	c.t.Helper()
	addr, params, _ := strings.Cut(from, " ")
	line := "MAIL FROM:<" + strings.Trim(addr, "<>") + ">"
	if params != "" {
		line += " " + params
	}
	return c.Cmd(c.t, line)
}

// Rcpt sends RCPT TO:<to>.
func (c *SMTPClient) Rcpt(to string) Reply {
	c.t.Helper()
	addr, params, _ := strings.Cut(to, " ")
	line := "RCPT TO:<" + strings.Trim(addr, "<>") + ">"
	if params != "" {
		line += " " + params
	}
	return c.Cmd(c.t, line)
}

// Data sends DATA and, after a 354, the message: line endings are normalised
// to CRLF, lines starting with "." are dot-stuffed, a final CRLF is added if
// missing, and the terminating "." is sent. It returns the reply to the end of
// data, or the reply to DATA itself when that was not 354.
func (c *SMTPClient) Data(msg []byte) Reply {
	c.t.Helper()
	rep := c.Cmd(c.t, "DATA")
	if rep.Code != 354 {
		return rep
	}
	c.write(c.t, DotStuff(msg))
	return c.readReply(c.t)
}

// DotStuff returns msg as it goes on the wire after DATA: CRLF line endings,
// leading dots doubled, ending in "\r\n.\r\n".
func DotStuff(msg []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(msg) + len(msg)/40 + 8)
	lines := bytes.SplitAfter(msg, []byte("\n"))
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		l = bytes.TrimSuffix(l, []byte("\n"))
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) > 0 && l[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.Bytes()
}

// Send runs one transaction — MAIL, one RCPT per recipient, DATA — on the
// session and returns the first reply that was not positive, or the reply to
// the end of data. After a refused MAIL or when no RCPT was accepted it sends
// RSET so the session can be reused for the next message.
func (c *SMTPClient) Send(from string, to []string, msg []byte) Reply {
	c.t.Helper()
	if rep := c.Mail(from); !rep.Positive() {
		c.Cmd(c.t, "RSET")
		return rep
	}
	var first *Reply
	accepted := 0
	for _, r := range to {
		rep := c.Rcpt(r)
		if rep.Positive() {
			accepted++
		} else if first == nil {
			first = &rep
		}
	}
	if accepted == 0 {
		c.Cmd(c.t, "RSET")
		if first != nil {
			return *first
		}
		c.t.Fatalf("mtatest: Send without recipients")
	}
	return c.Data(msg)
}

// Quit sends QUIT, reads the reply if the server still talks, and closes the
// connection. Calling it twice is harmless.
func (c *SMTPClient) Quit() {
	if c.closed {
		return
	}
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte("QUIT\r\n")); err == nil {
		c.r.ReadString('\n')
	}
	c.close()
}
