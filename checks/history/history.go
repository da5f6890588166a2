package history

// # Storage
//
// The records are one capped list in the state store, key "history:list"
// (store.ListPush with max Entries: the newest Entries records, the oldest
// dropped by the same atomic push; Redis LPUSH+LTRIM in one script, bbolt
// one key per record), each a compact JSON Record without its Message.
// Several chainmail processes sharing one Redis push to the same list,
// so each sees the others' verdicts.
//
// A kept message (at most KeepMessage bytes, header and body as
// received) lies beside its record, under "history:msg:N", where N is a
// shared counter ("history:msgseq") modulo Entries: a ring of at most
// Entries messages, each overwriting the one Entries messages older. The
// stored value is the record's ID, a newline, then the message; the
// record names its slot (msg_slot), and Get returns the message only
// while the slot still holds this record's ID. Messages thus live at
// least as long as their records (records without a message do not turn
// the ring) and never take more than Entries slots.
//
// Bounds: the list is at most Entries records (a record is typically 1
// to 3 KB of JSON; the fields are cut — 200 recipients, 100 log lines,
// 1000 bytes a field — so an odd message makes one of some hundreds of
// KB at most), the ring at most Entries ×
// (KeepMessage + an ID). The worst case, Entries × (record +
// KeepMessage), is about 660 MB at the defaults (10000 × (2 KB + 64
// KiB)) when every message is kept; what it is in practice is the
// typical message size below KeepMessage times Entries.
//
// # Never slowing mail
//
// Verdict copies what the record needs (the envelope, a few header
// fields, the result summaries, the verdict-log lines, and the message
// when it is small enough) and hands it to one writer goroutine through
// a bounded queue (QueueSize records). A full queue drops the record and
// counts it (chainmail_history_dropped_total); nothing waits. The writer
// bounds each write by WriteTimeout; a failed write is counted
// (chainmail_history_errors_total) and logged at most once a minute. The
// verdict stands whatever happens here.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"chainmail/checks"
	"chainmail/checks/verdictlog"
	"chainmail/store"
)

// Config is the history section of the configuration.
type Config struct {
	// Entries is how many records are kept (default 10000).
	Entries int `yaml:"entries"`
	// KeepMessage is the largest message kept with its record, for
	// learning from the console (default 64KiB); larger ones are recorded
	// without it. 0 takes the default; a negative size keeps none.
	KeepMessage checks.Size `yaml:"keep_message"`
}

// Defaults.
const (
	DefaultEntries     = 10000
	DefaultKeepMessage = 64 << 10
)

// Keys in the state store.
const (
	ListKey    = "history:list"
	msgSeqKey  = "history:msgseq"
	msgKeyBase = "history:msg:"
)

// QueueSize is how many records may wait for the writer; beyond it
// records are dropped (and counted), never waited for. The queue holds
// at most QueueSize × (record + KeepMessage) of memory, 17 MB at the
// defaults; a store that fails fails at once (bbolt's overlay, Redis's
// breaker), so it fills only while a store is slow without failing.
const QueueSize = 256

// WriteTimeout bounds one write of a record to the store.
const WriteTimeout = 2 * time.Second

// closeWait bounds Close's wait for the queued records.
const closeWait = 5 * time.Second

// Limits on what one record holds, so that one odd message (thousands of
// recipients, a subject of megabytes) cannot make a record of megabytes.
const (
	maxRcpts  = 200
	maxString = 1000 // bytes of each header field, address, reason
	maxLines  = 100
	maxLine   = 2000
)

// ErrNotFound is Get's error for an ID the history does not hold (never
// recorded, or older than the newest Entries).
var ErrNotFound = errors.New("history: no such record")

// History records verdicts in the state store and searches them; it is a
// checks.Observer. Use New.
type History struct {
	st   store.Store
	cfg  Config
	host string
	logf func(format string, args ...any)

	mu     sync.RWMutex // guards closed against sends on q
	closed bool
	q      chan *Record
	done   chan struct{}

	idBase  string
	idCount atomic.Uint32

	recorded, dropped, failed atomic.Int64
	lastLog                   time.Time // of a failure; the writer's own
	failedSinceLog            int64

	collectors []prometheus.Collector
	closeOnce  sync.Once
}

