package quota

import (
	"context"
	"fmt"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/store"
	"chainmail/store/redis"
	"chainmail/store/storetest"
)

// A message with many recipients against a Redis that answers every call
// at once: each recipient is checked and counted against its quota. The
// message's store budget bounds waiting on a slow store, not the sum of
// quick answers; the sender controls the number of recipients, and
// recipients past a spent budget would pass unchecked and uncounted.
// Before: with a 100ms store timeout, recipients past roughly the 1000th
// (sooner under load) failed with "budget is spent" and went unchecked,
// so a 2500-recipient limit let all 3000 through.
func TestManyRecipientsHealthyRedis(t *testing.T) {
	srv := storetest.StartRedis(t)
	st, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{srv.Addr()}, Prefix: "many:", Timeout: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := newCheck(t, st, newClock(), Quota{Name: "u", Track: TrackSASLUser, Period: time.Hour, Recipients: 2500})
	env := envelope("u", "u@example.com", "192.0.2.1")
	// One budget for the message, as the milter session makes it.
	ctx := store.WithBudget(context.Background(), store.NewBudget())
	var unchecked, deferred int
	for i := 0; i < 3000; i++ {
		r := c.CheckRcpt(ctx, env, fmt.Sprintf("r%d@x.example", i))
		switch {
		case r.Err != nil:
			unchecked++
			if unchecked == 1 {
				t.Logf("recipient %d: %v", i, r.Err)
			}
		case r.Action != checks.Accept:
			deferred++
		}
	}
	if unchecked != 0 || deferred != 500 {
		t.Errorf("3000 recipients, limit 2500, healthy Redis: %d unchecked, %d deferred; want 0 and 500", unchecked, deferred)
	}
}
