package spamassassin_test

import (
	"context"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/spamassassin"
	"chainmail/checks/spamassassin/spamdtest"
	"chainmail/checks/verdictlog"
)

// engine builds the embedded default configuration with checks: replaced
// by entry (one YAML list item).
func engine(t *testing.T, entry string) *checks.Engine {
	t.Helper()
	f, err := config.Parse("test.yaml", []byte("checks:\n"+entry))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Build(config.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func evaluate(t *testing.T, e *checks.Engine, raw string) (*checks.Verdict, checks.Result) {
	t.Helper()
	v, _ := e.Evaluate(context.Background(), message(t, raw))
	r, ok := v.Results.Get("spamassassin")
	if !ok {
		t.Fatalf("no spamassassin result in %+v", v.Results)
	}
	return v, r
}

// TestChainDefaults: with the shipped policy, SpamAssassin's GTUBE verdict
// rejects the message and its verdict line names SpamAssassin; a spamd
// that is down or never answers (the chain's timeout) leaves the message
// to flow (accept), unscored — on_timeout defaults to continue.
func TestChainDefaults(t *testing.T) {
	sd := spamdtest.Shared(t)
	v, r := evaluate(t, engine(t, "  - name: spamassassin\n    options: {address: \""+sd.Addr+"\"}\n"), gtubeMail())
	if r.Status != checks.StatusSpam || v.Action != checks.Reject || v.Score < 1000 || v.Engine != spamassassin.Engine {
		t.Errorf("GTUBE: %s %v engine %q, result %+v", v.Action, v.Score, v.Engine, r)
	}
	line := verdictlog.Lines(message(t, gtubeMail()), v)
	if !strings.Contains(strings.Join(line, "\n"), "is spam, SpamAssassin (not cached, score=") {
		t.Errorf("lines %q", line)
	}

	down, err := spamdtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	down.Stop()
	v, r = evaluate(t, engine(t, "  - name: spamassassin\n    options: {address: \""+down.Addr+"\"}\n"), gtubeMail())
	if r.Status != checks.StatusTemperror || v.Action != checks.Accept || v.Score != 0 || v.Engine != "" {
		t.Errorf("spamd down: %s %v, result %+v", v.Action, v.Score, r)
	}

	v, r = evaluate(t, engine(t, "  - name: spamassassin\n    timeout: 300ms\n    options: {address: \""+silentServer(t)+"\", timeout: 1m}\n"), gtubeMail())
	if r.Status != checks.StatusTimeout || v.Action != checks.Accept || v.Score != 0 {
		t.Errorf("no answer: %s %v, result %+v", v.Action, v.Score, r)
	}
}

// TestChainSettings: the chain's own settings apply to the check as to
// every other: max_size skips a bigger message, scores overrides SA's
// score of a rule (and the check's score follows), decisive ends the
// chain on SpamAssassin's spam verdict, on_timeout: tempfail defers.
func TestChainSettings(t *testing.T) {
	sd := spamdtest.Shared(t)
	opts := "    options: {address: \"" + sd.Addr + "\"}\n"

	v, r := evaluate(t, engine(t, "  - name: spamassassin\n    max_size: 100\n"+opts), gtubeMail())
	if r.Status != checks.StatusSkipped || v.Action != checks.Accept {
		t.Errorf("max_size: %s, result %+v", v.Action, r)
	}

	v, r = evaluate(t, engine(t, "  - name: spamassassin\n    scores: {GTUBE: 4}\n"+opts), gtubeMail())
	if r.Status != checks.StatusSpam || r.Score >= 10 || r.Score < 4 || v.Score != r.Score || v.Action == checks.Reject {
		t.Errorf("scores: %s %v, result %+v", v.Action, v.Score, r)
	}

	v, r = evaluate(t, engine(t, "  - name: spamassassin\n    decisive: spam\n"+opts+"  - name: gtube\n"), gtubeMail())
	g, _ := v.Results.Get("gtube")
	if !r.Decided() || v.Why.String() != "decisive:spamassassin" || g.Status != checks.StatusSkipped {
		t.Errorf("decisive: why %s, result %+v, gtube %+v", v.Why, r, g)
	}

	v, r = evaluate(t, engine(t, "  - name: spamassassin\n    timeout: 300ms\n    on_timeout: tempfail\n    options: {address: \""+silentServer(t)+"\", timeout: 1m}\n"), gtubeMail())
	if r.Status != checks.StatusTimeout || v.Action != checks.Tempfail {
		t.Errorf("on_timeout tempfail: %s, result %+v", v.Action, r)
	}
}
