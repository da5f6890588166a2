// Package miltertest runs a chainmail milter server on 127.0.0.1:0 and
// talks to it through go-milter's client, the way an MTA does, so tests
// exercise the real protocol without an MTA.
package miltertest

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/milter"
)

// Server is a running milter server.
type Server struct {
	*milter.Server
	Addr string
	ln   net.Listener
}

// Start serves eng on a fresh loopback port until the test ends.
func Start(t testing.TB, eng *checks.Engine, opts ...func(*milter.Options)) *Server {
	t.Helper()
	o := milter.Options{
		Engine: func() *checks.Engine { return eng },
		Logf:   t.Logf,
	}
	for _, f := range opts {
		f(&o)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Server: milter.NewServer(o), Addr: ln.Addr().String(), ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ln); err != nil {
			t.Logf("miltertest: serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return s
}

// Client returns a milter client for the server.
func (s *Server) Client() *milter.Client {
	return &milter.Client{Network: "tcp", Address: s.Addr, Timeout: 30 * time.Second}
}

// Dial opens a session (one SMTP connection's worth) with env's
// connection facts.
func (s *Server) Dial(t testing.TB, env checks.Envelope) *milter.Session {
	t.Helper()
	sess, err := s.Client().Dial(env)
	if err != nil {
		t.Fatalf("miltertest: dial: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// Send sends one message over a new session.
func (s *Server) Send(t testing.TB, env checks.Envelope, raw string) *milter.Outcome {
	t.Helper()
	sess := s.Dial(t, env)
	out, err := sess.Send(env, strings.NewReader(raw))
	if err != nil {
		t.Fatalf("miltertest: send: %v", err)
	}
	return out
}
