package dmarc

import (
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/auth"

	"github.com/emersion/go-msgauth/authres"
)

func spfResult(status checks.Status, identity, domain string) checks.Result {
	return checks.Result{Check: "spf", Status: status, Auth: auth.SPF{Identity: auth.Identity(identity), Domain: domain}}
}

func dkimResult(status checks.Status, pass []string, temp ...string) checks.Result {
	var d auth.DKIM
	for _, x := range pass {
		d.Signatures = append(d.Signatures, auth.Signature{Domain: x, Status: checks.StatusPass})
	}
	for _, x := range temp {
		d.Signatures = append(d.Signatures, auth.Signature{Domain: x, Status: checks.StatusTemperror})
	}
	return checks.Result{Check: "dkim", Status: status, Auth: d}
}

func msg(from ...string) *checks.Message {
	m := &checks.Message{Envelope: checks.Envelope{MailFrom: "bounce@example.com", HELO: "mx.example.com"}}
	for _, f := range from {
		m.Header = append(m.Header, checks.HeaderField{Name: "From", Value: f})
	}
	m.Header = append(m.Header, checks.HeaderField{Name: "Subject", Value: "x"})
	return m
}

// fixed returns a Rand that always answers n.
func fixed(n int) func(int) int { return func(int) int { return n } }

func newCheck(t testing.TB, cfg Config, r *fakeResolver) *Check {
	t.Helper()
	c, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func symbols(r checks.Result) []string {
	var out []string
	for _, s := range r.Symbols {
		out = append(out, s.Name)
	}
	return out
}

// zone is the DNS most cases use.
func zone() *fakeResolver {
	return &fakeResolver{
		TXT: map[string][]string{
			"_dmarc.example.com":           {"v=DMARC1; p=reject; rua=mailto:d@example.com"},
			"_dmarc.quarantine.test":       {"v=DMARC1; p=quarantine"},
			"_dmarc.none.test":             {"v=DMARC1; p=none"},
			"_dmarc.strict.test":           {"v=DMARC1; p=reject; adkim=s; aspf=s"},
			"_dmarc.sub.test":              {"v=DMARC1; p=reject; sp=quarantine"},
			"_dmarc.half.test":             {"v=DMARC1; p=reject; pct=50"},
			"_dmarc.zero.test":             {"v=DMARC1; p=quarantine; pct=0"},
			"_dmarc.multi.test":            {"v=DMARC1; p=reject", "v=DMARC1; p=none"},
			"_dmarc.mixed.test":            {"v=spf1 -all", "v=DMARC1; p=quarantine", "google-site-verification=x"},
			"_dmarc.bad.test":              {"v=DMARC1; p=bob"},
			"_dmarc.badrua.test":           {"v=DMARC1; p=bob; rua=mailto:r@badrua.test"},
			"_dmarc.notdmarc.test":         {"v=spf1 -all"},
			"_dmarc.evil.co.uk":            {"v=DMARC1; p=reject"},
			"_dmarc.xn--bcher-kva.example": {"v=DMARC1; p=reject"},
			"_dmarc.under_score.test":      {"v=DMARC1; p=quarantine"},
		},
		Fail: map[string]error{
			"_dmarc.timeout.test":   errTimeout,
			"_dmarc.servfail.test":  errServfail,
			"_dmarc.orgfail.test":   errServfail,
			"_dmarc.a.refused.test": &net.DNSError{Err: "refused"},
		},
	}
}

type tc struct {
	name    string
	from    []string
	mutate  func(*checks.Message)
	prior   checks.Results
	rand    int
	status  checks.Status
	policy  string
	syms    []string
	facts   map[string]any
	queries []string
}

func runCases(t *testing.T, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			z := zone()
			cfg := DefaultConfig()
			cfg.Rand = fixed(c.rand)
			ch := newCheck(t, cfg, z)
			m := msg(c.from...)
			if c.mutate != nil {
				c.mutate(m)
			}
			r := ch.Check(context.Background(), m, c.prior)
			if r.Status != c.status {
				t.Errorf("status = %s, want %s (%s; %v)", r.Status, c.status, r.Reason, r.Err)
			}
			if got := r.Facts["policy"]; got != c.policy {
				t.Errorf("policy = %q, want %q", got, c.policy)
			}
			if got := symbols(r); !slices.Equal(got, c.syms) {
				t.Errorf("symbols = %v, want %v", got, c.syms)
			}
			for k, v := range c.facts {
				if got := r.Facts[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("facts[%s] = %#v, want %#v", k, got, v)
				}
			}
			if c.queries != nil && !slices.Equal(z.Queries(), c.queries) {
				t.Errorf("queries = %v, want %v", z.Queries(), c.queries)
			}
			var ar *authres.DMARCResult
			ok := len(r.AuthResults) == 1
			if ok {
				ar, ok = r.AuthResults[0].(*authres.DMARCResult)
			}
			if !ok || string(ar.Value) != string(c.status) {
				t.Errorf("authres = %#v", r.AuthResults)
			}
		})
	}
}

