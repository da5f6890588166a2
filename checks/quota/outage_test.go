package quota

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/store"
	"chainmail/store/redis"
	"chainmail/store/storetest"
)

// A hung Redis (SIGSTOP) during a run of recipients: every recipient is
// accepted (mail flows), and the outage is logged once by the store, not
// once per recipient by the engine.
func TestPausedRedisLogsOnce(t *testing.T) {
	srv := storetest.StartRedis(t)
	var log storetest.Log
	st, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{srv.Addr()}, Prefix: "outage:", Timeout: 300 * time.Millisecond}, Logf: log.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := newCheck(t, st, newClock(), Quota{Name: "u", Track: TrackSASLUser, Period: time.Hour, Recipients: 1000})
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: c}}}, Policy: checks.DefaultPolicy()}
	eng.Observer = eventLog{&log}
	env := envelope("u", "u@example.com", "192.0.2.1")
	srv.Pause()
	defer srv.Resume()
	const n = 20
	for i := 0; i < n; i++ {
		out, _ := eng.CheckRcpt(context.Background(), env, fmt.Sprintf("r%d@x.example", i))
		if out.Action != checks.Accept {
			t.Fatalf("recipient %d with Redis paused: %+v, want accepted", i, out)
		}
	}
	r := c.CheckRcpt(context.Background(), env, "last@x.example")
	if !errors.Is(r.Err, store.ErrUnavailable) {
		t.Errorf("CheckRcpt with Redis paused: %+v", r)
	}
	if lines := log.Lines(); len(lines) != 1 {
		t.Errorf("%d log lines for %d recipients with Redis paused, want 1:\n%q", len(lines), n, lines)
	}
}

// eventLog writes the engine's RCPT-time events to a log.
type eventLog struct{ log *storetest.Log }

func (eventLog) Step(checks.Result) {}

func (eventLog) Verdict(*checks.Message, *checks.Verdict, time.Duration) []string { return nil }

func (l eventLog) Events(_ *checks.Envelope, evs []checks.Event) {
	for _, e := range evs {
		l.log.Logf("%s", e.Line)
	}
}
