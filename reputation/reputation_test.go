package reputation

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"chainmail/checks/address"
	"chainmail/reputation/rdaptest"
	"chainmail/store"
	"chainmail/store/storetest"
	"chainmail/store/storetest/memstore"
)

var now0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type fixture struct {
	rep  *Reputation
	st   *memstore.Store
	rdap *rdaptest.Server
	clk  *storetest.Clock
	res  *fakeResolver
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{st: memstore.New(), rdap: rdaptest.Start(t), clk: storetest.NewClockAt(now0), res: &fakeResolver{answers: map[string]string{}}}
	ages := newTestRDAP(t, f.rdap, 500*time.Millisecond)
	cfg.Now = f.clk.Now
	cfg.FlushInterval = time.Hour // tests flush by hand
	r, err := New(cfg, f.st, ages, f.res)
	if err != nil {
		t.Fatal(err)
	}
	f.rep = r
	return f
}

func subject(from string, dmarc string) Subject {
	return Subject{
		ClientIP:   net.ParseIP("198.51.100.7"),
		ReverseDNS: "mail." + address.Domain(from),
		HELO:       "mail." + address.Domain(from),
		EnvFrom:    from,
		HeaderFrom: from,
		Auth:       Auth{DMARC: dmarc},
	}
}

func texts(a *Assessment) string {
	var out []string
	for _, e := range a.Evidence {
		out = append(out, e.Text)
	}
	return strings.Join(out, "; ")
}

