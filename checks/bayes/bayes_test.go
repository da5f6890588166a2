package bayes

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/store"
	"chainmail/store/bolt"
	"chainmail/store/redis"
	"chainmail/store/storetest"
	"chainmail/store/storetest/memstore"
)

func readMessage(t testing.TB, raw []byte) *checks.Message {
	t.Helper()
	m, err := checks.ReadMessage(bytes.NewReader(raw), checks.NewSpool(0, ""))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustNew(t testing.TB, cfg Config, st store.Store) *Check {
	t.Helper()
	c, err := New(cfg, st, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChi2Q checks the tail against values of the chi-square
// distribution (R: pchisq(x, df, lower.tail=FALSE)).
func TestChi2Q(t *testing.T) {
	for _, c := range []struct {
		x    float64
		v    int
		want float64
	}{
		{2, 2, 0.36787944},
		{10, 4, 0.04042768},
		{300, 300, 0.48914},
		{3000, 300, 0},
		{0, 10, 1},
	} {
		if got := chi2Q(c.x, c.v); math.Abs(got-c.want) > 1e-4 {
			t.Errorf("chi2Q(%v, %d) = %v, want %v", c.x, c.v, got, c.want)
		}
	}
}

func TestPacking(t *testing.T) {
	for _, c := range []struct {
		spam, ham float64
	}{{0, 0}, {1, 0}, {0, 1}, {7, 12}, {100000, 3}, {1 << 20, 1 << 24}} {
		if got := unpack(c.spam*spamUnit + c.ham); got.spam != c.spam || got.ham != c.ham {
			t.Errorf("unpack(pack(%v, %v)) = %+v", c.spam, c.ham, got)
		}
	}
	// A count that went below zero reads as zero and leaves the other
	// count alone.
	if got := unpack(1*spamUnit - 1); got.spam != 1 || got.ham != 0 {
		t.Errorf("spam 1, ham -1 = %+v", got)
	}
	if got := unpack(-1*spamUnit + 3); got.spam != 0 || got.ham != 3 {
		t.Errorf("spam -1, ham 3 = %+v", got)
	}
}

const spamText = "From: Deals <win@promo.example>\r\nTo: you@example.com\r\nSubject: Cheap pills, act now\r\n\r\nBuy cheap pills now, limited offer, click here to win money fast.\r\n"
const hamText = "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: Meeting notes\r\n\r\nHi Bob, attached are the notes of yesterday's meeting about the release schedule.\r\n"

// TestLearnOnceMoveAndReady: a message counts once, a message reported as
// the other class moves, and the check answers none until it has learned
// min_spam and min_ham.
func TestLearnOnceMoveAndReady(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.MinSpam, cfg.MinHam = 1, 1
	c := mustNew(t, cfg, memstore.New())

	if r := c.Check(ctx, readMessage(t, []byte(spamText)), nil); r.Status != checks.StatusNone || !strings.Contains(r.Reason, "learned 0 spam and 0 ham") {
		t.Fatalf("empty database: %s %q, want none with the reason", r.Status, r.Reason)
	}
	for i, want := range []checks.Trained{checks.TrainedNew, checks.TrainedAlready} {
		got, err := c.Train(ctx, readMessage(t, []byte(spamText)), true)
		if err != nil || got != want {
			t.Fatalf("learn spam #%d = %q, %v; want %q", i+1, got, err, want)
		}
	}
	st, _ := c.Stats(ctx)
	if st.LearnedSpam != 1 || st.LearnedHam != 0 {
		t.Fatalf("stats after one spam learned twice = %+v", st)
	}
	if got, _ := c.Train(ctx, readMessage(t, []byte(hamText)), false); got != checks.TrainedNew {
		t.Fatalf("learn ham = %q", got)
	}
	if r := c.Check(ctx, readMessage(t, []byte(spamText)), nil); r.Status != checks.StatusSpam || r.Symbols[0].Name != "BAYES_99" {
		t.Fatalf("learned spam: %s %v (%s)", r.Status, r.Symbols, r.Reason)
	}
	// Reported again as ham: it moves.
	if got, _ := c.Train(ctx, readMessage(t, []byte(spamText)), false); got != checks.TrainedMoved {
		t.Fatalf("relearn as ham = %q, want moved", got)
	}
	st, _ = c.Stats(ctx)
	if st.LearnedSpam != 0 || st.LearnedHam != 2 {
		t.Fatalf("stats after the move = %+v", st)
	}
	if r := c.Check(ctx, readMessage(t, []byte(spamText)), nil); r.Status != checks.StatusNone {
		t.Fatalf("no spam learned any more: %s (%s)", r.Status, r.Reason)
	}
}

// TestStoreDown: a database that cannot be read is a temperror, never a
// verdict.
func TestStoreDown(t *testing.T) {
	st := memstore.New()
	cfg := DefaultConfig()
	cfg.MinSpam, cfg.MinHam = 1, 1
	c := mustNew(t, cfg, st)
	st.SetDown(true)
	r := c.Check(context.Background(), readMessage(t, []byte(spamText)), nil)
	if r.Status != checks.StatusTemperror || r.Score != 0 || r.Class != checks.ClassNone {
		t.Fatalf("store down: %s score %v class %v", r.Status, r.Score, r.Class)
	}
}

type labelled struct {
	raw  []byte
	spam bool
	name string
}

func corpusSample(t testing.TB) []labelled {
	dir := checktest.Corpus(t, "spamassassin-public-corpus-sample")
	var out []labelled
	for _, g := range []struct {
		dir  string
		spam bool
	}{{"easy-ham-1", false}, {"easy-ham-2", false}, {"hard-ham-1", false}, {"spam-1", true}, {"spam-2", true}} {
		files, err := filepath.Glob(filepath.Join(dir, g.dir, "*.eml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("corpus group %s: %v (%d files)", g.dir, err, len(files))
		}
		sort.Strings(files)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, labelled{raw: raw, spam: g.spam, name: g.dir + "/" + filepath.Base(f)})
		}
	}
	return out
}

// auc is the area under the ROC curve: the chance that a random spam
// scores above a random ham (ties count half).
func auc(spam, ham []float64) float64 {
	var sum float64
	for _, s := range spam {
		for _, h := range ham {
			switch {
			case s > h:
				sum++
			case s == h:
				sum += 0.5
			}
		}
	}
	return sum / float64(len(spam)*len(ham))
}

// crossValidate learns k-1 folds of the sample and classifies the k-th,
// for each fold, and returns the spam probabilities of the spam and of
// the ham.
func crossValidate(t *testing.T, open func(t *testing.T) store.Store, k int) (spamP, hamP []float64) {
	ctx := context.Background()
	msgs := corpusSample(t)
	cfg := DefaultConfig()
	cfg.MinSpam, cfg.MinHam = 10, 10
	for fold := 0; fold < k; fold++ {
		c := mustNew(t, cfg, open(t))
		for i, m := range msgs {
			if i%k == fold {
				continue
			}
			if _, err := c.Train(ctx, readMessage(t, m.raw), m.spam); err != nil {
				t.Fatalf("learn %s: %v", m.name, err)
			}
		}
		for i, m := range msgs {
			if i%k != fold {
				continue
			}
			cl, err := c.Classify(ctx, readMessage(t, m.raw))
			if err != nil || !cl.Ready {
				t.Fatalf("classify %s: %+v %v", m.name, cl, err)
			}
			if m.spam {
				spamP = append(spamP, cl.Probability)
			} else {
				hamP = append(hamP, cl.Probability)
			}
		}
	}
	return spamP, hamP
}

// TestCrossValidation runs 5-fold cross-validation on the 270 labelled
// messages of the public SpamAssassin corpus sample (150 ham, a third of
// it hard ham; 120 spam). The bounds are far below what the classifier
// measures (README, "Content classification") and far above what a
// broken tokenizer, a swapped count or a wrong combining formula give.
func TestCrossValidation(t *testing.T) {
	spamP, hamP := crossValidate(t, func(*testing.T) store.Store { return memstore.New() }, 5)
	a := auc(spamP, hamP)
	var caught, falsePos int
	for _, p := range spamP {
		if p >= 0.95 {
			caught++
		}
	}
	for _, p := range hamP {
		if p >= 0.95 {
			falsePos++
		}
	}
	t.Logf("5-fold on %d spam, %d ham: AUC %.4f; at p>=0.95: %d spam caught, %d ham", len(spamP), len(hamP), a, caught, falsePos)
	if a < 0.99 {
		t.Errorf("AUC %.4f, want at least 0.99", a)
	}
	if caught < len(spamP)*75/100 {
		t.Errorf("%d of %d spam at p >= 0.95, want at least 75%%", caught, len(spamP))
	}
	if falsePos > len(hamP)/100 {
		t.Errorf("%d of %d ham at p >= 0.95, want at most 1%%", falsePos, len(hamP))
	}
}

// TestRealStores: the classifier over the real bbolt file and the real
// Redis gives the same answers as over memory.
func TestRealStores(t *testing.T) {
	ctx := context.Background()
	msgs := corpusSample(t)
	cfg := DefaultConfig()
	cfg.MinSpam, cfg.MinHam = 10, 10
	run := func(t *testing.T, st store.Store) []float64 {
		c := mustNew(t, cfg, st)
		var out []float64
		for i, m := range msgs {
			if i%3 == 0 {
				continue
			}
			if _, err := c.Train(ctx, readMessage(t, m.raw), m.spam); err != nil {
				t.Fatal(err)
			}
		}
		for i, m := range msgs {
			if i%3 != 0 {
				continue
			}
			cl, err := c.Classify(ctx, readMessage(t, m.raw))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, cl.Probability)
		}
		return out
	}
	want := run(t, memstore.New())
	t.Run("bolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		b, err := bolt.Open(path, bolt.Options{FlushInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, b)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		same(t, got, want)
		// What was learned survives a restart.
		b, err = bolt.Open(path, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		st, err := mustNew(t, cfg, b).Stats(ctx)
		if err != nil || st.LearnedSpam+st.LearnedHam != len(msgs)-(len(msgs)+2)/3 {
			t.Fatalf("after reopening: %+v %v", st, err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		srv := storetest.StartRedis(t)
		r, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{srv.Addr()}, Timeout: 2 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		same(t, run(t, r), want)
	})
}

func same(t *testing.T, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("message %d: probability %v, want %v", i, got[i], want[i])
		}
	}
}

// Close ends the autolearn goroutine after it has learned what was
// queued; Learn does nothing afterwards (an engine replaced on reload).
func TestAutolearnClose(t *testing.T) {
	st := memstore.New()
	cfg := DefaultConfig()
	cfg.Autolearn = Autolearn{Enabled: true, Spam: 12, Ham: 0.1}
	c, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msg := func(s string) *checks.Message {
		m, err := checks.ReadMessage(strings.NewReader("From: a@b.test\r\nSubject: "+s+"\r\n\r\nbuy cheap pills now "+s+"\r\n"), checks.NewSpool(0, ""))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	c.Learn(ctx, msg("one"), &checks.Verdict{Action: checks.Reject, Score: 50, Spam: true})
	c.Learn(ctx, msg("two"), &checks.Verdict{Action: checks.Reject, Score: 50, Spam: true})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Learn(ctx, msg("three"), &checks.Verdict{Action: checks.Reject, Score: 50, Spam: true})
	s, err := c.Stats(ctx)
	if err != nil || s.LearnedSpam != 2 || s.LearnedHam != 0 {
		t.Fatalf("stats %+v %v: want the 2 messages queued before Close", s, err)
	}
	select {
	case <-c.done: // the goroutine ended
	default:
		t.Error("the autolearn goroutine still runs after Close")
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
}

// TestTokenKeyIsFNV1a pins the key of a token: learned databases must
// keep answering after an upgrade (FNV-1a 64 of "hello" is a430d84680aabd0b).
func TestTokenKeyIsFNV1a(t *testing.T) {
	if got := tokenKey("hello"); got != "bayes:t:a430d84680aabd0b" {
		t.Fatalf("tokenKey(hello) = %s", got)
	}
}

// TestRareTokensExpire: the database stays bounded. In the real bbolt
// store, a token seen in fewer than 3 learned messages is gone
// rare_token_ttl after it was last learned (and the janitor deletes it
// from the file); one seen in 3 or more stays until token_ttl.
func TestRareTokensExpire(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := mustNew(t, DefaultConfig(), st)
	for _, rare := range []string{"zebraone", "zebratwo", "zebrathree"} {
		raw := "From: a@shop.example\r\nSubject: offer\r\n\r\ncommonword " + rare + "\r\n"
		if _, err := c.Train(ctx, readMessage(t, []byte(raw)), true); err != nil {
			t.Fatal(err)
		}
	}
	count := func(tok string) float64 {
		t.Helper()
		_, _, cs, err := lookup(ctx, st, []string{tok})
		if err != nil {
			t.Fatal(err)
		}
		return cs[0].spam + cs[0].ham
	}
	if count("commonword") != 3 || count("zebraone") != 1 {
		t.Fatalf("after learning: commonword %v, zebraone %v", count("commonword"), count("zebraone"))
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Duration(DefaultConfig().RareTokenTTL) + time.Hour)
	if count("zebraone") != 0 || count("commonword") != 3 {
		t.Errorf("after rare_token_ttl: zebraone %v (want 0), commonword %v (want 3)", count("zebraone"), count("commonword"))
	}
	if n, err := st.Expire(); err != nil || n < 3 {
		t.Errorf("the janitor deleted %d keys (%v), want the rare tokens at least", n, err)
	}
	clock.Add(time.Duration(DefaultConfig().TokenTTL))
	if count("commonword") != 0 {
		t.Errorf("after token_ttl: commonword %v, want 0", count("commonword"))
	}
}