func TestAlignment(t *testing.T) {
	dk := func(d ...string) checks.Result { return dkimResult(checks.StatusPass, d) }
	none := dkimResult(checks.StatusNone, nil)
	runCases(t, []tc{
		{name: "dkim aligned relaxed", from: []string{"Joe <joe@example.com>"},
			prior:  checks.Results{dk("mail.example.com"), spfResult(checks.StatusFail, "mailfrom", "other.net")},
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow},
			facts: map[string]any{"dkim_aligned": true, "spf_aligned": false, "domain": "example.com", "org_domain": "example.com", "record_domain": "example.com"}},
		{name: "spf aligned relaxed", from: []string{"joe@mail.example.com"},
			prior:  checks.Results{none, spfResult(checks.StatusPass, "mailfrom", "bounces.example.com")},
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow},
			facts: map[string]any{"spf_aligned": true, "dkim_aligned": false, "record_domain": "example.com", "published_policy": "reject"}},
		{name: "spf pass for helo does not count", from: []string{"joe@example.com"},
			prior:  checks.Results{none, spfResult(checks.StatusPass, "helo", "example.com")},
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "spf pass for helo counts for the null sender (RFC 7208 §2.4)", from: []string{"joe@example.com"},
			mutate: func(m *checks.Message) { m.MailFrom = "" },
			prior:  checks.Results{none, spfResult(checks.StatusPass, "helo", "mx.example.com")},
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow}},
		{name: "spf softfail does not count", from: []string{"joe@example.com"},
			prior:  checks.Results{none, spfResult(checks.StatusSoftfail, "mailfrom", "example.com")},
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "dkim pass for an unrelated domain", from: []string{"joe@example.com"},
			prior:  checks.Results{dk("example.net", "com"), spfResult(checks.StatusPass, "mailfrom", "example.org")},
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject},
			facts: map[string]any{"dkim_aligned": false, "spf_aligned": false, "sampled": true, "pct": 100}},
		{name: "strict dkim needs the exact domain", from: []string{"joe@strict.test"},
			prior:  checks.Results{dk("mail.strict.test"), spfResult(checks.StatusPass, "mailfrom", "b.strict.test")},
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "strict dkim exact", from: []string{"joe@strict.test"},
			prior:  checks.Results{dk("Strict.Test")},
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow}},
		{name: "public suffix is not an organization", from: []string{"joe@evil.co.uk"},
			prior:  checks.Results{dk("co.uk", "other.co.uk")},
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "no spf or dkim result at all", from: []string{"joe@example.com"},
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
	})
}

