package attachments

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestZZStress(t *testing.T) {
	files, _ := filepath.Glob("/tmp/atk/*")
	var msgs [][]byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		msgs = append(msgs, message(filepath.Base(f), b))
	}
	msgs = append(msgs, nestedZipMessage(t, true), nestedZipMessage(t, false))
	mem := NewMemory(3 << 20)
	var wg sync.WaitGroup
	for g := 0; g < 24; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, m := range msgs {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((g*7+i)%5)*time.Millisecond+time.Millisecond)
				ScanContext(ctx, bytes.NewReader(m), int64(len(m)), Options{Memory: mem, MemoryWait: time.Duration(g%3) * 20 * time.Millisecond})
				cancel()
			}
		}()
	}
	wg.Wait()
	mem.mu.Lock()
	defer mem.mu.Unlock()
	if mem.used != 0 || mem.holders != 0 || len(mem.waiters) != 0 {
		t.Fatalf("used %d holders %d waiters %d peak %d", mem.used, mem.holders, len(mem.waiters), mem.peak)
	}
	t.Logf("peak %d", mem.peak)
}
