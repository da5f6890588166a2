package dns_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/store/storetest"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// fixture starts the test zone and a Client on it with short timeouts.
func fixture(t *testing.T, cfg dns.Config) (*zoneserver.Server, *dns.Client) {
	t.Helper()
	s := dnstest.Start(t, "testdata/client.zone")
	cfg.Servers = append(cfg.Servers, s.Addr())
	if cfg.Timeout == 0 {
		cfg.Timeout = 200 * time.Millisecond
	}
	c, err := dns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

var ctx = context.Background()

func TestLookupTXT(t *testing.T) {
	_, c := fixture(t, dns.Config{})
	got, err := c.LookupTXT(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	// The strings of one record are joined with nothing between them
	// (RFC 7208 §3.3).
	if want := []string{"other", "v=spf1 ip4:192.0.2.0/24 -all"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	// Octets come back as they were on the wire, not in zone-file
	// escapes.
	got, err = c.LookupTXT(ctx, "odd.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if want := "quote\" backslash\\ eight\xc8bit tab\tend"; len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestErrorClasses(t *testing.T) {
	s, c := fixture(t, dns.Config{Retries: -1})
	s.Fault("servfail.example.com", 0, zoneserver.ServFail())
	s.Fault("refused.example.com", 0, zoneserver.Refused())
	s.Fault("drop.example.com", 0, zoneserver.Drop())

	for _, tc := range []struct {
		name                        string
		sentinel                    error
		notFound, temporary, timout bool
	}{
		{"nxdomain.example.com", dns.ErrNXDomain, true, false, false},
		{"v6only.example.com", dns.ErrNoData, true, false, false},
		{"servfail.example.com", dns.ErrServFail, false, true, false},
		{"refused.example.com", dns.ErrRefused, false, true, false},
		{"drop.example.com", dns.ErrTimeout, false, true, true},
		{"loop1.example.com", dns.ErrCNAMELoop, false, false, false},
		{strings.Repeat("a", 64) + ".example.com", dns.ErrBadName, true, false, false},
		{"a..example.com", dns.ErrBadName, true, false, false},
	} {
		t.Run(tc.name[:min(len(tc.name), 20)], func(t *testing.T) {
			_, err := c.LookupTXT(ctx, tc.name)
			if tc.name == "v6only.example.com" {
				_, err = c.Lookup(ctx, tc.name, mdns.TypeA)
			}
			var de *net.DNSError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v, want *net.DNSError", err, err)
			}
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("%v is not %v", err, tc.sentinel)
			}
			if de.IsNotFound != tc.notFound || dns.IsNotFound(err) != tc.notFound {
				t.Errorf("IsNotFound %v, want %v", de.IsNotFound, tc.notFound)
			}
			if de.Temporary() != tc.temporary || dns.IsTemporary(err) != tc.temporary {
				t.Errorf("Temporary %v, want %v", de.Temporary(), tc.temporary)
			}
			if de.Timeout() != tc.timout || dns.IsTimeout(err) != tc.timout {
				t.Errorf("Timeout %v, want %v", de.Timeout(), tc.timout)
			}
			// go-msgauth and the SPF library read the flags through a
			// plain type assertion: the error must not be wrapped.
			if _, ok := err.(*net.DNSError); !ok {
				t.Errorf("error is wrapped: %T", err)
			}
		})
	}
	if n := s.QueriesFor(strings.Repeat("a", 64)+".example.com", 0); n != 0 {
		t.Errorf("a bad name reached the server %d times", n)
	}
}

func TestTimeoutAndRetries(t *testing.T) {
	s, c := fixture(t, dns.Config{Timeout: 100 * time.Millisecond, Retries: 2})
	s.Fault("example.com", mdns.TypeTXT, zoneserver.Drop())
	start := time.Now()
	_, err := c.LookupTXT(ctx, "example.com")
	elapsed := time.Since(start)
	if !dns.IsTimeout(err) || !dns.IsTemporary(err) {
		t.Fatalf("err %v: want a temporary timeout", err)
	}
	if n := s.QueriesFor("example.com", mdns.TypeTXT); n != 3 {
		t.Errorf("%d queries, want 3 (1 + 2 retries)", n)
	}
	if elapsed < 300*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("took %v, want about 3 × 100ms", elapsed)
	}
	// A timeout is not cached: once the server answers, so do we.
	s.Fault("example.com", mdns.TypeTXT, zoneserver.Fault{})
	if _, err := c.LookupTXT(ctx, "example.com"); err != nil {
		t.Errorf("after the fault: %v", err)
	}
}

func TestCallerDeadline(t *testing.T) {
	s, c := fixture(t, dns.Config{Timeout: time.Second})
	s.Fault("example.com", 0, zoneserver.Drop())
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.LookupTXT(cctx, "example.com")
	if time.Since(start) > 500*time.Millisecond {
		t.Errorf("the caller's deadline was not honoured: %v", time.Since(start))
	}
	if !dns.IsTimeout(err) || !dns.IsTemporary(err) {
		t.Errorf("err %v: want a temporary timeout", err)
	}
	cctx, cancel = context.WithCancel(ctx)
	cancel()
	if _, err := c.LookupTXT(cctx, "example.com"); !dns.IsTemporary(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestFailover(t *testing.T) {
	// A UDP port with nobody behind it: the kernel refuses at once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	s, c := fixture(t, dns.Config{Servers: []string{dead}, Retries: -1})
	got, err := c.LookupHost(ctx, "v4only.example.com")
	if err != nil || !slices.Equal(got, []string{"192.0.2.4"}) {
		t.Errorf("got %v, %v", got, err)
	}
	if s.Queries() == 0 {
		t.Error("the live server was not asked")
	}
}

func TestCache(t *testing.T) {
	s, c := fixture(t, dns.Config{})
	clk := storetest.NewClockAt(time.Unix(1_700_000_000, 0))
	dns.SetClock(c, clk.Now)

	lookup := func() {
		t.Helper()
		if _, err := c.LookupHost(ctx, "short.example.com"); err != nil {
			t.Fatal(err)
		}
	}
	lookup()
	lookup()
	if n := s.QueriesFor("short.example.com", mdns.TypeA); n != 1 {
		t.Errorf("%d A queries within the TTL, want 1", n)
	}
	clk.Add(4 * time.Second)
	lookup()
	if n := s.QueriesFor("short.example.com", mdns.TypeA); n != 1 {
		t.Errorf("%d A queries at 4s of a 5s TTL, want 1", n)
	}
	clk.Add(2 * time.Second)
	lookup()
	if n := s.QueriesFor("short.example.com", mdns.TypeA); n != 2 {
		t.Errorf("%d A queries after the TTL, want 2", n)
	}
	// Names are compared without case.
	if _, err := c.LookupHost(ctx, "SHORT.Example.COM."); err != nil {
		t.Fatal(err)
	}
	if n := s.QueriesFor("short.example.com", mdns.TypeA); n != 2 {
		t.Errorf("case changed the cache key: %d queries", n)
	}
}

func TestNegativeCache(t *testing.T) {
	s, c := fixture(t, dns.Config{})
	clk := storetest.NewClockAt(time.Unix(1_700_000_000, 0))
	dns.SetClock(c, clk.Now)

	// NXDOMAIN and NODATA are kept for min(SOA TTL, MINIMUM) = 30s.
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"nxdomain.example.com", mdns.TypeTXT}, {"v4only.example.com", mdns.TypeTXT}} {
		for range 3 {
			if _, err := c.LookupTXT(ctx, q.name); !dns.IsNotFound(err) {
				t.Fatalf("%s: %v", q.name, err)
			}
		}
		if n := s.QueriesFor(q.name, q.qtype); n != 1 {
			t.Errorf("%s: %d queries, want 1 (negative cache)", q.name, n)
		}
	}
	clk.Add(31 * time.Second)
	if _, err := c.LookupTXT(ctx, "nxdomain.example.com"); !dns.IsNotFound(err) {
		t.Fatal(err)
	}
	if n := s.QueriesFor("nxdomain.example.com", mdns.TypeTXT); n != 2 {
		t.Errorf("%d queries after the negative TTL, want 2", n)
	}
	// The cached negative answer keeps its class.
	_, err := c.LookupTXT(ctx, "nxdomain.example.com")
	if !errors.Is(err, dns.ErrNXDomain) {
		t.Errorf("cached NXDOMAIN came back as %v", err)
	}
	_, err = c.LookupTXT(ctx, "v4only.example.com")
	if !errors.Is(err, dns.ErrNoData) {
		t.Errorf("cached NODATA came back as %v", err)
	}

	// A negative answer whose SOA has TTL 0 is not cached (RFC 2308 §5).
	for range 2 {
		_, _ = c.LookupTXT(ctx, "outside.test")
	}
	if n := s.QueriesFor("outside.test", mdns.TypeTXT); n != 2 {
		t.Errorf("outside.test: %d queries, want 2", n)
	}
}

func TestCacheBound(t *testing.T) {
	s, c := fixture(t, dns.Config{CacheSize: 2})
	for _, n := range []string{"mx1", "mx2", "mx3", "mx1"} {
		if _, err := c.Lookup(ctx, n+".example.com", mdns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	// mx1 was evicted by mx3 (LRU, two entries), so it was asked twice.
	if n := s.QueriesFor("mx1.example.com", mdns.TypeA); n != 2 {
		t.Errorf("mx1: %d queries, want 2", n)
	}
	if _, err := c.Lookup(ctx, "mx3.example.com", mdns.TypeA); err != nil {
		t.Fatal(err)
	}
	if n := s.QueriesFor("mx3.example.com", mdns.TypeA); n != 1 {
		t.Errorf("mx3: %d queries, want 1", n)
	}

	s2, off := fixture(t, dns.Config{CacheSize: -1})
	for range 2 {
		_, _ = off.LookupTXT(ctx, "example.com")
	}
	if n := s2.QueriesFor("example.com", mdns.TypeTXT); n != 2 {
		t.Errorf("cache off: %d queries, want 2", n)
	}
}

func TestSingleflight(t *testing.T) {
	s, c := fixture(t, dns.Config{Timeout: time.Second})
	s.Fault("example.com", mdns.TypeTXT, zoneserver.Delay(150*time.Millisecond))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			got, err := c.LookupTXT(ctx, "example.com")
			if err == nil && len(got) != 2 {
				err = fmt.Errorf("got %q", got)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := s.QueriesFor("example.com", mdns.TypeTXT); n != 1 {
		t.Errorf("%d queries for 20 concurrent lookups, want 1", n)
	}
}

func TestTCPFallback(t *testing.T) {
	s, c := fixture(t, dns.Config{})
	s.Fault("example.com", mdns.TypeTXT, zoneserver.Truncate())
	got, err := c.LookupTXT(ctx, "example.com")
	if err != nil || len(got) != 2 {
		t.Fatalf("got %q, %v", got, err)
	}
	if n := s.QueriesFor("example.com", mdns.TypeTXT); n != 2 {
		t.Errorf("%d queries, want 2 (UDP truncated, then TCP)", n)
	}

	// An answer too big for our EDNS0 size is truncated by the server
	// without any fault, and fetched over TCP.
	for i := range 40 {
		if err := s.AddRecord(fmt.Sprintf(`big.example.com. 300 IN TXT "record %02d %s"`, i, strings.Repeat("y", 60))); err != nil {
			t.Fatal(err)
		}
	}
	got, err = c.LookupTXT(ctx, "big.example.com")
	if err != nil || len(got) != 40 {
		t.Fatalf("big: %d records, %v", len(got), err)
	}
	if n := s.QueriesFor("big.example.com", mdns.TypeTXT); n != 2 {
		t.Errorf("big: %d queries, want 2", n)
	}
}

func TestCNAME(t *testing.T) {
	s, c := fixture(t, dns.Config{})
	got, err := c.LookupTXT(ctx, "alias.example.com")
	if err != nil || len(got) != 2 {
		t.Errorf("TXT through a CNAME: %q, %v", got, err)
	}
	if n := s.QueriesFor("example.com", mdns.TypeTXT); n != 0 {
		t.Errorf("the target was asked separately %d times", n)
	}
}

func TestLookupIPAddr(t *testing.T) {
	s, c := fixture(t, dns.Config{})
	for _, tc := range []struct {
		host string
		want []string
	}{
		{"mixed.example.com", []string{"192.0.2.8", "2001:db8::8"}},
		{"v4only.example.com", []string{"192.0.2.4"}},
		{"v6only.example.com", []string{"2001:db8::6"}},
		{"192.0.2.77", []string{"192.0.2.77"}},
		{"2001:db8::77", []string{"2001:db8::77"}},
	} {
		got, err := c.LookupHost(ctx, tc.host)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.host, got, err, tc.want)
		}
	}
	if _, err := c.LookupIPAddr(ctx, "nxdomain.example.com"); !errors.Is(err, dns.ErrNXDomain) {
		t.Errorf("nxdomain: %v", err)
	}
	// One family failing does not hide the other's addresses...
	s.Fault("mixed.example.com", mdns.TypeAAAA, zoneserver.ServFail())
	s.Fault("v4only.example.com", mdns.TypeAAAA, zoneserver.ServFail())
	c2, _ := dns.New(dns.Config{Servers: []string{s.Addr()}, Timeout: 200 * time.Millisecond, Retries: -1})
	if got, err := c2.LookupHost(ctx, "mixed.example.com"); err != nil || !slices.Equal(got, []string{"192.0.2.8"}) {
		t.Errorf("AAAA SERVFAIL: %v, %v", got, err)
	}
	// ...but with no address at all the temporary failure wins over
	// the other family's NODATA.
	s.Fault("v6only.example.com", mdns.TypeAAAA, zoneserver.ServFail())
	if _, err := c2.LookupIPAddr(ctx, "v6only.example.com"); !dns.IsTemporary(err) || dns.IsNotFound(err) {
		t.Errorf("A NODATA + AAAA SERVFAIL: %v, want temporary", err)
	}
	// Both queries go out at once: two delayed families cost one delay.
	s.Fault("mixed.example.com", 0, zoneserver.Delay(200*time.Millisecond))
	c3, _ := dns.New(dns.Config{Servers: []string{s.Addr()}, Timeout: time.Second})
	start := time.Now()
	if _, err := c3.LookupIPAddr(ctx, "mixed.example.com"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 380*time.Millisecond {
		t.Errorf("A and AAAA took %v: not in parallel", d)
	}
}

func TestLookupMXAndAddr(t *testing.T) {
	_, c := fixture(t, dns.Config{})
	mxs, err := c.LookupMX(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mx := range mxs {
		got = append(got, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
	}
	if want := []string{"10 mx1.example.com.", "20 mx2.example.com.", "20 mx3.example.com."}; !slices.Equal(got, want) {
		t.Errorf("MX %q, want %q", got, want)
	}
	if mxs, err := c.LookupMX(ctx, "nullmx.example.com"); err != nil || len(mxs) != 1 || mxs[0].Host != "." {
		t.Errorf("null MX: %v, %v", mxs, err)
	}
	for _, addr := range []string{"192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"} {
		names, err := c.LookupAddr(ctx, addr)
		if err != nil || !slices.Equal(names, []string{"example.com."}) {
			t.Errorf("PTR %s: %v, %v", addr, names, err)
		}
	}
	if _, err := c.LookupAddr(ctx, "192.0.2.99"); !dns.IsNotFound(err) {
		t.Errorf("PTR without record: %v", err)
	}
	if _, err := c.LookupAddr(ctx, "not-an-ip"); err == nil || dns.IsTemporary(err) {
		t.Errorf("bad address: %v", err)
	}
}

func TestNew(t *testing.T) {
	for _, bad := range [][]string{{""}, {":53"}, {"host:"}, {"a b"}} {
		if _, err := dns.New(dns.Config{Servers: bad}); err == nil {
			t.Errorf("New accepted servers %q", bad)
		}
	}
	c, err := dns.New(dns.Config{Servers: []string{"192.0.2.53", "2001:db8::53", "[2001:db8::54]:5353", "ns.example:53"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"192.0.2.53:53", "[2001:db8::53]:53", "[2001:db8::54]:5353", "ns.example:53"}
	if got := c.Servers(); !slices.Equal(got, want) {
		t.Errorf("Servers %q, want %q", got, want)
	}
}

func TestMetrics(t *testing.T) {
	s, c := fixture(t, dns.Config{Retries: -1})
	reg := prometheus.NewPedanticRegistry()
	for _, col := range c.Collectors() {
		if err := reg.Register(col); err != nil {
			t.Fatal(err)
		}
	}
	s.Fault("servfail.example.com", 0, zoneserver.ServFail())
	_, _ = c.LookupTXT(ctx, "example.com")
	_, _ = c.LookupTXT(ctx, "example.com")
	_, _ = c.LookupTXT(ctx, "nxdomain.example.com")
	_, _ = c.LookupTXT(ctx, "servfail.example.com")
	_, _ = c.LookupIPAddr(ctx, "v4only.example.com")

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				got[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				got[name] = m.Gauge.GetValue()
			case m.Histogram != nil:
				got[name] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	for name, want := range map[string]float64{
		"chainmail_dns_lookups_total/TXT":          4,
		"chainmail_dns_lookups_total/A":            1,
		"chainmail_dns_lookups_total/AAAA":         1,
		"chainmail_dns_cache_hits_total/TXT":       1,
		"chainmail_dns_queries_total/TXT":          3,
		"chainmail_dns_errors_total/nxdomain":      1,
		"chainmail_dns_errors_total/servfail":      1,
		"chainmail_dns_errors_total/nodata":        1, // v4only AAAA
		"chainmail_dns_query_duration_seconds/udp": 5,
		"chainmail_dns_cache_entries":              4, // TXT example.com and nxdomain (negative), A and AAAA (NODATA) of v4only
		"chainmail_dns_shared_total":               0,
		"chainmail_dns_errors_total/timeout":       -1, // absent
		"chainmail_dns_query_duration_seconds/tcp": -1,
		"chainmail_dns_cache_hits_total/A":         -1,
		"chainmail_dns_lookups_total/MX":           -1,
		"chainmail_dns_errors_total/refused":       -1,
		"chainmail_dns_queries_total/A":            1,
		"chainmail_dns_queries_total/AAAA":         1,
		"chainmail_dns_errors_total/badname":       -1,
		"chainmail_dns_errors_total/loop":          -1,
		"chainmail_dns_errors_total/network":       -1,
		"chainmail_dns_errors_total/server":        -1,
		"chainmail_dns_errors_total/canceled":      -1,
		"chainmail_dns_cache_hits_total/AAAA":      -1,
		"chainmail_dns_lookups_total/PTR":          -1,
		"chainmail_dns_queries_total/MX":           -1,
	} {
		v, ok := got[name]
		if want < 0 {
			if ok {
				t.Errorf("%s = %v, want absent", name, v)
			}
			continue
		}
		if v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	var cfg dns.Config
	in := "servers: [\"127.0.0.1:5353\", \"::1\"]\ntimeout: 750ms\nretries: 2\ncache_size: 500\n"
	if err := yaml.Unmarshal([]byte(in), &cfg); err != nil {
		t.Fatal(err)
	}
	want := dns.Config{Servers: []string{"127.0.0.1:5353", "::1"}, Timeout: 750 * time.Millisecond, Retries: 2, CacheSize: 500}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
}

func BenchmarkLookupTXTCached(b *testing.B) {
	s := dnstest.Start(b, "testdata/client.zone")
	c, err := dns.New(dns.Config{Servers: []string{s.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.LookupTXT(ctx, "example.com"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.LookupTXT(ctx, "example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
