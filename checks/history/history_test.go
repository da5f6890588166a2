package history_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/history"
	"chainmail/store"
	"chainmail/store/bolt"
	"chainmail/store/redis"
	"chainmail/store/storetest"
)

// scorer is a check that scores a message by its X-Test-Score header
// (symbol X-Test-Symbol), taking a millisecond, so that each verdict
// goes through a real chain and the real policy.
type scorer struct{}

func (scorer) Name() string { return "scorer" }

func (scorer) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	time.Sleep(time.Millisecond)
	score, _ := strconv.ParseFloat(m.Get("X-Test-Score"), 64)
	return checks.Result{Check: "scorer", Status: checks.StatusFail, Score: score, Reason: "scored by the test",
		Symbols: []checks.Symbol{{Name: m.Get("X-Test-Symbol"), Score: score}}}
}

// engine is a chain of the scorer and the default policy, telling h
// (nil: no observer).
func engine(h *history.History) *checks.Engine {
	e := &checks.Engine{
		Chain:  &checks.Chain{Steps: []checks.Step{{Check: scorer{}}}},
		Policy: checks.DefaultPolicy(),
		Known:  []string{"scorer"},
	}
	if h != nil {
		e.Observer = h
	}
	return e
}

// mail is one test message.
type mail struct {
	queueID, from string
	rcpts         []string
	subject       string
	score         float64
	symbol        string
	body          string
}

func (ml mail) raw() string {
	return fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\nX-Test-Score: %v\r\nX-Test-Symbol: %s\r\n\r\n%s",
		ml.from, strings.Join(ml.rcpts, ", "), ml.subject, ml.queueID, ml.score, ml.symbol, ml.body)
}

func (ml mail) message(t testing.TB) *checks.Message {
	t.Helper()
	m, err := checks.ReadMessage(strings.NewReader(ml.raw()), checks.NewSpool(0, ""))
	if err != nil {
		t.Fatal(err)
	}
	m.Envelope = checks.Envelope{ClientIP: net.ParseIP("192.0.2.7"), HELO: "mx.sender.test", MailFrom: ml.from, Rcpts: ml.rcpts, QueueID: ml.queueID}
	return m
}

// run puts ml through the engine (whose observer is h) and returns the
// verdict.
func run(t testing.TB, h *history.History, ml mail) *checks.Verdict {
	t.Helper()
	v, _ := engine(h).Evaluate(context.Background(), ml.message(t))
	return v
}

// settle waits until h has written (or failed, or dropped) n records.
func settle(t testing.TB, h *history.History, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := h.Stats()
		if s.Recorded+s.Failed+s.Dropped >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("history settled only %+v of %d records", s, n)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

type backend struct {
	name string
	open func(t testing.TB) store.Store
}

func openBolt(t testing.TB) store.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openRedis(t testing.TB, addr string) store.Store {
	s, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{addr}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func backends() []backend {
	return []backend{
		{"bolt", openBolt},
		{"redis", func(t testing.TB) store.Store { return openRedis(t, storetest.StartRedis(t).Addr()) }},
	}
}

func each(t *testing.T, f func(t *testing.T, st store.Store)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

var three = []mail{
	{"4Q1AAA", "alice@example.org", []string{"bob@example.net"}, "Quarterly report", 0, "HAM_SYM", "numbers\r\n"},
	{"4Q2BBB", "mallory@spam.test", []string{"carol@example.net"}, "Cheap pills", 20, "SPAMMY", "buy\r\n"},
	{"4Q3CCC", "dave@example.com", []string{"bob@example.net", "erin@example.net"}, "Lunch?", 6, "MIDDLE", "at noon\r\n"},
}

func ids(rs []*history.Record) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.QueueID)
	}
	return strings.Join(out, ",")
}

