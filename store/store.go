// Package store is chainmail's state: reputation history, quotas and
// greylisting live behind one small interface with two backends, a bbolt
// file as the embedded default and Redis when several MTAs share state.
// The same test suite runs against both.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable wraps every error that means "the store cannot be
// reached right now" (Redis down, connection refused, timeout). Checks map
// it to temperror and let mail flow (DESIGN failure policy).
var ErrUnavailable = errors.New("store: unavailable")

// Store is the state interface. Keys are plain strings; callers prefix
// them with their check name ("quota:", "greylist:", "rep:"). Every
// method is safe for concurrent use. A ttl of 0 means no expiry.
type Store interface {
	// Get returns the value of key; ok is false when it is absent or
	// expired.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Set stores val under key.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// SetNX stores val only when key is absent; it reports whether it did.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// Delete removes key (absent keys are not an error).
	Delete(ctx context.Context, key string) error
	// IncrBy adds delta to the number under key (absent = 0) and returns
	// the new value; when ttl > 0 the key's expiry is set to now+ttl.
	IncrBy(ctx context.Context, key string, delta float64, ttl time.Duration) (float64, error)
	// WindowAdd records weight at time at in the sliding window under key,
	// drops what is older than at-window, and returns the sum of the
	// weights left in the window (the new one included).
	//
	// Both backends merge an event into the newest one when both fall in
	// the same 1/1024 of the window (keeping the later time), so a window
	// holds at most about 1024 events whatever the traffic: an event may
	// then leave the window up to window/1024 late (3.5s of an hour),
	// never early. An event exactly window old has left it; events after
	// at (a clock that went back) still count.
	WindowAdd(ctx context.Context, key string, at time.Time, weight float64, window time.Duration) (float64, error)
	// WindowSum is WindowAdd without adding.
	WindowSum(ctx context.Context, key string, at time.Time, window time.Duration) (float64, error)
	// SetAdd adds member to the set under key and reports whether it was
	// new; when ttl > 0 the set's expiry is set to now+ttl.
	SetAdd(ctx context.Context, key, member string, ttl time.Duration) (bool, error)
	// SetHas reports whether member is in the set under key.
	SetHas(ctx context.Context, key, member string) (bool, error)
	// SetLen returns the number of members of the set under key.
	SetLen(ctx context.Context, key string) (int, error)
	// Close releases the store.
	Close() error
}
