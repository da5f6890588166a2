package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"chainmail/store"
	"chainmail/store/storetest"
)

// seq gives every store of a test run its own key prefix on the shared
// server.
var seq atomic.Int64

func prefix() string { return fmt.Sprintf("t%d:", seq.Add(1)) }

func openStore(t testing.TB, opt Options) *Store {
	t.Helper()
	if opt.Prefix == "" {
		opt.Prefix = prefix()
	}
	s, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := storetest.StartRedis(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}}})
	})
}

func TestConformanceCluster(t *testing.T) {
	c := storetest.StartCluster(t, 3)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, Options{Settings: Settings{Addrs: c.Addrs(), Cluster: true}})
	})
}

func TestConformanceSentinel(t *testing.T) {
	s := storetest.StartSentinel(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openStore(t, Options{Settings: Settings{Addrs: []string{s.Sentinel.Addr()}, MasterName: s.Name}})
	})
}

// waitUp waits until the store's probe has seen Redis back.
func waitUp(t *testing.T, s *Store, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for s.Down() {
		if time.Now().After(deadline) {
			t.Fatalf("the probe did not see Redis back within %v", within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Redis killed mid-run: calls fail fast with ErrUnavailable, the metric
// and the log say so; restarted: calls work again, without a new client.
func TestKillRestart(t *testing.T) {
	srv := storetest.StartRedis(t)
	reg := prometheus.NewRegistry()
	m := store.NewMetrics(reg)
	var log storetest.Log
	s := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}}, Metrics: m, Logf: log.Logf, ProbeInterval: 100 * time.Millisecond})
	defer s.Close()
	ctx := context.Background()
	if _, err := store.IncrBy(ctx, s, "n", 1, 0); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	for i := 0; i < 5; i++ {
		start := time.Now()
		_, err := store.IncrBy(ctx, s, "n", 1, 0)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("call %d with Redis down: %v, want ErrUnavailable", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("call %d with Redis down took %v", i, d)
		}
	}
	op := &store.Op{Kind: store.OpWindowAddCapped, Key: "w", At: time.Now(), N: 1, TTL: time.Minute, Max: 10}
	if err := s.Do(ctx, op); !errors.Is(err, store.ErrUnavailable) || !errors.Is(op.Err, store.ErrUnavailable) {
		t.Errorf("batch with Redis down: %v / %v", err, op.Err)
	}
	if got := value(m.Up.WithLabelValues("redis")); got != 0 {
		t.Errorf("chainmail_state_up = %v while down", got)
	}
	if got := value(m.Unavailable.WithLabelValues("redis")); got < 5 {
		t.Errorf("chainmail_state_unavailable_total = %v", got)
	}
	if !log.Has("unreachable") {
		t.Errorf("no log line about the outage: %q", log.Lines())
	}

	srv.Restart() // empty: no persistence
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := store.IncrBy(ctx, s, "n", 1, 0)
		if err == nil {
			if n != 1 {
				t.Errorf("counter after a restart without persistence = %v", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 10s after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Scripts are loaded again transparently (the restarted server has
	// none cached).
	if sum, err := store.WindowAdd(ctx, s, "w", time.Now(), 2, time.Minute); err != nil || sum != 2 {
		t.Errorf("window after restart: %v %v", sum, err)
	}
	if got := value(m.Up.WithLabelValues("redis")); got != 1 {
		t.Errorf("chainmail_state_up = %v after the restart", got)
	}
	if !log.Has("reachable again") {
		t.Errorf("no log line about the return: %q", log.Lines())
	}
}

// Open with Redis down is not an error (mail must flow); the store works
// once Redis is there, and the probe notices without traffic.
func TestOpenWhileDown(t *testing.T) {
	srv := storetest.StartRedis(t)
	srv.Kill()
	var log storetest.Log
	m := store.NewMetrics(nil)
	s := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}}, Logf: log.Logf, Metrics: m, ProbeInterval: 50 * time.Millisecond})
	defer s.Close()
	if !s.Down() || !log.Has("unreachable") {
		t.Fatalf("down=%v log=%q", s.Down(), log.Lines())
	}
	if _, _, err := store.Get(context.Background(), s, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get: %v", err)
	}
	srv.Restart()
	waitUp(t, s, 10*time.Second)
	if got := value(m.Up.WithLabelValues("redis")); got != 1 {
		t.Errorf("chainmail_state_up = %v", got)
	}
}

