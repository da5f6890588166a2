package spf_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/checks/spf"

	libspf "blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	mdns "github.com/miekg/dns"
)

// Our resolver interface must be usable as the library's: same method
// signatures as *net.Resolver.
var _ libspf.DNSResolver = dns.Resolver(nil)

// setup serves testdata/spf.zone and returns the server and a check with
// cfg on a fresh client (timeouts short, no retries).
func setup(t *testing.T, cfg spf.Config) (*zoneserver.Server, *spf.Check) {
	t.Helper()
	srv := dnstest.Start(t, "testdata/spf.zone")
	client, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: 150 * time.Millisecond, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := spf.New(cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func msg(ip, helo, from string) *checks.Message {
	return &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP(ip), HELO: helo, MailFrom: from}}
}

func run(c *spf.Check, m *checks.Message) checks.Result {
	return c.Check(context.Background(), m, nil)
}

func TestResults(t *testing.T) {
	_, c := setup(t, spf.DefaultConfig())
	for _, tc := range []struct {
		name, ip, helo, from string
		status               checks.Status
		symbol               string
		score                float64
		identity, domain     string
	}{
		{"pass", "192.0.2.5", "mx.example.net", "user@example.com", checks.StatusPass, spf.SymbolAllow, -0.2, "mailfrom", "example.com"},
		{"pass via include", "198.51.100.7", "mx.example.net", "user@Example.COM", checks.StatusPass, spf.SymbolAllow, -0.2, "mailfrom", "example.com"},
		{"ipv4-mapped client", "::ffff:192.0.2.5", "mx.example.net", "user@example.com", checks.StatusPass, spf.SymbolAllow, -0.2, "mailfrom", "example.com"},
		{"fail", "203.0.113.1", "mx.example.net", "user@example.com", checks.StatusFail, spf.SymbolFail, 1, "mailfrom", "example.com"},
		{"ipv6 fail", "2001:db8::1", "mx.example.net", "user@example.com", checks.StatusFail, spf.SymbolFail, 1, "mailfrom", "example.com"},
		{"softfail", "203.0.113.1", "mx.example.net", "user@soft.example.com", checks.StatusSoftfail, spf.SymbolSoftfail, 0, "mailfrom", "soft.example.com"},
		{"neutral", "203.0.113.1", "mx.example.net", "user@neutral.example.com", checks.StatusNeutral, spf.SymbolNeutral, 0, "mailfrom", "neutral.example.com"},
		{"none: no SPF record", "203.0.113.1", "mx.example.net", "user@nospf.example.com", checks.StatusNone, spf.SymbolNA, 0, "mailfrom", "nospf.example.com"},
		{"none: no such domain", "203.0.113.1", "mx.example.net", "user@nxdomain.example.com", checks.StatusNone, spf.SymbolNA, 0, "mailfrom", "nxdomain.example.com"},
		{"none: single label", "203.0.113.1", "mx.example.net", "user@localhost", checks.StatusNone, spf.SymbolNA, 0, "mailfrom", "localhost"},
		// §4.6: the error after the matching ip4 still counts.
		{"permerror after a match", "192.0.2.1", "mx.example.net", "user@broken.example.com", checks.StatusPermerror, spf.SymbolPermFail, 0, "mailfrom", "broken.example.com"},
		{"permerror: two records", "192.0.2.1", "mx.example.net", "user@two.example.com", checks.StatusPermerror, spf.SymbolPermFail, 0, "mailfrom", "two.example.com"},
		// §2.4: null reverse-path → postmaster@helo.
		{"null sender, helo pass", "192.0.2.9", "helo.example.com", "", checks.StatusPass, spf.SymbolAllow, -0.2, "helo", "helo.example.com"},
		{"null sender, helo fail", "203.0.113.1", "helo.example.com", "", checks.StatusFail, spf.SymbolFail, 1, "helo", "helo.example.com"},
		{"null sender, helo literal", "203.0.113.1", "[203.0.113.1]", "", checks.StatusNone, spf.SymbolNA, 0, "helo", "[203.0.113.1]"},
		{"null sender, no helo", "203.0.113.1", "", "", checks.StatusNone, spf.SymbolNA, 0, "helo", ""},
		// §4.3: no local-part stands for postmaster.
		{"no local part", "192.0.2.5", "mx.example.net", "@example.com", checks.StatusPass, spf.SymbolAllow, -0.2, "mailfrom", "example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(c, msg(tc.ip, tc.helo, tc.from))
			if res.Check != "spf" || res.Status != tc.status {
				t.Fatalf("%s %s (%s), want %s", res.Check, res.Status, res.Reason, tc.status)
			}
			if len(res.Symbols) != 1 || res.Symbols[0].Name != tc.symbol || res.Symbols[0].Score != tc.score || res.Score != tc.score {
				t.Errorf("symbols %+v score %v, want %s %v", res.Symbols, res.Score, tc.symbol, tc.score)
			}
			if res.Facts["identity"] != tc.identity || res.Facts["domain"] != tc.domain {
				t.Errorf("facts %v, want identity %s domain %s", res.Facts, tc.identity, tc.domain)
			}
			var ar *authres.SPFResult
			ok := len(res.AuthResults) == 1
			if ok {
				ar, ok = res.AuthResults[0].(*authres.SPFResult)
			}
			if !ok || string(ar.Value) != string(tc.status) {
				t.Fatalf("AuthResults %#v", res.AuthResults)
			}
			if tc.identity == "mailfrom" && (ar.From != tc.from || ar.Helo != "") ||
				tc.identity == "helo" && (ar.Helo != tc.domain || ar.From != "") {
				t.Errorf("AuthResults from %q helo %q", ar.From, ar.Helo)
			}
			if res.Reason == "" || len(res.Reason) > 200 {
				t.Errorf("reason %q", res.Reason)
			}
			if (res.Err != nil) != (tc.status == checks.StatusPermerror || tc.status == checks.StatusTemperror) {
				t.Errorf("Err %v with status %s", res.Err, res.Status)
			}
		})
	}
}

