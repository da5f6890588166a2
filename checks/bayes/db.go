package bayes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"chainmail/store"
)

// The token database lives in the state store (bbolt or Redis), under
// these keys:
//
//	bayes:n:spam, bayes:n:ham  messages learned of each class (no expiry)
//	bayes:t:<16 hex>           one token: its counts, packed (see below)
//	bayes:m:<32 hex>           one learned message: "spam" or "ham"
//
// A token key is the FNV-1a 64-bit hash of the token, so a long token
// costs no more room than a short one and the store never holds message
// text. Its value is one number holding both counts, spam·2^26 + ham,
// so that learning, unlearning and moving a message are one atomic
// increment per token (IncrBy), also when several MTAs learn into one
// Redis, and classifying reads one key per token. The ham part is read
// balanced (−2^25 ≤ ham < 2^25), so a count that went below zero (a token
// that expired between learning a message and moving it) never borrows
// from the other. Both counts stay exact while ham < 2^25 and spam <
// 2^27 (float64 holds integers exactly to 2^53).
const (
	keyNSpam   = "bayes:n:spam"
	keyNHam    = "bayes:n:ham"
	keyToken   = "bayes:t:"
	keyMessage = "bayes:m:"

	spamUnit = 1 << 26
)

func tokenKey(tok string) string {
	// FNV-1a, 64 bits, written out without the hash.Hash interface: this
	// runs for every token of every message.
	const offset, prime = 14695981039346656037, 1099511628211
	sum := uint64(offset)
	for i := 0; i < len(tok); i++ {
		sum ^= uint64(tok[i])
		sum *= prime
	}
	const digits = "0123456789abcdef"
	var b [len(keyToken) + 16]byte
	copy(b[:], keyToken)
	for i := 0; i < 16; i++ {
		b[len(keyToken)+i] = digits[(sum>>(60-4*i))&0xf]
	}
	return string(b[:])
}

// unpack splits a token value into its counts (negative parts read as 0).
func unpack(v float64) counts {
	v = math.Round(v)
	spam := math.Floor((v + spamUnit/2) / spamUnit)
	ham := v - spam*spamUnit
	return counts{spam: math.Max(spam, 0), ham: math.Max(ham, 0)}
}

// unit is the increment that adds one message of the class.
func unit(spam bool) float64 {
	if spam {
		return spamUnit
	}
	return 1
}

// messageKey names a learned message by its tokens: the same message
// learned again (another copy, a report sent twice, the same mail through
// another relay) has the same tokens whatever its Received fields say.
func messageKey(toks []string) string {
	sorted := append([]string(nil), toks...)
	sort.Strings(sorted)
	h := sha256.New()
	for _, t := range sorted {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return keyMessage + hex.EncodeToString(h.Sum(nil)[:16])
}

func className(spam bool) string {
	if spam {
		return "spam"
	}
	return "ham"
}

// number reads a counter as Get returned it (absent = 0).
func number(op *store.Op) (float64, error) {
	if op.Err != nil {
		return 0, op.Err
	}
	if !op.OK || len(op.Out) == 0 {
		return 0, nil
	}
	f, err := strconv.ParseFloat(string(op.Out), 64)
	if err != nil {
		return 0, fmt.Errorf("bayes: key %s holds %q, not a number", op.Key, op.Out)
	}
	return f, nil
}

// lookup reads the learned message counts and the counts of toks in one
// batch.
func lookup(ctx context.Context, st store.Store, toks []string) (nspam, nham float64, cs []counts, err error) {
	b := batches.Get().(*batch)
	defer b.release()
	ops := b.gets(len(toks) + 2)
	ops[0].Key, ops[1].Key = keyNSpam, keyNHam
	for i, t := range toks {
		ops[i+2].Key = tokenKey(t)
	}
	if err := st.Do(ctx, ops...); err != nil {
		return 0, 0, nil, err
	}
	if nspam, err = number(ops[0]); err != nil {
		return 0, 0, nil, err
	}
	if nham, err = number(ops[1]); err != nil {
		return 0, 0, nil, err
	}
	cs = make([]counts, len(toks))
	for i := range toks {
		v, err := number(ops[i+2])
		if err != nil {
			return 0, 0, nil, err
		}
		cs[i] = unpack(v)
	}
	return math.Max(nspam, 0), math.Max(nham, 0), cs, nil
}

// batch is the room of one lookup's operations, kept between messages
// (a lookup has hundreds; Do is done with them when it returns).
type batch struct {
	buf []store.Op
	ops []*store.Op
}

var batches = sync.Pool{New: func() any { return new(batch) }}

// gets returns n Get operations.
func (b *batch) gets(n int) []*store.Op {
	if cap(b.buf) < n {
		b.buf = make([]store.Op, n)
		b.ops = make([]*store.Op, n)
	}
	b.buf, b.ops = b.buf[:n], b.ops[:n]
	for i := range b.buf {
		b.buf[i] = store.Op{Kind: store.OpGet}
		b.ops[i] = &b.buf[i]
	}
	return b.ops
}

func (b *batch) release() {
	clear(b.buf) // drop what the answers point to
	batches.Put(b)
}

// frequent is the number of learned messages from which a token is kept
// for TokenTTL instead of RareTokenTTL.
const frequent = 3

// add adds delta to every token of toks (and dmsg messages to the class
// counters) and gives each token its expiry: RareTokenTTL, or TokenTTL
// once it was seen in frequent messages.
func (c *Check) add(ctx context.Context, toks []string, delta float64, counters map[string]float64) error {
	ops := make([]*store.Op, 0, len(toks)+len(counters))
	for k, n := range counters {
		ops = append(ops, &store.Op{Kind: store.OpIncrBy, Key: k, N: n})
	}
	first := len(ops)
	for _, t := range toks {
		ops = append(ops, &store.Op{Kind: store.OpIncrBy, Key: tokenKey(t), N: delta, TTL: time.Duration(c.cfg.RareTokenTTL)})
	}
	if err := c.st.Do(ctx, ops...); err != nil {
		return err
	}
	var keep []*store.Op
	for _, op := range ops[first:] {
		if cs := unpack(op.Num); cs.spam+cs.ham >= frequent {
			keep = append(keep, &store.Op{Kind: store.OpIncrBy, Key: op.Key, TTL: time.Duration(c.cfg.TokenTTL)})
		}
	}
	if len(keep) == 0 || c.cfg.TokenTTL <= c.cfg.RareTokenTTL {
		return nil
	}
	return c.st.Do(ctx, keep...)
}
