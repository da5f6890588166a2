// Package bolt is chainmail's embedded state store: one bbolt file, for a
// single MTA (several MTAs share state through the redis backend).
//
// # Writes go behind, in one commit per interval
//
// A bbolt commit fsyncs the file twice; doing that for every RCPT would
// cost milliseconds per message on a disk and far more on a busy one. So
// every operation works on an in-memory overlay of the keys changed since
// the last commit (reads look there first, then in the file), and a
// flusher commits the overlay in one transaction every FlushInterval
// (default 1s), also early when MaxPending keys wait. The file is always a
// consistent bbolt database (ordinary bbolt commits, fsync included: no
// NoSync, whose unordered writes could corrupt the file on power loss).
//
// The price: a crash of the process or the machine loses at most the last
// FlushInterval of state changes (quota counts, greylist entries, history
// updates of the last second); nothing older, and the file never needs
// repair. A clean Close commits everything. This is state that mail
// filtering can lose a second of without harm; it is not a mail queue.
//
// Writers wait only when MaxPending keys are pending while a commit is
// still running (a disk that cannot keep up), which bounds the overlay's
// memory to about twice MaxPending records.
//
// # Expiry
//
// Records carry their expiry; reads treat expired ones as absent. A
// janitor, run by the flusher every JanitorInterval, deletes them from the
// file through an index bucket ordered by expiry time, so it never scans
// live keys.
//
// # Lists
//
// A list (ListPush, ListRange) is its bounds, a record like the others
// under its key, and its items, one bbolt key each in bucket "list" (the
// list's key and the item's sequence number, big-endian), each in the
// overlay until committed like any change: a push writes its item and
// the deletion of the one it trims, never the whole list (a history of
// thousands of records). Items are not cached; Delete and Set of a list's
// key delete its items.
//
// Operations are atomic within the process (one mutex); a Do batch runs
// under one lock acquisition. The file is locked against other processes:
// Open fails after OpenTimeout when another process (a running chainmail)
// holds it.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"chainmail/store"
)

// Options tune the store; zero values take the defaults.
type Options struct {
	// FlushInterval is the longest a change waits before it is committed
	// to the file (default 1s): the state a crash can lose.
	FlushInterval time.Duration
	// MaxPending is the number of changed keys that triggers an early
	// commit (default 50000); writers wait when twice that many are
	// pending because a commit is still running.
	MaxPending int
	// JanitorInterval is how often expired keys are deleted from the file
	// (default 1m).
	JanitorInterval time.Duration
	// CacheKeys is how many keys read from the file are kept in memory,
	// decoded, absent ones included (default 65536, about 15 MiB): the
	// bayes check reads hundreds of tokens per message, mostly the same
	// common ones. Changes go to the overlay and drop the key from the
	// cache, so it never serves an old value.
	CacheKeys int
	// OpenTimeout bounds the wait for the file lock (default 2s).
	OpenTimeout time.Duration
	// Metrics, when set, receive the flush and pending-write figures.
	Metrics *store.Metrics
	// Logf, when set, is told about failed commits.
	Logf func(format string, args ...any)
	// Now is the clock of ttls and expiry (default time.Now); tests set it.
	Now func() time.Time
	// OnCorrupt is what Open does with a file bbolt cannot read (corrupt
	// pages, a bad meta page, a failed consistency check): OnCorruptRefuse
	// (the default) fails with a CorruptError; OnCorruptReset renames the
	// file to PATH.corrupt-TIMESTAMP, logs it and starts empty.
	OnCorrupt string
}

// The values of Options.OnCorrupt.
const (
	OnCorruptRefuse = "refuse"
	OnCorruptReset  = "reset"
)

var (
	bucketKV  = []byte("kv")
	bucketExp = []byte("exp") // expiry (8 bytes, big-endian ns) + key → ""
	// bucketList holds the items of the lists (listItem → item); the
	// list's record in bucketKV holds its bounds. One item per bbolt key,
	// so a push commits the new item (and the deletion of the one it
	// drops), not the whole list.
	bucketList = []byte("list")
)

// Store is the bbolt state store.
type Store struct {
	db  *bbolt.DB
	opt Options

	mu            sync.Mutex
	flushed       *sync.Cond // broadcast when a commit ends
	dirty         map[string]*record
	flushing      map[string]*record              // being committed; read-only
	items         map[string][]byte               // list items changed (listItem → item; nil: deleted)
	flushingItems map[string][]byte               // being committed; read-only
	rtx           *bbolt.Tx                       // the read transaction of the batch running (see readTx)
	cache         *simplelru.LRU[string, *record] // decoded records of the file (nil = absent); see Options.CacheKeys
	closed        bool

	kick      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it when absent) the state file at path.