func TestRecordAndSearch(t *testing.T) {
	each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		h := history.New(st, history.Config{}, "mx1.test")
		defer h.Close()
		var verdicts []*checks.Verdict
		for _, ml := range three {
			verdicts = append(verdicts, run(t, h, ml))
		}
		settle(t, h, 3)
		if s := h.Stats(); s.Recorded != 3 {
			t.Fatalf("stats %+v, want 3 recorded", s)
		}
		for _, q := range []struct {
			q    history.Query
			want string
		}{
			{history.Query{}, "4Q3CCC,4Q2BBB,4Q1AAA"},
			{history.Query{Sender: "MALLORY"}, "4Q2BBB"},
			{history.Query{Rcpt: "erin@"}, "4Q3CCC"},
			{history.Query{Rcpt: "bob@example.net"}, "4Q3CCC,4Q1AAA"},
			{history.Query{Subject: "quarterly"}, "4Q1AAA"},
			{history.Query{QueueID: "4q2"}, "4Q2BBB"},
			{history.Query{Action: "reject"}, "4Q2BBB"},
			{history.Query{Action: "tag"}, "4Q3CCC"},
			{history.Query{Symbol: "middle"}, "4Q3CCC"},
			{history.Query{Symbol: "MIDDL"}, ""},
			{history.Query{Limit: 1, Offset: 1}, "4Q2BBB"},
			{history.Query{Limit: 2}, "4Q3CCC,4Q2BBB"},
			{history.Query{Offset: 3}, ""},
			{history.Query{Since: time.Now().Add(time.Minute)}, ""},
		} {
			got, err := h.Search(ctx, q.q)
			if err != nil || ids(got) != q.want {
				t.Errorf("Search(%+v) = %s, %v; want %s", q.q, ids(got), err, q.want)
			}
		}

		all, _ := h.Search(ctx, history.Query{})
		if len(all) != 3 {
			t.Fatalf("%d records", len(all))
		}
		r := all[1] // mallory's
		v := verdicts[1]
		if r.Host != "mx1.test" || r.ClientIP != "192.0.2.7" || r.HELO != "mx.sender.test" || r.MailFrom != "mallory@spam.test" ||
			r.HeaderFrom != "mallory@spam.test" || r.Subject != "Cheap pills" || r.MessageID != "<4Q2BBB@test>" ||
			strings.Join(r.Rcpts, ",") != "carol@example.net" {
			t.Errorf("envelope and header: %+v", r)
		}
		if r.Action != "reject" || r.Action != v.Action.String() || r.Why != "score" || r.Score != 20 || r.Required != v.Required ||
			r.Reply != "550 5.7.1 Message rejected as spam" || r.Took <= 0 {
			t.Errorf("verdict: action %q why %q score %v required %v reply %q took %v", r.Action, r.Why, r.Score, r.Required, r.Reply, r.Took)
		}
		if r.Size != int64(len(three[1].raw())) {
			t.Errorf("size %d, want %d", r.Size, len(three[1].raw()))
		}
		if len(r.Symbols) != 1 || r.Symbols[0].Name != "SPAMMY" || r.Symbols[0].Score != 20 {
			t.Errorf("symbols %+v", r.Symbols)
		}
		if len(r.Results) != 1 || r.Results[0].Check != "scorer" || r.Results[0].Status != "fail" || r.Results[0].Reason != "scored by the test" ||
			r.Results[0].Took < time.Millisecond || len(r.Results[0].Symbols) != 1 {
			t.Errorf("results %+v", r.Results)
		}
		if len(r.Lines) == 0 || !strings.Contains(strings.Join(r.Lines, "\n"), "4Q2BBB") {
			t.Errorf("verdict-log lines %q", r.Lines)
		}
		if r.Message != nil {
			t.Error("Search returned a message; Get is for that")
		}
		if !(all[2].ID < all[1].ID && all[1].ID < all[0].ID) {
			t.Errorf("IDs do not sort by time: %s %s %s", all[2].ID, all[1].ID, all[0].ID)
		}

		got, err := h.Get(ctx, r.ID)
		if err != nil || got.ID != r.ID || got.QueueID != "4Q2BBB" {
			t.Fatalf("Get: %+v, %v", got, err)
		}
		if string(got.Message) != three[1].raw() {
			t.Errorf("Get's message %q, want the message as received", got.Message)
		}
		if _, err := h.Get(ctx, "0000nope"); !errors.Is(err, history.ErrNotFound) {
			t.Errorf("Get of an unknown ID: %v", err)
		}
	})
}

