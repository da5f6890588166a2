// Package memstore is an in-memory store.Store for tests and benchmarks:
// one process, no persistence. It lives beside the test suite it passes
// (storetest), not beside the backends. It counts round trips (batches)
// so tests can hold a check to its budget, and it can be switched to fail
// like an unreachable Redis.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"chainmail/store"
)

// Store is the in-memory store. The zero value is not usable: call New.
type Store struct {
	mu      sync.Mutex
	vals    map[string]entry
	windows map[string][]point
	sets    map[string]map[string]bool
	lists   map[string][][]byte  // newest first
	expiry  map[string]time.Time // of windows and sets
	now     func() time.Time

	trips atomic.Int64
	down  atomic.Bool
}

type entry struct {
	val    []byte
	expiry time.Time
}

type point struct {
	at     time.Time
	weight float64
}

var _ store.Store = (*Store)(nil)

// New returns an empty store on the wall clock.
func New() *Store { return NewAt(time.Now) }

// NewAt returns an empty store whose expiries follow now.
func NewAt(now func() time.Time) *Store {
	return &Store{vals: map[string]entry{}, windows: map[string][]point{}, sets: map[string]map[string]bool{}, lists: map[string][][]byte{}, expiry: map[string]time.Time{}, now: now}
}

// RoundTrips is the number of calls and batches so far.
func (s *Store) RoundTrips() int64 { return s.trips.Load() }

// SetDown makes every call fail with store.ErrUnavailable (true) or work
// again (false).
func (s *Store) SetDown(down bool) { s.down.Store(down) }

// Keys returns the live keys of plain values, sorted.
func (s *Store) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.vals {
		if _, ok := s.getLocked(k); ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Store) enter(ctx context.Context) error {
	s.trips.Add(1)
	if s.down.Load() {
		return fmt.Errorf("%w: memstore is down", store.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return nil
}

func (s *Store) getLocked(key string) ([]byte, bool) {
	e, ok := s.vals[key]
	if !ok {
		return nil, false
	}
	if !e.expiry.IsZero() && !s.now().Before(e.expiry) {
		delete(s.vals, key)
		return nil, false
	}
	return e.val, true
}

func (s *Store) deadline(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return s.now().Add(ttl)
}

func (s *Store) incrLocked(key string, delta float64, ttl time.Duration) (float64, error) {
	cur := 0.0
	var exp time.Time
	if v, live := s.getLocked(key); live {
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return 0, fmt.Errorf("memstore: %s is not a number", key)
		}
		cur, exp = f, s.vals[key].expiry
	}
	cur += delta
	if ttl > 0 {
		exp = s.deadline(ttl)
	}
	s.vals[key] = entry{[]byte(strconv.FormatFloat(cur, 'g', -1, 64)), exp}
	return cur, nil
}

func (s *Store) liveLocked(key string) {
	if exp, ok := s.expiry[key]; ok && !s.now().Before(exp) {
		delete(s.windows, key)
		delete(s.sets, key)
		delete(s.expiry, key)
	}
}

func (s *Store) windowLocked(key string, at time.Time, window time.Duration) float64 {
	s.liveLocked(key)
	pts := s.windows[key][:0]
	sum := 0.0
	for _, p := range s.windows[key] {
		if p.at.After(at.Add(-window)) {
			pts = append(pts, p)
			sum += p.weight
		}
	}
	s.windows[key] = pts
	return sum
}

// Close implements store.Store: every later call fails with
// store.ErrUnavailable, as a closed backend's do.
func (s *Store) Close() error {
	s.down.Store(true)
	return nil
}

// Do implements store.Store: the whole batch is one round trip.
func (s *Store) Do(ctx context.Context, ops ...*store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := s.enter(ctx); err != nil {
		for _, op := range ops {
			op.Err = err
		}
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, op := range ops {
		op.Err = s.doLocked(op)
		if op.Err != nil && first == nil {
			first = op.Err
		}
	}
	return first
}

func (s *Store) doLocked(op *store.Op) error {
	var err error
	switch op.Kind {
	case store.OpGet:
		var v []byte
		v, op.OK = s.getLocked(op.Key)
		op.Out = append([]byte(nil), v...)
	case store.OpSet:
		delete(s.lists, op.Key)
		s.vals[op.Key] = entry{append([]byte(nil), op.Val...), s.deadline(op.TTL)}
	case store.OpSetNX:
		if _, ok := s.getLocked(op.Key); !ok {
			s.vals[op.Key] = entry{append([]byte(nil), op.Val...), s.deadline(op.TTL)}
			op.OK = true
		}
	case store.OpDelete:
		delete(s.vals, op.Key)
		delete(s.windows, op.Key)
		delete(s.sets, op.Key)
		delete(s.lists, op.Key)
		delete(s.expiry, op.Key)
	case store.OpIncrBy:
		if _, ok := s.lists[op.Key]; ok {
			return fmt.Errorf("memstore: %s holds a list", op.Key)
		}
		op.Num, err = s.incrLocked(op.Key, op.N, op.TTL)
	case store.OpWindowAdd:
		op.Num = s.windowLocked(op.Key, op.At, op.TTL) + op.N
		s.windows[op.Key] = append(s.windows[op.Key], point{op.At, op.N})
		s.expiry[op.Key] = s.now().Add(op.TTL)
	case store.OpWindowAddCapped:
		op.Num = s.windowLocked(op.Key, op.At, op.TTL)
		if op.Num+op.N <= op.Max {
			s.windows[op.Key] = append(s.windows[op.Key], point{op.At, op.N})
			s.expiry[op.Key] = s.now().Add(op.TTL)
			op.Num += op.N
			op.OK = true
		}
	case store.OpWindowSum:
		op.Num = s.windowLocked(op.Key, op.At, op.TTL)
	case store.OpSetAdd:
		s.liveLocked(op.Key)
		if s.sets[op.Key] == nil {
			s.sets[op.Key] = map[string]bool{}
		}
		op.OK = !s.sets[op.Key][op.Member]
		s.sets[op.Key][op.Member] = true
		if op.TTL > 0 {
			s.expiry[op.Key] = s.deadline(op.TTL)
		}
	case store.OpSetHas:
		s.liveLocked(op.Key)
		op.OK = s.sets[op.Key][op.Member]
	case store.OpSetLen:
		s.liveLocked(op.Key)
		op.Num = float64(len(s.sets[op.Key]))
	case store.OpListPush:
		var n int
		if n, err = store.ListMax(op); err != nil {
			return err
		}
		l := append([][]byte{append([]byte(nil), op.Val...)}, s.lists[op.Key]...)
		s.lists[op.Key] = l[:min(len(l), n)]
		op.Num = float64(len(s.lists[op.Key]))
	case store.OpListRange:
		if _, ok := s.getLocked(op.Key); ok {
			return fmt.Errorf("memstore: %s holds a value, not a list", op.Key)
		}
		l := s.lists[op.Key]
		op.Outs = nil
		lo, hi := store.ListBounds(len(l), op.Start, op.Stop)
		for _, v := range l[lo:hi] {
			op.Outs = append(op.Outs, append([]byte(nil), v...))
		}
	default:
		err = fmt.Errorf("memstore: unknown operation %v", op.Kind)
	}
	return err
}
