package milter_test

import (
	"fmt"
	"runtime"
	"testing"

	"chainmail/checks"
	"chainmail/milter/miltertest"
)

func manyRcpts(n int) checks.Envelope {
	env := clientEnv
	env.Rcpts = make([]string, n)
	for i := range env.Rcpts {
		env.Rcpts[i] = fmt.Sprintf("user%06d@example.org", i)
	}
	return env
}

// sendMany sends one message with env's recipients over the real milter
// protocol and returns the bytes allocated meanwhile (server and client:
// one process).
func sendMany(t testing.TB, srv *miltertest.Server, env checks.Envelope) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out := srv.Send(t, env, "Subject: many\r\n\r\nbody\r\n")
	runtime.ReadMemStats(&after)
	if out.Action != "accept" {
		t.Fatalf("%+v", out)
	}
	return after.TotalAlloc - before.TotalAlloc
}

// RCPT handling is linear in the number of recipients: the bytes
// allocated per recipient do not grow with the number of recipients
// before it. (Copying the recipients so far at every RCPT made 4 000
// recipients cost about four times as much per recipient as 1 000.)
func TestRcptCostDoesNotGrowWithRecipients(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec))
	sendMany(t, srv, manyRcpts(100)) // warm up
	small, large := 1000, 4000
	perSmall := float64(sendMany(t, srv, manyRcpts(small))) / float64(small)
	perLarge := float64(sendMany(t, srv, manyRcpts(large))) / float64(large)
	t.Logf("bytes allocated per recipient: %d recipients %.0f, %d recipients %.0f", small, perSmall, large, perLarge)
	// Linear: about the same per recipient (GC and buffer growth leave
	// some noise); quadratic: four times as much.
	if perLarge > 1.5*perSmall {
		t.Errorf("per-recipient cost grows with the number of recipients: %.0f bytes at %d, %.0f at %d", perSmall, small, perLarge, large)
	}
	if n := len(rec.msgs); n == 0 || len(rec.msgs[n-1].Rcpts) != large {
		t.Errorf("the check did not see the %d recipients", large)
	}
}

// BenchmarkRcpts: one message with 10 000 or 20 000 recipients over the
// real milter protocol.
func BenchmarkRcpts(b *testing.B) {
	for _, n := range []int{10000, 20000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			srv := miltertest.Start(b, newEngine(b, &recorder{}))
			env := manyRcpts(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sendMany(b, srv, env)
			}
		})
	}
}
