package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"chainmail/store"
	"chainmail/store/storetest"
)

// writeState makes a real state file with enough keys for several pages.
func writeState(t *testing.T, path string) {
	t.Helper()
	s := open(t, path, Options{})
	ctx := context.Background()
	for i := 0; i < 2000; i++ {
		if err := store.Set(ctx, s, fmt.Sprintf("key-%05d", i), []byte(strings.Repeat("v", 40)), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// corrupt overwrites n bytes at off with a pattern.
func corrupt(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x5a + i*7)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// corruptions are the damage a state file can take: its meta pages, its
// data pages.
var corruptions = []struct {
	name string
	do   func(t *testing.T, path string, page int64)
}{
	{"both meta pages", func(t *testing.T, p string, page int64) { corrupt(t, p, 16, 64); corrupt(t, p, page+16, 64) }},
	{"data pages", func(t *testing.T, p string, page int64) {
		for pg := int64(2); pg < 12; pg++ {
			corrupt(t, p, pg*page, 64)
		}
	}},
	{"every page but the metas", func(t *testing.T, p string, page int64) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		for off := 2 * page; off < fi.Size(); off += page {
			corrupt(t, p, off, 32)
		}
	}},
}

// A corrupt file is refused with one line that names it and the way out
// (bbolt panicked at open or on first read before); with on_corrupt: reset
// it is moved aside and the store starts empty, loudly.
func TestCorruptFile(t *testing.T) {
	page := int64(os.Getpagesize())
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			writeState(t, path)
			c.do(t, path, page)

			s, err := Open(path, Options{})
			if err == nil {
				// Whatever bbolt did not notice at open must not panic on use.
				_, _, gerr := store.Get(context.Background(), s, "key-00001")
				s.Close()
				t.Fatalf("corrupt file opened (Get: %v)", gerr)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a CorruptError", err, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, path) || !strings.Contains(msg, "on_corrupt: reset") {
				t.Errorf("error is not one line naming the file and the way out: %q", msg)
			}

			var log storetest.Log
			s, err = Open(path, Options{OnCorrupt: OnCorruptReset, Logf: log.Logf})
			if err != nil {
				t.Fatalf("reset: %v", err)
			}
			defer s.Close()
			if _, ok, err := store.Get(context.Background(), s, "key-00001"); ok || err != nil {
				t.Errorf("reset store is not empty: %v %v", ok, err)
			}
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Errorf("files moved aside: %q", aside)
			}
			if lines := log.Lines(); len(lines) != 1 || !strings.Contains(lines[0], "corrupt") || !strings.Contains(lines[0], "EMPTY") {
				t.Errorf("reset log: %q", lines)
			}
		})
	}
}

// A commit that fails (the file closed under the store) sets
// chainmail_state_up{backend="bolt"} to 0, and the failures are logged
// once, not once per commit.
func TestFailedCommit(t *testing.T) {
	m := store.NewMetrics(nil)
	var log storetest.Log
	s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{FlushInterval: 5 * time.Millisecond, Metrics: m, Logf: log.Logf})
	ctx := context.Background()
	if err := store.Set(ctx, s, "a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	up := func() float64 {
		var d dto.Metric
		m.Up.WithLabelValues("bolt").Write(&d)
		return d.GetGauge().GetValue()
	}
	if up() != 1 {
		t.Fatalf("state_up %v before", up())
	}
	s.db.Close() // every commit fails from now on
	for i := 0; i < 20; i++ {
		if err := store.Set(ctx, s, fmt.Sprintf("k%d", i), []byte("1"), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err == nil {
			t.Fatal("commit to a closed file succeeded")
		}
	}
	if up() != 0 {
		t.Errorf("chainmail_state_up{backend=bolt} = %v after failed commits, want 0", up())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var d dto.Metric
		m.FlushErrors.Write(&d)
		if d.GetCounter().GetValue() >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if lines := log.Lines(); len(lines) != 1 {
		t.Errorf("%d log lines for many failed commits, want 1: %q", len(lines), lines)
	}
}