// Entries+5 verdicts: the newest Entries are kept, the oldest 5 gone;
// the kept messages are those of the kept records.
func TestCap(t *testing.T) {
	each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		const entries = 10
		h := history.New(st, history.Config{Entries: entries}, "mx1")
		defer h.Close()
		for i := 0; i < entries+5; i++ {
			run(t, h, mail{fmt.Sprintf("Q%02d", i), "a@b.test", []string{"c@d.test"}, "s", 1, "S", fmt.Sprintf("body %d\r\n", i)})
			settle(t, h, int64(i+1)) // one at a time: the order is the test's
		}
		all, err := h.Search(ctx, history.Query{Limit: 100})
		if err != nil || len(all) != entries {
			t.Fatalf("%d records, %v; want %d", len(all), err, entries)
		}
		if all[0].QueueID != "Q14" || all[entries-1].QueueID != "Q05" {
			t.Errorf("kept %s, want Q14..Q05", ids(all))
		}
		if got, _ := h.Search(ctx, history.Query{QueueID: "Q04"}); len(got) != 0 {
			t.Errorf("the oldest is still there: %s", ids(got))
		}
		// The message ring is slots 1..entries, no more.
		for slot, want := range map[int]bool{0: false, 1: true, entries: true, entries + 1: false} {
			if _, ok, err := store.Get(ctx, st, fmt.Sprintf("history:msg:%d", slot)); ok != want || err != nil {
				t.Errorf("message slot %d present %v, %v; want %v", slot, ok, err, want)
			}
		}
		// The store holds no more than that (Search reads no further).
		if l, err := store.ListRange(ctx, st, history.ListKey, 0, -1); len(l) != entries || err != nil {
			t.Errorf("the store holds %d records, %v; want %d", len(l), err, entries)
		}
		for _, r := range all {
			got, err := h.Get(ctx, r.ID)
			if err != nil || !strings.HasSuffix(string(got.Message), fmt.Sprintf("body %d\r\n", atoi(r.QueueID[1:]))) {
				t.Errorf("Get %s: message %q, %v", r.QueueID, got.Message, err)
			}
		}
	})
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// A message over KeepMessage is recorded without its body.
func TestKeepMessage(t *testing.T) {
	each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		h := history.New(st, history.Config{KeepMessage: 300}, "mx1")
		defer h.Close()
		small := mail{"QSMALL", "a@b.test", []string{"c@d.test"}, "small", 0, "S", "short\r\n"}
		big := mail{"QBIG", "a@b.test", []string{"c@d.test"}, "big", 0, "S", strings.Repeat("0123456789", 40) + "\r\n"}
		run(t, h, small)
		run(t, h, big)
		settle(t, h, 2)
		all, _ := h.Search(ctx, history.Query{})
		if ids(all) != "QBIG,QSMALL" {
			t.Fatalf("records %s", ids(all))
		}
		b, err := h.Get(ctx, all[0].ID)
		if err != nil || b.Message != nil || b.Size != int64(len(big.raw())) {
			t.Errorf("big: message %d bytes, size %d, %v; want no message, size %d", len(b.Message), b.Size, err, len(big.raw()))
		}
		s, err := h.Get(ctx, all[1].ID)
		if err != nil || string(s.Message) != small.raw() {
			t.Errorf("small: %q, %v", s.Message, err)
		}
	})
}

// Two chainmail processes sharing one Redis see each other's records.
func TestSharedRedis(t *testing.T) {
	ctx := context.Background()
	srv := storetest.StartRedis(t)
	h1 := history.New(openRedis(t, srv.Addr()), history.Config{}, "mx1")
	h2 := history.New(openRedis(t, srv.Addr()), history.Config{}, "mx2")
	defer h1.Close()
	defer h2.Close()
	run(t, h1, three[0])
	settle(t, h1, 1)
	run(t, h2, three[1])
	settle(t, h2, 1)
	for _, h := range []*history.History{h1, h2} {
		all, err := h.Search(ctx, history.Query{})
		if err != nil || ids(all) != "4Q2BBB,4Q1AAA" || all[0].Host != "mx2" || all[1].Host != "mx1" {
			t.Fatalf("records %s, %v", ids(all), err)
		}
		for i, r := range all {
			got, err := h.Get(ctx, r.ID)
			if err != nil || string(got.Message) != three[1-i].raw() {
				t.Errorf("Get %s: %q, %v", r.QueueID, got.Message, err)
			}
		}
	}
}

// A store that is down costs Verdict nothing: the failures are counted,
// the verdicts stand, and recording resumes when it is back.
func TestStoreDown(t *testing.T) {
	srv := storetest.StartRedis(t)
	st := openRedis(t, srv.Addr())
	h := history.New(st, history.Config{}, "mx1")
	defer h.Close()
	run(t, h, three[0])
	settle(t, h, 1)

	srv.Kill()
	m := three[1].message(t)
	v, _ := engine(nil).Evaluate(context.Background(), m)
	start := time.Now()
	for i := 0; i < 50; i++ {
		h.Verdict(m, v, time.Millisecond)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("50 verdicts with Redis down took %v", d)
	}
	settle(t, h, 51)
	if s := h.Stats(); s.Recorded != 1 || s.Failed+s.Dropped != 50 || s.Failed == 0 {
		t.Errorf("stats %+v, want 1 recorded and 50 failed", s)
	}
	if v.Action != checks.Reject {
		t.Errorf("verdict %v", v.Action)
	}

	// A hung Redis (SIGSTOP): writes wait for the store's timeout, the
	// queue fills, verdicts are dropped, and still nothing waits.
	srv.Restart()
	waitRecorded(t, h, m, v)
	srv.Pause()
	start = time.Now()
	var slowest time.Duration
	for i := 0; i < history.QueueSize+200; i++ {
		t0 := time.Now()
		h.Verdict(m, v, time.Millisecond)
		slowest = max(slowest, time.Since(t0))
	}
	if d := time.Since(start); d > time.Second || slowest > 100*time.Millisecond {
		t.Errorf("%d verdicts with Redis hung took %v (slowest %v)", history.QueueSize+200, d, slowest)
	}
	if s := h.Stats(); s.Dropped == 0 {
		t.Errorf("stats %+v: a full queue dropped nothing", s)
	}
	srv.Resume()
}

