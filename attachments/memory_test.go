package attachments

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// nestedZipMessage: a zip that holds a 1 MiB zip (random data, so it is
// stored as is) and, when evil, a program beside it; both zips are read
// whole, so one scan holds about 1.4 MB (the part) + 1 MB (the member).
func nestedZipMessage(t testing.TB, evil bool) []byte {
	data := make([]byte, 1<<20)
	rand.Read(data)
	inner := zipOf(t, "data.bin", data)
	files := []any{"inner.zip", inner}
	if evil {
		files = append(files, "evil.exe", append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00"), make([]byte, 100)...))
	}
	return message("outer.zip", zipOf(t, files...))
}

// Many scans at once share one memory budget: what they hold together
// never exceeds it, every scan waits its turn and still reads every
// file (no "limit-memory", the .exe found where there is one), and all
// is given back.
func TestMemoryBudgetSharedByConcurrentScans(t *testing.T) {
	const budget = 6 << 20
	mem := NewMemory(budget)
	clean, evil := nestedZipMessage(t, false), nestedZipMessage(t, true)
	var wg sync.WaitGroup
	reports := make([]*Report, 16)
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := clean
			if i%3 == 0 {
				msg = evil
			}
			reports[i] = Scan(bytes.NewReader(msg), int64(len(msg)), Options{Memory: mem, MemoryWait: time.Minute})
		}()
	}
	wg.Wait()
	for i, r := range reports {
		seen := map[string]bool{}
		for _, f := range r.Files {
			seen[f.Name] = true
		}
		if hasKind(r, "limit-memory") || !seen["data.bin"] || seen["evil.exe"] != (i%3 == 0) {
			t.Errorf("scan %d: findings %v, files %v", i, kinds(r), seen)
		}
	}
	if p := mem.Peak(); p > budget || p < 2<<20 {
		t.Errorf("peak %d bytes held, budget %d", p, budget)
	}
	if u := mem.Used(); u != 0 {
		t.Errorf("%d bytes still held after every scan ended", u)
	}
	t.Logf("peak %.1f MiB of %d MiB", float64(mem.Peak())/(1<<20), budget>>20)
}

// What cannot get memory in time is unscannable, never skipped: a file
// larger than the whole budget at once, a budget held by others until
// the wait ends.
func TestMemoryBudgetSpentIsUnscannable(t *testing.T) {
	msg := nestedZipMessage(t, true)
	r := Scan(bytes.NewReader(msg), int64(len(msg)), Options{Memory: NewMemory(1 << 19)})
	if !hasKind(r, "limit-memory") || !r.Has(CategoryUnscannable) {
		t.Errorf("budget smaller than the file: %v", kinds(r))
	}
	mem := NewMemory(4 << 20)
	if err := mem.acquire(context.Background(), 3<<20, time.Second, false); err != nil {
		t.Fatal(err)
	}
	r = Scan(bytes.NewReader(msg), int64(len(msg)), Options{Memory: mem, MemoryWait: 50 * time.Millisecond})
	if !hasKind(r, "limit-memory") || !r.Has(CategoryUnscannable) {
		t.Errorf("budget held by others: %v", kinds(r))
	}
	mem.release(3<<20, true)
	r = Scan(bytes.NewReader(msg), int64(len(msg)), Options{Memory: mem, MemoryWait: time.Minute})
	if hasKind(r, "limit-memory") {
		t.Errorf("budget free again: %v", kinds(r))
	}
	if mem.Used() != 0 {
		t.Errorf("%d bytes still held", mem.Used())
	}
}

// peakRSS resets the kernel's high-water mark (clear_refs 5) when reset,
// and returns it in bytes.
func peakRSS(reset bool) int64 {
	if reset {
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		return 0
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// 50 messages, each with a 10 MB zip, scanned at once, without a memory
// budget and with the default one: peak RSS of the process.
func BenchmarkScan50Concurrent10MBZip(b *testing.B) {
	data := make([]byte, 10<<20)
	rand.Read(data)
	msg := message("data.zip", zipOf(b, "inner.zip", zipOf(b, "data.bin", data)))
	for _, budget := range []int64{0, DefaultMemory} {
		b.Run(fmt.Sprintf("budget=%dMiB", budget>>20), func(b *testing.B) {
			var mem *Memory
			if budget > 0 {
				mem = NewMemory(budget)
			}
			debug.FreeOSMemory()
			peakRSS(true)
			for b.Loop() {
				var wg sync.WaitGroup
				for range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := Scan(bytes.NewReader(msg), int64(len(msg)), Options{Memory: mem, MemoryWait: time.Minute})
						if hasKind(r, "limit-memory") {
							b.Error(kinds(r))
						}
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(peakRSS(false))/(1<<20), "peak-RSS-MiB")
			if mem != nil {
				b.ReportMetric(float64(mem.Peak())/(1<<20), "peak-held-MiB")
			}
		})
	}
}

// Scans that hold memory and all wait for more would wait for each
// other: the youngest request is refused at once, the others go on.
func TestMemoryHoldersDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(10)
	if m.acquire(ctx, 4, time.Hour, false) != nil || m.acquire(ctx, 1, time.Hour, false) != nil {
		t.Fatal("first requests refused")
	}
	// A scan that holds nothing waits while half the budget is used.
	fresh := make(chan error, 1)
	go func() { fresh <- m.acquire(ctx, 1, time.Hour, false) }()
	a := make(chan error, 1)
	go func() { a <- m.acquire(ctx, 6, time.Hour, true) }() // holder A: 4 held
	for {
		m.mu.Lock()
		n := len(m.waiters)
		m.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Holder B (1 held) asks for 6 too: both holders wait, B is refused.
	if err := m.acquire(ctx, 6, time.Hour, true); err == nil {
		t.Fatal("youngest holder granted past the budget")
	}
	m.release(1, true) // B gives up its file and ends
	if err := <-a; err != nil {
		t.Fatalf("holder A: %v", err)
	}
	if p := m.Peak(); p > 10 {
		t.Errorf("peak %d over the budget", p)
	}
	m.release(10, true)
	if err := <-fresh; err != nil {
		t.Fatalf("fresh scan: %v", err)
	}
	m.release(1, true)
	if m.Used() != 0 {
		t.Errorf("used %d", m.Used())
	}
}
