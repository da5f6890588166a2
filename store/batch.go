package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Batches are an addition to the Store interface, for the checks that
// must keep to one store round trip per recipient or per message
// (quotas and greylisting look at several keys per RCPT): Do runs a list
// of operations in one Redis pipeline, or under one lock in the bbolt
// backend, and falls back to one call per operation for a Store that is
// not a Batcher. The Store interface itself is unchanged.

// Kind names the operation of an Op: each is the Store method of the same
// name, except WindowAddCapped.
type Kind uint8

// Operations.
const (
	OpGet Kind = iota + 1
	OpSet
	OpSetNX
	OpDelete
	OpIncrBy
	OpWindowAdd
	// OpWindowAddCapped is WindowAdd that adds the weight only when the
	// window's sum stays at or below Max; OK reports whether it did and
	// Num is the sum afterwards. Against Redis it is one Lua script, so
	// several MTAs sharing a limit never overshoot it together. (It is
	// why batches exist at all: a quota must test and count in one step.)
	OpWindowAddCapped
	OpWindowSum
	OpSetAdd
	OpSetHas
	OpSetLen
)

var kindNames = [...]string{"", "get", "set", "setnx", "delete", "incrby", "windowadd", "windowaddcapped", "windowsum", "setadd", "sethas", "setlen"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Op is one operation of a batch. The input fields are the arguments of
// the Store method; the output fields its results.
type Op struct {
	Kind Kind
	Key  string
	// Member is the set member of SetAdd and SetHas.
	Member string
	// Val is the value of Set and SetNX.
	Val []byte
	// N is the delta of IncrBy and the weight of WindowAdd.
	N float64
	// TTL is the ttl of Set, SetNX, IncrBy and SetAdd, and the window
	// length of the window operations.
	TTL time.Duration
	// At is the time of the window operations.
	At time.Time
	// Max is the cap of WindowAddCapped.
	Max float64

	// Out is the value Get found.
	Out []byte
	// OK is Get's "found", SetNX's and WindowAddCapped's "done",
	// SetAdd's "new member", SetHas's "is a member".
	OK bool
	// Num is the number IncrBy, the window operations and SetLen return.
	Num float64
	// Err is this operation's error.
	Err error
}

// Batcher is implemented by backends that run several operations in one
// round trip. Operations of a batch are not a transaction: each is atomic
// on its own, and they may run in any order relative to other clients.
type Batcher interface {
	Do(ctx context.Context, ops ...*Op) error
}

// Do runs ops on s, in one round trip when s is a Batcher and one call
// per operation otherwise. It returns the first error: when the store is
// unreachable that error wraps ErrUnavailable and every Op carries it;
// otherwise each Op's own error is in its Err.
//
// Without a Batcher, WindowAddCapped is a WindowSum and a WindowAdd: two
// clients can then both pass a cap that only one of them should.
func Do(ctx context.Context, s Store, ops ...*Op) error {
	if len(ops) == 0 {
		return nil
	}
	if b, ok := s.(Batcher); ok {
		return b.Do(ctx, ops...)
	}
	var first error
	for _, op := range ops {
		op.Err = doOne(ctx, s, op)
		if op.Err != nil && first == nil {
			first = op.Err
		}
		if errors.Is(op.Err, ErrUnavailable) {
			for _, rest := range ops {
				if rest.Err == nil {
					rest.Err = op.Err
				}
			}
			return op.Err
		}
	}
	return first
}

func doOne(ctx context.Context, s Store, op *Op) (err error) {
	switch op.Kind {
	case OpGet:
		op.Out, op.OK, err = s.Get(ctx, op.Key)
	case OpSet:
		err = s.Set(ctx, op.Key, op.Val, op.TTL)
	case OpSetNX:
		op.OK, err = s.SetNX(ctx, op.Key, op.Val, op.TTL)
	case OpDelete:
		err = s.Delete(ctx, op.Key)
	case OpIncrBy:
		op.Num, err = s.IncrBy(ctx, op.Key, op.N, op.TTL)
	case OpWindowAdd:
		op.Num, err = s.WindowAdd(ctx, op.Key, op.At, op.N, op.TTL)
	case OpWindowAddCapped:
		var sum float64
		if sum, err = s.WindowSum(ctx, op.Key, op.At, op.TTL); err == nil {
			op.Num = sum
			if sum+op.N <= op.Max {
				op.Num, err = s.WindowAdd(ctx, op.Key, op.At, op.N, op.TTL)
				op.OK = err == nil
			}
		}
	case OpWindowSum:
		op.Num, err = s.WindowSum(ctx, op.Key, op.At, op.TTL)
	case OpSetAdd:
		op.OK, err = s.SetAdd(ctx, op.Key, op.Member, op.TTL)
	case OpSetHas:
		op.OK, err = s.SetHas(ctx, op.Key, op.Member)
	case OpSetLen:
		var n int
		n, err = s.SetLen(ctx, op.Key)
		op.Num = float64(n)
	default:
		err = fmt.Errorf("store: unknown operation %v", op.Kind)
	}
	return err
}

// Unavailable returns a Store whose every call fails with ErrUnavailable
// wrapping why. It stands in for a store that must not be opened (`config
// check` next to a running daemon that holds the bbolt lock) and lets
// tests exercise the failure policy.
func Unavailable(why error) Store { return unavailable{fmt.Errorf("%w: %v", ErrUnavailable, why)} }

type unavailable struct{ err error }

func (u unavailable) Get(context.Context, string) ([]byte, bool, error) { return nil, false, u.err }
func (u unavailable) Set(context.Context, string, []byte, time.Duration) error {
	return u.err
}
func (u unavailable) SetNX(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, u.err
}
func (u unavailable) Delete(context.Context, string) error { return u.err }
func (u unavailable) IncrBy(context.Context, string, float64, time.Duration) (float64, error) {
	return 0, u.err
}
func (u unavailable) WindowAdd(context.Context, string, time.Time, float64, time.Duration) (float64, error) {
	return 0, u.err
}
func (u unavailable) WindowSum(context.Context, string, time.Time, time.Duration) (float64, error) {
	return 0, u.err
}
func (u unavailable) SetAdd(context.Context, string, string, time.Duration) (bool, error) {
	return false, u.err
}
func (u unavailable) SetHas(context.Context, string, string) (bool, error) { return false, u.err }
func (u unavailable) SetLen(context.Context, string) (int, error)          { return 0, u.err }
func (u unavailable) Close() error                                         { return nil }

// Ops implements the single-operation methods of Store on top of a
// Batcher, for backends where every call is a batch of one: embed it and
// set B to the backend.
type Ops struct{ B Batcher }

func (o Ops) one(ctx context.Context, op *Op) (*Op, error) {
	err := o.B.Do(ctx, op)
	return op, err
}

// Get implements Store.
func (o Ops) Get(ctx context.Context, key string) ([]byte, bool, error) {
	op, err := o.one(ctx, &Op{Kind: OpGet, Key: key})
	return op.Out, op.OK, err
}

// Set implements Store.
func (o Ops) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	_, err := o.one(ctx, &Op{Kind: OpSet, Key: key, Val: val, TTL: ttl})
	return err
}

