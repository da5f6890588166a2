package history_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"chainmail/checks/history"
	"chainmail/store"
	"chainmail/store/storetest"
)

// BenchmarkVerdict is what recording costs a message: building the
// record (verdict-log lines and the kept message included) and queueing
// it. The writer runs meanwhile; what it cannot keep up with is dropped.
func BenchmarkVerdict(b *testing.B) {
	h := history.New(openBolt(b), history.Config{}, "mx1")
	defer h.Close()
	m := three[1].message(b)
	v, _ := engine(nil).Evaluate(context.Background(), m)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.Verdict(m, v, time.Millisecond)
	}
}

// BenchmarkRecorded is the whole cost of one record on bbolt, the
// writer's included: verdicts in bursts the queue holds, each burst
// written before the next.
func BenchmarkRecorded(b *testing.B) {
	h := history.New(openBolt(b), history.Config{}, "mx1")
	defer h.Close()
	m := three[1].message(b)
	v, _ := engine(nil).Evaluate(context.Background(), m)
	b.ReportAllocs()
	b.ResetTimer()
	n := int64(0)
	for b.Loop() {
		h.Verdict(m, v, time.Millisecond)
		if n++; n%history.QueueSize == 0 {
			settle(b, h, n)
		}
	}
	settle(b, h, n)
	if s := h.Stats(); s.Dropped != 0 || s.Failed != 0 {
		b.Fatalf("stats %+v", s)
	}
}

// BenchmarkSearch10000 searches a full history of 10000 records for a
// sender none has: a scan of them all, the slowest search.
func BenchmarkSearch10000(b *testing.B) {
	for _, bk := range []struct {
		name string
		open func(testing.TB) store.Store
	}{
		{"bolt", openBolt},
		{"redis", func(t testing.TB) store.Store { return openRedis(t, storetest.StartRedis(t).Addr()) }},
	} {
		b.Run(bk.name, func(b *testing.B) {
			ctx := context.Background()
			h := history.New(bk.open(b), history.Config{Entries: 10000}, "mx1")
			defer h.Close()
			e := engine(nil)
			for i := 0; i < 10000; i++ {
				ml := mail{fmt.Sprintf("4Q%06d", i), fmt.Sprintf("sender%d@example.org", i), []string{"rcpt@example.net"},
					fmt.Sprintf("Subject number %d", i), float64(i % 20), "SYM", "a short body\r\n"}
				m := ml.message(b)
				v, _ := e.Evaluate(ctx, m)
				h.Verdict(m, v, time.Millisecond)
				if i%500 == 499 {
					settle(b, h, int64(i+1))
				}
			}
			settle(b, h, 10000)
			if s := h.Stats(); s.Recorded != 10000 {
				b.Fatalf("stats %+v", s)
			}
			b.ResetTimer()
			for b.Loop() {
				rs, err := h.Search(ctx, history.Query{Sender: "nobody@"})
				if err != nil || len(rs) != 0 {
					b.Fatal(len(rs), err)
				}
			}
			b.StopTimer()
			all, _ := h.Search(ctx, history.Query{Limit: 10000})
			if len(all) != 10000 {
				b.Fatalf("%d records", len(all))
			}
			t0 := time.Now()
			if _, err := h.Get(ctx, all[9999].ID); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "ms-get-oldest")
		})
	}
}
