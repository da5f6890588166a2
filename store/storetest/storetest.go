// Package storetest is the conformance suite every state store backend
// passes (Run), a benchmark of the operations the checks use per message
// (Bench), and a real redis-server started on loopback for tests
// (StartRedis, StartCluster, StartSentinel).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chainmail/store"
)

// Open returns a fresh store for one subtest; the suite closes it.
type Open func(t *testing.T) store.Store

// t0 is the base time of window tests: windows take their times from the
// caller, so the suite can use any.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	sub := func(name string, f func(t *testing.T, s store.Store)) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			f(t, s)
		})
	}

	sub("GetSet", func(t *testing.T, s store.Store) {
		if _, ok, err := store.Get(ctx, s, "gs:absent"); ok || err != nil {
			t.Fatalf("Get absent: ok=%v err=%v", ok, err)
		}
		for _, v := range [][]byte{[]byte("one"), []byte("two"), {0, 1, 0xff, 0}, {}} {
			if err := store.Set(ctx, s, "gs:k", v, 0); err != nil {
				t.Fatal(err)
			}
			got, ok, err := store.Get(ctx, s, "gs:k")
			if err != nil || !ok || !bytes.Equal(got, v) {
				t.Fatalf("Get after Set(%q) = %q, %v, %v", v, got, ok, err)
			}
		}
		// The caller's slice is not kept.
		v := []byte("mine")
		store.Set(ctx, s, "gs:alias", v, 0)
		v[0] = 'X'
		if got, _, _ := store.Get(ctx, s, "gs:alias"); string(got) != "mine" {
			t.Errorf("store kept the caller's slice: %q", got)
		}
	})

	sub("TTL", func(t *testing.T, s store.Store) {
		if err := store.Set(ctx, s, "ttl:k", []byte("v"), 150*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := store.Get(ctx, s, "ttl:k"); !ok {
			t.Fatal("gone before its ttl")
		}
		if err := store.Set(ctx, s, "ttl:forever", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, "ttl:k to expire", func() bool { _, ok, _ := store.Get(ctx, s, "ttl:k"); return !ok })
		if _, ok, _ := store.Get(ctx, s, "ttl:forever"); !ok {
			t.Error("a key without ttl expired")
		}
		if ok, err := store.SetNX(ctx, s, "ttl:k", []byte("again"), 0); !ok || err != nil {
			t.Errorf("SetNX on an expired key: %v %v", ok, err)
		}
		// Set without ttl removes an earlier expiry.
		store.Set(ctx, s, "ttl:reset", []byte("v"), 100*time.Millisecond)
		store.Set(ctx, s, "ttl:reset", []byte("w"), 0)
		time.Sleep(250 * time.Millisecond)
		if got, ok, _ := store.Get(ctx, s, "ttl:reset"); !ok || string(got) != "w" {
			t.Errorf("Set without ttl kept the old expiry: %q %v", got, ok)
		}
	})

	sub("SetNX", func(t *testing.T, s store.Store) {
		ok, err := store.SetNX(ctx, s, "nx:k", []byte("first"), time.Minute)
		if !ok || err != nil {
			t.Fatalf("first SetNX: %v %v", ok, err)
		}
		ok, err = store.SetNX(ctx, s, "nx:k", []byte("second"), time.Minute)
		if ok || err != nil {
			t.Fatalf("second SetNX: %v %v", ok, err)
		}
		if got, _, _ := store.Get(ctx, s, "nx:k"); string(got) != "first" {
			t.Errorf("SetNX overwrote: %q", got)
		}
	})

	sub("Delete", func(t *testing.T, s store.Store) {
		if err := store.Delete(ctx, s, "del:absent"); err != nil {
			t.Errorf("Delete absent: %v", err)
		}
		store.Set(ctx, s, "del:v", []byte("x"), 0)
		store.IncrBy(ctx, s, "del:n", 3, 0)
		store.WindowAdd(ctx, s, "del:w", t0, 5, time.Hour)
		store.SetAdd(ctx, s, "del:s", "m", 0)
		store.ListPush(ctx, s, "del:l", []byte("item"), 10)
		for _, k := range []string{"del:v", "del:n", "del:w", "del:s", "del:l"} {
			if err := store.Delete(ctx, s, k); err != nil {
				t.Fatalf("Delete %s: %v", k, err)
			}
		}
		if _, ok, _ := store.Get(ctx, s, "del:v"); ok {
			t.Error("value survived Delete")
		}
		if n, _ := store.IncrBy(ctx, s, "del:n", 1, 0); n != 1 {
			t.Errorf("counter after Delete: %v", n)
		}
		if sum, _ := store.WindowSum(ctx, s, "del:w", t0, time.Hour); sum != 0 {
			t.Errorf("window after Delete: %v", sum)
		}
		if n, _ := store.SetLen(ctx, s, "del:s"); n != 0 {
			t.Errorf("set after Delete: %d", n)
		}
		if l, err := store.ListRange(ctx, s, "del:l", 0, -1); len(l) != 0 || err != nil {
			t.Errorf("list after Delete: %q, %v", l, err)
		}
		if n, err := store.ListPush(ctx, s, "del:l", []byte("again"), 10); n != 1 || err != nil {
			t.Errorf("push onto a deleted list: length %d, %v; want 1", n, err)
		}
	})

	sub("Lists", func(t *testing.T, s store.Store) {
		str := func(l [][]byte) string {
			var parts []string
			for _, v := range l {
				parts = append(parts, string(v))
			}
			return strings.Join(parts, ",")
		}
		if l, err := store.ListRange(ctx, s, "list:absent", 0, -1); len(l) != 0 || err != nil {
			t.Fatalf("absent list: %q, %v", l, err)
		}
		for i := 1; i <= 7; i++ {
			n, err := store.ListPush(ctx, s, "list:k", []byte(fmt.Sprint(i)), 5)
			if err != nil || n != min(i, 5) {
				t.Fatalf("push %d: length %d, %v; want %d", i, n, err, min(i, 5))
			}
		}
		for _, q := range []struct {
			start, stop int
			want        string
		}{
			{0, -1, "7,6,5,4,3"}, {0, 0, "7"}, {1, 2, "6,5"}, {3, 100, "4,3"}, {-2, -1, "4,3"},
			{-100, 1, "7,6"}, {5, 10, ""}, {3, 1, ""}, {-1, -2, ""},
		} {
			l, err := store.ListRange(ctx, s, "list:k", q.start, q.stop)
			if err != nil || str(l) != q.want {
				t.Errorf("ListRange(%d, %d) = %q, %v; want %q", q.start, q.stop, str(l), err, q.want)
			}
		}
		// Binary items, the empty one included, come back as pushed, and
		// the caller's slice is not kept.
		v := []byte{0, 0xff, '\n', 0}
		store.ListPush(ctx, s, "list:bin", v, 3)
		store.ListPush(ctx, s, "list:bin", []byte{}, 3)
		v[0] = 'X'
		l, err := store.ListRange(ctx, s, "list:bin", 0, -1)
		if err != nil || len(l) != 2 || len(l[0]) != 0 || !bytes.Equal(l[1], []byte{0, 0xff, '\n', 0}) {
			t.Errorf("binary items: %q, %v", l, err)
		}
		// A smaller max trims at once; a larger one keeps what is there.
		if n, _ := store.ListPush(ctx, s, "list:k", []byte("8"), 2); n != 2 {
			t.Errorf("push with max 2: length %d", n)
		}
		if n, _ := store.ListPush(ctx, s, "list:k", []byte("9"), 10); n != 3 {
			t.Errorf("push with max 10 onto 2: length %d", n)
		}
		if l, _ := store.ListRange(ctx, s, "list:k", 0, -1); str(l) != "9,8,7" {
			t.Errorf("after changing max: %q", str(l))
		}
		for _, bad := range []float64{0, -1, 2.5} {
			op := &store.Op{Kind: store.OpListPush, Key: "list:bad", Val: []byte("x"), Max: bad}
			if err := s.Do(ctx, op); err == nil || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("push with max %v: %v, want an error that is not ErrUnavailable", bad, err)
			}
		}
		// A list is a kind of its own: Set replaces it, the operations of
		// the other kinds fail on it.
		store.ListPush(ctx, s, "list:kind", []byte("a"), 3)
		if _, err := store.IncrBy(ctx, s, "list:kind", 1, 0); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("IncrBy on a list: %v", err)
		}
		if _, err := store.ListPush(ctx, s, "set:k", []byte("a"), 3); err != nil {
			t.Errorf("push onto a fresh key: %v", err)
		}
		store.Set(ctx, s, "list:kind", []byte("v"), 0)
		if _, err := store.ListRange(ctx, s, "list:kind", 0, -1); err == nil {
			t.Error("ListRange on a value: no error")
		}
		store.Delete(ctx, s, "list:kind")
		if l, err := store.ListRange(ctx, s, "list:kind", 0, -1); len(l) != 0 || err != nil {
			t.Errorf("a list replaced by a value and deleted: %q, %v", l, err)
		}
	})

	sub("IncrBy", func(t *testing.T, s store.Store) {
		for _, step := range []struct{ d, want float64 }{{1, 1}, {0.5, 1.5}, {0.25, 1.75}, {-2, -0.25}, {1e12, 1e12 - 0.25}} {
			got, err := store.IncrBy(ctx, s, "incr:k", step.d, 0)
			if err != nil || got != step.want {
				t.Fatalf("IncrBy %v = %v, %v; want %v", step.d, got, err, step.want)
			}
		}
		// Counters read back as text, as Redis keeps them.
		store.IncrBy(ctx, s, "incr:text", 1.75, 0)
		if got, ok, _ := store.Get(ctx, s, "incr:text"); !ok || string(got) != "1.75" {
			t.Errorf("Get of a counter = %q, %v; want \"1.75\"", got, ok)
		}
		store.Set(ctx, s, "incr:fromtext", []byte("41"), 0)
		if got, err := store.IncrBy(ctx, s, "incr:fromtext", 1, 0); got != 42 || err != nil {
			t.Errorf("IncrBy over a numeric text value = %v, %v", got, err)
		}
		store.Set(ctx, s, "incr:word", []byte("hello"), 0)
		if _, err := store.IncrBy(ctx, s, "incr:word", 1, 0); err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("IncrBy on a word: err %v, want an error that is not ErrUnavailable", err)
		}
		// ttl > 0 sets the expiry; ttl 0 keeps it.
		store.IncrBy(ctx, s, "incr:ttl", 1, 150*time.Millisecond)
		store.IncrBy(ctx, s, "incr:ttl", 1, 0)
		eventually(t, "the counter to expire", func() bool { _, ok, _ := store.Get(ctx, s, "incr:ttl"); return !ok })
	})

	sub("Window", func(t *testing.T, s store.Store) {
		w := 30 * time.Second
		for _, step := range []struct {
			at     time.Duration
			weight float64
			want   float64
		}{{0, 1, 1}, {10 * time.Second, 2, 3}, {20 * time.Second, 3.5, 6.5}, {31 * time.Second, 1, 6.5}} {
			got, err := store.WindowAdd(ctx, s, "win:k", t0.Add(step.at), step.weight, w)
			if err != nil || got != step.want {
				t.Fatalf("WindowAdd at +%v = %v, %v; want %v", step.at, got, err, step.want)
			}
		}
		for _, q := range []struct {
			at   time.Duration
			want float64
		}{{31 * time.Second, 6.5}, {40 * time.Second, 4.5}, {50*time.Second + time.Microsecond, 1}, {time.Hour, 0}} {
			if got, err := store.WindowSum(ctx, s, "win:k", t0.Add(q.at), w); err != nil || got != q.want {
				t.Errorf("WindowSum at +%v = %v, %v; want %v", q.at, got, err, q.want)
			}
		}
		// An event exactly one window old has left it.
		store.WindowAdd(ctx, s, "win:edge", t0, 1, w)
		if got, _ := store.WindowSum(ctx, s, "win:edge", t0.Add(w), w); got != 0 {
			t.Errorf("event exactly a window old still counted: %v", got)
		}
		if got, _ := store.WindowSum(ctx, s, "win:absent", t0, w); got != 0 {
			t.Errorf("absent window: %v", got)
		}
		// A clock that jumped back: the later events still count.
		store.WindowAdd(ctx, s, "win:back", t0.Add(time.Minute), 1, w)
		if got, _ := store.WindowAdd(ctx, s, "win:back", t0, 1, w); got != 2 {
			t.Errorf("after a clock jump back: %v, want 2", got)
		}
		// Many events with the same time are all kept.
		for i := 0; i < 50; i++ {
			store.WindowAdd(ctx, s, "win:same", t0, 1, w)
		}
		if got, _ := store.WindowSum(ctx, s, "win:same", t0, w); got != 50 {
			t.Errorf("50 events at one instant sum to %v", got)
		}
	})

	sub("ManyEvents", func(t *testing.T, s store.Store) {
		// 2000 events 0.6s apart in a window of 1024s (granule 1s): the
		// sum is never below the exact one, and above it by at most the
		// events of one granule (merged events leave late).
		w := 1024 * time.Second
		step := 600 * time.Millisecond
		var at time.Time
		for i := 0; i < 2000; i++ {
			at = t0.Add(time.Duration(i) * step)
			if _, err := store.WindowAdd(ctx, s, "many:k", at, 1, w); err != nil {
				t.Fatal(err)
			}
		}
		exact := 0
		for i := 0; i < 2000; i++ {
			if t0.Add(time.Duration(i) * step).After(at.Add(-w)) {
				exact++
			}
		}
		got, err := store.WindowSum(ctx, s, "many:k", at, w)
		if err != nil || got < float64(exact) || got > float64(exact+2) {
			t.Errorf("sum of many events = %v, %v; exact %d", got, err, exact)
		}
	})

	sub("WindowCapped", func(t *testing.T, s store.Store) {
		w := time.Minute
		add := func(at time.Duration, weight, max float64) *store.Op {
			op := &store.Op{Kind: store.OpWindowAddCapped, Key: "cap:k", At: t0.Add(at), N: weight, TTL: w, Max: max}
			if err := s.Do(ctx, op); err != nil {
				t.Fatal(err)
			}
			return op
		}
		for i := 1; i <= 3; i++ {
			if op := add(time.Duration(i)*time.Second, 1, 3); !op.OK || op.Num != float64(i) {
				t.Fatalf("add %d under cap 3: ok=%v sum=%v", i, op.OK, op.Num)
			}
		}
		if op := add(4*time.Second, 1, 3); op.OK || op.Num != 3 {
			t.Fatalf("add over cap: ok=%v sum=%v, want refused at 3", op.OK, op.Num)
		}
		if op := add(5*time.Second, 0.5, 3.5); !op.OK || op.Num != 3.5 {
			t.Fatalf("add up to exactly the cap: ok=%v sum=%v", op.OK, op.Num)
		}
		// The refused add was not counted: once the first event left the
		// window there is room for one.
		if op := add(61*time.Second+time.Millisecond, 1, 3.5); !op.OK || op.Num != 3.5 {
			t.Fatalf("after the window moved: ok=%v sum=%v", op.OK, op.Num)
		}
	})

	sub("Sets", func(t *testing.T, s store.Store) {
		for i, m := range []string{"a", "b", "a", "ünïcode ☃", ""} {
			added, err := store.SetAdd(ctx, s, "set:k", m, 0)
			if err != nil || added != (i != 2) {
				t.Fatalf("SetAdd %q = %v, %v", m, added, err)
			}
		}
		if n, err := store.SetLen(ctx, s, "set:k"); n != 4 || err != nil {
			t.Errorf("SetLen = %d, %v; want 4", n, err)
		}
		for m, want := range map[string]bool{"a": true, "ünïcode ☃": true, "": true, "c": false} {
			if got, err := store.SetHas(ctx, s, "set:k", m); got != want || err != nil {
				t.Errorf("SetHas %q = %v, %v", m, got, err)
			}
		}
		if got, _ := store.SetHas(ctx, s, "set:absent", "a"); got {
			t.Error("member of an absent set")
		}
		if n, _ := store.SetLen(ctx, s, "set:absent"); n != 0 {
			t.Errorf("SetLen absent = %d", n)
		}
		store.SetAdd(ctx, s, "set:ttl", "x", 150*time.Millisecond)
		store.SetAdd(ctx, s, "set:ttl", "y", 0) // keeps the expiry
		eventually(t, "the set to expire", func() bool { n, _ := store.SetLen(ctx, s, "set:ttl"); return n == 0 })
	})

	sub("Keys", func(t *testing.T, s store.Store) {
		// Keys with Redis hash-tag braces, spaces, bytes of any kind: the
		// window operations must keep their keys in one cluster slot.
		for _, k := range []string{"", "{", "}", "{}", "}{", "a{b}c", "with space", "ünï/cøde", strings.Repeat("x", 1000)} {
			if err := store.Set(ctx, s, "key:"+k, []byte(k), 0); err != nil {
				t.Fatalf("Set %q: %v", k, err)
			}
			if got, ok, err := store.Get(ctx, s, "key:"+k); !ok || err != nil || string(got) != k {
				t.Errorf("Get %q = %q %v %v", k, got, ok, err)
			}
			if sum, err := store.WindowAdd(ctx, s, k, t0, 2, time.Minute); sum != 2 || err != nil {
				t.Errorf("WindowAdd on key %q = %v, %v", k, sum, err)
			}
			store.Delete(ctx, s, k)
		}
	})

	sub("Batch", func(t *testing.T, s store.Store) {
		store.Set(ctx, s, "batch:v", []byte("value"), 0)
		store.Set(ctx, s, "batch:word", []byte("word"), 0)
		ops := []*store.Op{
			{Kind: store.OpGet, Key: "batch:v"},
			{Kind: store.OpGet, Key: "batch:absent"},
			{Kind: store.OpSetNX, Key: "batch:nx", Val: []byte("1"), TTL: time.Minute},
			{Kind: store.OpIncrBy, Key: "batch:n", N: 2.5},
			{Kind: store.OpIncrBy, Key: "batch:word", N: 1},
			{Kind: store.OpWindowAdd, Key: "batch:w", At: t0, N: 4, TTL: time.Minute},
			{Kind: store.OpWindowAddCapped, Key: "batch:w2", At: t0, N: 4, TTL: time.Minute, Max: 3},
			{Kind: store.OpWindowSum, Key: "batch:w", At: t0, TTL: time.Minute},
			{Kind: store.OpSetAdd, Key: "batch:s", Member: "m"},
			{Kind: store.OpSetHas, Key: "batch:s", Member: "m"},
			{Kind: store.OpSetLen, Key: "batch:s"},
			{Kind: store.OpSet, Key: "batch:set", Val: []byte("x")},
			{Kind: store.OpDelete, Key: "batch:v"},
			{Kind: store.OpListPush, Key: "batch:l", Val: []byte("a"), Max: 2},
			{Kind: store.OpListRange, Key: "batch:absent", Start: 0, Stop: -1},
		}
		err := s.Do(ctx, ops...)
		if err == nil || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Do returned %v, want the IncrBy-on-a-word error", err)
		}
		check := func(i int, ok bool, what string) {
			t.Helper()
			if !ok {
				t.Errorf("op %d (%v): %s; got Out=%q OK=%v Num=%v Err=%v", i, ops[i].Kind, what, ops[i].Out, ops[i].OK, ops[i].Num, ops[i].Err)
			}
		}
		check(0, ops[0].OK && string(ops[0].Out) == "value" && ops[0].Err == nil, "want value")
		check(1, !ops[1].OK && ops[1].Err == nil, "want absent")
		check(2, ops[2].OK, "want set")
		check(3, ops[3].Num == 2.5, "want 2.5")
		check(4, ops[4].Err != nil, "want an error")
		check(5, ops[5].Num == 4 && ops[5].Err == nil, "want 4")
		check(6, !ops[6].OK && ops[6].Num == 0, "want refused, sum 0")
		check(8, ops[8].OK, "want new member")
		check(10, ops[10].Err == nil, "want no error")
		check(12, ops[12].Err == nil, "want no error")
		check(13, ops[13].Num == 1 && ops[13].Err == nil, "want length 1")
		check(14, len(ops[14].Outs) == 0 && ops[14].Err == nil, "want no items")
		if _, ok, _ := store.Get(ctx, s, "batch:v"); ok {
			t.Error("Delete in a batch did not delete")
		}
		if got, _, _ := store.Get(ctx, s, "batch:set"); string(got) != "x" {
			t.Error("Set in a batch did not set")
		}
	})

	sub("Concurrent", func(t *testing.T, s store.Store) {
		const workers, each = 8, 25
		var wg sync.WaitGroup
		var added atomic.Int64
		for i := 0; i < workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < each; j++ {
					if _, err := store.IncrBy(ctx, s, "conc:n", 1, time.Minute); err != nil {
						t.Error(err)
						return
					}
					op := &store.Op{Kind: store.OpWindowAddCapped, Key: "conc:w", At: t0, N: 1, TTL: time.Minute, Max: 100}
					if err := s.Do(ctx, op); err != nil {
						t.Error(err)
						return
					}
					if op.OK {
						added.Add(1)
					}
					if _, err := store.ListPush(ctx, s, "conc:l", []byte(fmt.Sprintf("%d-%d", i, j)), 30); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		// Every push landed and the list is cut to the newest 30.
		l, err := store.ListRange(ctx, s, "conc:l", 0, -1)
		if err != nil || len(l) != 30 {
			t.Errorf("concurrent pushes: %d items, %v; want 30", len(l), err)
		}
		last := map[int]int{}
		for _, v := range l {
			var w, j int
			fmt.Sscanf(string(v), "%d-%d", &w, &j)
			if prev, ok := last[w]; ok && j >= prev {
				t.Errorf("worker %d's items out of order: %d after %d", w, j, prev)
			}
			last[w] = j
		}
		if n, _ := store.IncrBy(ctx, s, "conc:n", 0, 0); n != workers*each {
			t.Errorf("concurrent IncrBy total %v, want %d", n, workers*each)
		}
		if added.Load() != 100 {
			t.Errorf("%d capped adds passed a cap of 100", added.Load())
		}
		if sum, _ := store.WindowSum(ctx, s, "conc:w", t0, time.Minute); sum != 100 {
			t.Errorf("window sum %v, want 100", sum)
		}
	})

	sub("Closed", func(t *testing.T, s store.Store) {
		s.Close()
		_, _, err := store.Get(ctx, s, "closed:k")
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Get after Close: %v, want ErrUnavailable", err)
		}
		if err := store.Set(ctx, s, "closed:k", nil, 0); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Set after Close: %v, want ErrUnavailable", err)
		}
	})
}

// eventually polls cond for up to 5 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Bench measures what the checks do per message: a quota's RCPT-time
// batch (a capped window add per quota, two quotas) and a greylist lookup
// (two gets), each one round trip.
func Bench(b *testing.B, s store.Store) {
	ctx := context.Background()
	b.Run("QuotaRcpt", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				now := time.Now()
				ops := []*store.Op{
					{Kind: store.OpWindowAddCapped, Key: fmt.Sprintf("bench:user:%d", i%500), At: now, N: 1, TTL: time.Hour, Max: 1e9},
					{Kind: store.OpWindowSum, Key: fmt.Sprintf("bench:ip:%d", i%200), At: now, TTL: time.Hour},
				}
				if err := s.Do(ctx, ops...); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("GreylistLookup", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				ops := []*store.Op{
					{Kind: store.OpGet, Key: fmt.Sprintf("bench:client:%d", i%300)},
					{Kind: store.OpGet, Key: fmt.Sprintf("bench:triplet:%d", i%5000)},
				}
				if err := s.Do(ctx, ops...); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("Set", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if err := store.Set(ctx, s, fmt.Sprintf("bench:set:%d", i%10000), []byte("value"), time.Hour); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