var _ checks.Observer = (*History)(nil)

// Option is an optional setting of New.
type Option func(*History)

// WithLogf sets where store failures are logged (at most once a minute);
// by default they are only counted.
func WithLogf(f func(format string, args ...any)) Option {
	return func(h *History) { h.logf = f }
}

// WithRegisterer registers the history's counters on reg
// (chainmail_history_recorded_total, _dropped_total, _errors_total).
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(h *History) {
		for i, c := range h.collectors {
			h.collectors[i] = store.Register(reg, c)
		}
	}
}

// New returns a History writing to st; host names this chainmail
// instance in its records. Close it to flush what is queued.
func New(st store.Store, cfg Config, host string, opts ...Option) *History {
	if cfg.Entries <= 0 {
		cfg.Entries = DefaultEntries
	}
	if cfg.KeepMessage == 0 {
		cfg.KeepMessage = DefaultKeepMessage
	}
	var b [4]byte
	rand.Read(b[:])
	h := &History{
		st: st, cfg: cfg, host: host,
		logf:   func(string, ...any) {},
		q:      make(chan *Record, QueueSize),
		done:   make(chan struct{}),
		idBase: fmt.Sprintf("%08x", binary.BigEndian.Uint32(b[:])),
	}
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	h.collectors = []prometheus.Collector{
		counter("chainmail_history_recorded_total", "Verdicts written to the history.", &h.recorded),
		counter("chainmail_history_dropped_total", "Verdicts not recorded in the history because its queue was full (the state store too slow) or it was closed.", &h.dropped),
		counter("chainmail_history_errors_total", "Verdicts not recorded in the history because the state store failed.", &h.failed),
	}
	for _, o := range opts {
		o(h)
	}
	go h.run()
	return h
}

// Stats are the history's counts since New.
type Stats struct {
	Recorded, Dropped, Failed int64
}

// Stats returns the counts of records written, dropped and failed.
func (h *History) Stats() Stats {
	return Stats{Recorded: h.recorded.Load(), Dropped: h.dropped.Load(), Failed: h.failed.Load()}
}

// Collectors returns the history's Prometheus counters, for a caller that
// registers them itself.
func (h *History) Collectors() []prometheus.Collector { return h.collectors }

// Step implements checks.Observer: steps are not recorded.
func (h *History) Step(checks.Result) {}

// Events implements checks.Observer: events outside a verdict are not
// recorded.
func (h *History) Events(*checks.Envelope, []checks.Event) {}

// Verdict implements checks.Observer: it queues the record of m's verdict
// and returns at once (no lines: the verdict log writes those).
func (h *History) Verdict(m *checks.Message, v *checks.Verdict, took time.Duration) []string {
	if m != nil && v != nil {
		h.Record(m, v, took, verdictlog.Lines(m, v))
	}
	return nil
}

// Record records a verdict with the log lines written for it (serve
// passes those its verdict log wrote, in the configured wording, so they
// are not made twice). It never waits: see Verdict.
func (h *History) Record(m *checks.Message, v *checks.Verdict, took time.Duration, lines []string) {
	if m == nil || v == nil {
		return
	}
	r := h.record(m, v, took, lines)
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		h.dropped.Add(1)
		return
	}
	select {
	case h.q <- r:
	default:
		h.dropped.Add(1)
	}
}

// newID returns an ID that sorts by time: the time in nanoseconds, this
// History's random number and a counter, in hexadecimal.
func (h *History) newID(t time.Time) string {
	return fmt.Sprintf("%016x%s%08x", uint64(t.UnixNano()), h.idBase, h.idCount.Add(1))
}

