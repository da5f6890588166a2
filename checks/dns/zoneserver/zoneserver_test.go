package zoneserver_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"

	mdns "github.com/miekg/dns"
)

const zone = "testdata/example.zone"

// ask sends one query over network ("udp" or "tcp") with EDNS0 when
// edns > 0, and returns the reply.
func ask(t *testing.T, s *zoneserver.Server, network, name string, qtype uint16, edns uint16) (*mdns.Msg, error) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &mdns.Client{Net: network, Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, s.Addr())
	return r, err
}

func mustAsk(t *testing.T, s *zoneserver.Server, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	r, err := ask(t, s, "udp", name, qtype, 1232)
	if err != nil {
		t.Fatalf("%s %s: %v", name, mdns.TypeToString[qtype], err)
	}
	return r
}

func answers(r *mdns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		h := rr.Header()
		out = append(out, strings.ToLower(h.Name)+" "+mdns.TypeToString[h.Rrtype]+" "+strings.TrimPrefix(rr.String(), h.String()))
	}
	return out
}

func TestZoneFile(t *testing.T) {
	s := dnstest.Start(t, zone)

	r := mustAsk(t, s, "mail.example.org", mdns.TypeA)
	if r.Rcode != mdns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("rcode %s aa %v", mdns.RcodeToString[r.Rcode], r.Authoritative)
	}
	if got := answers(r); len(got) != 1 || got[0] != "mail.example.org. A 192.0.2.25" {
		t.Errorf("answer %q", got)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl != 120 {
		t.Errorf("explicit TTL %d, want 120", ttl)
	}
	if ttl := mustAsk(t, s, "example.org", mdns.TypeA).Answer[0].Header().Ttl; ttl != 300 {
		t.Errorf("$TTL: got %d, want 300", ttl)
	}
	if ttl := mustAsk(t, s, "short.example.org", mdns.TypeA).Answer[0].Header().Ttl; ttl != 30 {
		t.Errorf("second $TTL: got %d, want 30", ttl)
	}
	txt := mustAsk(t, s, "EXAMPLE.org", mdns.TypeTXT)
	if len(txt.Answer) != 1 || strings.Join(txt.Answer[0].(*mdns.TXT).Txt, "|") != "v=spf1 |mx -all" {
		t.Errorf("TXT (case-insensitive name, two strings): %v", txt.Answer)
	}
}

func TestNegativeAnswers(t *testing.T) {
	s := dnstest.Start(t, zone)
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nope.example.org", mdns.TypeA, mdns.RcodeNameError},
		{"mail.example.org", mdns.TypeTXT, mdns.RcodeSuccess}, // NODATA
		{"ent.a.example.org", mdns.TypeA, mdns.RcodeSuccess},  // empty non-terminal
		{"a.example.org", mdns.TypeA, mdns.RcodeSuccess},      // empty non-terminal
	} {
		r := mustAsk(t, s, tc.name, tc.qtype)
		if r.Rcode != tc.rcode || len(r.Answer) != 0 {
			t.Errorf("%s: rcode %s, %d answers; want %s, none", tc.name, mdns.RcodeToString[r.Rcode], len(r.Answer), mdns.RcodeToString[tc.rcode])
			continue
		}
		if len(r.Ns) != 1 {
			t.Errorf("%s: authority %v, want the SOA", tc.name, r.Ns)
			continue
		}
		soa, ok := r.Ns[0].(*mdns.SOA)
		if !ok || soa.Hdr.Name != "example.org." || soa.Hdr.Ttl != 60 {
			t.Errorf("%s: authority %v, want example.org SOA with TTL min(300, 60)", tc.name, r.Ns[0])
		}
	}

	// Outside every zone: NXDOMAIN under the built-in root SOA, TTL 0.
	r := mustAsk(t, s, "elsewhere.test", mdns.TypeA)
	if r.Rcode != mdns.RcodeNameError || len(r.Ns) != 1 || r.Ns[0].Header().Name != "." || r.Ns[0].Header().Ttl != 0 {
		t.Errorf("outside zones: %v", r)
	}
}

