package lists_test

import (
	"context"
	"testing"

	"chainmail/checks"
	"chainmail/checks/auth"
	"chainmail/checks/lists"
)

// An allow entry matches a sender only when it is authenticated: the
// header From by DMARC pass or a passing SPF/DKIM domain aligned with it,
// the envelope sender by SPF pass, any sender of a SASL client. A spoofed
// sender is not allowed (and the deny list still matches it).
func TestAllowSendersNeedAuth(t *testing.T) {
	cfg := lists.DefaultConfig()
	cfg.Allow = lists.List{Senders: []string{"boss@ok.example", "*@partner.example"}}
	cfg.Deny = lists.List{Senders: []string{"*@deny.example"}}
	c := newCheck(t, cfg)
	if got := c.DependsOn(); len(got) != 3 {
		t.Errorf("DependsOn %v, want spf dkim dmarc", got)
	}
	spf := func(st checks.Status, domain string) checks.Result {
		return checks.Result{Check: "spf", Status: st, Auth: auth.SPF{Identity: auth.IdentityMailFrom, Domain: domain}}
	}
	dkim := func(domains ...string) checks.Result {
		d := auth.DKIM{}
		for _, x := range domains {
			d.Signatures = append(d.Signatures, auth.Signature{Domain: x, Status: checks.StatusPass})
		}
		return checks.Result{Check: "dkim", Status: checks.StatusPass, Auth: d}
	}
	dmarc := func(st checks.Status) checks.Result { return checks.Result{Check: "dmarc", Status: st} }

	for _, tc := range []struct {
		name    string
		m       *checks.Message
		prior   checks.Results
		allowed bool
	}{
		{"spoofed From, nothing passed", msg("203.0.113.1", "x@evil.example", nil, "boss@ok.example"), nil, false},
		{"spoofed From, DMARC fail", msg("203.0.113.1", "x@evil.example", nil, "boss@ok.example"),
			checks.Results{spf(checks.StatusPass, "evil.example"), dkim("evil.example"), dmarc(checks.StatusFail)}, false},
		{"From with DMARC pass", msg("203.0.113.1", "x@bounce.example", nil, "boss@ok.example"),
			checks.Results{spf(checks.StatusFail, "bounce.example"), dkim("ok.example"), dmarc(checks.StatusPass)}, true},
		{"From with aligned DKIM, no DMARC record", msg("203.0.113.1", "x@bounce.example", nil, "boss@ok.example"),
			checks.Results{dkim("mail.ok.example"), dmarc(checks.StatusNone)}, true},
		{"From with aligned SPF, no DMARC record", msg("203.0.113.1", "x@ok.example", nil, "boss@ok.example"),
			checks.Results{spf(checks.StatusPass, "ok.example"), dmarc(checks.StatusNone)}, true},
		{"unaligned DKIM", msg("203.0.113.1", "x@bounce.example", nil, "boss@ok.example"),
			checks.Results{dkim("notok.example"), dmarc(checks.StatusNone)}, false},
		{"envelope sender with SPF pass", msg("203.0.113.1", "a@partner.example", nil, "a@elsewhere.example"),
			checks.Results{spf(checks.StatusPass, "partner.example")}, true},
		{"envelope sender with SPF softfail", msg("203.0.113.1", "a@partner.example", nil),
			checks.Results{spf(checks.StatusSoftfail, "partner.example")}, false},
		{"SASL client", func() *checks.Message {
			m := msg("203.0.113.1", "a@partner.example", nil)
			m.AuthUser = "a"
			return m
		}(), nil, true},
	} {
		r := c.Check(context.Background(), tc.m, tc.prior)
		if (r.Class == checks.ClassHam) != tc.allowed {
			t.Errorf("%s: %s %q, want allowed=%v", tc.name, r.Status, r.Reason, tc.allowed)
		}
	}
	// A spoofed deny-listed sender is still denied.
	if r := c.Check(context.Background(), msg("", "a@deny.example", nil), nil); r.Status != checks.StatusListed {
		t.Errorf("deny: %s", r.Status)
	}
	// Without sender allow entries, or with the setting off, the check
	// waits for nothing.
	cfg.AllowSendersNeedAuth = false
	if got := newCheck(t, cfg).DependsOn(); got != nil {
		t.Errorf("DependsOn %v with allow_senders_need_auth off", got)
	}
	if r := newCheck(t, cfg).Check(context.Background(), msg("", "x@evil.example", nil, "boss@ok.example"), nil); r.Class != checks.ClassHam {
		t.Errorf("allow_senders_need_auth off: spoofed From not allowed: %s", r.Status)
	}
}

// A DMARC pass authenticates only the author domains the dmarc check
// evaluated: an address in From that DMARC did not read (the two parsers
// may differ on a malformed From) is not allowed by it.
func TestAllowDMARCPassOnlyForItsDomains(t *testing.T) {
	cfg := lists.DefaultConfig()
	cfg.Allow = lists.List{Senders: []string{"boss@ok.example"}}
	c := newCheck(t, cfg)
	dmarc := func(domains ...string) checks.Result {
		return checks.Result{Check: "dmarc", Status: checks.StatusPass, Auth: auth.DMARC{Domains: domains}}
	}
	for _, tc := range []struct {
		from    string
		prior   checks.Results
		allowed bool
	}{
		{"boss@ok.example <me@evil.example>", checks.Results{dmarc("evil.example")}, false},
		{`"x" <me@evil.example> "<boss@ok.example>"`, checks.Results{dmarc("evil.example")}, false},
		{"Boss <boss@OK.example.>", checks.Results{dmarc("ok.example")}, true},
		{"Boss <boss@ok.example>", checks.Results{dmarc("ok.example", "evil.example")}, true},
	} {
		r := c.Check(context.Background(), msg("203.0.113.1", "me@evil.example", nil, tc.from), tc.prior)
		if (r.Class == checks.ClassHam) != tc.allowed {
			t.Errorf("From %s: %s %q, want allowed=%v", tc.from, r.Status, r.Reason, tc.allowed)
		}
	}
}

// A sender spelt with a trailing dot on its domain (which DMARC and mail
// clients read as the same domain) is the same sender to the deny list.
func TestDenyTrailingDot(t *testing.T) {
	c := newCheck(t, deny(lists.List{Senders: []string{"*@deny.example", "boss@bad.example"}}))
	for _, tc := range []struct{ env, from string }{
		{"", "x@deny.example."},
		{"", "Boss <BOSS@Bad.Example.>"},
		{"<x@deny.example.>", ""},
	} {
		var hf []string
		if tc.from != "" {
			hf = []string{tc.from}
		}
		if r := c.Check(context.Background(), msg("203.0.113.1", tc.env, nil, hf...), nil); r.Status != checks.StatusListed {
			t.Errorf("MAIL FROM %q From %q: %s, want listed", tc.env, tc.from, r.Status)
		}
	}
}
