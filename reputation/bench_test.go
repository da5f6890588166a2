package reputation

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"chainmail/store/storetest/memstore"
)

// BenchmarkAssess is the per-message cost of a verdict with warm history
// (records in the store, ages cached in them) on the in-memory store:
// the library's own work plus one batched read. It reports the store
// round trips per message.
func BenchmarkAssess(b *testing.B) {
	st := memstore.New()
	r, err := New(Config{FlushInterval: time.Hour}, st, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	subjects := make([]Subject, 64)
	for i := range subjects {
		d := fmt.Sprintf("sender%d.test", i)
		subjects[i] = Subject{ClientIP: net.IPv4(198, 51, 100, byte(i)), ReverseDNS: "mx." + d, HELO: "mx." + d,
			EnvFrom: "bounce@" + d, HeaderFrom: "news@" + d, ReplyTo: "help@" + d, Auth: Auth{DMARC: "pass", SPF: "pass", DKIM: "pass"}}
		for j := 0; j < 20; j++ {
			s := subjects[i]
			s.At = time.Now().AddDate(0, 0, -j*3)
			r.Learn(s, false)
		}
	}
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	before := st.RoundTrips()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := subjects[i%len(subjects)]
		if _, err := r.Assess(ctx, s); err != nil {
			b.Fatal(err)
		}
		r.Learn(s, false)
	}
	b.StopTimer()
	b.ReportMetric(float64(st.RoundTrips()-before)/float64(b.N), "roundtrips/msg")
}
