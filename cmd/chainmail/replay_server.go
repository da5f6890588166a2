package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/dns"
	"chainmail/checks/verdictlog"
	"chainmail/milter"
)

// recorder is the engine's observer in replay: it keeps what the engine
// logged for the message being replayed, the RCPT-stage events and the
// verdict lines in the order serve writes them, and the verdict.
type recorder struct {
	mu    sync.Mutex
	words func(*checks.Message, *checks.Verdict) []string // the verdict lines, as the log config words them
	lines []string
	v     *checks.Verdict
}

// hook makes eng log into r, wording verdicts with words.
func (r *recorder) hook(eng *checks.Engine, words func(*checks.Message, *checks.Verdict) []string) {
	r.words = words
	eng.Observer = r
}

// Step implements checks.Observer.
func (r *recorder) Step(checks.Result) {}

// Verdict implements checks.Observer.
func (r *recorder) Verdict(m *checks.Message, v *checks.Verdict, _ time.Duration) []string {
	lines := r.words(m, v)
	r.mu.Lock()
	r.lines = append(r.lines, lines...)
	r.v = v
	r.mu.Unlock()
	return lines
}

// Events implements checks.Observer.
func (r *recorder) Events(_ *checks.Envelope, evs []checks.Event) {
	r.mu.Lock()
	for _, ev := range evs {
		// As verdictlog.Logger.Events words them.
		r.lines = append(r.lines, verdictlog.Text(ev))
	}
	r.mu.Unlock()
}

func (r *recorder) reset() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.lines, r.v = nil, nil
	r.mu.Unlock()
}

// take returns the verdict (nil when the message ended early) and the
// lines logged since reset.
func (r *recorder) take() (*checks.Verdict, []string) {
	if r == nil {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	lines := r.lines
	if lines == nil {
		lines = []string{}
	}
	return r.v, lines
}

// startReplayServer starts chainmail's milter server for eng on a
// loopback port, with the options serve builds from f. stop ends it and
// then has the checks write what they queued (reputation's history).
func startReplayServer(f *config.File, eng *checks.Engine, logf func(string, ...any)) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := milter.NewServer(milterOptions(f, func() *checks.Engine { return eng }, logf, nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			logf("milter server stopped: %v", err)
		}
	}()
	stop = func() {
		// The client closed every connection; let the server see them
		// go before shutting down, so that none is cut mid-read.
		for i := 0; i < 200 && srv.Sessions() > 0; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(f.Milter.Timeout)+5*time.Second)
		srv.Shutdown(ctx)
		cancel()
		<-done
		flushChecks(eng, logf)
		closeChecks(eng, logf)
	}
	return ln.Addr().String(), stop, nil
}

// flushChecks has every check that queues writes (reputation's batched
// history) write them now, before the state store closes.
func flushChecks(eng *checks.Engine, logf func(string, ...any)) {
	if eng == nil || eng.Chain == nil {
		return
	}
	for _, s := range eng.Chain.Steps {
		fl, ok := s.Check.(interface{ Flush(context.Context) error })
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := fl.Flush(ctx); err != nil {
			logf("%s: writing queued state: %v", s.Check.Name(), err)
		}
		cancel()
	}
}

// closeChecks closes the checks of eng that hold goroutines or
// connections (io.Closer: bayes's autolearn, the DNS list probes): an
// engine replaced on reload, or at the end. The state store must still be
// open (bayes learns what it has queued).
func closeChecks(eng *checks.Engine, logf func(string, ...any)) {
	if eng == nil || eng.Chain == nil {
		return
	}
	for _, s := range eng.Chain.Steps {
		if c, ok := s.Check.(io.Closer); ok {
			if err := c.Close(); err != nil {
				logf("%s: closing: %v", s.Check.Name(), err)
			}
		}
	}
}

// replaySend sends one message over its own milter connection, as an MTA
// does for a message on a new SMTP connection.
func replaySend(c *milter.Client, env checks.Envelope, raw []byte) (*milter.Outcome, error) {
	s, err := c.Dial(env)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Send(env, bytes.NewReader(raw))
}

// verifiedName is the client's name as an MTA finds it: the first PTR
// name of ip whose addresses include ip (forward-confirmed), "unknown"
// when there is none or the lookups fail (Postfix's client_name).
func verifiedName(r dns.Resolver, ip net.IP) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := r.LookupAddr(ctx, ip.String())
	if err != nil {
		return "unknown"
	}
	for _, n := range names {
		n = strings.TrimSuffix(n, ".")
		addrs, err := r.LookupIPAddr(ctx, n)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				return n
			}
		}
	}
	return "unknown"
}
