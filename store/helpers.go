package store

import (
	"context"
	"fmt"
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

// ListPush puts val at the head of the list under key (the newest item)
// and drops the oldest items beyond max (at least 1), in one atomic step;
// it returns the list's length afterwards (at most max). Lists do not
// expire: max bounds them. A list is a kind of its own, as a window or a
// set is: Delete removes it; the other operations on its key fail, or
// (Set) replace it.
func ListPush(ctx context.Context, s Store, key string, val []byte, max int) (int, error) {
	op, err := one(ctx, s, &Op{Kind: OpListPush, Key: key, Val: val, Max: float64(max)})
	return int(op.Num), err
}

// ListRange returns the items of the list under key from index start to
// stop, both included, newest first (index 0 is the newest item); a
// negative index counts from the oldest end (-1 is the oldest), as in
// Redis's LRANGE. An absent list, or a range outside it, is no items.
func ListRange(ctx context.Context, s Store, key string, start, stop int) ([][]byte, error) {
	op, err := one(ctx, s, &Op{Kind: OpListRange, Key: key, Start: start, Stop: stop})
	return op.Outs, err
}

// ListBounds turns ListRange's start and stop into the half-open range
// [lo, hi) of a list of n items (lo == hi: none), for the backends.
func ListBounds(n, start, stop int) (lo, hi int) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	start = max(start, 0)
	stop = min(stop, n-1)
	if start > stop {
		return 0, 0
	}
	return start, stop + 1
}

// ListMax checks ListPush's Max and returns it as a count.
func ListMax(op *Op) (int, error) {
	if op.Max < 1 || op.Max != float64(int(op.Max)) {
		return 0, fmt.Errorf("store: ListPush %q: max %v is not a whole number of at least 1", op.Key, op.Max)
	}
	return int(op.Max), nil
}
