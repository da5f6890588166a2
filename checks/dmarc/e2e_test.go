package dmarc

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/dkim"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/checks/spf"

	msgauth "github.com/emersion/go-msgauth/dkim"
	mdns "github.com/miekg/dns"
)

// e2eKey is the DKIM key published in testdata/e2e.zone.
var e2eKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))

// e2e is the spf → dkim → dmarc chain over a real DNS server on
// 127.0.0.1 serving testdata/e2e.zone, with the rules the design names.
type e2e struct {
	srv    *zoneserver.Server
	chain  *checks.Chain
	policy *checks.Policy
	known  []string
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	srv := dnstest.Start(t, "testdata/e2e.zone")
	r, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: 300 * time.Millisecond, Retries: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := spf.New(spf.DefaultConfig(), r)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dkim.New(dkim.DefaultConfig(), r)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Rand = fixed(0)
	d, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	p := checks.DefaultPolicy()
	p.Rules = []checks.Rule{
		{Name: "dmarc-reject", If: `dmarc.policy == "reject" && dmarc.status == "fail"`, Action: checks.Reject, Code: "550", Reply: "5.7.1 Email rejected per DMARC policy"},
		{Name: "dmarc-quarantine", If: `dmarc.policy == "quarantine" && dmarc.status == "fail"`, Action: checks.Quarantine},
		{Name: "dmarc-tempfail", If: `dmarc.status == "temperror" && (dmarc.policy == "reject" || dmarc.temperror_policy_unknown)`, Action: checks.Tempfail, Code: "451", Reply: "4.7.1 DMARC policy could not be checked, try again later"},
	}
	e := &e2e{srv: srv, policy: p, known: []string{"spf", "dkim", "dmarc"},
		chain: &checks.Chain{Steps: []checks.Step{{Check: s, Timeout: 3 * time.Second}, {Check: k, Timeout: 3 * time.Second}, {Check: d, Timeout: 3 * time.Second}}}}
	if err := p.Compile(e.known); err != nil {
		t.Fatal(err)
	}
	return e
}

const e2eBody = "Subject: hello\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHi.\r\n"

func (e *e2e) run(t *testing.T, ip, helo, mailFrom, raw string) (checks.Results, *checks.Verdict) {
	t.Helper()
	sp := checks.NewSpool(0, t.TempDir())
	defer sp.Close()
	m, err := checks.ReadMessage(strings.NewReader(raw), sp)
	if err != nil {
		t.Fatal(err)
	}
	m.Envelope = checks.Envelope{ClientIP: net.ParseIP(ip), HELO: helo, MailFrom: mailFrom, Rcpts: []string{"rcpt@example.org"}, QueueID: "Q1"}
	rs := e.chain.Run(context.Background(), m)
	return rs, e.policy.Decide(m, rs, e.known)
}