func Open(path string, opt Options) (*Store, error) {
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = time.Second
	}
	if opt.CacheKeys <= 0 {
		opt.CacheKeys = 65536
	}
	if opt.MaxPending <= 0 {
		opt.MaxPending = 50000
	}
	if opt.JanitorInterval <= 0 {
		opt.JanitorInterval = time.Minute
	}
	if opt.OpenTimeout <= 0 {
		opt.OpenTimeout = 2 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	db, err := openChecked(path, opt)
	var ce *CorruptError
	if errors.As(err, &ce) && opt.OnCorrupt == OnCorruptReset {
		aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405Z"))
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("%w; moving it aside failed: %v", err, rerr)
		}
		opt.Logf("state: %s is corrupt (%v): moved to %s, starting with EMPTY state (quotas, greylisting and history start again) (state.on_corrupt: reset)", path, ce.Cause, aside)
		db, err = openChecked(path, opt)
	}
	if err != nil {
		return nil, err
	}
	cache, err := simplelru.NewLRU[string, *record](opt.CacheKeys, nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{
		db:    db,
		opt:   opt,
		cache: cache,
		dirty: map[string]*record{},
		items: map[string][]byte{},
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.flushed = sync.NewCond(&s.mu)
	if m := opt.Metrics; m != nil {
		m.Up.WithLabelValues("bolt").Set(1)
	}
	go s.run()
	return s, nil
}

// CorruptError is Open's error for a file bbolt cannot read.
type CorruptError struct {
	Path  string
	Cause error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state: %s is corrupt (%v); move it aside (chainmail starts with empty state) or set state.on_corrupt: reset", e.Path, e.Cause)
}

func (e *CorruptError) Unwrap() error { return e.Cause }

// openChecked checks the file (when there is one) and opens it. A corrupt
// file is found at start, as a CorruptError, never by a panic: bbolt
// panics on some corruptions (a page that is not what its parent says),
// and when the free list is not stored (NoFreelistSync, as here) it reads
// every page at open in a goroutine of its own, where no recover can
// reach. So the file is first opened read-only (which reads no free
// list) and every bucket, key and value walked in this goroutine, with
// panics and memory faults recovered; then bbolt's own consistency check
// runs (a few milliseconds for a state file of some megabytes).
func openChecked(path string, opt Options) (*bbolt.DB, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if err := check(path, opt); err != nil {
			return nil, err
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:        opt.OpenTimeout,
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		return nil, openError(path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketKV, bucketExp, bucketList} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: bolt: %s: %w", path, err)
	}
	return db, nil
}

// ErrLocked is the error of Open when another process holds the file
// (a running chainmail serve).
var ErrLocked = errors.New("is locked by another process")

func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("store: bolt: %s %w (is another chainmail using it? several MTAs share state through redis)", path, ErrLocked)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrInvalidMapping):
		return &CorruptError{Path: path, Cause: err}
	}
	return fmt.Errorf("store: bolt: %w", err)
}

// check opens path read-only and reads all of it (see openChecked).
func check(path string, opt Options) (err error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: opt.OpenTimeout})
	if err != nil {
		return openError(path, err)
	}
	defer db.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = &CorruptError{Path: path, Cause: fmt.Errorf("bbolt: %v", v)}
		}
	}()
	err = db.View(func(tx *bbolt.Tx) error {
		if err := tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return walk(b, 0) }); err != nil {
			return err
		}
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		if len(errs) > 3 {
			errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return &CorruptError{Path: path, Cause: errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))}
	}
	return nil
}

