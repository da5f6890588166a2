package verdictlog

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"chainmail/checks"
)

// rcptCheck answers every recipient with its result.
type rcptCheck struct{ r checks.RcptResult }

func (rcptCheck) Name() string { return "quota" }
func (rcptCheck) Check(context.Context, *checks.Message, checks.Results) checks.Result {
	return checks.Result{Status: checks.StatusPass}
}
func (c rcptCheck) CheckRcpt(context.Context, *checks.Envelope, string) checks.RcptResult { return c.r }

// The engine's RCPT-time events carry facts; the verdict log words them.
func TestRcptEvents(t *testing.T) {
	env := &checks.Envelope{QueueID: "Q1"}
	for _, c := range []struct {
		name    string
		r       checks.RcptResult
		monitor bool
		want    string
	}{
		{"error", checks.RcptResult{Err: errors.New("store: broken\nreally")}, false,
			"Mar  5 09:07:03 mx1 chainmail[4242]: Check quota on recipient bob@example.org: store: broken really\n"},
		{"monitor", checks.RcptResult{Action: checks.Tempfail, Code: "451", Reply: "4.7.1 Slow down"}, true,
			"Mar  5 09:07:03 mx1 chainmail[4242]: Monitor: recipient bob@example.org would get 451 4.7.1 Slow down\n"},
	} {
		p := checks.DefaultPolicy()
		p.Monitor = c.monitor
		eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: rcptCheck{c.r}}}}, Policy: p}
		_, evs := eng.CheckRcpt(context.Background(), env, "bob@example.org")
		var buf bytes.Buffer
		l := newTestLogger(t, Config{}, &buf)
		l.Events(env.QueueID, evs)
		if buf.String() != c.want {
			t.Errorf("%s: got %q\nwant %q", c.name, buf.String(), c.want)
		}
	}
}