func TestPermerrorCarriesSyntaxError(t *testing.T) {
	_, c := setup(t, spf.DefaultConfig())
	res := run(c, msg("192.0.2.1", "mx.example.net", "user@broken.example.com"))
	if res.Err == nil || !strings.Contains(res.Err.Error(), `"foo"`) {
		t.Errorf("Err %v", res.Err)
	}
	var se *spf.SyntaxError
	if !errors.As(res.Err, &se) || se.Domain != "broken.example.com" || se.Term != "foo" {
		t.Errorf("Err %#v is not the SyntaxError of broken.example.com", res.Err)
	}
}

// A DNS failure never becomes a verdict on the sender (RFC 7208 §4.4,
// §5): timeouts, SERVFAIL and REFUSED give temperror, wherever they are.
func TestDNSFailuresAreTemperror(t *testing.T) {
	srv, c := setup(t, spf.DefaultConfig())
	srv.Fault("slow.example.com", mdns.TypeTXT, zoneserver.Drop())
	srv.Fault("sick.example.com", mdns.TypeTXT, zoneserver.ServFail())
	srv.Fault("sick-host.example.com", mdns.TypeA, zoneserver.ServFail())
	srv.Fault("slow-mx.example.com", mdns.TypeMX, zoneserver.Drop())
	srv.Fault("refused.example.com", 0, zoneserver.Refused())
	srv.Fault("helo.example.com", mdns.TypeAAAA, zoneserver.ServFail())
	for _, tc := range []struct{ name, ip, from string }{
		{"include times out", "203.0.113.1", "user@inc-timeout.example.com"},
		{"include SERVFAIL", "203.0.113.1", "user@inc-servfail.example.com"},
		{"a: SERVFAIL", "203.0.113.1", "user@a-servfail.example.com"},
		{"mx: MX times out", "203.0.113.1", "user@mx-timeout.example.com"},
		{"REFUSED", "203.0.113.1", "user@refused.example.com"},
		// An IPv6 client needs the AAAA records: their failure must not
		// leave a "fail" decided on the A records alone.
		{"ipv6 a: AAAA SERVFAIL", "2001:db8::25", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(c, msg(tc.ip, "helo.example.com", tc.from))
			if res.Status != checks.StatusTemperror {
				t.Fatalf("%s (%s), want temperror", res.Status, res.Reason)
			}
			if res.Symbols[0].Name != spf.SymbolDNSFail || !dns.IsTemporary(res.Err) {
				t.Errorf("symbol %s, Err %v", res.Symbols[0].Name, res.Err)
			}
		})
	}
	// The first case again with the top record itself dropped.
	srv.Fault("example.com", mdns.TypeTXT, zoneserver.Drop())
	res := run(c, msg("203.0.113.1", "mx.example.net", "user@example.com"))
	if res.Status != checks.StatusTemperror || !dns.IsTimeout(res.Err) {
		t.Errorf("top record dropped: %s %v", res.Status, res.Err)
	}
}