func TestPolicies(t *testing.T) {
	none := checks.Results{dkimResult(checks.StatusNone, nil)}
	runCases(t, []tc{
		{name: "quarantine", from: []string{"a@quarantine.test"}, prior: none,
			status: checks.StatusFail, policy: "quarantine", syms: []string{SymQuarantine}},
		{name: "p=none fails soft", from: []string{"a@none.test"}, prior: none,
			status: checks.StatusFail, policy: "none", syms: []string{SymSoftfail}},
		{name: "no record", from: []string{"a@norecord.test"}, prior: none,
			status: checks.StatusNone, policy: "", syms: []string{SymNA},
			facts:   map[string]any{"published_policy": "", "pct": 0, "record_domain": ""},
			queries: []string{"_dmarc.norecord.test"}},
		{name: "no record at a subdomain nor at the organization", from: []string{"a@x.y.norecord.test"}, prior: none,
			status: checks.StatusNone, policy: "", syms: []string{SymNA},
			queries: []string{"_dmarc.x.y.norecord.test", "_dmarc.norecord.test"}},
		{name: "subdomain gets sp", from: []string{"a@x.sub.test"}, prior: none,
			status: checks.StatusFail, policy: "quarantine", syms: []string{SymQuarantine},
			facts: map[string]any{"published_policy": "quarantine", "record_domain": "sub.test", "org_domain": "sub.test", "domain": "x.sub.test"}},
		{name: "organization itself gets p", from: []string{"a@sub.test"}, prior: none,
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "subdomain without sp gets p", from: []string{"a@deep.er.example.com"}, prior: none,
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "non-DMARC records are discarded", from: []string{"a@mixed.test"}, prior: none,
			status: checks.StatusFail, policy: "quarantine", syms: []string{SymQuarantine}},
		{name: "only a non-DMARC record: fall back to the organization", from: []string{"a@notdmarc.test"}, prior: none,
			status: checks.StatusNone, policy: "", syms: []string{SymNA}},
		{name: "two records", from: []string{"a@multi.test"}, prior: none,
			status: checks.StatusPermerror, policy: "", syms: []string{SymBadPolicy}},
		{name: "bad p without rua", from: []string{"a@bad.test"}, prior: none,
			status: checks.StatusPermerror, policy: "", syms: []string{SymBadPolicy}},
		{name: "bad p with rua is p=none (RFC 7489 §6.6.3 step 6)", from: []string{"a@badrua.test"}, prior: none,
			status: checks.StatusFail, policy: "none", syms: []string{SymSoftfail}},
	})
}

func TestSampling(t *testing.T) {
	none := checks.Results{dkimResult(checks.StatusNone, nil)}
	runCases(t, []tc{
		{name: "pct=50 draw 49 is sampled", from: []string{"a@half.test"}, prior: none, rand: 49,
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject},
			facts: map[string]any{"sampled": true, "pct": 50, "published_policy": "reject"}},
		{name: "pct=50 draw 50 gets the next lower policy", from: []string{"a@half.test"}, prior: none, rand: 50,
			status: checks.StatusFail, policy: "quarantine", syms: []string{SymQuarantine},
			facts: map[string]any{"sampled": false, "pct": 50, "published_policy": "reject"}},
		{name: "pct=0 quarantine becomes none", from: []string{"a@zero.test"}, prior: none, rand: 0,
			status: checks.StatusFail, policy: "none", syms: []string{SymSoftfail},
			facts: map[string]any{"sampled": false, "pct": 0}},
		{name: "a pass is not sampled", from: []string{"a@half.test"}, rand: 99,
			prior:  checks.Results{dkimResult(checks.StatusPass, []string{"half.test"})},
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow},
			facts: map[string]any{"sampled": true}},
	})
	// Over many draws the default source samples about pct percent.
	c := newCheck(t, DefaultConfig(), zone())
	in := 0
	for range 2000 {
		r := c.Check(context.Background(), msg("a@half.test"), nil)
		if r.Facts["sampled"].(bool) {
			in++
		}
	}
	if in < 850 || in > 1150 {
		t.Errorf("%d of 2000 sampled at pct=50", in)
	}
}

