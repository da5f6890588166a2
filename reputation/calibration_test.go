package reputation

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/reputation/rdaptest"
	"chainmail/store/bolt"
	"chainmail/store/storetest"
)

// The calibration: what one piece of evidence, or a little of it, may do
// to a verdict. Each test is a situation a postmaster meets; the
// reasoning is in the README ("How the verdict is reached").

// learnN queues n verdicts on s and writes them.
func learnN(t *testing.T, r *Reputation, s Subject, n int, spam bool) {
	t.Helper()
	for i := 0; i < n; i++ {
		r.Learn(s, spam)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func assess(t *testing.T, r *Reputation, s Subject) *Assessment {
	t.Helper()
	a, err := r.Assess(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// atIP is s sent from ip.
func atIP(s Subject, ip string) Subject {
	s.ClientIP = net.ParseIP(ip)
	return s
}

// Forwarded mail and mailing lists fail DMARC; a domain publishing p=none
// says that is expected. On first contact that alone must not reach Poor
// (the default sdr-reject rule), with RDAP unable to tell the age, with
// SPF failing too (forwarding), or with every weak signal at once.
func TestCalibrationFirstContactDMARCNone(t *testing.T) {
	f := newFixture(t, Config{})
	f.rdap.Fail("forwarded.test", rdaptest.ServerError)
	s := subject("member@forwarded.test", "fail")
	s.Auth.DMARCPolicy = "none"
	s.Auth.SPF = "fail"
	a := assess(t, f.rep, s)
	t.Logf("p=none: %s (%v): %s", a.Verdict, a.Score, texts(a))
	if rank(a.Verdict) <= rank(Poor) {
		t.Errorf("first contact, DMARC fail under p=none: %s (%v): %s", a.Verdict, a.Score, texts(a))
	}
	if !strings.Contains(texts(a), "p=none") {
		t.Errorf("the evidence does not say the policy: %s", texts(a))
	}
	// An enforcing policy is a strong signal: the domain says its mail
	// always passes.
	s.Auth.DMARCPolicy = "reject"
	if b := assess(t, f.rep, s); b.Score >= a.Score {
		t.Errorf("p=reject (%v) costs no more than p=none (%v)", b.Score, a.Score)
	}
	// Every weak signal at once on first contact — never seen, DMARC
	// failing under p=none, a /24 another sender's spam made dirty — is
	// still short of Poor.
	learnN(t, f.rep, atIP(subject("x@spammer.test", "none"), "198.51.100.200"), 20, true)
	s.Auth.DMARCPolicy = "none"
	c := assess(t, f.rep, s)
	t.Logf("all weak evidence: %s (%v): %s", c.Verdict, c.Score, texts(c))
	if rank(c.Verdict) <= rank(Poor) {
		t.Errorf("weak evidence only: %s (%v): %s", c.Verdict, c.Score, texts(c))
	}
}

// One "learn --bad" moves a sender down, never to Awful; Awful takes
// repeated reports.
func TestCalibrationOneBadReport(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	f.rdap.Fail("reported.test", rdaptest.ServerError)
	s := subject("promo@reported.test", "none")
	before := assess(t, f.rep, s)
	if err := f.rep.Feedback(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	a := assess(t, f.rep, s)
	t.Logf("one report: %s (%v), was %s: %s", a.Verdict, a.Score, before.Verdict, texts(a))
	if a.Verdict == Awful || rank(a.Verdict) >= rank(before.Verdict) {
		t.Errorf("one bad report: %s (%v), was %s: %s", a.Verdict, a.Score, before.Verdict, texts(a))
	}
	// A sender with a little clean history and one report: not Awful
	// either (the report is one piece of evidence, not five verdicts
	// plus a report).
	g := newFixture(t, Config{})
	g.rdap.Fail("known.test", rdaptest.ServerError)
	k := subject("billing@known.test", "none")
	learnN(t, g.rep, k, 3, false)
	if err := g.rep.Feedback(ctx, k, false); err != nil {
		t.Fatal(err)
	}
	if b := assess(t, g.rep, k); b.Verdict == Awful {
		t.Errorf("three clean verdicts and one report: %s (%v): %s", b.Verdict, b.Score, texts(b))
	}
	// Reported again and again: Awful.
	for i := 0; i < 2; i++ {
		if err := f.rep.Feedback(ctx, s, false); err != nil {
			t.Fatal(err)
		}
	}
	if c := assess(t, f.rep, s); c.Verdict != Awful {
		t.Errorf("three bad reports: %s (%v): %s", c.Verdict, c.Score, texts(c))
	}
}

// Another sender's spam on the same /24 must not sink a domain that has
// a clean history of its own, nor an authenticated newcomer.
func TestCalibrationDirtyNetwork(t *testing.T) {
	f := newFixture(t, Config{})
	for _, d := range []string{"shop.test", "newcomer.test", "plain.test"} {
		f.rdap.Fail(d, rdaptest.ServerError)
	}
	learnN(t, f.rep, atIP(subject("x@spammer.test", "none"), "198.51.100.200"), 20, true)

	// Four clean verdicts of its own, judged on the dirty /24 and on a
	// clean one.
	shop := subject("orders@shop.test", "none")
	learnN(t, f.rep, atIP(shop, "203.0.113.5"), 4, false)
	clean := assess(t, f.rep, atIP(shop, "203.0.113.5"))
	dirty := assess(t, f.rep, shop)
	t.Logf("own history on the dirty /24: %s (%v): %s", dirty.Verdict, dirty.Score, texts(dirty))
	if rank(dirty.Verdict) < rank(Neutral) || dirty.Verdict != clean.Verdict {
		t.Errorf("own clean history on a dirty /24: %s (%v), %s on a clean one: %s", dirty.Verdict, dirty.Score, clean.Verdict, texts(dirty))
	}
	// An authenticated newcomer on the dirty /24: not rejected.
	if a := assess(t, f.rep, subject("hello@newcomer.test", "pass")); rank(a.Verdict) <= rank(Poor) {
		t.Errorf("authenticated newcomer: %s (%v): %s", a.Verdict, a.Score, texts(a))
	}
	// An unauthenticated newcomer whose SPF and DKIM fail: weak
	// evidence, short of Poor.
	p := subject("info@plain.test", "")
	p.Auth.SPF, p.Auth.DKIM = "fail", "fail"
	if a := assess(t, f.rep, p); rank(a.Verdict) <= rank(Poor) {
		t.Errorf("newcomer with SPF and DKIM failing: %s (%v): %s", a.Verdict, a.Score, texts(a))
	}
}

// Three verdicts are three verdicts: the decay between them must not
// leave the count at 2.999 and under the threshold. On the real bbolt
// store, the counts as it keeps them.
func TestCalibrationThreeVerdicts(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := storetest.NewClockAt(now0)
	r, err := New(Config{Now: clk.Now, FlushInterval: time.Hour}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spam := subject("x@three-spam.test", "none")
	ham := atIP(subject("x@three-ham.test", "none"), "203.0.113.9")
	for i := 0; i < 3; i++ {
		clk.Set(now0.Add(time.Duration(i) * time.Hour))
		learnN(t, r, spam, 1, true)
		learnN(t, r, ham, 1, false)
	}
	a := assess(t, r, spam)
	t.Logf("three spam verdicts: %s (%v): %s", a.Verdict, a.Score, texts(a))
	if !strings.Contains(texts(a), "three-spam.test mostly spam (0 clean, 3 spam)") {
		t.Errorf("three spam verdicts: %s: %s", a.Verdict, texts(a))
	}
	if a := assess(t, r, ham); !strings.Contains(texts(a), "three-ham.test some clean history (3 clean, 0 spam)") {
		t.Errorf("three clean verdicts: %s: %s", a.Verdict, texts(a))
	}
}

// A domain that proves its mail is its own (aligned DMARC pass) needs
// clearly more spam evidence than one that does not: four spam verdicts
// do not make it Poor, its clean mail counts, and a sender whose
// authenticated mail is overwhelmingly spam still ends up rejected.
func TestCalibrationAuthenticatedSpam(t *testing.T) {
	f := newFixture(t, Config{})
	for _, d := range []string{"esp.test", "noauth.test", "mixed.test", "spamco.test"} {
		f.rdap.Register(d, now0.AddDate(-5, 0, 0))
	}
	auth := subject("news@esp.test", "pass")
	learnN(t, f.rep, auth, 4, true)
	a := assess(t, f.rep, auth)
	t.Logf("authenticated, four spam verdicts: %s (%v): %s", a.Verdict, a.Score, texts(a))
	if rank(a.Verdict) <= rank(Poor) || strings.Contains(texts(a), "spam (") {
		t.Errorf("authenticated, four spam verdicts: %s (%v): %s", a.Verdict, a.Score, texts(a))
	}
	noauth := subject("news@noauth.test", "none")
	learnN(t, f.rep, noauth, 4, true)
	if b := assess(t, f.rep, noauth); b.Score >= a.Score || rank(b.Verdict) > rank(Poor) {
		t.Errorf("unauthenticated, four spam verdicts: %s (%v), authenticated %s (%v)", b.Verdict, b.Score, a.Verdict, a.Score)
	}
	// Half its mail clean: the clean half counts.
	mixed := subject("news@mixed.test", "pass")
	learnN(t, f.rep, mixed, 12, true)
	learnN(t, f.rep, mixed, 12, false)
	if c := assess(t, f.rep, mixed); rank(c.Verdict) <= rank(Poor) {
		t.Errorf("authenticated, half spam: %s (%v): %s", c.Verdict, c.Score, texts(c))
	}
	// Nothing but spam, many times over: Poor or worse.
	spamco := subject("deals@spamco.test", "pass")
	learnN(t, f.rep, spamco, 15, true)
	if d := assess(t, f.rep, spamco); rank(d.Verdict) > rank(Poor) {
		t.Errorf("authenticated, fifteen spam verdicts: %s (%v): %s", d.Verdict, d.Score, texts(d))
	}
}
