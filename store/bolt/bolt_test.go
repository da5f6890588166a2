package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"chainmail/store"
	"chainmail/store/storetest"
)

type bboltTx = bbolt.Tx

func open(t testing.TB, path string, opt Options) *Store {
	t.Helper()
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "state.db"), Options{FlushInterval: 20 * time.Millisecond})
	})
}

// The suite again with a commit after every batch and a tiny MaxPending,
// so that reads come from the file rather than from the overlay.
func TestConformanceFromFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{MaxPending: 1})
		s.db.NoSync = true // a commit per call: spare the test thousands of fsyncs
		return &flushing{s}
	})
}

type flushing struct{ *Store }

func (f *flushing) Do(ctx context.Context, ops ...*store.Op) error {
	err := f.Store.Do(ctx, ops...)
	if ferr := f.Store.Flush(); ferr != nil && err == nil && !errors.Is(ferr, store.ErrUnavailable) {
		f.Store.mu.Lock()
		closed := f.Store.closed
		f.Store.mu.Unlock()
		if !closed {
			err = ferr
		}
	}
	return err
}

// Everything written before Close is there after Open.
func TestPersistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path, Options{FlushInterval: time.Hour})
	at := time.Now()
	store.Set(ctx, s, "v", []byte("value"), time.Hour)
	store.IncrBy(ctx, s, "n", 41, 0)
	store.WindowAdd(ctx, s, "w", at, 3, time.Hour)
	store.SetAdd(ctx, s, "s", "member", 0)
	store.Set(ctx, s, "gone", []byte("x"), 0)
	store.Delete(ctx, s, "gone")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	defer s.Close()
	if v, ok, _ := store.Get(ctx, s, "v"); string(v) != "value" || !ok {
		t.Errorf("v = %q", v)
	}
	if n, _ := store.IncrBy(ctx, s, "n", 1, 0); n != 42 {
		t.Errorf("n = %v", n)
	}
	if sum, _ := store.WindowSum(ctx, s, "w", at, time.Hour); sum != 3 {
		t.Errorf("w = %v", sum)
	}
	if ok, _ := store.SetHas(ctx, s, "s", "member"); !ok {
		t.Error("set member lost")
	}
	if _, ok, _ := store.Get(ctx, s, "gone"); ok {
		t.Error("deleted key came back")
	}
}

// A second process (or a second Open) cannot take the file.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path, Options{})
	defer s.Close()
	start := time.Now()
	_, err := Open(path, Options{OpenTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Open took %v", d)
	}
}

// The janitor deletes expired keys from the file through the expiry
// index, and only those.
func TestJanitor(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{FlushInterval: time.Hour, Now: clock})
	defer s.Close()
	for i := 0; i < 100; i++ {
		store.Set(ctx, s, fmt.Sprintf("short:%d", i), []byte("x"), time.Minute)
		store.Set(ctx, s, fmt.Sprintf("long:%d", i), []byte("x"), time.Hour)
	}
	store.Set(ctx, s, "forever", []byte("x"), 0)
	// Re-set with a longer ttl: the old index entry must not delete it.
	s.Flush()
	store.Set(ctx, s, "short:0", []byte("y"), 2*time.Hour)
	s.Flush()
	advance(2 * time.Minute)
	if _, ok, _ := store.Get(ctx, s, "short:5"); ok {
		t.Error("expired key still readable")
	}
	n, err := s.Expire()
	if err != nil || n != 99 {
		t.Fatalf("Expire = %d, %v; want 99 (short:0 was given a longer ttl)", n, err)
	}
	if got := countKeys(t, s); got != 102 {
		t.Errorf("%d keys left in the file, want 102 (long:*, short:0, forever)", got)
	}
	if v, ok, _ := store.Get(ctx, s, "short:0"); !ok || string(v) != "y" {
		t.Errorf("re-set key: %q %v", v, ok)
	}
	advance(3 * time.Hour)
	if n, _ := s.Expire(); n != 101 {
		t.Errorf("second Expire = %d, want 101", n)
	}
	if got := countKeys(t, s); got != 1 {
		t.Errorf("%d keys left, want 1 (forever)", got)
	}
}

func countKeys(t *testing.T, s *Store) int {
	t.Helper()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.db.View(func(tx *bboltTx) error {
		n = tx.Bucket(bucketKV).Stats().KeyN
		return nil
	})
	return n
}

