package helo

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
)

func setup(t *testing.T, cfg Config) (*Check, *zoneserver.Server) {
	t.Helper()
	srv := dnstest.Start(t, "testdata/helo.zone")
	r, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: 300 * time.Millisecond, Retries: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func names(r checks.Result) []string {
	var out []string
	for _, s := range r.Symbols {
		out = append(out, s.Name)
	}
	return out
}

func TestFindings(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Hostnames = []string{"mx.ours.example"}
	cfg.Addresses = []string{"198.51.100.25"}
	c, _ := setup(t, cfg)
	for _, tc := range []struct {
		ip, helo, from string
		want           []string
		status         checks.Status
	}{
		{"192.0.2.1", "mail.good.example", "a@good.example", nil, checks.StatusPass},
		{"192.0.2.1", "[192.0.2.1]", "a@good.example", []string{SymIPLiteral}, checks.StatusFail},
		{"192.0.2.1", "[192.0.2.7]", "", []string{SymIPLiteral, SymIPMismatch}, checks.StatusFail},
		{"192.0.2.1", "[IPv6:2001:db8::1]", "", []string{SymIPLiteral, SymIPMismatch}, checks.StatusFail},
		{"192.0.2.1", "192.0.2.1", "", []string{SymBareIP}, checks.StatusFail},
		{"192.0.2.1", "User", "", []string{SymNotFQDN}, checks.StatusFail},
		{"192.0.2.1", "bad helo!", "", []string{SymBadSyntax}, checks.StatusFail},
		{"192.0.2.1", "[not an ip]", "", []string{SymBadSyntax}, checks.StatusFail},
		{"192.0.2.1", "MX.ours.example.", "", []string{SymOurs}, checks.StatusFail},
		{"192.0.2.1", "[198.51.100.25]", "", []string{SymIPLiteral, SymIPMismatch, SymOurs}, checks.StatusFail},
		{"192.0.2.1", "nowhere.example", "", []string{SymNoResolve}, checks.StatusFail},
		{"192.0.2.3", "mail.good.example", "", []string{SymNoPTR}, checks.StatusFail},
		{"192.0.2.2", "mail.good.example", "", []string{SymMismatch}, checks.StatusFail},
		{"2001:db8::25", "v6.good.example", "", nil, checks.StatusPass},
		{"10.0.0.1", "mail.good.example", "", nil, checks.StatusPass}, // no rDNS for private addresses
		{"192.0.2.1", "mail.good.example", "a@aonly.example", nil, checks.StatusPass},
		{"192.0.2.1", "mail.good.example", "a@nomx.example", []string{SymSenderNoMXA}, checks.StatusFail},
		{"192.0.2.1", "mail.good.example", "a@nxdomain.example", []string{SymSenderNoMXA}, checks.StatusFail},
		{"192.0.2.1", "mail.good.example", "a@nullmx.example", []string{SymSenderNull}, checks.StatusFail},
		{"192.0.2.1", "mail.good.example", "", nil, checks.StatusPass}, // null sender
	} {
		m := &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP(tc.ip), HELO: tc.helo, MailFrom: tc.from}}
		r := c.Check(context.Background(), m, nil)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if got := names(r); !slices.Equal(got, want) || r.Status != tc.status {
			t.Errorf("%s %q %s: %v %s, want %v %s", tc.ip, tc.helo, tc.from, got, r.Status, want, tc.status)
		}
		for _, s := range r.Symbols {
			if s.Score <= 0 {
				t.Errorf("%s has score %v", s.Name, s.Score)
			}
		}
	}
}

// DNS failures are never findings.
func TestDNSFailures(t *testing.T) {
	c, srv := setup(t, DefaultConfig())
	srv.Fault("slow.example", 0, zoneserver.Drop())
	srv.Fault("1.2.0.192.in-addr.arpa", 0, zoneserver.ServFail())
	srv.Fault("good.example", 0, zoneserver.ServFail())
	m := &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP("192.0.2.1"), HELO: "slow.example", MailFrom: "a@good.example"}}
	r := c.Check(context.Background(), m, nil)
	if got := names(r); !slices.Equal(got, []string{SymHELODNSFail, SymRDNSDNSFail, SymSenderFail}) || r.Status != checks.StatusTemperror || r.Score != 0 {
		t.Errorf("%v %s %v", got, r.Status, r.Score)
	}
	if !strings.Contains(r.Symbols[0].Detail, "timeout") || !strings.Contains(r.Symbols[1].Detail, "SERVFAIL") {
		t.Errorf("%+v", r.Symbols)
	}
}

func TestSkipAuthenticated(t *testing.T) {
	c, _ := setup(t, DefaultConfig())
	m := &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP("192.0.2.3"), HELO: "laptop", AuthUser: "alice"}}
	if r := c.Check(context.Background(), m, nil); r.Status != checks.StatusSkipped {
		t.Errorf("%s", r.Status)
	}
}

// A hostile HELO gets a defined result and a printable detail.
func TestHostileHELO(t *testing.T) {
	c, _ := setup(t, DefaultConfig())
	for _, h := range []string{strings.Repeat("a.", 600) + "example", "x\x00y", "[" + strings.Repeat("1", 1000) + "]", "mail.\u0433ood.example"} {
		m := &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP("10.0.0.1"), HELO: h}}
		r := c.Check(context.Background(), m, nil)
		if r.Status == "" {
			t.Errorf("%q: no status", h)
		}
		for _, s := range r.Symbols {
			if len(s.Detail) > 255 || strings.ContainsAny(s.Detail, "\x00\n") {
				t.Errorf("%q: detail %q", h, s.Detail)
			}
		}
	}
}
