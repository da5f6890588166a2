package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Budget is the time one message may spend waiting on the state store,
// across all its RCPTs and its end of message. The milter session makes
// one per message and puts it in the context of every call it makes for
// that message (WithBudget); a backend that talks to a server (Redis)
// bounds each call by what is left of it (Spend), charges the calls that
// were slow, and fails the calls of a message whose budget is spent at
// once. So a store that is slow without being down costs a message at
// most the backend's budget, not the store's timeout per recipient. The
// limit is the backend's (its timeout): the session need not know it.
type Budget struct {
	mu    sync.Mutex
	spent time.Duration
}

// NewBudget returns an unspent budget.
func NewBudget() *Budget { return &Budget{} }

// Spent returns the time spent so far.
func (b *Budget) Spent() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.spent
}

type budgetKey struct{}

// WithBudget returns ctx carrying b (nil b: ctx unchanged).
func WithBudget(ctx context.Context, b *Budget) context.Context {
	if b == nil {
		return ctx
	}
	return context.WithValue(ctx, budgetKey{}, b)
}

// BudgetFrom returns the budget ctx carries, or nil.
func BudgetFrom(ctx context.Context) *Budget {
	b, _ := ctx.Value(budgetKey{}).(*Budget)
	return b
}

// ErrBudgetSpent is the error of a call made after its message spent its
// store budget; it matches ErrUnavailable.
var ErrBudgetSpent = fmt.Errorf("%w: this message's time budget for the state store is spent", ErrUnavailable)

// Spend starts a call of at most limit in all for the message of ctx: it
// returns ctx bounded by what is left of the budget and a done func that
// charges the time taken, or ErrBudgetSpent. Without a budget in ctx (or
// with limit <= 0) ctx is returned unchanged.
//
// Only waiting counts: a call answered within limit/Grace is free, a
// slower one is charged whole. A store that answers at once costs a
// message nothing however many calls it makes (the sender chooses the
// number of recipients, and a recipient past a spent budget would go
// unchecked: its quota uncounted); a slow or hung one spends the budget
// within a few calls.
func Spend(ctx context.Context, limit time.Duration) (context.Context, func(), error) {
	b := BudgetFrom(ctx)
	if b == nil || limit <= 0 {
		return ctx, func() {}, nil
	}
	left := limit - b.Spent()
	if left <= 0 {
		return ctx, func() {}, ErrBudgetSpent
	}
	grace := limit / Grace
	ctx, cancel := context.WithTimeout(ctx, max(left, grace))
	start := time.Now()
	return ctx, func() {
		cancel()
		if d := time.Since(start); d >= grace {
			b.mu.Lock()
			b.spent += d
			b.mu.Unlock()
		}
	}, nil
}

// Grace divides a backend's limit into the part of each call that is not
// charged to the budget: half (250ms of Redis's 500ms). A healthy store
// answers far faster, even on a machine whose CPU is saturated (which a
// sender can bring about); a hung one spends the budget in two calls. A
// smaller share let load alone spend budgets: past it, recipients went
// unchecked and their quotas uncounted.
const Grace = 2
