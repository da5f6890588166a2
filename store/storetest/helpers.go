package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"chainmail/store"
)

// Clock is the settable clock of chainmail's tests (store, quota,
// greylist, the DNS cache, list health, reputation). It is safe for
// concurrent use; pass its Now where code takes a func() time.Time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2030, 5, 6, 7, 0, 0, 0, time.UTC)} }

// NewClockAt returns a clock set to t.
func NewClockAt(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Counting wraps a store and counts round trips (Do batches and calls),
// for the "one store round trip per message" budgets.
type Counting struct {
	store.Store
	Trips atomic.Int64
}

// Do implements store.Store.
func (c *Counting) Do(ctx context.Context, ops ...*store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	c.Trips.Add(1)
	return c.Store.Do(ctx, ops...)
}