// record builds the record of a verdict, copying all it keeps.
func (h *History) record(m *checks.Message, v *checks.Verdict, took time.Duration, lines []string) *Record {
	now := time.Now()
	r := &Record{
		ID:         h.newID(now),
		Time:       now,
		Host:       h.host,
		QueueID:    cut(m.QueueID, maxString),
		HELO:       cut(m.HELO, maxString),
		MailFrom:   cut(m.MailFrom, maxString),
		HeaderFrom: cut(m.Get("From"), maxString),
		Subject:    cut(m.Get("Subject"), maxString),
		MessageID:  cut(m.Get("Message-ID"), maxString),
		Size:       m.Size(),
		Action:     v.Action.String(),
		Why:        v.Why.String(),
		Score:      v.Score,
		Required:   v.Required,
		Reply:      cut(v.SMTPReply(), maxString),
		Took:       took,
		Symbols:    append([]checks.Symbol(nil), v.Symbols...),
	}
	if m.ClientIP != nil {
		r.ClientIP = m.ClientIP.String()
	}
	if v.Monitor {
		r.Why += " (monitor: would " + v.Would.String() + ")"
	}
	for i, rc := range m.Rcpts {
		if i == maxRcpts {
			r.Rcpts = append(r.Rcpts, fmt.Sprintf("(and %d more)", len(m.Rcpts)-maxRcpts))
			break
		}
		r.Rcpts = append(r.Rcpts, cut(rc, maxString))
	}
	for _, res := range v.Results {
		r.Results = append(r.Results, CheckRecord{
			Check: res.Check, Status: string(res.Status), Score: res.Score, Reason: cut(res.Reason, maxString),
			Symbols: append([]checks.Symbol(nil), res.Symbols...), Took: res.Duration,
		})
	}
	for i, l := range lines {
		if i == maxLines {
			break
		}
		r.Lines = append(r.Lines, cut(l, maxLine))
	}
	if h.cfg.KeepMessage > 0 && r.Size <= int64(h.cfg.KeepMessage) {
		r.Message = raw(m)
	}
	return r
}

// raw is the message as received, header and body; nil when the body
// cannot be read.
func raw(m *checks.Message) []byte {
	hdr := m.RawHeader()
	var n int64
	if m.Body != nil {
		n = m.Body.Size()
	}
	out := make([]byte, len(hdr), len(hdr)+int(n))
	copy(out, hdr)
	if n > 0 {
		body := out[len(hdr) : len(hdr)+int(n)]
		if k, _ := m.Body.ReadAt(body, 0); int64(k) != n {
			return nil
		}
		out = out[:len(hdr)+int(n)]
	}
	return out
}

// cut shortens s to at most n bytes (on a rune boundary).
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// stored is a record as the list holds it: without its message, with the
// ring slot of the message (1-based; 0: none kept).
type stored struct {
	Record
	MsgSlot int64 `json:"msg_slot,omitempty"`
}

// run writes the queued records until Close.
func (h *History) run() {
	defer close(h.done)
	for r := range h.q {
		ctx, cancel := context.WithTimeout(context.Background(), WriteTimeout)
		err := h.write(ctx, r)
		cancel()
		if err != nil {
			h.failed.Add(1)
			h.failedSinceLog++
			if time.Since(h.lastLog) >= time.Minute {
				h.logf("history: recording verdicts in the state store failed %d time(s) (the verdicts stand, their history is lost): %v", h.failedSinceLog, err)
				h.lastLog, h.failedSinceLog = time.Now(), 0
			}
			continue
		}
		h.recorded.Add(1)
	}
}

// write puts one record (and its message) in the store.
func (h *History) write(ctx context.Context, r *Record) error {
	s := stored{Record: *r}
	s.Message = nil
	var ops []*store.Op
	if r.Message != nil {
		n, err := store.IncrBy(ctx, h.st, msgSeqKey, 1, 0)
		if err != nil {
			return err
		}
		s.MsgSlot = int64(n)%int64(h.cfg.Entries) + 1
		val := make([]byte, 0, len(r.ID)+1+len(r.Message))
		val = append(append(append(val, r.ID...), '\n'), r.Message...)
		ops = append(ops, &store.Op{Kind: store.OpSet, Key: msgKey(s.MsgSlot), Val: val})
	}
	b, err := json.Marshal(&s)
	if err != nil {
		return err
	}
	ops = append(ops, &store.Op{Kind: store.OpListPush, Key: ListKey, Val: b, Max: float64(h.cfg.Entries)})
	return h.st.Do(ctx, ops...)
}

func msgKey(slot int64) string { return msgKeyBase + strconv.FormatInt(slot, 10) }

// Close writes what is queued (waiting at most a few seconds) and stops
// the writer; later verdicts are dropped. It does not close the store.
func (h *History) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		close(h.q)
		h.mu.Unlock()
	})
	select {
	case <-h.done:
		return nil
	case <-time.After(closeWait):
		return fmt.Errorf("history: %d verdict(s) still queued for the state store after %v", len(h.q), closeWait)
	}
}

