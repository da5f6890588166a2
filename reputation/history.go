package reputation

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"time"

	"chainmail/store"
)

// record is what the store keeps for one entity (a domain, an address, a
// network) under one key, as compact JSON. Counts decay: they are worth
// half as much after each half-life, so old behaviour fades. A domain's
// record also caches its RDAP answer, so one read gives both.
type record struct {
	// First and Last seen, unix seconds.
	First int64 `json:"f,omitempty"`
	Last  int64 `json:"l,omitempty"`
	// At is the time the counts are decayed to, unix seconds.
	At int64 `json:"t,omitempty"`
	// Ham and Spam count the final verdicts; Good and Bad the explicit
	// feedback.
	Ham  float64 `json:"h,omitempty"`
	Spam float64 `json:"s,omitempty"`
	Good float64 `json:"g,omitempty"`
	Bad  float64 `json:"b,omitempty"`
	// RDAP: the registration time (unix seconds, 0 unknown), when it was
	// asked, what went wrong, and when to ask again.
	Reg     int64  `json:"r,omitempty"`
	RegAt   int64  `json:"ra,omitempty"`
	RegErr  string `json:"re,omitempty"`
	RegNext int64  `json:"rn,omitempty"`
}

// known reports whether the entity was ever seen in mail or feedback.
func (r record) known() bool { return r.First != 0 }

// decay returns r with its counts decayed to t.
func (r record) decay(t int64, half time.Duration) record {
	if t <= r.At || half <= 0 {
		return r
	}
	if r.At != 0 {
		f := math.Exp2(-float64(t-r.At) / half.Seconds())
		r.Ham, r.Spam, r.Good, r.Bad = r.Ham*f, r.Spam*f, r.Good*f, r.Bad*f
	}
	r.At = t
	return r
}

// delta is a change to one record, queued by Learn, Feedback or an RDAP
// answer.
type delta struct {
	at                   int64 // when it was observed (unix); 0 for RDAP only
	ham, spam, good, bad float64
	rdap                 *record // Reg, RegAt, RegErr, RegNext to take over
}

func (d *delta) add(o delta) {
	// The merged delta keeps the earliest time: first-seen must not move
	// forward. Later observations merged into it then decay a little
	// more than they should, by at most the flush interval.
	if o.at != 0 && (d.at == 0 || o.at < d.at) {
		d.at = o.at
	}
	d.ham += o.ham
	d.spam += o.spam
	d.good += o.good
	d.bad += o.bad
	if o.rdap != nil {
		d.rdap = o.rdap
	}
}

// apply merges d into r.
func (r record) apply(d delta, half time.Duration) record {
	if d.at != 0 {
		if d.at > r.At {
			r = r.decay(d.at, half)
		}
		// An observation older than the record counts for what is left
		// of it by now.
		f := 1.0
		if d.at < r.At && half > 0 {
			f = math.Exp2(-float64(r.At-d.at) / half.Seconds())
		}
		r.Ham += d.ham * f
		r.Spam += d.spam * f
		r.Good += d.good * f
		r.Bad += d.bad * f
		// A report taken back (Report) may meet a record that expired
		// since: no count goes below zero.
		r.Ham, r.Spam, r.Good, r.Bad = math.Max(r.Ham, 0), math.Max(r.Spam, 0), math.Max(r.Good, 0), math.Max(r.Bad, 0)
		if r.First == 0 || d.at < r.First {
			r.First = d.at
		}
		if d.at > r.Last {
			r.Last = d.at
		}
	}
	if d.rdap != nil && d.rdap.RegAt >= r.RegAt {
		r.Reg, r.RegAt, r.RegErr, r.RegNext = d.rdap.Reg, d.rdap.RegAt, d.rdap.RegErr, d.rdap.RegNext
	}
	return r
}

func decodeRecord(b []byte) (record, error) {
	var r record
	if len(b) == 0 {
		return r, nil
	}
	err := json.Unmarshal(b, &r)
	return r, err
}

// writer batches record updates off the hot path: deltas are merged in
// memory per key and written every interval as one batched read and one
// batched write (read-modify-write: two MTAs flushing the same key in
// the same instant may lose one update, which a reputation tolerates).
type writer struct {
	st       store.Store
	half     time.Duration
	ttl      time.Duration
	interval time.Duration
	logf     func(format string, args ...any)
	// maxPending bounds the queue while the store is down.
	maxPending int

	mu      sync.Mutex
	pending map[string]*delta
	timer   *time.Timer
	// failures counts flushes in a row that found the store unavailable;
	// after maxFailures the queue is dropped (a store closed for good, as
	// after a reload to another backend, must not be retried forever).
	failures int
	// flushing serialises flushes.
	flushing sync.Mutex
}

func (w *writer) add(key string, d delta) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		w.pending = map[string]*delta{}
	}
	if p, ok := w.pending[key]; ok {
		p.add(d)
	} else {
		if len(w.pending) >= w.maxPending {
			return
		}
		dd := d
		w.pending[key] = &dd
	}
	w.scheduleLocked(w.interval)
}

func (w *writer) scheduleLocked(after time.Duration) {
	if w.timer != nil {
		return
	}
	w.timer = time.AfterFunc(after, func() {
		w.mu.Lock()
		w.timer = nil
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.flush(ctx); err != nil && w.logf != nil {
			w.logf("reputation: writing history: %v", err)
		}
	})
}

// flush writes what is pending now. When the store is unavailable the
// deltas are put back and retried later.
func (w *writer) flush(ctx context.Context) error {
	w.flushing.Lock()
	defer w.flushing.Unlock()
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	keys := make([]string, 0, len(batch))
	gets := make([]*store.Op, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
		gets = append(gets, &store.Op{Kind: store.OpGet, Key: k})
	}
	if err := w.st.Do(ctx, gets...); err != nil && errors.Is(err, store.ErrUnavailable) {
		w.requeue(batch)
		return err
	}
	sets := make([]*store.Op, 0, len(batch))
	for i, k := range keys {
		var r record
		if gets[i].Err == nil && gets[i].OK {
			// A record that does not decode is replaced.
			r, _ = decodeRecord(gets[i].Out)
		}
		r = r.apply(*batch[k], w.half)
		b, _ := json.Marshal(r)
		sets = append(sets, &store.Op{Kind: store.OpSet, Key: k, Val: b, TTL: w.ttl})
	}
	err := w.st.Do(ctx, sets...)
	if err != nil && errors.Is(err, store.ErrUnavailable) {
		w.requeue(batch)
		return err
	}
	w.mu.Lock()
	w.failures = 0
	w.mu.Unlock()
	return err
}

// maxFailures is how many flushes in a row may fail before the queue is
// dropped (with the retry every 10 intervals: about 5 minutes).
const maxFailures = 30

func (w *writer) requeue(batch map[string]*delta) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures++; w.failures >= maxFailures {
		if w.logf != nil {
			w.logf("reputation: state store unavailable for %d flushes, dropping %d queued updates", w.failures, len(batch)+len(w.pending))
		}
		w.failures, w.pending = 0, nil
		return
	}
	if w.pending == nil {
		w.pending = map[string]*delta{}
	}
	for k, d := range batch {
		if p, ok := w.pending[k]; ok {
			p.add(*d)
		} else if len(w.pending) < w.maxPending {
			w.pending[k] = d
		}
	}
	w.scheduleLocked(10 * w.interval)
}