func TestTemperror(t *testing.T) {
	none := dkimResult(checks.StatusNone, nil)
	runCases(t, []tc{
		{name: "DNS timeout: policy unknown", from: []string{"a@timeout.test"}, prior: checks.Results{none},
			status: checks.StatusTemperror, policy: "", syms: []string{SymDNSFail},
			facts: map[string]any{"temperror_policy_unknown": true, "published_policy": ""}},
		{name: "SERVFAIL", from: []string{"a@servfail.test"}, prior: checks.Results{none},
			status: checks.StatusTemperror, policy: "", syms: []string{SymDNSFail},
			facts: map[string]any{"temperror_policy_unknown": true}},
		{name: "SERVFAIL at the organization", from: []string{"a@x.orgfail.test"}, prior: checks.Results{none},
			status: checks.StatusTemperror, policy: "", syms: []string{SymDNSFail},
			queries: []string{"_dmarc.x.orgfail.test", "_dmarc.orgfail.test"}},
		{name: "REFUSED (no flag set) is temporary", from: []string{"a@a.refused.test"}, prior: checks.Results{none},
			status: checks.StatusTemperror, policy: "", syms: []string{SymDNSFail}},
		{name: "DNS timeout but DKIM aligned: still unknown policy", from: []string{"a@timeout.test"},
			prior:  checks.Results{dkimResult(checks.StatusPass, []string{"timeout.test"})},
			status: checks.StatusTemperror, policy: "", syms: []string{SymDNSFail}},
		{name: "aligned DKIM key unavailable: reject not decidable", from: []string{"a@example.com"},
			prior:  checks.Results{dkimResult(checks.StatusTemperror, nil, "example.com")},
			status: checks.StatusTemperror, policy: "reject", syms: []string{SymDNSFail},
			facts: map[string]any{"temperror_policy_unknown": false, "published_policy": "reject"}},
		{name: "unaligned DKIM temperror does not matter", from: []string{"a@example.com"},
			prior:  checks.Results{dkimResult(checks.StatusTemperror, nil, "example.net")},
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "aligned SPF temperror", from: []string{"a@example.com"},
			prior:  checks.Results{none, spfResult(checks.StatusTemperror, "mailfrom", "example.com")},
			status: checks.StatusTemperror, policy: "reject", syms: []string{SymDNSFail}},
		{name: "dkim check timed out", from: []string{"a@example.com"},
			prior:  checks.Results{{Check: "dkim", Status: checks.StatusTimeout}},
			status: checks.StatusTemperror, policy: "reject", syms: []string{SymDNSFail}},
		{name: "temperror elsewhere but DKIM passed", from: []string{"a@example.com"},
			prior:  checks.Results{dkimResult(checks.StatusPass, []string{"example.com"}, "example.com"), spfResult(checks.StatusTemperror, "mailfrom", "example.com")},
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow}},
	})
}