// An IPv4 client needs only A records: an AAAA failure does not matter.
func TestIPv4ClientIgnoresAAAAFailure(t *testing.T) {
	srv, c := setup(t, spf.DefaultConfig())
	srv.Fault("helo.example.com", mdns.TypeAAAA, zoneserver.Drop())
	res := run(c, msg("192.0.2.9", "helo.example.com", ""))
	if res.Status != checks.StatusPass {
		t.Errorf("%s (%s), want pass", res.Status, res.Reason)
	}
	if n := srv.QueriesFor("helo.example.com", mdns.TypeAAAA); n != 0 {
		t.Errorf("%d AAAA queries for an IPv4 client", n)
	}
}

func TestCheckHELOFirst(t *testing.T) {
	cfg := spf.DefaultConfig()
	cfg.CheckHELO = true
	_, c := setup(t, cfg)

	// A HELO fail is conclusive (§2.3), whatever MAIL FROM would say.
	res := run(c, msg("192.0.2.5", "badhelo.example.com", "user@example.com"))
	if res.Status != checks.StatusFail || res.Facts["identity"] != "helo" || res.Facts["domain"] != "badhelo.example.com" {
		t.Errorf("HELO fail: %s %v", res.Status, res.Facts)
	}
	// Otherwise MAIL FROM decides and the HELO result is a fact.
	res = run(c, msg("192.0.2.9", "helo.example.com", "user@soft.example.com"))
	if res.Status != checks.StatusSoftfail || res.Facts["identity"] != "mailfrom" || res.Facts["helo_result"] != "pass" {
		t.Errorf("HELO pass: %s %v", res.Status, res.Facts)
	}
	// Without the option the HELO is not looked at.
	_, plain := setup(t, spf.DefaultConfig())
	res = run(plain, msg("192.0.2.5", "badhelo.example.com", "user@example.com"))
	if res.Status != checks.StatusPass || res.Facts["helo_result"] != nil {
		t.Errorf("HELO off: %s %v", res.Status, res.Facts)
	}
}

func TestExplanation(t *testing.T) {
	cfg := spf.DefaultConfig()
	cfg.Receiver = "mx.receiver.example"
	_, c := setup(t, cfg)
	for _, tc := range []struct{ ip, from, want string }{
		{"203.0.113.1", "u@plain-exp.example.com", "Rejected: see https://plain-exp.example.com/spf?ip=203.0.113.1 via mx.receiver.example"},
		{"2001:db8::7", "u@plain-exp.example.com", "Rejected: see https://plain-exp.example.com/spf?ip=2001%3Adb8%3A%3A7 via mx.receiver.example"},
		// The redirecting record's own mechanism failed: its exp= is used.
		{"192.0.2.66", "u@redir.example.com", "192.0.2.66 is barred by redir.example.com"},
		// The redirect target failed: its exp=, with %{d} the target
		// (§6.1) and %{o} the sender's domain.
		{"203.0.113.9", "u@redir.example.com", "203.0.113.9 may not send for redir.example.com (target.example.com)"},
		// No exp=: no explanation.
		{"203.0.113.1", "u@example.com", ""},
	} {
		res := run(c, msg(tc.ip, "mx.example.net", tc.from))
		if res.Status != checks.StatusFail {
			t.Errorf("%s %s: %s", tc.ip, tc.from, res.Status)
			continue
		}
		got, _ := res.Facts["explanation"].(string)
		if got != tc.want {
			t.Errorf("%s %s: explanation %q, want %q", tc.ip, tc.from, got, tc.want)
		}
	}

	cfg.Explanation = false
	srv, off := setup(t, cfg)
	res := run(off, msg("203.0.113.1", "mx.example.net", "u@plain-exp.example.com"))
	if _, ok := res.Facts["explanation"]; ok || srv.QueriesFor("why.plain-exp.example.com", 0) != 0 {
		t.Errorf("explanation fetched while turned off: %v", res.Facts)
	}
}

