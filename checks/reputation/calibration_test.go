package reputation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/config"
	"chainmail/checks/reputation"
	"chainmail/checks/verdictlog"
	"chainmail/reputation/rdaptest"
	"chainmail/store/storetest/memstore"
)

// defaultEngine is the embedded default configuration — its rules, among
// them sdr-reject — with the chain spf, dkim, dmarc, reputation on a
// memory store, DNS as data (dns) and the test RDAP server.
func defaultEngine(t *testing.T, srv *rdaptest.Server, dns map[string][]string) (*checks.Engine, *reputation.Check) {
	t.Helper()
	yml := fmt.Sprintf(`
checks:
  - name: spf
  - name: dkim
  - name: dmarc
  - name: reputation
    options:
      rdap: {bootstrap_file: %q, timeout: 2s}
`, srv.BootstrapFile(t, t.TempDir(), "test"))
	f, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	if !hasRule(f, "sdr-reject") {
		t.Fatal("the default configuration has no sdr-reject rule")
	}
	e, err := f.Build(config.Deps{Store: memstore.New(), Resolver: &checktest.Resolver{TXT: dns}})
	if err != nil {
		t.Fatal(err)
	}
	e.Observer = checks.VerdictFunc(verdictlog.Lines)
	for _, s := range e.Chain.Steps {
		if c, ok := s.Check.(*reputation.Check); ok {
			return e, c
		}
	}
	t.Fatal("no reputation check in the chain")
	return nil, nil
}

func hasRule(f *config.File, name string) bool {
	for _, r := range f.Rules {
		if r.Name == name {
			return true
		}
	}
	return false
}

// spamVerdict is a final spam verdict another check or rule reached
// (the reputation check itself said verdict).
func spamVerdict(verdict string) *checks.Verdict {
	return &checks.Verdict{Action: checks.Reject, Spam: true, Results: checks.Results{
		{Check: "reputation", Status: checks.StatusFail, Facts: map[string]any{"verdict": verdict}},
	}}
}

func sdrOf(t *testing.T, v *checks.Verdict) (string, string) {
	t.Helper()
	r, ok := v.Results.Get("reputation")
	if !ok {
		t.Fatal("no reputation result")
	}
	return fmt.Sprint(r.Facts["verdict"]), strings.Join(r.Facts["evidence"].([]string), "; ")
}

