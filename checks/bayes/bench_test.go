package bayes

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/store/bolt"
)

// message10KB is a plain message of about 10 KB of ordinary text with a
// few links, as the speed goal is stated for.
func message10KB(tb testing.TB) []byte {
	tb.Helper()
	var b strings.Builder
	b.WriteString("From: \"Jane Sender\" <jane@news.example.com>\r\nTo: you@example.org\r\nSubject: Quarterly report and the new price list\r\n" +
		"Message-ID: <1234@mail.example.com>\r\nX-Mailer: Microsoft Outlook Express 6.00.2600.0000\r\n" +
		"Received: from mail.example.com by mx.example.org\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for _, m := range corpusSample(tb) {
		if b.Len() >= 10<<10 {
			break
		}
		raw := string(m.raw)
		if i := strings.Index(raw, "\n\n"); i >= 0 && !strings.Contains(raw[:i], "multipart") {
			body := raw[i+2:]
			b.WriteString(body[:min(len(body), 10<<10-b.Len())])
		}
	}
	return []byte(b.String())
}

// BenchmarkTokenize measures the tokenizer alone on a 10 KB message.
func BenchmarkTokenize(b *testing.B) {
	raw := message10KB(b)
	b.SetBytes(int64(len(raw)))
	m := readMessage(b, raw)
	cpu := cpuTime()
	for b.Loop() {
		Tokenize(m, TokenLimits{})
	}
	reportCPU(b, cpu)
}

// cpuTime is the CPU time the process used so far. On a shared machine
// the CPU time per operation says more than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkClassify10KB measures one classification of a 10 KB message
// over the default store, bbolt, after learning the corpus sample so that
// lookups hit.
func BenchmarkClassify10KB(b *testing.B) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "state.db"), bolt.Options{FlushInterval: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := DefaultConfig()
	cfg.MinSpam, cfg.MinHam = 10, 10
	c := mustNew(b, cfg, st)
	for _, m := range corpusSample(b) {
		if _, err := c.Train(ctx, readMessage(b, m.raw), m.spam); err != nil {
			b.Fatal(err)
		}
	}
	raw := message10KB(b)
	b.SetBytes(int64(len(raw)))
	m := readMessage(b, raw)
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		cl, err := c.Classify(ctx, m)
		if err != nil || !cl.Ready {
			b.Fatal(cl, err)
		}
	}
	reportCPU(b, cpu)
}