// SetNX implements Store.
func (o Ops) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	op, err := o.one(ctx, &Op{Kind: OpSetNX, Key: key, Val: val, TTL: ttl})
	return op.OK, err
}

// Delete implements Store.
func (o Ops) Delete(ctx context.Context, key string) error {
	_, err := o.one(ctx, &Op{Kind: OpDelete, Key: key})
	return err
}

// IncrBy implements Store.
func (o Ops) IncrBy(ctx context.Context, key string, delta float64, ttl time.Duration) (float64, error) {
	op, err := o.one(ctx, &Op{Kind: OpIncrBy, Key: key, N: delta, TTL: ttl})
	return op.Num, err
}

// WindowAdd implements Store.
func (o Ops) WindowAdd(ctx context.Context, key string, at time.Time, weight float64, window time.Duration) (float64, error) {
	op, err := o.one(ctx, &Op{Kind: OpWindowAdd, Key: key, At: at, N: weight, TTL: window})
	return op.Num, err
}

// WindowSum implements Store.
func (o Ops) WindowSum(ctx context.Context, key string, at time.Time, window time.Duration) (float64, error) {
	op, err := o.one(ctx, &Op{Kind: OpWindowSum, Key: key, At: at, TTL: window})
	return op.Num, err
}

// SetAdd implements Store.
func (o Ops) SetAdd(ctx context.Context, key, member string, ttl time.Duration) (bool, error) {
	op, err := o.one(ctx, &Op{Kind: OpSetAdd, Key: key, Member: member, TTL: ttl})
	return op.OK, err
}

// SetHas implements Store.
func (o Ops) SetHas(ctx context.Context, key, member string) (bool, error) {
	op, err := o.one(ctx, &Op{Kind: OpSetHas, Key: key, Member: member})
	return op.OK, err
}

// SetLen implements Store.
func (o Ops) SetLen(ctx context.Context, key string) (int, error) {
	op, err := o.one(ctx, &Op{Kind: OpSetLen, Key: key})
	return int(op.Num), err
}