// A server that accepts connections but never answers (hung, or a
// firewall that drops) costs a call at most about the timeout.
func TestHungServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, never answer
		}
	}()
	s := openStore(t, Options{Settings: Settings{Addrs: []string{ln.Addr().String()}, Timeout: 200 * time.Millisecond}})
	defer s.Close()
	start := time.Now()
	_, _, err = store.Get(context.Background(), s, "k")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get against a silent server: %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("Get against a silent server took %v", d)
	}
}

// Two stores (two MTAs' chainmail) on one Redis share one capped window:
// together they pass exactly the cap.
func TestTwoClientsOneCap(t *testing.T) {
	srv := storetest.StartRedis(t)
	p := prefix()
	a := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}, Prefix: p}})
	b := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}, Prefix: p}})
	defer a.Close()
	defer b.Close()
	var passed atomic.Int64
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func(i int, s *Store) {
			defer wg.Done()
			for j := 0; j < 60; j++ {
				op := &store.Op{Kind: store.OpWindowAddCapped, Key: "quota:user", At: time.Now(), N: 1, TTL: time.Hour, Max: 70}
				if err := s.Do(context.Background(), op); err != nil {
					t.Error(err)
					return
				}
				if op.OK {
					passed.Add(1)
				}
			}
		}(i, s)
	}
	wg.Wait()
	if passed.Load() != 70 {
		t.Errorf("%d adds passed a shared cap of 70", passed.Load())
	}
}

// A wrong password is an outage of the store (logged, ErrUnavailable),
// not a crash.
func TestAuthFailure(t *testing.T) {
	srv := storetest.StartRedis(t, "--requirepass", "sesame")
	var log storetest.Log
	s := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}, Password: "wrong"}, Logf: log.Logf})
	defer s.Close()
	if _, _, err := store.Get(context.Background(), s, "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Get with a wrong password: %v", err)
	}
	good := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}, Password: "sesame"}})
	defer good.Close()
	if err := store.Set(context.Background(), good, "k", []byte("v"), 0); err != nil {
		t.Errorf("with the password: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{}, {Settings: Settings{Addrs: []string{"a:1", "b:2"}}}, {Settings: Settings{Addrs: []string{"a:1"}, Cluster: true, DB: 2}}} {
		if _, err := Open(o); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	srv := storetest.StartRedis(b)
	s := openStore(b, Options{Settings: Settings{Addrs: []string{srv.Addr()}}})
	defer s.Close()
	storetest.Bench(b, s)
}

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// A window holds about 1024 members whatever the traffic.
func TestWindowBounded(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}}})
	defer s.Close()
	ctx := context.Background()
	at := time.Now()
	ops := make([]*store.Op, 0, 5000)
	for i := 0; i < 5000; i++ {
		ops = append(ops, &store.Op{Kind: store.OpWindowAdd, Key: "w", At: at.Add(time.Duration(i) * 4 * time.Millisecond), N: 1, TTL: time.Minute})
	}
	if err := s.Do(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	n, err := s.Client().ZCard(ctx, s.windowKeys("w")[0]).Result()
	if err != nil || n > 1025 {
		t.Errorf("%d members (%v) for 5000 events", n, err)
	}
	if sum, _ := store.WindowSum(ctx, s, "w", at.Add(20*time.Second), time.Minute); sum != 5000 {
		t.Errorf("sum %v", sum)
	}
}

// A caller that gives up does not make Redis look down.
func TestCancelledCallIsNoOutage(t *testing.T) {
	srv := storetest.StartRedis(t)
	s := openStore(t, Options{Settings: Settings{Addrs: []string{srv.Addr()}}})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := store.Get(ctx, s, "k")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("cancelled call: %v, want ErrUnavailable", err)
	}
	if s.Down() {
		t.Error("a cancelled call marked Redis down")
	}
	if _, _, err := store.Get(context.Background(), s, "k"); err != nil {
		t.Errorf("next call: %v", err)
	}
}
