package reputation_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/reputation"
	"chainmail/store"
	"chainmail/store/bolt"
	"chainmail/store/redis"
	"chainmail/store/storetest"
	"chainmail/store/storetest/memstore"
)

// BenchmarkCheck is the reputation check's per-message cost on each
// store: the verdict (one batched read of the sender's records, ages
// cached in them) and learning from the verdict (queued, written in
// batches). Run: go test -run XXX -bench Check ./checks/reputation
func BenchmarkCheck(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchCheck(b, memstore.New()) })
	b.Run("bolt", func(b *testing.B) {
		st, err := bolt.Open(filepath.Join(b.TempDir(), "state.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchCheck(b, st)
	})
	b.Run("redis", func(b *testing.B) {
		r := storetest.StartRedis(b)
		st, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{r.Addr()}, Timeout: time.Second}})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		benchCheck(b, st)
	})
}

func benchCheck(b *testing.B, st store.Store) {
	c, err := reputation.New(reputation.Config{KeyPrefix: "bench:", HalfLife: 60 * 24 * time.Hour, Learn: true}, st, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	msgs := make([]*checks.Message, 64)
	for i := range msgs {
		msgs[i] = message(fmt.Sprintf("4Bench%02d", i), fmt.Sprintf("news@sender%d.test", i), "", fmt.Sprintf("198.51.100.%d", i))
		msgs[i].ClientIP = net.ParseIP(fmt.Sprintf("198.51.100.%d", i))
		// Warm history: every sender known.
		for j := 0; j < 5; j++ {
			c.Feedback(ctx, msgs[i], true)
		}
	}
	prior := checks.Results{{Check: "dmarc", Status: checks.StatusPass}, {Check: "spf", Status: checks.StatusPass}, {Check: "dkim", Status: checks.StatusPass}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := msgs[i%len(msgs)]
		r := c.Check(ctx, m, prior)
		if r.Status == checks.StatusTemperror {
			b.Fatal(r.Err)
		}
		r.Check = "reputation"
		c.Learn(ctx, m, &checks.Verdict{Results: append(prior, r)})
	}
	b.StopTimer()
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