func TestAuthorProblems(t *testing.T) {
	none := checks.Results{dkimResult(checks.StatusNone, nil)}
	pass := func(d ...string) checks.Results { return checks.Results{dkimResult(checks.StatusPass, d)} }
	runCases(t, []tc{
		{name: "no From", prior: none,
			status: checks.StatusPermerror, policy: "", syms: []string{SymBadFrom},
			facts: map[string]any{"from_problem": "no From field", "domain": ""}},
		{name: "empty group", from: []string{"undisclosed-recipients:;"}, prior: none,
			status: checks.StatusPermerror, policy: "", syms: []string{SymBadFrom}},
		{name: "no domain", from: []string{"joe"}, prior: none,
			status: checks.StatusPermerror, policy: "", syms: []string{SymBadFrom}},
		{name: "domain literal", from: []string{"joe@[192.0.2.1]"}, prior: none,
			status: checks.StatusPermerror, policy: "", syms: []string{SymBadFrom}},
		{name: "two From fields: the failing one decides", from: []string{"a@none.test", "b@example.com"}, prior: pass("none.test"),
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject, SymBadFrom},
			facts: map[string]any{"domain": "example.com", "domains": []string{"none.test", "example.com"}, "from_problem": "2 From fields"}},
		{name: "two From fields both passing", from: []string{"a@none.test", "b@example.com"}, prior: pass("none.test", "example.com"),
			status: checks.StatusPass, policy: "none", syms: []string{SymAllow, SymBadFrom}},
		{name: "two addresses: the strictest failing policy", from: []string{"a@quarantine.test, b@example.com, c@none.test"}, prior: none,
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject, SymBadFrom},
			facts: map[string]any{"domain": "example.com", "from_problem": "3 addresses in From"}},
		{name: "a spoofed domain hidden in a second address", from: []string{"a@none.test, ceo@example.com"}, prior: pass("none.test"),
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject, SymBadFrom}},
		{name: "a@b@c evaluates both", from: []string{"x@none.test@example.com"}, prior: pass("none.test"),
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject, SymBadFrom}},
		{name: "quoted display name with @ is only a name", from: []string{`"ceo@example.com" <x@none.test>`}, prior: pass("none.test"),
			status: checks.StatusPass, policy: "none", syms: []string{SymAllow},
			facts: map[string]any{"domain": "none.test", "from_problem": ""}},
		{name: "unquoted display name with @ is malformed, the angle address counts", from: []string{`ceo@example.com <x@none.test>`}, prior: pass("none.test"),
			status: checks.StatusPass, policy: "none", syms: []string{SymAllow, SymBadFrom},
			facts: map[string]any{"domain": "none.test", "from_problem": "malformed From"}},
		{name: "IDN U-label From, A-label DKIM", from: []string{"Jö <jo@Bücher.example>"}, prior: pass("xn--bcher-kva.example"),
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow},
			facts:   map[string]any{"domain": "xn--bcher-kva.example"},
			queries: []string{"_dmarc.xn--bcher-kva.example"}},
		{name: "IDN A-label From, U-label DKIM", from: []string{"jo@XN--BCHER-KVA.example"}, prior: pass("bücher.example"),
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow}},
		{name: "IDN fails", from: []string{"jo@bücher.example"}, prior: none,
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject}},
		{name: "invalid IDN", from: []string{"jo@xn--zz.example"}, prior: none,
			status: checks.StatusPermerror, policy: "", syms: []string{SymBadFrom}},
		{name: "trailing dot", from: []string{"jo@example.com."}, prior: pass("example.com"),
			status: checks.StatusPass, policy: "reject", syms: []string{SymAllow}},
		// A label with "_" or other atext is a domain DNS can be asked
		// about: it is evaluated, never a permerror that would let a
		// spoofed subdomain of a p=reject domain through.
		{name: "underscore in a subdomain falls back to the organizational domain", from: []string{"ceo@Mail_GW.example.com"}, prior: none,
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject},
			facts:   map[string]any{"domain": "mail_gw.example.com", "record_domain": "example.com", "from_problem": ""},
			queries: []string{"_dmarc.mail_gw.example.com", "_dmarc.example.com"}},
		{name: "underscore domain with its own record", from: []string{"x@under_score.test"}, prior: none,
			status: checks.StatusFail, policy: "quarantine", syms: []string{SymQuarantine},
			facts: map[string]any{"domain": "under_score.test", "record_domain": "under_score.test"}},
		{name: "underscore domain aligned", from: []string{"x@under_score.test"}, prior: pass("under_score.test"),
			status: checks.StatusPass, policy: "quarantine", syms: []string{SymAllow}},
		{name: "other atext and a leading hyphen", from: []string{"x@-a+b.example.com"}, prior: none,
			status: checks.StatusFail, policy: "reject", syms: []string{SymReject},
			facts: map[string]any{"domain": "-a+b.example.com", "record_domain": "example.com"}},
	})
	t.Run("too many author domains", func(t *testing.T) {
		var addrs []string
		for _, d := range strings.Fields("a b c d e f g h i j k l") {
			addrs = append(addrs, "x@"+d+".test")
		}
		z := zone()
		r := newCheck(t, DefaultConfig(), z).Check(context.Background(), msg(strings.Join(addrs, ", ")), nil)
		if r.Status != checks.StatusPermerror || !errors.Is(r.Err, ErrTooManyAuthors) || !slices.Equal(symbols(r), []string{SymBadFrom}) {
			t.Errorf("%s %v %v", r.Status, r.Err, symbols(r))
		}
		if len(z.Queries()) != 0 {
			t.Errorf("queries %v", z.Queries())
		}
	})
}