func TestConfig(t *testing.T) {
	if _, err := spf.New(spf.DefaultConfig(), nil); err == nil {
		t.Error("New accepted a nil resolver")
	}
	bad := spf.DefaultConfig()
	bad.MaxLookups = -1
	if _, err := spf.New(bad, &net.Resolver{}); err == nil {
		t.Error("New accepted a negative limit")
	}
	if c, err := spf.New(spf.Config{}, &net.Resolver{}); err != nil || c.Name() != "spf" {
		t.Errorf("zero Config: %v", err)
	}

	cfg := spf.DefaultConfig()
	cfg.Scores.Fail = 5.5
	cfg.Scores.Temperror = 0.1
	_, c := setup(t, cfg)
	res := run(c, msg("203.0.113.1", "mx.example.net", "user@example.com"))
	if res.Score != 5.5 || res.Symbols[0].Score != 5.5 {
		t.Errorf("configured fail score: %v %+v", res.Score, res.Symbols)
	}

	// The lookup limit is configurable (§4.6.4 allows a lower one).
	cfg = spf.DefaultConfig()
	cfg.MaxLookups = 1
	_, c = setup(t, cfg)
	res = run(c, msg("198.51.100.7", "mx.example.net", "user@example.com"))
	if res.Status != checks.StatusPass {
		t.Errorf("one include within a limit of 1: %s (%s)", res.Status, res.Reason)
	}
	res = run(c, msg("203.0.113.1", "mx.example.net", "user@mx-timeout.example.com"))
	if res.Status == checks.StatusPass {
		t.Errorf("limit 1: %s", res.Status)
	}
}

func TestSkippedWithoutClientIP(t *testing.T) {
	srv, c := setup(t, spf.DefaultConfig())
	res := run(c, &checks.Message{Envelope: checks.Envelope{MailFrom: "user@example.com"}})
	if res.Status != checks.StatusSkipped || len(res.Symbols) != 0 || srv.Queries() != 0 {
		t.Errorf("%+v", res)
	}
}

func TestAuthenticationResultsHeader(t *testing.T) {
	_, c := setup(t, spf.DefaultConfig())
	res := run(c, msg("203.0.113.1", "mx.example.net", "user@example.com"))
	h := authres.Format("mx.receiver.example", res.AuthResults)
	if !strings.Contains(h, "spf=fail") || !strings.Contains(h, "smtp.mailfrom=user@example.com") {
		t.Errorf("header %q", h)
	}
}

// TestQueriesPerMessage records what one message costs in DNS queries,
// cold and with the cache warm.
func TestQueriesPerMessage(t *testing.T) {
	srv, c := setup(t, spf.DefaultConfig())
	for _, tc := range []struct {
		name, ip, from string
		cold           int
	}{
		{"ip4 match", "192.0.2.5", "user@example.com", 1},
		{"include match", "198.51.100.7", "user@example.com", 1}, // the include's TXT; example.com's is cached
		{"fail with exp=", "203.0.113.1", "user@plain-exp.example.com", 2},
	} {
		srv.ResetQueries()
		run(c, msg(tc.ip, "mx.example.net", tc.from))
		cold := srv.Queries()
		srv.ResetQueries()
		run(c, msg(tc.ip, "mx.example.net", tc.from))
		t.Logf("%s: %d queries cold, %d warm", tc.name, cold, srv.Queries())
		if cold != tc.cold || srv.Queries() != 0 {
			t.Errorf("%s: %d cold (want %d), %d warm (want 0)", tc.name, cold, tc.cold, srv.Queries())
		}
	}
}

// BenchmarkCheckWarmCache is the CPU cost of one SPF check whose DNS
// answers are all cached (the common case for a busy sender).
func BenchmarkCheckWarmCache(b *testing.B) {
	srv := dnstest.Start(b, "testdata/spf.zone")
	client, err := dns.New(dns.Config{Servers: []string{srv.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	c, err := spf.New(spf.DefaultConfig(), client)
	if err != nil {
		b.Fatal(err)
	}
	m := msg("198.51.100.7", "mx.example.net", "user@example.com")
	if res := run(c, m); res.Status != checks.StatusPass {
		b.Fatal(res.Status)
	}
	b.ReportAllocs()
	for b.Loop() {
		run(c, m)
	}
}