// page is how many records Search and Get read per store call.
const page = 250

// scan calls fn with each record of the list, newest first, until fn
// returns false. match, when set, is a cheap test of the raw JSON that
// spares decoding the records it rejects. A record seen twice (pushes
// between two pages move the list under the reader) is passed once.
func (h *History) scan(ctx context.Context, match func([]byte) bool, fn func(*stored) bool) error {
	seen := map[string]bool{}
	for start := 0; start < h.cfg.Entries; start += page {
		items, err := store.ListRange(ctx, h.st, ListKey, start, min(start+page, h.cfg.Entries)-1)
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
		for _, it := range items {
			if match != nil && !match(it) {
				continue
			}
			var s stored
			if err := json.Unmarshal(it, &s); err != nil {
				continue // not a record: skip it rather than fail the search
			}
			if seen[s.ID] {
				continue
			}
			seen[s.ID] = true
			if !fn(&s) {
				return nil
			}
		}
		if len(items) < page {
			return nil
		}
	}
	return nil
}

// Search returns the records q selects, newest first, without their
// messages (Get has them).
func (h *History) Search(ctx context.Context, q Query) ([]*Record, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	skip := max(q.Offset, 0)
	var out []*Record
	err := h.scan(ctx, prefilter(q), func(s *stored) bool {
		if !q.Match(&s.Record) {
			return true
		}
		if skip > 0 {
			skip--
			return true
		}
		r := s.Record
		out = append(out, &r)
		return len(out) < limit
	})
	return out, err
}

// prefilter is a test of a record's raw JSON that every record q matches
// passes: each text the query looks for, lower-cased, is in the
// lower-cased JSON, as the field holding it is (JSON writes text as it
// is but for the characters it escapes; a query holding one of those is
// not prefiltered). It spares decoding most records of a selective query.
// nil when q looks for no text.
func prefilter(q Query) func([]byte) bool {
	var needles [][]byte
	for _, f := range []struct {
		text string
		// joined: Match looks in several fields joined by spaces;
		// folded: Match compares with EqualFold (ASCII only here).
		joined, folded bool
	}{{q.Sender, true, false}, {q.Rcpt, true, false}, {q.Subject, false, false}, {q.QueueID, false, false}, {q.Action, false, true}, {q.Symbol, false, true}} {
		n := f.text
		if n == "" || strings.ContainsAny(n, "<>&\"\\\u2028\u2029") || f.joined && strings.Contains(n, " ") ||
			strings.IndexFunc(n, func(r rune) bool { return r < 0x20 || r == utf8.RuneError || f.folded && r >= utf8.RuneSelf }) >= 0 {
			continue
		}
		needles = append(needles, []byte(strings.ToLower(n)))
	}
	if len(needles) == 0 {
		return nil
	}
	var buf []byte
	return func(b []byte) bool {
		buf = lower(buf[:0], b)
		for _, n := range needles {
			if !bytes.Contains(buf, n) {
				return false
			}
		}
		return true
	}
}

// lower appends b lower-cased to dst: ASCII byte by byte, the rest as
// strings.ToLower does.
func lower(dst, b []byte) []byte {
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return append(dst, strings.ToLower(string(b[i:]))...)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// Get returns the record of id with its message when one was kept and is
// still there; ErrNotFound when the history does not hold it.
func (h *History) Get(ctx context.Context, id string) (*Record, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	needle, _ := json.Marshal(id)
	needle = append([]byte(`"id":`), needle...)
	var found *stored
	err := h.scan(ctx, func(b []byte) bool { return bytes.Contains(b, needle) }, func(s *stored) bool {
		if s.ID == id {
			found = s
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, ErrNotFound
	}
	r := found.Record
	if found.MsgSlot > 0 {
		v, ok, err := store.Get(ctx, h.st, msgKey(found.MsgSlot))
		if err != nil {
			return nil, fmt.Errorf("history: the message of %s: %w", id, err)
		}
		if ok && len(v) > len(id) && string(v[:len(id)]) == id && v[len(id)] == '\n' {
			r.Message = v[len(id)+1:]
		}
	}
	return &r, nil
}