// walk reads every key and value of b and of the buckets inside it.
func walk(b *bbolt.Bucket, depth int) error {
	if depth > 16 {
		return errors.New("buckets nested too deep")
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				if err := walk(nb, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// safely runs fn in a transaction (db.View or db.Update) and turns a
// bbolt panic (a page corrupted after the check at open) into an error.
func safely(run func(func(*bbolt.Tx) error) error, fn func(*bbolt.Tx) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("bbolt panicked (the file may be corrupt): %v", v)
		}
	}()
	return run(fn)
}

// run commits the overlay every FlushInterval (or when kicked) and runs
// the janitor; on stop it commits what is left.
func (s *Store) run() {
	defer close(s.done)
	tick := time.NewTicker(s.opt.FlushInterval)
	defer tick.Stop()
	lastJanitor := time.Now()
	failing := false
	var failSince time.Time
	var failCount, failLogs int
	for {
		select {
		case <-tick.C:
		case <-s.kick:
		case <-s.stop:
			if err := s.Flush(); err != nil {
				s.opt.Logf("state: bolt: final commit failed, the last changes are lost: %v", err)
			}
			return
		}
		err := s.Flush()
		switch {
		case err != nil && !failing:
			s.opt.Logf("state: bolt: commit failed, changes kept in memory for the next attempt: %v", err)
			failing, failSince, failCount = true, time.Now(), 1
		case err != nil && time.Since(failSince) >= time.Minute*time.Duration(failLogs+1):
			failCount++
			failLogs++
			s.opt.Logf("state: bolt: commits still failing after %s (%d failed): %v", time.Since(failSince).Round(time.Second), failCount, err)
		case err != nil:
			failCount++
		case failing:
			s.opt.Logf("state: bolt: commits work again after %s (%d failed)", time.Since(failSince).Round(time.Second), failCount)
			failing, failLogs = false, 0
		}
		if time.Since(lastJanitor) >= s.opt.JanitorInterval {
			lastJanitor = time.Now()
			if _, err := s.Expire(); err != nil {
				s.opt.Logf("state: bolt: deleting expired keys: %v", err)
			}
		}
	}
}

// Flush commits the pending changes now (the flusher does it every
// FlushInterval; tests and Close call it directly).
func (s *Store) Flush() error {
	s.mu.Lock()
	for s.flushing != nil { // one commit at a time
		s.flushed.Wait()
	}
	if len(s.dirty) == 0 && len(s.items) == 0 {
		s.mu.Unlock()
		return nil
	}
	batch, items := s.dirty, s.items
	s.flushing, s.flushingItems = batch, items
	s.dirty = make(map[string]*record, len(batch))
	s.items = make(map[string][]byte, len(items))
	s.mu.Unlock()

	start := time.Now()
	now := s.opt.Now().UnixNano()
	err := safely(s.db.Update, func(tx *bbolt.Tx) error {
		kv, ex, lb := tx.Bucket(bucketKV), tx.Bucket(bucketExp), tx.Bucket(bucketList)
		for k, v := range items {
			var err error
			if v == nil {
				err = lb.Delete([]byte(k))
			} else {
				err = lb.Put([]byte(k), v)
			}
			if err != nil {
				return err
			}
		}
		for k, r := range batch {
			key := dbKey(k)
			gone := r == nil || r.expired(now) || (r.kind == kindSet && len(r.set) == 0) || (r.kind == kindWindow && len(r.win) == 0)
			var newSlot int64
			if !gone {
				newSlot = indexSlot(r.exp)
			}
			if old := kv.Get(key); old != nil {
				// The index entry stays when the expiry moved within its
				// slot: learning a token again the same hour (bulk
				// learning, busy greylist triplets) rewrites no index.
				if e := indexSlot(expiryOf(old)); e != 0 && e != newSlot {
					if err := ex.Delete(expKey(e, key)); err != nil {
						return err
					}
				} else if e != 0 {
					newSlot = 0 // already indexed there
				}
			}
			if gone {
				if err := kv.Delete(key); err != nil {
					return err
				}
				continue
			}
			if err := kv.Put(key, r.encode()); err != nil {
				return err
			}
			if newSlot != 0 {
				if err := ex.Put(expKey(newSlot, key), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})

	s.mu.Lock()
	if err != nil {
		// Keep what was not overwritten since, for the next commit.
		for k, r := range batch {
			if _, ok := s.dirty[k]; !ok {
				s.dirty[k] = r
			}
		}
		for k, v := range items {
			if _, ok := s.items[k]; !ok {
				s.items[k] = v
			}
		}
	}
	s.flushing, s.flushingItems = nil, nil
	pending := len(s.dirty) + len(s.items)
	s.flushed.Broadcast()
	s.mu.Unlock()
	if m := s.opt.Metrics; m != nil {
		m.Pending.Set(float64(pending))
		if err != nil {
			m.FlushErrors.Inc()
			m.Up.WithLabelValues("bolt").Set(0)
		} else {
			m.Flushes.Observe(time.Since(start).Seconds())
			m.Up.WithLabelValues("bolt").Set(1)
		}
	}
	if err != nil {
		return fmt.Errorf("store: bolt: commit: %w", err)
	}
	return nil
}

// maxExpirePerTx bounds one janitor transaction.
const maxExpirePerTx = 10000

// Expire deletes expired keys from the file and returns how many; the
// flusher calls it every JanitorInterval.
func (s *Store) Expire() (int, error) {
	now := s.opt.Now().UnixNano()
	total := 0
	for {
		n := 0
		err := s.db.Update(func(tx *bbolt.Tx) error {
			kv, ex := tx.Bucket(bucketKV), tx.Bucket(bucketExp)
			var gone [][]byte
			c := ex.Cursor()
			for k, _ := c.First(); k != nil && len(gone) < maxExpirePerTx; k, _ = c.Next() {
				if len(k) < 8 || int64(binary.BigEndian.Uint64(k)) > now {
					break
				}
				gone = append(gone, append([]byte(nil), k...))
			}
			for _, k := range gone {
				key := k[8:]
				if v := kv.Get(key); v != nil && indexSlot(expiryOf(v)) == int64(binary.BigEndian.Uint64(k)) && expiryOf(v) <= now {
					if err := kv.Delete(key); err != nil {
						return err
					}
				}
				if err := ex.Delete(k); err != nil {
					return err
				}
			}
			n = len(gone)
			return nil
		})
		total += n
		if err != nil || n < maxExpirePerTx {
			return total, err
		}
	}
}

// dbKey is the key in the file: bbolt refuses empty keys, the store
// interface allows them.
func dbKey(k string) []byte { return append([]byte{'k'}, k...) }

// indexGranule is the resolution of the expiry index: a key is indexed
// under its expiry rounded up to the next whole minute (the janitor runs
// once a minute anyway; reads use the exact expiry), so a key whose
// expiry moves within the minute keeps its index entry: learning
// thousands of messages rewrites each token's record, not also its
// index entry, again and again.
const indexGranule = int64(time.Minute)

// indexSlot is the index time of an expiry (0: none).
func indexSlot(exp int64) int64 {
	if exp <= 0 {
		return 0
	}
	return (exp + indexGranule - 1) / indexGranule * indexGranule
}

func expKey(exp int64, key []byte) []byte {
	b := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(exp))
	return append(b, key...)
}

// Close commits the pending changes and closes the file. Calls after
// Close fail with store.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true // no more writes: the final commit takes them all
		s.flushed.Broadcast()
		s.mu.Unlock()
		close(s.stop)
		<-s.done
		s.closeErr = s.db.Close()
		if m := s.opt.Metrics; m != nil {
			m.Up.WithLabelValues("bolt").Set(0)
		}
	})
	return s.closeErr
}

