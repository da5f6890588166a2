package reputation_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/reputation"
	"chainmail/checks/verdictlog"
	"chainmail/reputation/rdaptest"
	"chainmail/store"
	"chainmail/store/storetest/memstore"
)

func message(qid, from, replyTo string, ip string) *checks.Message {
	h := []checks.HeaderField{{Name: "From", Value: from}, {Name: "To", Value: "bob@example.org"}, {Name: "Subject", Value: "hello"}, {Name: "Date", Value: "Mon, 23 Nov 2026 10:00:00 +0000"}}
	if replyTo != "" {
		h = append(h, checks.HeaderField{Name: "Reply-To", Value: replyTo})
	}
	addr := reputationAddress(from)
	return &checks.Message{
		Envelope: checks.Envelope{ClientIP: net.ParseIP(ip), ClientName: "mail." + domainOf(addr), HELO: "mail." + domainOf(addr), MailFrom: addr, Rcpts: []string{"bob@example.org"}, QueueID: qid},
		Header:   h,
	}
}

func reputationAddress(from string) string {
	if i := strings.LastIndexByte(from, '<'); i >= 0 {
		return strings.Trim(from[i:], "<>")
	}
	return from
}

func domainOf(a string) string { return a[strings.LastIndexByte(a, '@')+1:] }