// waitRecorded records verdicts until one is written (the store's
// breaker sees Redis back).
func waitRecorded(t *testing.T, h *history.History, m *checks.Message, v *checks.Verdict) {
	t.Helper()
	before := h.Stats().Recorded
	deadline := time.Now().Add(10 * time.Second)
	for h.Stats().Recorded == before {
		if time.Now().After(deadline) {
			t.Fatalf("nothing recorded after Redis came back: %+v", h.Stats())
		}
		h.Verdict(m, v, time.Millisecond)
		time.Sleep(50 * time.Millisecond)
	}
}

// Verdicts from many goroutines (run with -race); Close writes the
// queued ones.
func TestConcurrent(t *testing.T) {
	each(t, func(t *testing.T, st store.Store) {
		const workers, per = 8, 40
		h := history.New(st, history.Config{Entries: 1000}, "mx1")
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < per; i++ {
					run(t, h, mail{fmt.Sprintf("W%dI%d", w, i), "a@b.test", []string{"c@d.test"}, "s", float64(i % 20), "S", "b\r\n"})
				}
			}()
		}
		wg.Wait()
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		s := h.Stats()
		if s.Recorded+s.Dropped != workers*per || s.Failed != 0 {
			t.Errorf("stats %+v, want %d in all", s, workers*per)
		}
		all, err := h.Search(context.Background(), history.Query{Limit: 1000})
		if err != nil || int64(len(all)) != s.Recorded {
			t.Errorf("%d records found, %v; %d recorded", len(all), err, s.Recorded)
		}
		seen := map[string]bool{}
		for _, r := range all {
			if seen[r.ID] {
				t.Errorf("ID %s twice", r.ID)
			}
			seen[r.ID] = true
		}
		// After Close, verdicts are dropped, not written.
		h.Verdict(three[0].message(t), &checks.Verdict{}, 0)
		if h.Stats().Dropped != s.Dropped+1 {
			t.Errorf("a verdict after Close was not dropped: %+v", h.Stats())
		}
	})
}

// Search skips records by a look at their raw JSON before decoding them:
// it must find exactly what Query.Match selects, whatever the text
// (case, non-ASCII, characters JSON escapes, spaces between the fields
// Match joins).
func TestSearchAgreesWithMatch(t *testing.T) {
	ctx := context.Background()
	h := history.New(openBolt(t), history.Config{}, "mx1")
	defer h.Close()
	subjects := []string{"Über Größe", "über größe", "a <b> & \"c\"", "Tab\there", "plain", "K-Kelvin \u212a", "line\u2028sep", "x\\y"}
	n := 0
	for i, subj := range subjects {
		for j, from := range []string{"Ann@Example.org", "bob@example.org", "\"odd name\"@ex.test"} {
			ml := mail{fmt.Sprintf("Q%dX%d", i, j), from, []string{"r1@ex.test", "R2@EX.test"}, subj, float64(5 * j), []string{"SYM_A", "sym_b", "ÜSYM"}[j], "b\r\n"}
			run(t, h, ml)
			n++
		}
	}
	settle(t, h, int64(n))
	all, err := h.Search(ctx, history.Query{Limit: 1000})
	if err != nil || len(all) != n {
		t.Fatalf("%d records, %v", len(all), err)
	}
	for _, q := range []history.Query{
		{Subject: "über"}, {Subject: "ÜBER GRÖSSE"}, {Subject: "GRÖßE"}, {Subject: "<b> &"}, {Subject: "\"c\""}, {Subject: "tab\th"},
		{Subject: "k-kelvin k"}, {Subject: "\u212a"}, {Subject: "line\u2028"}, {Subject: "x\\y"}, {Subject: "PLAIN"},
		{Sender: "ann@example.org"}, {Sender: "ANN@example.org ann@"}, {Sender: "\"odd"}, {Sender: "name\"@"},
		{Rcpt: "r2@ex"}, {Rcpt: "r1@ex.test r2@ex.test"}, {Rcpt: "test r2"},
		{Action: "TAG"}, {Action: "accept"}, {Symbol: "SYM_B"}, {Symbol: "üsym"}, {Symbol: "sym"},
		{QueueID: "q3x"}, {Subject: "über", Sender: "bob", Action: "tag"},
	} {
		var want []*history.Record
		for _, r := range all {
			if q.Match(r) {
				want = append(want, r)
			}
		}
		q.Limit = 1000
		got, err := h.Search(ctx, q)
		if err != nil || ids(got) != ids(want) {
			t.Errorf("Search(%+v) = %s, %v; Match selects %s", q, ids(got), err, ids(want))
		}
	}
}