// TestRecordSizes: TXT records at and past the size limits parse in
// bounded time to a defined result.
func TestRecordSizes(t *testing.T) {
	for name, tc := range map[string]struct {
		txt    []string
		status checks.Status
	}{
		"64 KiB of unknown tags":     {[]string{"v=DMARC1; p=reject; " + strings.Repeat("x=y;", 16000)}, checks.StatusFail},
		"64 KiB rua list":            {[]string{"v=DMARC1; p=reject; rua=" + strings.Repeat("mailto:a@b.c,", 5000)}, checks.StatusFail},
		"64 KiB of semicolons":       {[]string{"v=DMARC1;" + strings.Repeat(";", 65000) + "p=quarantine"}, checks.StatusFail},
		"64 KiB value":               {[]string{"v=DMARC1; p=" + strings.Repeat("r", 65000)}, checks.StatusPermerror},
		"many records, one is DMARC": {append(slices.Repeat([]string{strings.Repeat("z", 255)}, 200), "v=DMARC1; p=none"), checks.StatusFail},
		"empty record":               {[]string{""}, checks.StatusNone},
	} {
		t.Run(name, func(t *testing.T) {
			z := &fakeResolver{TXT: map[string][]string{"_dmarc.big.test": tc.txt}}
			start := time.Now()
			r := newCheck(t, DefaultConfig(), z).Check(context.Background(), msg("a@big.test"), nil)
			if r.Status != tc.status {
				t.Errorf("status %s, want %s (%s)", r.Status, tc.status, r.Reason)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newCheck(t, DefaultConfig(), zone()).Check(ctx, msg("a@example.com"), nil)
	if r.Status != checks.StatusTemperror || r.Facts["temperror_policy_unknown"] != true {
		t.Errorf("%s %v", r.Status, r.Facts)
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{Scores: map[string]float64{"NOPE": 1}}, zone()); err == nil {
		t.Error("unknown symbol accepted")
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Error("nil resolver accepted")
	}
	c := newCheck(t, Config{Scores: map[string]float64{SymReject: 5}}, zone())
	if c.scores[SymReject] != 5 || c.scores[SymAllow] != -0.5 || c.cfg.MaxAuthorDomains != 10 || c.rand == nil {
		t.Errorf("%+v", c)
	}
	if !slices.Equal(c.DependsOn(), []string{"spf", "dkim"}) || c.Name() != "dmarc" {
		t.Error(c.DependsOn(), c.Name())
	}
	var _ checks.Dependent = c
	var _ checks.Check = c
}

// TestRuleFacts: the facts work in the policy rules the design names.
func TestRuleFacts(t *testing.T) {
	p := checks.DefaultPolicy()
	p.Rules = []checks.Rule{
		{Name: "dmarc-reject", If: `dmarc.policy == "reject" && dmarc.status == "fail"`, Action: checks.Reject, Code: "550", Reply: "5.7.1 Email rejected per DMARC policy"},
		{Name: "dmarc-tempfail", If: `dmarc.status == "temperror" && (dmarc.policy == "reject" || dmarc.temperror_policy_unknown)`, Action: checks.Tempfail},
	}
	known := []string{"spf", "dkim", "dmarc"}
	if err := p.Compile(known); err != nil {
		t.Fatal(err)
	}
	c := newCheck(t, DefaultConfig(), zone())
	for from, want := range map[string]checks.Action{
		"a@example.com":     checks.Reject,
		"a@timeout.test":    checks.Tempfail,
		"a@quarantine.test": checks.Accept,
		"a@norecord.test":   checks.Accept,
	} {
		m := msg(from)
		rs := checks.Results{c.Check(context.Background(), m, nil)}
		if v := p.Decide(m, rs, known); v.Action != want {
			t.Errorf("%s: %s (%s), want %s", from, v.Action, v.Why, want)
		}
	}
}

func TestNormalizeDomain(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Example.COM.", "example.com"},
		{"Mail_GW.Example.com", "mail_gw.example.com"},
		{"zero_pct.com", "zero_pct.com"},
		{"_dmarc.example.com", "_dmarc.example.com"},
		{"-a+b.example.com", "-a+b.example.com"},
		{"a!#$%&'*+-/=?^_`{|}~z.test", "a!#$%&'*+-/=?^_`{|}~z.test"},
		{"Bücher.Example", "xn--bcher-kva.example"},
		{strings.Repeat("a", 63) + ".test", strings.Repeat("a", 63) + ".test"},
		// Not a domain.
		{"", ""},
		{".", ""},
		{"a..b", ""},
		{".a.b", ""},
		{strings.Repeat("a", 64) + ".test", ""},
		{strings.Repeat("a.", 127) + "ab", ""}, // 255 octets
		{`a"b.test`, ""},
		{`a\b.test`, ""},
		{"a b.test", ""},
		{"a(b).test", ""},
		{"a@b.test", ""},
		{"a\x00b.test", ""},
		{"xn--zz.example", ""},
		{"b\xfccher.example", ""}, // not UTF-8
	} {
		got, err := NormalizeDomain(c.in)
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if err == nil {
			if again, err := NormalizeDomain(got); err != nil || again != got {
				t.Errorf("NormalizeDomain(%q) = %q, %v: not a fixed point", got, again, err)
			}
		}
	}
}
