package store

import (
	"context"
	"time"
)

// The helpers below are the single operations of a Store, each a batch
// of one. A ttl of 0 means no expiry.

func one(ctx context.Context, s Store, op *Op) (*Op, error) {
	err := s.Do(ctx, op)
	return op, err
}

// Get returns the value of key; ok is false when it is absent or expired.
func Get(ctx context.Context, s Store, key string) (val []byte, ok bool, err error) {
	op, err := one(ctx, s, &Op{Kind: OpGet, Key: key})
	return op.Out, op.OK, err
}

// Set stores val under key.
func Set(ctx context.Context, s Store, key string, val []byte, ttl time.Duration) error {
	_, err := one(ctx, s, &Op{Kind: OpSet, Key: key, Val: val, TTL: ttl})
	return err
}

// SetNX stores val only when key is absent; it reports whether it did.
func SetNX(ctx context.Context, s Store, key string, val []byte, ttl time.Duration) (bool, error) {
	op, err := one(ctx, s, &Op{Kind: OpSetNX, Key: key, Val: val, TTL: ttl})
	return op.OK, err
}

// Delete removes key (absent keys are not an error).
func Delete(ctx context.Context, s Store, key string) error {
	_, err := one(ctx, s, &Op{Kind: OpDelete, Key: key})
	return err
}

// IncrBy adds delta to the number under key (absent = 0) and returns the
// new value; when ttl > 0 the key's expiry is set to now+ttl.
func IncrBy(ctx context.Context, s Store, key string, delta float64, ttl time.Duration) (float64, error) {
	op, err := one(ctx, s, &Op{Kind: OpIncrBy, Key: key, N: delta, TTL: ttl})
	return op.Num, err
}

// WindowAdd records weight at time at in the sliding window under key,
// drops what is older than at-window, and returns the sum of the weights
// left in the window (the new one included).
//
// Every backend merges an event into the newest one when both fall in
// the same 1/1024 of the window (keeping the later time), so a window
// holds at most about 1024 events whatever the traffic: an event may then
// leave the window up to window/1024 late (3.5s of an hour), never early.
// An event exactly window old has left it; events after at (a clock that
// went back) still count.
func WindowAdd(ctx context.Context, s Store, key string, at time.Time, weight float64, window time.Duration) (float64, error) {
	op, err := one(ctx, s, &Op{Kind: OpWindowAdd, Key: key, At: at, N: weight, TTL: window})
	return op.Num, err
}

// WindowSum is WindowAdd without adding.
func WindowSum(ctx context.Context, s Store, key string, at time.Time, window time.Duration) (float64, error) {
	op, err := one(ctx, s, &Op{Kind: OpWindowSum, Key: key, At: at, TTL: window})
	return op.Num, err
}

// SetAdd adds member to the set under key and reports whether it was new;
// when ttl > 0 the set's expiry is set to now+ttl.
func SetAdd(ctx context.Context, s Store, key, member string, ttl time.Duration) (bool, error) {
	op, err := one(ctx, s, &Op{Kind: OpSetAdd, Key: key, Member: member, TTL: ttl})
	return op.OK, err
}

// SetHas reports whether member is in the set under key.
func SetHas(ctx context.Context, s Store, key, member string) (bool, error) {
	op, err := one(ctx, s, &Op{Kind: OpSetHas, Key: key, Member: member})
	return op.OK, err
}

// SetLen returns the number of members of the set under key.
func SetLen(ctx context.Context, s Store, key string) (int, error) {
	op, err := one(ctx, s, &Op{Kind: OpSetLen, Key: key})
	return int(op.Num), err
}