// engine builds the configuration's engine with the reputation check on
// a memory store and the test RDAP server; spf, dkim and dmarc are stood
// in for by the dmarc status given per message.
func engine(t *testing.T, srv *rdaptest.Server, st store.Store, extra string) *checks.Engine {
	t.Helper()
	boot := srv.BootstrapFile(t, t.TempDir(), "test")
	yml := fmt.Sprintf(`
rules:
  - name: sdr-reject
    if: 'sdr.verdict in ["awful", "poor"] && !sdr.excepted'
    action: reject
    reply: "550 5.7.1 Message rejected: sender domain reputation"
checks:
  - name: reputation
    options:
      rdap: {bootstrap_file: %q, timeout: 2s}
%s`, boot, extra)
	f, err := config.Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Build(config.Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	e.Observer = checks.VerdictFunc(verdictlog.Lines)
	return e
}

func lines(ls []string, prefix string) string {
	var out []string
	for _, l := range ls {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestCheckYoungDomainRejected(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("fresh-invoices.test", time.Now().Add(-50*time.Hour))
	st := memstore.New()
	e := engine(t, srv, st, "")
	m := message("4RepA01", `"Accounts" <pay@fresh-invoices.test>`, "", "203.0.113.9")
	v, ls := e.Evaluate(context.Background(), m)
	if v.Action != checks.Reject || v.Reply != "5.7.1 Message rejected: sender domain reputation" {
		t.Fatalf("%v %q (%s)\n%s", v.Action, v.Reply, v.Why, strings.Join(ls, "\n"))
	}
	want := "MID 4RepA01 SDR: Domains for which SDR is requested: reverse DNS host: mail.fresh-invoices.test, helo: mail.fresh-invoices.test, env-from: fresh-invoices.test, header-from: fresh-invoices.test, reply-to: Not Present\n" +
		"MID 4RepA01 SDR: Consolidated Sender Reputation: Poor, Threat Category: Newly Registered Domain, Suspected Domain(s) : fresh-invoices.test. Youngest Domain Age: 2 days for domain: fresh-invoices.test"
	if got := lines(ls, "MID 4RepA01 SDR: D") + "\n" + lines(ls, "MID 4RepA01 SDR: C"); got != want {
		t.Errorf("SDR lines\n%s\nwant\n%s", got, want)
	}
	if got := lines(ls, "MID 4RepA01 SDR: Evidence"); got != "MID 4RepA01 SDR: Evidence: fresh-invoices.test registered 2 days ago (-4); fresh-invoices.test never seen before (-1)" {
		t.Errorf("evidence line %q", got)
	}
	r, _ := v.Results.Get("reputation")
	if r.Facts["verdict"] != "poor" || r.Facts["age_days"] != 2 || r.Facts["excepted"] != false || r.Facts["unscannable"] != false || r.Status != checks.StatusFail {
		t.Errorf("facts %v status %s", r.Facts, r.Status)
	}
	if !strings.Contains(lines(ls, "Message 4RepA01"), "SDR_POOR 3.00") {
		t.Errorf("verdict line: %s", lines(ls, "Message 4RepA01"))
	}
}

// The check reads spf, dkim and dmarc results: a DMARC failure costs.
func TestCheckReadsAuthentication(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("spoofed.test", time.Now().AddDate(-5, 0, 0))
	c, err := reputation.New(reputation.Config{KeyPrefix: "rep:", RDAP: reputation.RDAP{Enabled: true, BootstrapFile: srv.BootstrapFile(t, t.TempDir(), "test"), Timeout: time.Second}}, memstore.New(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := message("4RepB01", "ceo@spoofed.test", "", "203.0.113.10")
	prior := checks.Results{{Check: "dmarc", Status: checks.StatusFail}, {Check: "spf", Status: checks.StatusFail}}
	r := c.Check(context.Background(), m, prior)
	ev := strings.Join(r.Facts["evidence"].([]string), "; ")
	if !strings.Contains(ev, "DMARC fail (-3)") || strings.Contains(ev, "SPF fail") {
		t.Errorf("evidence %q", ev)
	}
	if r.Facts["threat"] != "Spoofing" {
		t.Errorf("threat %v", r.Facts["threat"])
	}
}

// Clean mail teaches: after a season of clean verdicts the sender is Good.
func TestCheckLearnsFromVerdicts(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("regular.test", time.Now().AddDate(-3, 0, 0))
	st := memstore.New()
	e := engine(t, srv, st, "")
	m := message("4RepC01", "news@regular.test", "", "198.51.100.20")
	var c *reputation.Check
	for _, s := range e.Chain.Steps {
		if rc, ok := s.Check.(*reputation.Check); ok {
			c = rc
		}
	}
	v, _ := e.Evaluate(context.Background(), m)
	if v.Spam {
		t.Fatalf("first message: %v", v.Action)
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := strings.Join(st.Keys(), " "); keys != "rep:a:news@regular.test rep:d:regular.test rep:n:198.51.100.0/24" {
		t.Errorf("keys %s", keys)
	}
	// Feedback dated by the message: reports from an archive.
	for i := 0; i < 12; i++ {
		old := message("4RepC02", "news@regular.test", "", "198.51.100.20")
		old.Header[3].Value = time.Now().AddDate(0, 0, -90+i*7).Format(time.RFC1123Z)
		if err := c.Feedback(context.Background(), old, true); err != nil {
			t.Fatal(err)
		}
	}
	_, ls := e.Evaluate(context.Background(), message("4RepC03", "news@regular.test", "", "198.51.100.20"))
	if got := lines(ls, "MID 4RepC03 SDR: C"); !strings.Contains(got, "Consolidated Sender Reputation: Good") {
		t.Errorf("%s\n%s", got, lines(ls, "MID 4RepC03 SDR: E"))
	}
	if err := c.Feedback(context.Background(), message("4RepC04", "news@regular.test", "", "198.51.100.20"), false); err != nil {
		t.Fatal(err)
	}
	_, ls = e.Evaluate(context.Background(), message("4RepC05", "news@regular.test", "", "198.51.100.20"))
	if got := lines(ls, "MID 4RepC05 SDR: C"); strings.Contains(got, "Good") {
		t.Errorf("a bad report did not move the sender down: %s", got)
	}
}

func TestCheckExceptionLists(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("partner.test", time.Now().Add(-24*time.Hour))
	srv.Register("vendor.test", time.Now().Add(-24*time.Hour))
	st := memstore.New()
	e := engine(t, srv, st, `      exceptions: [partner.test]
      exception_lists: {vendors: [vendor.test]}
`)
	// A per-rule list: vendors are excepted from this one rule only.
	e.Policy.Rules = append(e.Policy.Rules, checks.Rule{Name: "young-not-vendor", If: `sdr.age_days >= 0 && sdr.age_days < 7 && !("vendors" in sdr.exception_lists)`, Action: checks.Quarantine})
	if err := e.Policy.Compile(e.Known); err != nil {
		t.Fatal(err)
	}
	v, ls := e.Evaluate(context.Background(), message("4RepD01", "ap@partner.test", "", "192.0.2.50"))
	if v.Action != checks.Accept {
		t.Errorf("excepted sender: %v (%s)", v.Action, v.Why)
	}
	if got := lines(ls, "MID 4RepD01 SDR"); got != "MID 4RepD01 SDR: Domains for which SDR is requested: reverse DNS host: mail.partner.test, helo: mail.partner.test, env-from: partner.test, header-from: partner.test, reply-to: Not Present\nMID 4RepD01 SDR: Evidence: partner.test is on the exception list, verdict skipped" {
		t.Errorf("excepted lines:\n%s", got)
	}
	v, _ = e.Evaluate(context.Background(), message("4RepD02", "billing@vendor.test", "", "192.0.2.51"))
	if v.Why.String() != "rule:sdr-reject" {
		t.Errorf("vendor: %v %s (the global rule still applies)", v.Action, v.Why)
	}
	r, _ := v.Results.Get("reputation")
	if fmt.Sprint(r.Facts["exception_lists"]) != "[vendors]" {
		t.Errorf("exception_lists %v", r.Facts["exception_lists"])
	}
}

// The store unreachable: temperror, the mail flows, nothing is learnt.
func TestCheckStoreDown(t *testing.T) {
	srv := rdaptest.Start(t)
	st := memstore.New()
	e := engine(t, srv, st, "")
	st.SetDown(true)
	v, ls := e.Evaluate(context.Background(), message("4RepE01", "x@down.test", "", "192.0.2.60"))
	r, _ := v.Results.Get("reputation")
	if r.Status != checks.StatusTemperror || !errors.Is(r.Err, store.ErrUnavailable) || v.Action != checks.Accept {
		t.Fatalf("%s %v → %v", r.Status, r.Err, v.Action)
	}
	if got := lines(ls, "MID 4RepE01 SDR: Evidence"); got != "MID 4RepE01 SDR: Evidence: state store unreachable, no verdict" {
		t.Errorf("%q", got)
	}
	if r.Facts["unscannable"] != true {
		t.Errorf("facts %v", r.Facts)
	}
}

// RDAP misbehaving: the age is unknown, the log says why, no crash.
func TestCheckRDAPFaults(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.SlowFor = 3 * time.Second
	for d, f := range map[string]rdaptest.Fault{"limited.test": rdaptest.RateLimited, "gone.test": rdaptest.NotFound, "junk.test": rdaptest.Garbage, "slow.test": rdaptest.Slow, "broken.test": rdaptest.ServerError} {
		srv.Register(d, time.Now().AddDate(-1, 0, 0))
		srv.Fail(d, f)
	}
	e := engine(t, srv, memstore.New(), "")
	for i, d := range []string{"limited.test", "gone.test", "junk.test", "slow.test", "broken.test"} {
		qid := fmt.Sprintf("4RepF%02d", i)
		v, ls := e.Evaluate(context.Background(), message(qid, "x@"+d, "", "192.0.2.70"))
		if got := lines(ls, "MID "+qid+" SDR: C"); !strings.HasSuffix(got, "Youngest Domain Age: unknown for domain: N/A") {
			t.Errorf("%s: %s", d, got)
		}
		if !strings.Contains(lines(ls, "Message "+qid), "SDR_RDAP_FAIL 0.00") || !strings.Contains(lines(ls, "MID "+qid+" SDR: E"), "rdap "+d+": ") {
			t.Errorf("%s: the failure is not in the log:\n%s", d, strings.Join(ls, "\n"))
		}
		if v.Action == checks.Reject {
			t.Errorf("%s rejected on an RDAP failure alone", d)
		}
	}
}