// Many writes with a small MaxPending commit early and wait for the disk
// rather than grow the overlay; nothing is lost.
func TestBackPressure(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{FlushInterval: time.Hour, MaxPending: 50})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				store.Set(ctx, s, fmt.Sprintf("k:%d:%d", w, i), []byte("v"), 0)
			}
		}(w)
	}
	wg.Wait()
	s.mu.Lock()
	pending := len(s.dirty)
	s.mu.Unlock()
	if pending >= 2000 {
		t.Errorf("%d keys pending: the early commits did not run", pending)
	}
	for w := 0; w < 4; w++ {
		for i := 0; i < 500; i += 50 {
			if _, ok, _ := store.Get(ctx, s, fmt.Sprintf("k:%d:%d", w, i)); !ok {
				t.Fatalf("k:%d:%d lost", w, i)
			}
		}
	}
	s.Close()
}

// A crash loses at most the changes of the last flush interval: a child
// process commits some keys, writes more, and dies without Close.
func TestCrashLosesOnlyUncommitted(t *testing.T) {
	if os.Getenv("CHAINMAIL_BOLT_CRASH") != "" {
		crashChild(os.Getenv("CHAINMAIL_BOLT_CRASH"))
		return
	}
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLosesOnlyUncommitted$")
	cmd.Env = append(os.Environ(), "CHAINMAIL_BOLT_CRASH="+path)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := open(t, path, Options{})
	defer s.Close()
	ctx := context.Background()
	if v, ok, err := store.Get(ctx, s, "committed"); !ok || string(v) != "yes" {
		t.Errorf("committed key after the crash: %q %v %v", v, ok, err)
	}
	if _, ok, _ := store.Get(ctx, s, "pending"); ok {
		t.Error("a change that was never committed survived (the test assumes it does not)")
	}
}

func crashChild(path string) {
	s, err := Open(path, Options{FlushInterval: time.Hour})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	ctx := context.Background()
	store.Set(ctx, s, "committed", []byte("yes"), 0)
	if err := s.Flush(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	store.Set(ctx, s, "pending", []byte("lost"), 0)
	os.Exit(7) // no Close: the process dies with the change in memory
}

// A record that does not decode is an error for that key, not a panic.
func TestCorruptRecord(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{})
	defer s.Close()
	s.db.Update(func(tx *bboltTx) error {
		return tx.Bucket(bucketKV).Put(dbKey("bad"), []byte{byte(kindWindow), 0, 0, 0, 0, 0, 0, 0, 0, 5, 1})
	})
	if _, err := store.WindowSum(ctx, s, "bad", time.Now(), time.Minute); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("corrupt record: %v", err)
	}
	if err := store.Set(ctx, s, "bad", []byte("fixed"), 0); err != nil {
		t.Errorf("overwriting a corrupt record: %v", err)
	}
}

// A window record whose event count times 16 overflows to the payload
// length is corrupt, not a panic (under s.mu, which would then stay
// locked and hang every later call).
func TestCorruptWindowCount(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{})
	defer s.Close()
	bad := binary.AppendUvarint([]byte{byte(kindWindow), 0, 0, 0, 0, 0, 0, 0, 0}, 1<<60)
	s.db.Update(func(tx *bboltTx) error {
		return tx.Bucket(bucketKV).Put(dbKey("bad"), bad)
	})
	if _, err := store.WindowSum(ctx, s, "bad", time.Now(), time.Minute); err == nil || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("corrupt record: %v", err)
	}
	if err := store.Set(ctx, s, "bad", []byte("fixed"), 0); err != nil {
		t.Errorf("overwriting a corrupt record: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, r := range []*record{
		{kind: kindBytes, val: []byte("x"), exp: 5},
		{kind: kindWindow, win: []event{{1, 2}, {3, 4}}},
		{kind: kindSet, set: map[string]struct{}{"a": {}, "bc": {}}},
	} {
		f.Add(r.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil {
			return
		}
		again, err := decode(r.encode())
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if again.kind != r.kind || again.exp != r.exp || len(again.win) != len(r.win) || len(again.set) != len(r.set) || string(again.val) != string(r.val) {
			t.Fatalf("round trip changed the record")
		}
	})
}

func BenchmarkStore(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "state.db"), Options{})
	defer s.Close()
	storetest.Bench(b, s)
}

