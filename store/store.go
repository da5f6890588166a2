// Package store is chainmail's state: reputation history, quotas and
// greylisting live behind one small interface with two backends, a bbolt
// file as the embedded default and Redis when several MTAs share state.
// The same test suite runs against both.
package store

import (
	"context"
	"errors"
)

// ErrUnavailable wraps every error that means "the store cannot be
// reached right now" (Redis down, connection refused, timeout). Checks map
// it to temperror and let mail flow (DESIGN failure policy).
var ErrUnavailable = errors.New("store: unavailable")

// Store is the state interface: what callers use. Keys are plain
// strings; callers prefix them with their check name ("quota:",
// "greylist:", "rep:"). Every method is safe for concurrent use.
//
// The operations (Get, Set, SetNX, Delete, IncrBy, WindowAdd, WindowSum,
// SetAdd, SetHas, SetLen, ListPush, ListRange and WindowAddCapped) are
// described at the helper
// functions of the same name in helpers.go; a backend implements them all
// in Do.
type Store interface {
	// Do runs ops in one round trip (a Redis pipeline, one bbolt lock).
	// Operations of a batch are not a transaction: each is atomic on its
	// own, and they may run in any order relative to other clients. It
	// returns the first error: when the store is unreachable that error
	// wraps ErrUnavailable and every Op carries it; otherwise each Op's
	// own error is in its Err. An empty batch is no round trip.
	Do(ctx context.Context, ops ...*Op) error
	// Close releases the store; every later Do fails with ErrUnavailable.
	Close() error
}
