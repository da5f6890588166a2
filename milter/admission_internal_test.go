package milter

import (
	"context"
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
