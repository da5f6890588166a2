package milter_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/milter"
	"chainmail/milter/miltertest"
)

// A message evaluated while the server shuts down gets its verdict: the
// connection is not closed between the end of the evaluation and the
// reply (the MTA would apply its milter_default_action, accept for some,
// to a message found to be rejected). Repeated, since the window was
// narrow.
func TestShutdownDeliversInFlightVerdict(t *testing.T) {
	for round := 0; round < 1000; round++ {
		release, started := make(chan struct{}), make(chan struct{})
		slow := checkFunc(func(ctx context.Context, m *checks.Message) checks.Result {
			close(started)
			<-release
			return checks.Result{Status: checks.StatusNone, Symbols: []checks.Symbol{{Name: "BAD", Score: 20}}}
		})
		eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: slow}}}, Policy: checks.DefaultPolicy()}
		srv := miltertest.Start(t, eng, func(o *milter.Options) { o.Logf = func(string, ...any) {} })
		sess := srv.Dial(t, clientEnv)
		res := make(chan *milter.Outcome, 1)
		go func() {
			out, err := sess.Send(clientEnv, strings.NewReader(msg("bad")))
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
			res <- out
		}()
		<-started
		shut := shutdownInBackground(srv)
		waitUntil(t, "the listener closed", func() bool {
			c, err := net.DialTimeout("tcp", srv.Addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
		close(release)
		out := <-res
		<-shut
		sess.Close()
		if out == nil || out.Action != "reject" || !strings.HasPrefix(out.Reply, "550") {
			t.Fatalf("round %d: in-flight message got %+v, want its 550", round, out)
		}
	}
}
