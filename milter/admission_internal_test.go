package milter

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"chainmail/checks"
)

type counting struct{ n atomic.Int64 }

func (c *counting) Name() string { return "counting" }
func (c *counting) Check(context.Context, *checks.Message, checks.Results) checks.Result {
	c.n.Add(1)
	return checks.Result{Status: checks.StatusClean}
}

// A message that cannot be admitted within its own deadline (every slot
// taken) is deferred with the error reply and never evaluated nor
// accepted; the wait shows in chainmail_messages_waiting; once a slot is
// free the next message is evaluated.
func TestAdmissionDeadline(t *testing.T) {
	chk := &counting{}
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: chk}}}, Policy: checks.DefaultPolicy()}
	metrics := NewMetrics(prometheus.NewRegistry())
	srv := NewServer(Options{Engine: func() *checks.Engine { return eng }, MaxConcurrent: 1, Timeout: 300 * time.Millisecond, Logf: t.Logf, Metrics: metrics})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	// Another message holds the only slot.
	release, ok := srv.admit.admit(context.Background())
	if !ok {
		t.Fatal("no slot")
	}
	env := checks.Envelope{ClientIP: net.IPv4(192, 0, 2, 1), HELO: "client.example", MailFrom: "a@example.net", Rcpts: []string{"b@example.org"}}
	send := func() *Outcome {
		t.Helper()
		sess, err := (&Client{Network: "tcp", Address: ln.Addr().String()}).Dial(env)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		out, err := sess.Send(env, strings.NewReader("From: a@example.net\r\nSubject: x\r\n\r\nbody\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	done := make(chan *Outcome, 1)
	go func() { done <- send() }()
	var out *Outcome
	sawWaiting := false
	for out == nil {
		select {
		case out = <-done:
		case <-time.After(time.Millisecond):
			if gauge(metrics.Waiting) == 1 {
				sawWaiting = true
			}
		}
	}
	if out.Action != "tempfail" || !strings.HasPrefix(out.Reply, "451 4.7.1 Temporary failure while checking") {
		t.Fatalf("not admitted: %s %q, want tempfail with the error reply", out.Action, out.Reply)
	}
	if chk.n.Load() != 0 {
		t.Errorf("message evaluated %d times without admission", chk.n.Load())
	}
	if !sawWaiting || gauge(metrics.Waiting) != 0 {
		t.Errorf("waiting gauge: saw 1: %v, now %v", sawWaiting, gauge(metrics.Waiting))
	}
	release()
	if out := send(); out.Action != "accept" || chk.n.Load() != 1 {
		t.Errorf("after release: %s, evaluated %d", out.Action, chk.n.Load())
	}
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// overrun is a content check that, for messages whose Subject says
// "stall", ignores its deadline: it goes on until the test lets it, then
// reads the whole body, as a slow parser that never looks at ctx would.
type overrun struct {
	let    chan struct{}
	bodies chan string
	calls  atomic.Int64
}

func (o *overrun) Name() string { return "attachment" }
func (o *overrun) Check(_ context.Context, m *checks.Message, _ checks.Results) checks.Result {
	o.calls.Add(1)
	if strings.Contains(m.Subject(), "stall") {
		<-o.let
		b, err := io.ReadAll(m.BodyReader())
		if err != nil {
			b = []byte("read error: " + err.Error())
		}
		o.bodies <- string(b)
	}
	return checks.Result{Status: checks.StatusClean}
}

func sendRaw(t *testing.T, addr, raw string) *Outcome {
	t.Helper()
	env := checks.Envelope{ClientIP: net.IPv4(192, 0, 2, 1), HELO: "client.example", MailFrom: "a@example.net", Rcpts: []string{"b@example.org"}}
	sess, err := (&Client{Network: "tcp", Address: addr}).Dial(env)
	if err != nil {
		t.Error(err)
		return nil
	}
	defer sess.Close()
	out, err := sess.Send(env, strings.NewReader(raw))
	if err != nil {
		t.Error(err)
		return nil
	}
	return out
}

// waitGauge waits (boundedly) until g reads want.
func waitGauge(t *testing.T, g prometheus.Gauge, want float64, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); gauge(g) != want; {
		if time.Now().After(deadline) {
			t.Fatalf("%s: gauge %v, want %v", what, gauge(g), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// A check that runs out of time defers its message at once, but it is
// only given up on, not stopped: until it returns, its message keeps the
// admission slot (so work in progress stays within max_concurrent however
// many checks overrun) and its body (which the check still reads).
func TestOverrunningCheckKeepsSlotAndBody(t *testing.T) {
	chk := &overrun{let: make(chan struct{}), bodies: make(chan string, 1)}
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: chk, Timeout: 50 * time.Millisecond}}}, Policy: checks.DefaultPolicy()}
	metrics := NewMetrics(prometheus.NewRegistry())
	srv := NewServer(Options{Engine: func() *checks.Engine { return eng }, MaxConcurrent: 1, Timeout: time.Minute, Logf: t.Logf, Metrics: metrics})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	const body = "the body the overrunning check still reads\r\n"
	out := sendRaw(t, ln.Addr().String(), "From: a@example.net\r\nSubject: stall\r\n\r\n"+body)
	if out == nil || out.Action != "tempfail" {
		t.Fatalf("overrunning check: %+v, want tempfail", out)
	}

	// The next message waits for the slot the overrunning check holds.
	next := make(chan *Outcome, 1)
	go func() {
		next <- sendRaw(t, ln.Addr().String(), "From: a@example.net\r\nSubject: quick\r\n\r\nbody\r\n")
	}()
	for deadline := time.Now().Add(10 * time.Second); gauge(metrics.Waiting) != 1; time.Sleep(time.Millisecond) {
		select {
		case out := <-next:
			close(chk.let)
			t.Fatalf("next message answered %+v while the overrunning check still runs (%d checks started)", out, chk.calls.Load())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("next message neither waiting nor answered")
		}
	}
	if n := chk.calls.Load(); n != 1 || gauge(metrics.Overrunning) != 1 {
		t.Fatalf("while the overrunning check runs: %d checks started, overrunning gauge %v", n, gauge(metrics.Overrunning))
	}

	close(chk.let)
	if got := <-chk.bodies; got != body {
		t.Errorf("overrunning check read %q after the verdict, want %q", got, body)
	}
	if out := <-next; out == nil || out.Action != "accept" {
		t.Errorf("next message: %+v, want accept once the slot is free", out)
	}
	waitGauge(t, metrics.Overrunning, 0, "overrunning after the check returned")
}

// A message waiting for admission when the server shuts down is deferred
// with the shutdown reply at once; it does not hold the shutdown up.
func TestShutdownDefersWaitingMessages(t *testing.T) {
	chk := &counting{}
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: chk}}}, Policy: checks.DefaultPolicy()}
	metrics := NewMetrics(prometheus.NewRegistry())
	srv := NewServer(Options{Engine: func() *checks.Engine { return eng }, MaxConcurrent: 1, Timeout: time.Minute, Logf: t.Logf, Metrics: metrics})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	release, ok := srv.admit.admit(context.Background())
	if !ok {
		t.Fatal("no slot")
	}
	defer release()
	waiting := make(chan *Outcome, 1)
	go func() {
		waiting <- sendRaw(t, ln.Addr().String(), "From: a@example.net\r\nSubject: x\r\n\r\nbody\r\n")
	}()
	waitGauge(t, metrics.Waiting, 1, "message waiting for admission")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Errorf("shutdown waited for its whole grace period: %v", ctx.Err())
	}
	out := <-waiting
	if out == nil || out.Action != "tempfail" || !strings.HasPrefix(out.Reply, "451 4.3.2") {
		t.Errorf("waiting message at shutdown: %+v, want 451 4.3.2", out)
	}
	if chk.n.Load() != 0 {
		t.Errorf("message evaluated %d times without admission", chk.n.Load())
	}
}