// Mailing-list mail: SPF fails at the list's server, DMARC fails, the
// author's domain publishes p=none, RDAP cannot tell the age. The default
// rules deliver it.
func TestDefaultRulesFirstContactDMARCNone(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("members.test", time.Now().AddDate(-6, 0, 0))
	srv.Fail("members.test", rdaptest.ServerError)
	e, _ := defaultEngine(t, srv, map[string][]string{
		"members.test":        {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.members.test": {"v=DMARC1; p=none"},
	})
	v, ls := e.Evaluate(context.Background(), message("4CalA01", "Ann <ann@members.test>", "", "203.0.113.77"))
	verdict, ev := sdrOf(t, v)
	if v.Action != checks.Accept || verdict == "poor" || verdict == "awful" {
		t.Errorf("%v (%s), sdr %s: %s\n%s", v.Action, v.Why, verdict, ev, strings.Join(ls, "\n"))
	}
	if !strings.Contains(ev, "DMARC fail (p=none)") {
		t.Errorf("evidence %q", ev)
	}
}

// One report moves a sender down, not to Awful.
func TestDefaultRulesOneBadReport(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("once.test", time.Now().AddDate(-4, 0, 0))
	e, c := defaultEngine(t, srv, map[string][]string{"once.test": {"v=spf1 ip4:198.51.100.0/24 -all"}})
	m := message("4CalB01", "offers@once.test", "", "198.51.100.31")
	before, _ := e.Evaluate(context.Background(), m)
	if err := c.Feedback(context.Background(), m, false); err != nil {
		t.Fatal(err)
	}
	after, _ := e.Evaluate(context.Background(), m)
	vb, _ := sdrOf(t, before)
	va, ev := sdrOf(t, after)
	if va == "awful" || va == vb {
		t.Errorf("one report: %s (was %s): %s", va, vb, ev)
	}
}

// Another sender's spam on the /24: a newcomer with weak evidence only
// (SPF failing, no DMARC record), an authenticated newcomer, and a
// domain with clean history of its own are all delivered.
func TestDefaultRulesDirtyNetwork(t *testing.T) {
	srv := rdaptest.Start(t)
	for _, d := range []string{"spammer.test", "plain.test", "signed.test", "regular.test"} {
		srv.Register(d, time.Now().AddDate(-3, 0, 0))
		srv.Fail(d, rdaptest.ServerError)
	}
	e, c := defaultEngine(t, srv, map[string][]string{
		"plain.test":         {"v=spf1 ip4:192.0.2.0/24 -all"},
		"signed.test":        {"v=spf1 ip4:198.51.100.0/24 -all"},
		"_dmarc.signed.test": {"v=DMARC1; p=reject"},
		"regular.test":       {"v=spf1 ip4:198.51.100.0/24 -all"},
	})
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		c.Learn(ctx, message("4CalC00", "x@spammer.test", "", "198.51.100.200"), spamVerdict("weak"))
	}
	for i := 0; i < 4; i++ {
		c.Learn(ctx, message("4CalC00", "orders@regular.test", "", "203.0.113.40"), &checks.Verdict{Action: checks.Accept, Results: checks.Results{{Check: "reputation", Status: checks.StatusPass, Facts: map[string]any{"verdict": "neutral"}}}})
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, from := range []string{"info@plain.test", "hello@signed.test", "orders@regular.test"} {
		v, _ := e.Evaluate(ctx, message(fmt.Sprintf("4CalC%02d", i+1), from, "", "198.51.100.9"))
		verdict, ev := sdrOf(t, v)
		if v.Action != checks.Accept {
			t.Errorf("%s on the dirty /24: %v (%s), sdr %s: %s", from, v.Action, v.Why, verdict, ev)
		}
		if from == "orders@regular.test" && verdict != "neutral" && verdict != "good" {
			t.Errorf("%s with clean history of its own: %s: %s", from, verdict, ev)
		}
	}
}

// An authenticated domain with four spam verdicts keeps its clean mail
// flowing; a sender the check judged Poor does not learn its own
// rejections back as spam.
func TestDefaultRulesAuthenticatedSpam(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("esp.test", time.Now().AddDate(-5, 0, 0))
	srv.Register("bulk.test", time.Now().AddDate(-5, 0, 0))
	e, c := defaultEngine(t, srv, map[string][]string{
		"esp.test":        {"v=spf1 ip4:198.51.100.0/24 -all"},
		"_dmarc.esp.test": {"v=DMARC1; p=reject"},
		"bulk.test":       {"v=spf1 ip4:203.0.113.0/24 -all"},
	})
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		c.Learn(ctx, message("4CalD00", "news@esp.test", "", "198.51.100.60"), spamVerdict("neutral"))
	}
	c.Flush(ctx)
	v, ls := e.Evaluate(ctx, message("4CalD01", "news@esp.test", "", "198.51.100.60"))
	verdict, ev := sdrOf(t, v)
	if v.Action != checks.Accept || !strings.Contains(ev, "aligned DMARC pass") {
		t.Errorf("authenticated, four spam verdicts: %v (%s), sdr %s: %s\n%s", v.Action, v.Why, verdict, ev, strings.Join(ls, "\n"))
	}

	// Unauthenticated and all spam: Poor, rejected — and its rejections
	// are not learned as new spam.
	for i := 0; i < 6; i++ {
		c.Learn(ctx, message("4CalD02", "deals@bulk.test", "", "203.0.113.61"), spamVerdict("weak"))
	}
	c.Flush(ctx)
	first, _ := e.Evaluate(ctx, message("4CalD03", "deals@bulk.test", "", "203.0.113.61"))
	for i := 0; i < 5; i++ {
		e.Evaluate(ctx, message("4CalD04", "deals@bulk.test", "", "203.0.113.61"))
	}
	c.Flush(ctx)
	later, _ := e.Evaluate(ctx, message("4CalD05", "deals@bulk.test", "", "203.0.113.61"))
	v1, ev1 := sdrOf(t, first)
	_, ev2 := sdrOf(t, later)
	if first.Action != checks.Reject || v1 != "poor" {
		t.Errorf("all spam, unauthenticated: %v %s: %s", first.Action, v1, ev1)
	}
	if ev1 != ev2 {
		t.Errorf("the check learned its own rejections:\n%s\n%s", ev1, ev2)
	}
}