func TestCNAMEAndWildcard(t *testing.T) {
	s := dnstest.Start(t, zone)

	r := mustAsk(t, s, "alias.example.org", mdns.TypeA)
	want := []string{
		"alias.example.org. CNAME www.example.org.",
		"www.example.org. CNAME example.org.",
		"example.org. A 192.0.2.1",
	}
	if got := answers(r); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CNAME chain:\n got %q\nwant %q", got, want)
	}
	// Asking for the CNAME itself does not chase it.
	if got := answers(mustAsk(t, s, "www.example.org", mdns.TypeCNAME)); len(got) != 1 {
		t.Errorf("CNAME query: %q", got)
	}
	// A loop ends: each link once, then the answer stops.
	r = mustAsk(t, s, "loop1.example.org", mdns.TypeA)
	if r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 2 {
		t.Errorf("loop: %s %q", mdns.RcodeToString[r.Rcode], answers(r))
	}

	r = mustAsk(t, s, "Anything.Wild.example.org", mdns.TypeA)
	if got := answers(r); len(got) != 1 || got[0] != "anything.wild.example.org. A 192.0.2.99" {
		t.Errorf("wildcard: %q", got)
	}
	if r := mustAsk(t, s, "x.y.wild.example.org", mdns.TypeA); len(r.Answer) != 1 {
		t.Errorf("wildcard two labels down: %q", answers(r))
	}
	// The wildcard covers only names that do not exist (RFC 4592).
	if r := mustAsk(t, s, "wild.example.org", mdns.TypeA); r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("wildcard parent: %s %q", mdns.RcodeToString[r.Rcode], answers(r))
	}
}

func TestAddRecordsProgrammatically(t *testing.T) {
	s := dnstest.Start(t)
	if err := s.AddZone("$TTL 60\n@ SOA ns hm 1 2 3 4 5\nhost A 198.51.100.1\n", "test.example"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRecord(`txt.test.example. 10 IN TXT "hello world"`); err != nil {
		t.Fatal(err)
	}
	s.AddRR(&mdns.AAAA{Hdr: mdns.RR_Header{Name: "host.test.example", Rrtype: mdns.TypeAAAA, Ttl: 5}, AAAA: net.ParseIP("2001:db8::5")})
	if err := s.AddRecord("not a record"); err == nil {
		t.Error("AddRecord accepted garbage")
	}
	if err := s.AddZone("$ORIGIN x.\nbad IN A 999.1.1.1\n", ""); err == nil {
		t.Error("AddZone accepted a bad address")
	}
	if got := answers(mustAsk(t, s, "host.test.example", mdns.TypeA)); len(got) != 1 {
		t.Errorf("zone text: %q", got)
	}
	if got := answers(mustAsk(t, s, "host.test.example", mdns.TypeAAAA)); len(got) != 1 {
		t.Errorf("AddRR: %q", got)
	}
	if got := answers(mustAsk(t, s, "txt.test.example", mdns.TypeTXT)); len(got) != 1 || !strings.Contains(got[0], `"hello world"`) {
		t.Errorf("AddRecord: %q", got)
	}
	// The same record twice is one record.
	_ = s.AddRecord(`txt.test.example. 10 IN TXT "hello world"`)
	if got := answers(mustAsk(t, s, "txt.test.example", mdns.TypeTXT)); len(got) != 1 {
		t.Errorf("duplicate kept: %q", got)
	}
}

func TestFaultDelay(t *testing.T) {
	s := dnstest.Start(t, zone)
	s.Fault("mail.example.org", 0, zoneserver.Delay(150*time.Millisecond))
	start := time.Now()
	r := mustAsk(t, s, "mail.example.org", mdns.TypeA)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v, want >= 150ms", d)
	}
	if len(r.Answer) != 1 {
		t.Errorf("delayed answer lost its data: %v", r)
	}
	start = time.Now()
	mustAsk(t, s, "example.org", mdns.TypeA)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("undelayed name took %v", d)
	}
}

