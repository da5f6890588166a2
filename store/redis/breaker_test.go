package redis

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"chainmail/store"
	"chainmail/store/storetest"
)

// reached counts the commands that go-redis sent to the server (the
// probe's PINGs apart): the real client's own hook, not a stand-in.
type reached struct{ n atomic.Int64 }

func (r *reached) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (r *reached) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if cmd.Name() != "ping" {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (r *reached) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// A hung Redis (SIGSTOP: the kernel still accepts connections, nothing
// answers): once one call has found it so, the calls after it fail at
// once without reaching it, the outage is logged once however many calls
// fail, and the background probe sees it back after SIGCONT.
func TestPausedServerBreaker(t *testing.T) {
	srv := storetest.StartRedis(t)
	m := store.NewMetrics(nil)
	var log storetest.Log
	const timeout = 2 * time.Second
	s := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}, Timeout: timeout}, ProbeInterval: 100 * time.Millisecond, Metrics: m, Logf: log.Logf})
	defer s.Close()
	var hook reached
	s.Client().AddHook(&hook)
	ctx := context.Background()
	if _, err := store.IncrBy(ctx, s, "n", 1, 0); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	// The first call waits for the store's timeout and opens the breaker.
	if _, err := store.IncrBy(ctx, s, "n", 1, 0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("first call to a paused Redis: %v, want ErrUnavailable", err)
	}
	before := hook.n.Load()
	const calls = 10
	var slowest time.Duration
	for i := 0; i < calls; i++ {
		start := time.Now()
		op := &store.Op{Kind: store.OpWindowAddCapped, Key: "w", At: time.Now(), N: 1, TTL: time.Minute, Max: 10}
		err := s.Do(ctx, op)
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(op.Err, store.ErrUnavailable) {
			t.Fatalf("call %d: %v / %v, want ErrUnavailable", i, err, op.Err)
		}
		var tmp interface{ Temporary() bool }
		if !errors.As(err, &tmp) || !tmp.Temporary() {
			t.Errorf("call %d: %v is not a temporary error", i, err)
		}
	}
	if got := hook.n.Load() - before; got != 0 {
		t.Errorf("%d of %d calls reached the paused Redis after the first failure, want 0", got, calls)
	}
	// Generous: a call that reached Redis would take the whole timeout.
	if slowest >= timeout/2 {
		t.Errorf("slowest call with the breaker open took %v (timeout %v)", slowest, timeout)
	}
	if n := log.Len(); n != 1 {
		t.Errorf("%d log lines for %d failed calls, want 1: %q", n, calls+1, log.Lines())
	}
	if got := value(m.Up.WithLabelValues("redis")); got != 0 {
		t.Errorf("chainmail_state_up = %v while paused", got)
	}
	if got := value(m.Unavailable.WithLabelValues("redis")); got < calls+1 {
		t.Errorf("chainmail_state_unavailable_total = %v, want at least %d", got, calls+1)
	}
	if got := value(m.Opens.WithLabelValues("redis")); got != 1 {
		t.Errorf("chainmail_state_breaker_opens_total = %v, want 1", got)
	}

	srv.Resume()
	waitUp(t, s, 15*time.Second)
	if n, err := store.IncrBy(ctx, s, "n", 1, 0); err != nil || n < 2 {
		t.Errorf("after SIGCONT: %v %v", n, err)
	}
	if got := value(m.Up.WithLabelValues("redis")); got != 1 {
		t.Errorf("chainmail_state_up = %v after SIGCONT", got)
	}
	if log.Count("reachable again") != 1 || log.Len() != 2 {
		t.Errorf("log after the return: %q", log.Lines())
	}
}

// One message has one store budget (the store's timeout) across all its
// calls: once a hung store has cost a message that much, its later calls
// fail at once even when the breaker is closed again; a new message has
// its own budget.
func TestMessageBudget(t *testing.T) {
	srv := storetest.StartRedis(t)
	const timeout = time.Second
	s := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}, Timeout: timeout}, ProbeInterval: 50 * time.Millisecond})
	defer s.Close()
	var hook reached
	s.Client().AddHook(&hook)
	msg := store.WithBudget(context.Background(), store.NewBudget())
	if _, err := store.IncrBy(msg, s, "n", 1, 0); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	if _, err := store.IncrBy(msg, s, "n", 1, 0); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("paused: %v", err)
	}
	srv.Resume()
	waitUp(t, s, 15*time.Second)
	before := hook.n.Load()
	_, err := store.IncrBy(msg, s, "n", 1, 0)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "budget") {
		t.Errorf("call of a message whose budget is spent: %v", err)
	}
	if got := hook.n.Load() - before; got != 0 {
		t.Errorf("a call over the message's budget reached Redis")
	}
	fresh := store.WithBudget(context.Background(), store.NewBudget())
	if _, err := store.IncrBy(fresh, s, "n", 1, 0); err != nil {
		t.Errorf("a new message: %v", err)
	}
}

// BenchmarkPausedRedis measures messages per second through a SIGSTOPped
// Redis, 10 sessions at once, each message two recipients with a quota
// and a greylist look-up each (one batch per check per recipient) and a
// quota count at the end, as the milter makes them.
func BenchmarkPausedRedis(b *testing.B) {
	srv := storetest.StartRedis(b)
	s, err := Open(Options{Settings: Settings{Addrs: []string{srv.Addr()}, Prefix: prefix()}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	srv.Pause()
	defer srv.Resume()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				ctx := store.WithBudget(context.Background(), store.NewBudget())
				for r := 0; r < 2; r++ {
					s.Do(ctx, &store.Op{Kind: store.OpWindowAddCapped, Key: "q", At: time.Now(), N: 1, TTL: time.Hour, Max: 100})
					s.Do(ctx, &store.Op{Kind: store.OpGet, Key: "g"})
				}
				s.Do(ctx, &store.Op{Kind: store.OpWindowAdd, Key: "q", At: time.Now(), N: 1, TTL: time.Hour})
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

var _ = net.IP(nil)