var errClosed = fmt.Errorf("%w: bolt: closed", store.ErrUnavailable)

// Do runs ops under one lock.
func (s *Store) Do(ctx context.Context, ops ...*store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: bolt: %v", store.ErrUnavailable, err)
	}
	s.mu.Lock()
	// Back-pressure: a disk that cannot keep up stops writers here
	// rather than letting the overlay grow without bound.
	for !s.closed && s.flushing != nil && len(s.dirty)+len(s.items) >= 2*s.opt.MaxPending {
		s.flushed.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		for _, op := range ops {
			op.Err = errClosed
		}
		return errClosed
	}
	now := s.opt.Now()
	var first error
	for _, op := range ops {
		op.Out, op.Outs, op.OK, op.Num = nil, nil, false, 0
		op.Err = s.apply(op, now)
		if op.Err != nil && first == nil {
			first = op.Err
		}
	}
	s.endRead()
	pending := len(s.dirty) + len(s.items)
	s.mu.Unlock()
	if pending >= s.opt.MaxPending {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if m := s.opt.Metrics; m != nil {
		m.Pending.Set(float64(pending))
	}
	return first
}

// lookup returns the live record of key (nil when absent or expired) and
// whether the caller may change it in place. Call with s.mu held.
func (s *Store) lookup(key string, now int64) (*record, bool, error) {
	if r, ok := s.dirty[key]; ok {
		if r == nil || r.expired(now) {
			return nil, true, nil
		}
		return r, true, nil
	}
	if r, ok := s.flushing[key]; ok {
		if r == nil || r.expired(now) {
			return nil, true, nil
		}
		return r, false, nil
	}
	if r, ok := s.cache.Get(key); ok {
		if r == nil || r.expired(now) {
			return nil, true, nil
		}
		return r, false, nil // shared with the cache: mutable clones it
	}
	var r *record
	err := safely(s.readTx, func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketKV).Get(dbKey(key))
		if v == nil {
			return nil
		}
		var err error
		r, err = decode(v)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: bolt: key %q: %w", key, err)
	}
	s.cache.Add(key, r)
	if r != nil && r.expired(now) {
		return nil, true, nil
	}
	return r, false, nil
}

