package mtatest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Delivered is one message that an MTA handed on to the harness's SMTP sink.
type Delivered struct {
	Sender string   // envelope sender without angle brackets ("" for the null sender)
	Rcpts  []string // envelope recipients without angle brackets
	Data   []byte   // message as received after DATA: CRLF line ends, dot-stuffing undone
}

// Header returns the first header field called name (case-insensitive) in
// d.Data, unfolded, with surrounding white space removed; "" if absent.
func (d Delivered) Header(name string) string {
	v, _ := d.HeaderOK(name)
	return v
}

// HeaderOK is Header that also tells whether the field exists.
func (d Delivered) HeaderOK(name string) (string, bool) {
	head, _, _ := bytes.Cut(d.Data, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	for i := 0; i < len(lines); i++ {
		k, v, ok := strings.Cut(lines[i], ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), name) || strings.HasPrefix(lines[i], " ") || strings.HasPrefix(lines[i], "\t") {
			continue
		}
		for i+1 < len(lines) && (strings.HasPrefix(lines[i+1], " ") || strings.HasPrefix(lines[i+1], "\t")) {
			i++
			v += " " + strings.TrimSpace(lines[i])
		}
		return strings.TrimSpace(v), true
	}
	return "", false
}

// sink is an SMTP server on 127.0.0.1 that accepts every message and records
// it. MTAs under test relay all mail to it.
type sink struct {
	ln   net.Listener
	name string

	mu      sync.Mutex
	msgs    []Delivered
	changed chan struct{} // closed and replaced on every new message
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	closed  bool
}

// startSink listens on 127.0.0.1:0 and serves until t's cleanup.
func startSink(t testing.TB, name string) *sink {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mtatest: sink listen: %v", err)
	}
	s := &sink{ln: ln, name: name, changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *sink) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *sink) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *sink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.session(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *sink) record(d Delivered) {
	s.mu.Lock()
	s.msgs = append(s.msgs, d)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// session speaks just enough ESMTP for Postfix's and sendmail's SMTP clients.
// Commands are handled strictly in order, so a pipelining client works too.
func (s *sink) session(c net.Conn) {
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(format string, args ...any) bool {
		fmt.Fprintf(w, format+"\r\n", args...)
		c.SetWriteDeadline(time.Now().Add(time.Minute))
		return w.Flush() == nil
	}
	readLine := func() (string, bool) {
		c.SetReadDeadline(time.Now().Add(5 * time.Minute))
		l, err := r.ReadString('\n')
		if err != nil {
			return "", false
		}
		return strings.TrimRight(l, "\r\n"), true
	}
	if !reply("220 %s ESMTP mtatest sink", s.name) {
		return
	}
	var cur *Delivered
	for {
		line, ok := readLine()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			ok = reply("250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 0", s.name)
		case "HELO":
			ok = reply("250 %s", s.name)
		case "MAIL":
			addr, good := envelopeAddr(arg, "FROM:")
			if !good {
				ok = reply("501 5.5.4 syntax: MAIL FROM:<address>")
				break
			}
			cur = &Delivered{Sender: addr}
			ok = reply("250 2.1.0 ok")
		case "RCPT":
			addr, good := envelopeAddr(arg, "TO:")
			switch {
			case cur == nil:
				ok = reply("503 5.5.1 need MAIL first")
			case !good:
				ok = reply("501 5.5.4 syntax: RCPT TO:<address>")
			default:
				cur.Rcpts = append(cur.Rcpts, addr)
				ok = reply("250 2.1.5 ok")
			}
		case "DATA":
			if cur == nil || len(cur.Rcpts) == 0 {
				ok = reply("503 5.5.1 need RCPT first")
				break
			}
			if !reply("354 go ahead") {
				return
			}
			var data bytes.Buffer
			for {
				l, good := readLine()
				if !good {
					return
				}
				if l == "." {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
				data.WriteString("\r\n")
			}
			cur.Data = data.Bytes()
			s.record(*cur)
			cur = nil
			ok = reply("250 2.0.0 queued by mtatest sink")
		case "RSET":
			cur = nil
			ok = reply("250 2.0.0 ok")
		case "NOOP":
			ok = reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			ok = reply("502 5.5.2 command not implemented")
		}
		if !ok {
			return
		}
	}
}

// envelopeAddr extracts the address from "FROM:<a@b> PARAMS" / "TO:<a@b>".
func envelopeAddr(arg, prefix string) (string, bool) {
	arg = strings.TrimSpace(arg)
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	arg = strings.TrimSpace(arg[len(prefix):])
	if strings.HasPrefix(arg, "<") {
		end := strings.IndexByte(arg, '>')
		if end < 0 {
			return "", false
		}
		return arg[1:end], true
	}
	addr, _, _ := strings.Cut(arg, " ")
	return addr, addr != ""
}

// delivered waits until at least n messages have arrived and returns all of
// them (in arrival order); on timeout it fails the test, adding what the MTA
// logged.
func (s *sink) delivered(t testing.TB, n int, timeout time.Duration, mta string, log func() string) []Delivered {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := append([]Delivered(nil), s.msgs...)
			s.mu.Unlock()
			return out
		}
		got, ch := len(s.msgs), s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("mtatest: %s delivered %d message(s) within %v, want %d\n--- %s log ---\n%s", mta, got, timeout, n, mta, log())
		}
	}
}