// A two-day-old domain, never seen, failing DMARC: Awful.
func TestAssessYoungDomainFailingDMARC(t *testing.T) {
	f := newFixture(t, Config{})
	f.rdap.Register("fresh.test", now0.Add(-50*time.Hour))
	a, err := f.rep.Assess(context.Background(), subject("ceo@fresh.test", "fail"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Verdict != Awful || !a.AgeKnown || a.AgeDays != 2 || a.Youngest != "fresh.test" {
		t.Fatalf("%s age %v %d %s: %s", a.Verdict, a.AgeKnown, a.AgeDays, a.Youngest, texts(a))
	}
	if a.Score != -8 || a.Threat != ThreatNew || strings.Join(a.Suspected, ",") != "fresh.test" {
		t.Errorf("score %v threat %q suspected %v", a.Score, a.Threat, a.Suspected)
	}
	want := "fresh.test registered 2 days ago; fresh.test never seen before; DMARC fail"
	if got := texts(a); got != want {
		t.Errorf("evidence %q, want %q", got, want)
	}
	// The answer is cached in the domain's record: the next message asks
	// no RDAP server.
	if err := f.rep.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := f.rdap.Queries()
	if a, _ := f.rep.Assess(context.Background(), subject("ceo@fresh.test", "fail")); a.AgeDays != 2 || f.rdap.Queries() != q {
		t.Errorf("cached age: %d days, %d more queries", a.AgeDays, f.rdap.Queries()-q)
	}
}

// Long clean history with DMARC passing: Good. One bad report moves the
// sender down.
func TestAssessHistoryAndFeedback(t *testing.T) {
	f := newFixture(t, Config{})
	f.rdap.Register("old.test", now0.AddDate(-8, 0, 0))
	ctx := context.Background()
	s := subject("news@old.test", "pass")
	for d := 90; d >= 1; d -= 3 {
		s.At = now0.AddDate(0, 0, -d)
		f.rep.Learn(s, false)
	}
	if err := f.rep.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.At = time.Time{}
	a, err := f.rep.Assess(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if a.Verdict != Good || a.Threat != "" || len(a.Suspected) != 0 {
		t.Fatalf("%s (%v): %s", a.Verdict, a.Score, texts(a))
	}
	if !strings.Contains(texts(a), "old.test clean for 90 days") || a.AgeDays < 365*8-1 {
		t.Errorf("evidence %q age %d", texts(a), a.AgeDays)
	}
	if err := f.rep.Feedback(ctx, s, false); err != nil {
		t.Fatal(err)
	}
	b, _ := f.rep.Assess(ctx, s)
	if rank(b.Verdict) >= rank(a.Verdict) || b.Threat != ThreatSpam {
		t.Fatalf("after a bad report: %s (%v, threat %q), was %s: %s", b.Verdict, b.Score, b.Threat, a.Verdict, texts(b))
	}
	if !strings.Contains(texts(b), "old.test reported bad") {
		t.Errorf("evidence %q", texts(b))
	}
	// Reports fade: half a year later the bad report weighs little.
	f.clk.Set(now0.AddDate(0, 6, 0))
	c, _ := f.rep.Assess(ctx, s)
	if strings.Contains(texts(c), "reported bad") {
		t.Errorf("six months on the report still counts: %s", texts(c))
	}
}

func rank(v Verdict) int {
	for i, x := range Verdicts {
		if x == v {
			return i
		}
	}
	return -1
}

// Spam verdicts make a sender Poor or worse, with threat Spam.
func TestAssessSpamHistory(t *testing.T) {
	f := newFixture(t, Config{})
	f.rdap.Register("bulk.test", now0.AddDate(-2, 0, 0))
	s := subject("offers@bulk.test", "none")
	for i := 0; i < 6; i++ {
		f.rep.Learn(s, true)
	}
	f.rep.Flush(context.Background())
	a, _ := f.rep.Assess(context.Background(), s)
	if rank(a.Verdict) > rank(Poor) || a.Threat != ThreatSpam {
		t.Errorf("%s %q (%v): %s", a.Verdict, a.Threat, a.Score, texts(a))
	}
}

func TestAssessExceptions(t *testing.T) {
	f := newFixture(t, Config{Exceptions: []string{"Partner.TEST"}, ExceptionLists: map[string][]string{"vendors": {"vendor.test"}, "banks": {"bank.test"}}})
	f.rdap.Register("partner.test", now0.Add(-24*time.Hour))
	a, err := f.rep.Assess(context.Background(), subject("ap@mail.partner.test", "fail"))
	if err != nil || !a.Excepted || a.ExceptedBy != "mail.partner.test" || len(a.Evidence) != 0 {
		t.Fatalf("excepted %v by %q, %v: %s", a.Excepted, a.ExceptedBy, err, texts(a))
	}
	if f.rdap.Queries() != 0 || f.st.RoundTrips() != 0 {
		t.Errorf("an excepted sender cost %d RDAP queries, %d store round trips", f.rdap.Queries(), f.st.RoundTrips())
	}
	f.rdap.Register("vendor.test", now0.AddDate(-3, 0, 0))
	b, _ := f.rep.Assess(context.Background(), subject("billing@vendor.test", "pass"))
	if b.Excepted || strings.Join(b.ExceptionLists, ",") != "vendors" {
		t.Errorf("named lists %v (excepted %v)", b.ExceptionLists, b.Excepted)
	}
}

// The store is read in one round trip per message; writes wait for the
// flush.
func TestAssessOneRoundTrip(t *testing.T) {
	f := newFixture(t, Config{})
	f.rdap.Register("one.test", now0.AddDate(-1, 0, 0))
	s := subject("a@one.test", "pass")
	s.ReplyTo = "b@other.test"
	f.rdap.Register("other.test", now0.AddDate(-1, 0, 0))
	before := f.st.RoundTrips()
	if _, err := f.rep.Assess(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.rep.Learn(s, false)
	if got := f.st.RoundTrips() - before; got != 1 {
		t.Errorf("%d store round trips on the hot path, want 1", got)
	}
	f.rep.Flush(context.Background())
	if got := f.st.RoundTrips() - before; got != 3 {
		t.Errorf("%d round trips with the flush, want 3 (one read, one batched read and one batched write)", got)
	}
}

func TestAssessStoreDown(t *testing.T) {
	f := newFixture(t, Config{})
	f.st.SetDown(true)
	a, err := f.rep.Assess(context.Background(), subject("x@down.test", "pass"))
	if !errors.Is(err, store.ErrUnavailable) || !a.Unscannable {
		t.Fatalf("%v unscannable %v", err, a.Unscannable)
	}
	// Learnt verdicts wait for the store to come back.
	f.rep.Learn(subject("x@down.test", "pass"), false)
	if err := f.rep.Flush(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("flush while down: %v", err)
	}
	f.st.SetDown(false)
	if err := f.rep.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := f.st.Keys(); len(keys) != 3 {
		t.Errorf("keys after recovery: %v", keys)
	}
}

// RDAP failures leave the age unknown, are explained, and are not asked
// again before their back-off.
func TestAssessRDAPFailures(t *testing.T) {
	f := newFixture(t, Config{})
	f.rdap.Register("limited.test", now0.AddDate(-1, 0, 0))
	f.rdap.Fail("limited.test", rdaptest.RateLimited)
	ctx := context.Background()
	a, err := f.rep.Assess(ctx, subject("x@limited.test", "none"))
	if err != nil || a.AgeKnown || len(a.Failures) != 1 || !strings.Contains(a.Failures[0], "rate limited") {
		t.Fatalf("%v age %v failures %q", err, a.AgeKnown, a.Failures)
	}
	if a.Verdict != Weak {
		t.Errorf("verdict %s: %s", a.Verdict, texts(a))
	}
	f.rep.Flush(ctx)
	q := f.rdap.Queries()
	b, _ := f.rep.Assess(ctx, subject("x@limited.test", "none"))
	if f.rdap.Queries() != q || !strings.Contains(strings.Join(b.Failures, ""), "(cached)") {
		t.Errorf("asked again within Retry-After: %d queries, %q", f.rdap.Queries()-q, b.Failures)
	}
	// After the back-off (Retry-After 120 s) the server is asked again.
	f.rdap.Register("limited.test", now0.AddDate(-1, 0, 0))
	f.clk.Set(now0.Add(3 * time.Minute))
	c, _ := f.rep.Assess(ctx, subject("x@limited.test", "none"))
	if !c.AgeKnown || c.AgeDays < 365 {
		t.Errorf("after the back-off: %v %d", c.AgeKnown, c.AgeDays)
	}
}

func TestAssessLists(t *testing.T) {
	f := newFixture(t, Config{Lists: []List{
		{Name: "DBL", Zone: "dbl.test", Kind: ListBlock, Threat: "Phishing"},
		{Name: "NRD", Zone: "nrd.test", Kind: ListNew},
	}})
	f.res.answers["evil.test.dbl.test"] = "127.0.1.2"
	f.res.answers["newish.test.nrd.test"] = "127.0.0.2"
	f.res.answers["refused.test.dbl.test"] = "127.255.255.254"
	f.res.answers["slowdns.test.dbl.test"] = "timeout"
	f.rdap.Fail("newish.test", rdaptest.ServerError)
	ctx := context.Background()
	a, _ := f.rep.Assess(ctx, subject("x@evil.test", "none"))
	if a.Verdict != Awful || a.Threat != "Phishing" {
		t.Errorf("blocklisted: %s %q: %s", a.Verdict, a.Threat, texts(a))
	}
	b, _ := f.rep.Assess(ctx, subject("x@newish.test", "none"))
	if !strings.Contains(texts(b), "newish.test newly registered per NRD") || b.Verdict != Poor {
		t.Errorf("NRD: %s: %s", b.Verdict, texts(b))
	}
	c, _ := f.rep.Assess(ctx, subject("x@refused.test", "none"))
	if strings.Contains(texts(c), "listed on") || !strings.Contains(strings.Join(c.Failures, ";"), "refused") {
		t.Errorf("a refusal counted as a listing: %s", texts(c))
	}
	d, _ := f.rep.Assess(ctx, subject("x@slowdns.test", "none"))
	if !strings.Contains(strings.Join(d.Failures, ";"), "list DBL slowdns.test") {
		t.Errorf("a DNS failure was not reported: %q", d.Failures)
	}
}

func TestAssessUnknownAndUnscannable(t *testing.T) {
	f := newFixture(t, Config{})
	a, _ := f.rep.Assess(context.Background(), Subject{ClientIP: net.ParseIP("192.0.2.1"), HELO: "[192.0.2.1]"})
	if !a.Unscannable || a.Verdict != Unknown {
		t.Errorf("no domains: %s unscannable %v", a.Verdict, a.Unscannable)
	}
}

func TestDomainsAndSubjects(t *testing.T) {
	s := Subject{ReverseDNS: "Unknown", HELO: "MX.Example.COM.", EnvFrom: "<>", HeaderFrom: "Boss@Example.com", ReplyTo: ""}
	d := s.Domains()
	if d.ReverseDNS != "" || d.HELO != "mx.example.com" || d.EnvFrom != "" || d.HeaderFrom != "example.com" {
		t.Errorf("%+v", d)
	}
	if got := prefixOf(net.ParseIP("2001:db8:1:2::5")); got != "2001:db8:1::/48" {
		t.Errorf("prefix %s", got)
	}
}

func TestRecordDecay(t *testing.T) {
	half := 60 * 24 * time.Hour
	r := record{}.apply(delta{at: now0.Unix(), ham: 8}, half)
	r = r.decay(now0.Add(half).Unix(), half)
	if r.Ham < 3.99 || r.Ham > 4.01 {
		t.Errorf("after one half-life: %v", r.Ham)
	}
	// An old observation counts for what is left of it.
	r = r.apply(delta{at: now0.Unix(), spam: 2}, half)
	if r.Spam < 0.99 || r.Spam > 1.01 || r.First != now0.Unix() {
		t.Errorf("old observation: spam %v first %v", r.Spam, r.First)
	}
}