// readTx runs fn in the read transaction of the current batch, begun at
// its first read from the file: a batch of a thousand reads (the bayes
// check looks up every token of a message) opens one transaction, not a
// thousand. The overlay is read first and the flusher cannot publish a
// commit while the batch holds s.mu, so one snapshot serves the whole
// batch. Call with s.mu held; Do ends it with endRead.
func (s *Store) readTx(fn func(*bbolt.Tx) error) error {
	if s.rtx == nil {
		tx, err := s.db.Begin(false)
		if err != nil {
			return err
		}
		s.rtx = tx
	}
	return fn(s.rtx)
}

// endRead ends the batch's read transaction, if one was begun.
func (s *Store) endRead() {
	if s.rtx != nil {
		s.rtx.Rollback()
		s.rtx = nil
	}
}

// mutable is lookup for a change: the record returned belongs to the
// caller, who stores it with put.
func (s *Store) mutable(key string, now int64, want kind) (*record, error) {
	r, own, err := s.lookup(key, now)
	if err != nil || r == nil {
		return nil, err
	}
	if r.kind != want {
		return nil, wrongKind(key, r.kind, want)
	}
	if !own {
		r = r.clone()
	}
	return r, nil
}

func (s *Store) put(key string, r *record) {
	s.dirty[key] = r
	s.cache.Remove(key) // the file's value is the old one from now on
}

func wrongKind(key string, have, want kind) error {
	return fmt.Errorf("store: bolt: key %q holds a %v, not a %v", key, have, want)
}

func expiry(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).UnixNano()
}

// maxKeyLen is the longest key the file takes: bbolt refuses keys over
// MaxKeySize, and the expiry index puts 8 bytes before the 'k'-prefixed
// key. A longer key in the overlay would fail every commit after it.
const maxKeyLen = bbolt.MaxKeySize - 9

