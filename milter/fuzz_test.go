package milter_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/milter"
)

// pipeListener hands out in-memory connections, so the fuzzer drives the
// real server code without sockets.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) dial() net.Conn {
	a, b := net.Pipe()
	l.conns <- b
	return a
}

// cmd frames one milter command (4-byte length, code, data).
func cmd(code byte, data string) []byte {
	out := make([]byte, 5, 5+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(data)+1))
	out[4] = code
	return append(out, data...)
}

// validSession is a whole MTA conversation, the seed the fuzzer mutates.
func validSession() []byte {
	var b []byte
	neg := make([]byte, 12)
	binary.BigEndian.PutUint32(neg, 6)
	binary.BigEndian.PutUint32(neg[4:], 0x3f)
	b = append(b, cmd('O', string(neg))...)
	b = append(b, cmd('D', "Cj\x00mx.example\x00{daemon_name}\x00smtpd\x00")...)
	b = append(b, cmd('C', "mail.example.com\x004\x9c\x40192.0.2.1\x00")...)
	b = append(b, cmd('H', "mail.example.com\x00")...)
	b = append(b, cmd('D', "Mi\x00ABC123\x00{auth_authen}\x00user\x00")...)
	b = append(b, cmd('M', "<a@example.com>\x00")...)
	b = append(b, cmd('R', "<b@example.org>\x00")...)
	b = append(b, cmd('L', "Subject\x00hello\x00")...)
	b = append(b, cmd('L', "From\x00a@example.com\x00")...)
	b = append(b, cmd('N', "")...)
	b = append(b, cmd('B', "body\r\n")...)
	b = append(b, cmd('E', "")...)
	b = append(b, cmd('M', "<c@example.com>\x00")...)
	b = append(b, cmd('A', "")...)
	b = append(b, cmd('Q', "")...)
	return b
}

// FuzzSession feeds arbitrary bytes to a milter session as if from an MTA.
// Whatever arrives, the session ends cleanly and the server keeps serving.
func FuzzSession(f *testing.F) {
	f.Add(validSession())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'O'})
	f.Add(cmd('C', "x"))
	f.Add(cmd('L', "only-name"))
	f.Add(cmd('D', ""))

	p := checks.DefaultPolicy()
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: &recorder{}}}}, Policy: p}
	var mu sync.Mutex
	var panics []string
	srv := milter.NewServer(milter.Options{Engine: func() *checks.Engine { return eng }, Logf: func(format string, args ...any) {
		if strings.Contains(format, "panic") {
			mu.Lock()
			panics = append(panics, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
	}})
	ln := newPipeListener()
	go srv.Serve(ln)
	f.Cleanup(func() { ln.Close() })

	f.Fuzz(func(t *testing.T, data []byte) {
		c := ln.dial()
		read := make(chan struct{})
		go func() {
			defer close(read)
			io.Copy(io.Discard, c)
		}()
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.Write(data)
		c.Close()
		<-read
		mu.Lock()
		defer mu.Unlock()
		if len(panics) > 0 {
			t.Fatalf("session code panicked: %s", panics[0])
		}
	})
}

// The seed conversation really is accepted end to end.
func TestFuzzSeedIsAValidConversation(t *testing.T) {
	rec := &recorder{}
	p := checks.DefaultPolicy()
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: rec}}}, Policy: p}
	srv := milter.NewServer(milter.Options{Engine: func() *checks.Engine { return eng }, Logf: t.Logf})
	ln := newPipeListener()
	go srv.Serve(ln)
	defer ln.Close()
	c := ln.dial()
	go c.Write(validSession())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
	got := rec.all()
	if len(got) != 1 || got[0].ClientIP != "192.0.2.1" || got[0].HELO != "mail.example.com" ||
		got[0].QueueID != "ABC123" || got[0].Auth != "user" || !strings.Contains(got[0].Header, "Subject: hello\r\n") {
		t.Fatalf("seed conversation not processed as expected: %+v", got)
	}
}
