package store

import (
	"context"
	"fmt"
	"time"
)

// A Store is driven by batches of operations: Do runs a list of them in
// one Redis pipeline, or under one lock in the bbolt backend, so the
// checks that must keep to one store round trip per recipient or per
// message (quotas and greylisting look at several keys per RCPT) can.
// The single-operation helpers (Get, Set, IncrBy, …) in helpers.go are
// each a batch of one.

// Kind names the operation of an Op: each is the helper function of the
// same name (Get, Set, …), except WindowAddCapped.
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
	OpListPush
	OpListRange
)

var kindNames = [...]string{"", "get", "set", "setnx", "delete", "incrby", "windowadd", "windowaddcapped", "windowsum", "setadd", "sethas", "setlen", "listpush", "listrange"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Op is one operation of a batch. The input fields are the arguments of
// the helper of the same name; the output fields its results.
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
	// Max is the cap of WindowAddCapped and the most items ListPush
	// keeps (a whole number, at least 1).
	Max float64
	// Start and Stop are the index range of ListRange.
	Start, Stop int

	// Out is the value Get found.
	Out []byte
	// OK is Get's "found", SetNX's and WindowAddCapped's "done",
	// SetAdd's "new member", SetHas's "is a member".
	OK bool
	// Num is the number IncrBy, the window operations, SetLen and
	// ListPush return.
	Num float64
	// Outs are the items ListRange found, newest first.
	Outs [][]byte
	// Err is this operation's error.
	Err error
}

// Unavailable returns a Store whose every call fails with ErrUnavailable
// wrapping why. It stands in for a store that must not be opened (`config
// check` next to a running daemon that holds the bbolt lock) and lets
// tests exercise the failure policy.
func Unavailable(why error) Store { return unavailable{fmt.Errorf("%w: %v", ErrUnavailable, why)} }

type unavailable struct{ err error }

func (u unavailable) Do(_ context.Context, ops ...*Op) error {
	for _, op := range ops {
		op.Err = u.err
	}
	return u.err
}

func (u unavailable) Close() error { return nil }