// apply runs one operation. Call with s.mu held.
func (s *Store) apply(op *store.Op, now time.Time) error {
	if len(op.Key) > maxKeyLen {
		return fmt.Errorf("store: bolt: key of %d bytes, longer than %d", len(op.Key), maxKeyLen)
	}
	ns := now.UnixNano()
	switch op.Kind {
	case store.OpGet:
		r, _, err := s.lookup(op.Key, ns)
		if err != nil || r == nil {
			return err
		}
		if r.kind != kindBytes {
			return wrongKind(op.Key, r.kind, kindBytes)
		}
		op.Out, op.OK = append([]byte{}, r.val...), true
	case store.OpSet:
		s.dropList(op.Key, ns)
		s.put(op.Key, &record{kind: kindBytes, val: append([]byte{}, op.Val...), exp: expiry(now, op.TTL)})
	case store.OpSetNX:
		r, _, err := s.lookup(op.Key, ns)
		if err != nil || r != nil {
			return err
		}
		s.put(op.Key, &record{kind: kindBytes, val: append([]byte{}, op.Val...), exp: expiry(now, op.TTL)})
		op.OK = true
	case store.OpDelete:
		s.dropList(op.Key, ns)
		s.put(op.Key, nil)
	case store.OpIncrBy:
		r, err := s.mutable(op.Key, ns, kindBytes)
		if err != nil {
			return err
		}
		v := 0.0
		if r == nil {
			r = &record{kind: kindBytes}
		} else if v, err = strconv.ParseFloat(string(r.val), 64); err != nil {
			return fmt.Errorf("store: bolt: key %q does not hold a number", op.Key)
		}
		v += op.N
		r.val = strconv.AppendFloat(r.val[:0], v, 'g', -1, 64)
		if op.TTL > 0 {
			r.exp = expiry(now, op.TTL)
		}
		s.put(op.Key, r)
		op.Num = v
	case store.OpWindowAdd, store.OpWindowAddCapped:
		r, err := s.mutable(op.Key, ns, kindWindow)
		if err != nil {
			return err
		}
		if r == nil {
			r = &record{kind: kindWindow}
		}
		at := op.At.UnixNano()
		sum := r.trim(at - int64(op.TTL))
		if op.Kind == store.OpWindowAddCapped && sum+op.N > op.Max {
			op.Num = sum
			if len(r.win) == 0 {
				s.put(op.Key, nil)
			} else {
				s.put(op.Key, r)
			}
			return nil
		}
		r.insert(event{t: at, w: op.N}, granule(int64(op.TTL)))
		r.exp = expiry(now, op.TTL)
		s.put(op.Key, r)
		op.Num, op.OK = sum+op.N, true
	case store.OpWindowSum:
		r, _, err := s.lookup(op.Key, ns)
		if err != nil || r == nil {
			return err
		}
		if r.kind != kindWindow {
			return wrongKind(op.Key, r.kind, kindWindow)
		}
		op.Num = r.sumAfter(op.At.UnixNano() - int64(op.TTL))
	case store.OpSetAdd:
		r, err := s.mutable(op.Key, ns, kindSet)
		if err != nil {
			return err
		}
		if r == nil {
			r = &record{kind: kindSet, set: map[string]struct{}{}}
		}
		if _, ok := r.set[op.Member]; !ok {
			r.set[op.Member] = struct{}{}
			op.OK = true
		}
		if op.TTL > 0 {
			r.exp = expiry(now, op.TTL)
		}
		s.put(op.Key, r)
	case store.OpSetHas, store.OpSetLen:
		r, _, err := s.lookup(op.Key, ns)
		if err != nil || r == nil {
			return err
		}
		if r.kind != kindSet {
			return wrongKind(op.Key, r.kind, kindSet)
		}
		if op.Kind == store.OpSetLen {
			op.Num = float64(len(r.set))
		} else {
			_, op.OK = r.set[op.Member]
		}
	case store.OpListPush:
		n, err := store.ListMax(op)
		if err != nil {
			return err
		}
		r, err := s.mutable(op.Key, ns, kindList)
		if err != nil {
			return err
		}
		if r == nil {
			r = &record{kind: kindList}
		}
		s.items[listItem(op.Key, r.head)] = append([]byte{}, op.Val...)
		r.head++
		for r.head-r.tail > uint64(n) {
			s.items[listItem(op.Key, r.tail)] = nil
			r.tail++
		}
		s.put(op.Key, r)
		op.Num = float64(r.head - r.tail)
	case store.OpListRange:
		r, _, err := s.lookup(op.Key, ns)
		if err != nil || r == nil {
			return err
		}
		if r.kind != kindList {
			return wrongKind(op.Key, r.kind, kindList)
		}
		lo, hi := store.ListBounds(int(r.head-r.tail), op.Start, op.Stop)
		for i := lo; i < hi; i++ {
			v, err := s.item(listItem(op.Key, r.head-1-uint64(i)))
			if err != nil {
				return fmt.Errorf("store: bolt: list %q: %w", op.Key, err)
			}
			op.Outs = append(op.Outs, v)
		}
	default:
		return fmt.Errorf("store: bolt: unknown operation %v", op.Kind)
	}
	return nil
}

// dropList deletes the items of the list under key, if key holds one
// (Set and Delete replace it). A record that cannot be read is replaced
// all the same: its items, if it was a list, stay in the file unread.
// Call with s.mu held.
func (s *Store) dropList(key string, now int64) {
	r, _, err := s.lookup(key, now)
	if err != nil || r == nil || r.kind != kindList {
		return
	}
	for seq := r.tail; seq < r.head; seq++ {
		s.items[listItem(key, seq)] = nil
	}
}

// item reads one list item: from the overlay, else the file. Items are
// not cached (the LRU holds small records; a list of history is
// thousands of large ones, read seldom). Call with s.mu held.
func (s *Store) item(k string) ([]byte, error) {
	if v, ok := s.items[k]; ok {
		return present(v)
	}
	if v, ok := s.flushingItems[k]; ok {
		return present(v)
	}
	var out []byte
	err := safely(s.readTx, func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketList).Get([]byte(k))
		if v == nil {
			return errCorrupt // the list's bounds say it is there
		}
		out = append([]byte{}, v...)
		return nil
	})
	return out, err
}

func present(v []byte) ([]byte, error) {
	if v == nil {
		return nil, errCorrupt
	}
	return append([]byte{}, v...), nil
}