func signWith(t *testing.T, domain, raw string) string {
	t.Helper()
	var out bytes.Buffer
	err := msgauth.Sign(&out, strings.NewReader(raw), &msgauth.SignOptions{Domain: domain, Selector: "sel", Signer: e2eKey,
		HeaderCanonicalization: msgauth.CanonicalizationRelaxed, BodyCanonicalization: msgauth.CanonicalizationRelaxed})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("real DNS server")
	}
	e := newE2E(t)
	type want struct {
		spf, dkim, dmarc checks.Status
		policy           string
		action           checks.Action
	}
	for _, tc := range []struct {
		name               string
		ip, helo, mailFrom string
		raw                string
		fault              func()
		want               want
	}{
		{"aligned spf and dkim", "192.0.2.10", "mx.example.com", "bounce@example.com",
			signWith(t, "example.com", "From: A <a@example.com>\r\n"+e2eBody),
			nil, want{checks.StatusPass, checks.StatusPass, checks.StatusPass, "reject", checks.Accept}},
		{"spoofed From, spf passes for another domain", "203.0.113.5", "mx.example.net", "x@example.net",
			"From: CEO <ceo@example.com>\r\n" + e2eBody,
			nil, want{checks.StatusPass, checks.StatusNone, checks.StatusFail, "reject", checks.Reject}},
		{"dkim passes for another domain", "203.0.113.5", "mx.example.net", "x@example.net",
			signWith(t, "example.net", "From: CEO <ceo@example.com>\r\n"+e2eBody),
			nil, want{checks.StatusPass, checks.StatusPass, checks.StatusFail, "reject", checks.Reject}},
		{"subdomain gets sp=none", "198.51.100.1", "mx.other.test", "x@other.test",
			"From: <a@sub.example.net>\r\n" + e2eBody,
			nil, want{checks.StatusNone, checks.StatusNone, checks.StatusFail, "none", checks.Accept}},
		{"quarantine", "198.51.100.1", "mx.other.test", "x@other.test",
			"From: <a@example.net>\r\n" + e2eBody,
			nil, want{checks.StatusNone, checks.StatusNone, checks.StatusFail, "quarantine", checks.Quarantine}},
		{"null sender: spf for the HELO counts", "192.0.2.10", "news.example.com", "",
			"From: <a@example.com>\r\n" + e2eBody,
			nil, want{checks.StatusPass, checks.StatusNone, checks.StatusPass, "reject", checks.Accept}},
		{"DMARC record SERVFAIL: tempfail", "198.51.100.1", "mx.other.test", "x@other.test",
			"From: <a@example.org>\r\n" + e2eBody,
			func() { e.srv.Fault("_dmarc.example.org", mdns.TypeTXT, zoneserver.ServFail()) },
			want{checks.StatusNone, checks.StatusNone, checks.StatusTemperror, "", checks.Tempfail}},
		{"DKIM key times out, spf not aligned: reject undecidable, tempfail", "203.0.113.5", "mx.example.net", "x@example.net",
			signWith(t, "example.com", "From: <a@example.com>\r\n"+e2eBody),
			func() { e.srv.Fault("sel._domainkey.example.com", mdns.TypeTXT, zoneserver.Drop()) },
			want{checks.StatusPass, checks.StatusTemperror, checks.StatusTemperror, "reject", checks.Tempfail}},
		{"DKIM key times out but spf aligned: pass", "192.0.2.10", "mx.example.com", "bounce@example.com",
			signWith(t, "example.com", "From: <a@example.com>\r\n"+e2eBody),
			func() { e.srv.Fault("sel._domainkey.example.com", mdns.TypeTXT, zoneserver.Drop()) },
			want{checks.StatusPass, checks.StatusTemperror, checks.StatusPass, "reject", checks.Accept}},
		{"second From with the spoofed domain", "203.0.113.5", "mx.example.net", "x@example.net",
			signWith(t, "example.net", "From: <a@example.net>\r\nFrom: <ceo@example.com>\r\n"+e2eBody),
			nil, want{checks.StatusPass, checks.StatusPass, checks.StatusFail, "reject", checks.Reject}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				tc.fault()
				t.Cleanup(func() {
					e.srv.Fault("_dmarc.example.org", mdns.TypeTXT, zoneserver.Fault{})
					e.srv.Fault("sel._domainkey.example.com", mdns.TypeTXT, zoneserver.Fault{})
				})
			}
			rs, v := e.run(t, tc.ip, tc.helo, tc.mailFrom, tc.raw)
			got := want{}
			for _, r := range rs {
				switch r.Check {
				case "spf":
					got.spf = r.Status
				case "dkim":
					got.dkim = r.Status
				case "dmarc":
					got.dmarc = r.Status
					got.policy, _ = r.Facts["policy"].(string)
				}
			}
			got.action = v.Action
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
				for _, r := range rs {
					t.Logf("%s: %s %q %v", r.Check, r.Status, r.Reason, r.Err)
				}
			}
			if tc.want.action == checks.Reject && v.SMTPReply() != "550 5.7.1 Email rejected per DMARC policy" {
				t.Errorf("reply %q", v.SMTPReply())
			}
		})
	}
}