func TestFaultRcodes(t *testing.T) {
	s := dnstest.Start(t, zone)
	s.Fault("mail.example.org", mdns.TypeA, zoneserver.ServFail())
	s.Fault("example.org", 0, zoneserver.Refused())
	if r := mustAsk(t, s, "mail.example.org", mdns.TypeA); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("ServFail: %s", mdns.RcodeToString[r.Rcode])
	}
	// The fault is for A only.
	if r := mustAsk(t, s, "mail.example.org", mdns.TypeAAAA); r.Rcode != mdns.RcodeSuccess {
		t.Errorf("AAAA caught the A fault: %s", mdns.RcodeToString[r.Rcode])
	}
	for _, qt := range []uint16{mdns.TypeA, mdns.TypeTXT, mdns.TypeMX} {
		if r := mustAsk(t, s, "example.org", qt); r.Rcode != mdns.RcodeRefused {
			t.Errorf("Refused %s: %s", mdns.TypeToString[qt], mdns.RcodeToString[r.Rcode])
		}
	}
	// A specific fault beats the any-type one, and the zero Fault clears.
	s.Fault("example.org", mdns.TypeTXT, zoneserver.ServFail())
	if r := mustAsk(t, s, "example.org", mdns.TypeTXT); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("specific fault: %s", mdns.RcodeToString[r.Rcode])
	}
	s.Fault("example.org", 0, zoneserver.Fault{})
	s.Fault("example.org", mdns.TypeTXT, zoneserver.Fault{})
	if r := mustAsk(t, s, "example.org", mdns.TypeA); r.Rcode != mdns.RcodeSuccess {
		t.Errorf("cleared fault still there: %s", mdns.RcodeToString[r.Rcode])
	}
}

func TestFaultDrop(t *testing.T) {
	s := dnstest.Start(t, zone)
	s.Fault("mail.example.org", 0, zoneserver.Drop())
	for _, network := range []string{"udp", "tcp"} {
		_, err := ask(t, s, network, "mail.example.org", mdns.TypeA, 0)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("%s: %v, want a timeout", network, err)
		}
	}
	if n := s.QueriesFor("mail.example.org", mdns.TypeA); n != 2 {
		t.Errorf("dropped queries counted %d, want 2", n)
	}
}

func TestFaultTruncate(t *testing.T) {
	s := dnstest.Start(t, zone)
	s.Fault("example.org", mdns.TypeTXT, zoneserver.Truncate())
	r, err := ask(t, s, "udp", "example.org", mdns.TypeTXT, 1232)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("UDP: tc %v, %d answers; want TC and none", r.Truncated, len(r.Answer))
	}
	r, err = ask(t, s, "tcp", "example.org", mdns.TypeTXT, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 1 {
		t.Errorf("TCP: tc %v, %d answers; want the full answer", r.Truncated, len(r.Answer))
	}
}

func TestLargeAnswerTruncatedOverUDP(t *testing.T) {
	s := dnstest.Start(t, zone)
	for i := range 40 {
		if err := s.AddRecord(fmt.Sprintf(`big.example.org. 300 IN TXT "record %02d %s"`, i, strings.Repeat("x", 60))); err != nil {
			t.Fatal(err)
		}
	}
	r, err := ask(t, s, "udp", "big.example.org", mdns.TypeTXT, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Errorf("no TC on a %d-record answer without EDNS0", len(r.Answer))
	}
	r, err = ask(t, s, "tcp", "big.example.org", mdns.TypeTXT, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 40 {
		t.Errorf("TCP: tc %v, %d answers", r.Truncated, len(r.Answer))
	}
}

func TestQueryCounts(t *testing.T) {
	s := dnstest.Start(t, zone)
	mustAsk(t, s, "example.org", mdns.TypeA)
	mustAsk(t, s, "example.org", mdns.TypeA)
	mustAsk(t, s, "Example.ORG.", mdns.TypeMX)
	mustAsk(t, s, "nope.example.org", mdns.TypeA)
	if s.Queries() != 4 {
		t.Errorf("Queries %d, want 4", s.Queries())
	}
	if n := s.QueriesFor("example.org", mdns.TypeA); n != 2 {
		t.Errorf("QueriesFor A %d, want 2", n)
	}
	if n := s.QueriesFor("example.org.", 0); n != 3 {
		t.Errorf("QueriesFor any %d, want 3", n)
	}
	s.ResetQueries()
	if s.Queries() != 0 || s.QueriesFor("example.org", 0) != 0 {
		t.Error("ResetQueries left counts")
	}
}

func TestNewStartClose(t *testing.T) {
	if _, err := zoneserver.New("testdata/does-not-exist.zone"); err == nil {
		t.Error("New accepted a missing file")
	}
	s, err := zoneserver.New(zone)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr() != "" {
		t.Error("address before Start")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start accepted")
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Errorf("Addr %q", s.Addr())
	}
	// Close returns promptly even with an answer held back.
	s.Fault("example.org", 0, zoneserver.Delay(time.Hour))
	go ask(t, s, "udp", "example.org", mdns.TypeA, 0)
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a delayed answer")
	}
	s.Close() // twice is fine
	if _, err := ask(t, s, "tcp", "example.org", mdns.TypeA, 0); err == nil {
		t.Error("server still answers after Close")
	}
}