// A window holds about Granules events whatever the traffic.
func TestWindowBounded(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{})
	defer s.Close()
	at := time.Now()
	for i := 0; i < 20000; i++ {
		store.WindowAdd(ctx, s, "w", at.Add(time.Duration(i)*time.Millisecond), 1, time.Minute)
	}
	s.mu.Lock()
	n := len(s.dirty["w"].win)
	s.mu.Unlock()
	if n > Granules+1 {
		t.Errorf("%d events kept for a window of 20000", n)
	}
	if sum, _ := store.WindowSum(ctx, s, "w", at.Add(20*time.Second), time.Minute); sum != 20000 {
		t.Errorf("sum %v", sum)
	}
}

// A key too long for bbolt (a 40 KB header From address becomes a
// reputation key) is refused at once: in the overlay it would make every
// later commit fail, so nothing would reach the file again.
func TestOversizedKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path, Options{FlushInterval: time.Hour})
	for _, n := range []int{maxKeyLen + 1, bbolt.MaxKeySize + 1} {
		if err := store.Set(ctx, s, strings.Repeat("a", n), []byte("x"), time.Hour); err == nil {
			t.Errorf("Set with a %d-byte key: no error", n)
		}
	}
	long := strings.Repeat("b", maxKeyLen)
	if err := store.Set(ctx, s, long, []byte("x"), time.Hour); err != nil {
		t.Fatalf("Set with a %d-byte key: %v", maxKeyLen, err)
	}
	if err := store.Set(ctx, s, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	defer s.Close()
	for _, k := range []string{"k", long} {
		if _, ok, err := store.Get(ctx, s, k); err != nil || !ok {
			t.Errorf("Get(%.10q…) after reopen: ok %v, err %v", k, ok, err)
		}
	}
}

// TestCacheNeverStale: what a read kept in the cache (a value, or the
// absence of one) is dropped by the next change of the key, before and
// after that change is committed.
func TestCacheNeverStale(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"), Options{CacheKeys: 4})
	if _, ok, _ := store.Get(ctx, s, "k"); ok {
		t.Fatal("absent key found")
	}
	if err := store.Set(ctx, s, "k", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		if v, ok, _ := store.Get(ctx, s, "k"); !ok || string(v) != fmt.Sprint(round+1) {
			t.Fatalf("round %d before commit: %q %v", round, v, ok)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if v, ok, _ := store.Get(ctx, s, "k"); !ok || string(v) != fmt.Sprint(round+1) {
			t.Fatalf("round %d after commit: %q %v", round, v, ok)
		}
		if _, err := store.IncrBy(ctx, s, "k", 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	// More keys than the cache holds: every one still reads right.
	for i := 0; i < 20; i++ {
		store.Set(ctx, s, fmt.Sprint("n", i), []byte(fmt.Sprint(i)), 0)
	}
	s.Flush()
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < 20; i++ {
			if v, ok, _ := store.Get(ctx, s, fmt.Sprint("n", i)); !ok || string(v) != fmt.Sprint(i) {
				t.Fatalf("n%d = %q %v", i, v, ok)
			}
		}
	}
	if err := store.Delete(ctx, s, "n3"); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	if _, ok, _ := store.Get(ctx, s, "n3"); ok {
		t.Fatal("deleted key still read from the cache")
	}
}

// A list's items are committed one bbolt key each; the trimmed ones and
// those of a deleted list leave the file; the list survives a reopen.
func TestListFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path, Options{FlushInterval: time.Hour})
	for i := 0; i < 25; i++ {
		if _, err := store.ListPush(ctx, s, "l", []byte(fmt.Sprint(i)), 10); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	store.ListPush(ctx, s, "gone", []byte("x"), 10)
	s.Flush()
	store.Delete(ctx, s, "gone")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	defer s.Close()
	l, err := store.ListRange(ctx, s, "l", 0, -1)
	if err != nil || len(l) != 10 || string(l[0]) != "24" || string(l[9]) != "15" {
		t.Fatalf("after reopen: %q, %v", l, err)
	}
	n := 0
	s.db.View(func(tx *bboltTx) error { n = tx.Bucket(bucketList).Stats().KeyN; return nil })
	if n != 10 {
		t.Errorf("%d items in the file, want the 10 live ones", n)
	}
}
