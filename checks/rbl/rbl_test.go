package rbl

import (
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/checks/dnsbl"
	"chainmail/store/storetest"
)

// world is a DNS server with testdata/lists.zone and a resolver for it.
type world struct {
	srv *zoneserver.Server
	r   *dns.Client
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := dnstest.Start(t, "testdata/lists.zone")
	r, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: 2 * time.Second, Retries: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &world{srv: srv, r: r}
}

func (w *world) check(t *testing.T, cfg Config, o ...Options) *Check {
	t.Helper()
	var opt Options
	if len(o) > 0 {
		opt = o[0]
	}
	c, err := NewWithOptions(cfg, w.r, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func zen(lookup ...string) ListConfig {
	return ListConfig{ListConfig: dnsbl.ListConfig{
		Name: "spamhaus-ZEN", Zone: "zen.test",
		Codes: []dnsbl.Code{
			{Symbol: "RBL_SPAMHAUS_SBL", Score: 4, Match: "127.0.0.2"},
			{Symbol: "RBL_SPAMHAUS_CSS", Score: 2, Match: "127.0.0.3"},
			{Symbol: "RBL_SPAMHAUS_XBL", Score: 4, Match: "127.0.0.4-127.0.0.7"},
			{Symbol: "RBL_SPAMHAUS_PBL", Score: 1.5, Match: "127.0.0.10/31"},
		},
	}, Lookup: lookup}
}

func config(lists ...ListConfig) Config {
	cfg := DefaultConfig()
	cfg.Lists = lists
	return cfg
}

func message(ip string, header ...string) *checks.Message {
	m := &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP(ip), QueueID: "Q1", MailFrom: "a@sender.example", HELO: "mail.sender.example"}}
	for _, h := range header {
		name, value, _ := strings.Cut(h, ": ")
		m.Header = append(m.Header, checks.HeaderField{Name: name, Value: value})
	}
	return m
}

func symbols(r checks.Result) map[string]checks.Symbol {
	out := map[string]checks.Symbol{}
	for _, s := range r.Symbols {
		out[s.Name] = s
	}
	return out
}

func names(r checks.Result) []string {
	var out []string
	for _, s := range r.Symbols {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

// Every return-code class of a Spamhaus-style map: exact, range, prefix,
// two codes at once, and a code the map does not know (ignored, or the
// list's own symbol with unknown: true).
func TestReturnCodes(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, config(zen()))
	unknown := zen()
	unknown.Unknown = true
	unknown.Symbol = "RBL_ZEN_OTHER"
	unknown.Score = 0.5
	cu := w.check(t, config(unknown))
	for _, tc := range []struct {
		ip     string
		c      *Check
		want   []string
		status checks.Status
	}{
		{"192.0.2.2", c, []string{"RBL_SPAMHAUS_SBL"}, checks.StatusListed},
		{"192.0.2.3", c, []string{"RBL_SPAMHAUS_CSS"}, checks.StatusListed},
		{"192.0.2.4", c, []string{"RBL_SPAMHAUS_XBL"}, checks.StatusListed},
		{"192.0.2.7", c, []string{"RBL_SPAMHAUS_XBL"}, checks.StatusListed},
		{"192.0.2.10", c, []string{"RBL_SPAMHAUS_PBL"}, checks.StatusListed},
		{"192.0.2.11", c, []string{"RBL_SPAMHAUS_SBL", "RBL_SPAMHAUS_XBL"}, checks.StatusListed},
		{"192.0.2.20", c, nil, checks.StatusClean},
		{"192.0.2.20", cu, []string{"RBL_ZEN_OTHER"}, checks.StatusListed},
		{"192.0.2.1", c, nil, checks.StatusClean},
		{"192.0.2.97", c, nil, checks.StatusClean}, // TXT only
	} {
		r := tc.c.Check(context.Background(), message(tc.ip), nil)
		if got := names(r); !slices.Equal(got, tc.want) || r.Status != tc.status {
			t.Errorf("%s: %v %s (%s), want %v %s", tc.ip, got, r.Status, r.Reason, tc.want, tc.status)
		}
		if tc.status == checks.StatusListed && !slices.Equal(r.Listed, []string{"spamhaus-ZEN"}) {
			t.Errorf("%s: listed %v", tc.ip, r.Listed)
		}
		if tc.status != checks.StatusListed && len(r.Listed) > 0 {
			t.Errorf("%s: listed %v", tc.ip, r.Listed)
		}
	}
	r := c.Check(context.Background(), message("192.0.2.2"), nil)
	if s := symbols(r)["RBL_SPAMHAUS_SBL"]; s.Score != 4 || s.Detail != "192.0.2.2:client" || r.Score != 4 {
		t.Errorf("symbol %+v, score %v", s, r.Score)
	}
}

// Bitmask lists (URIBL multi) and domain lookups; URIBL's 127.0.0.1 is a
// refusal, not a listing.
func TestBitsAndDomains(t *testing.T) {
	w := newWorld(t)
	multi := ListConfig{ListConfig: dnsbl.ListConfig{Name: "URIBL", Zone: "multi.test", Codes: []dnsbl.Code{
		{Symbol: "URIBL_BLACK", Score: 7.5, Bits: 2}, {Symbol: "URIBL_GREY", Score: 1.5, Bits: 4}, {Symbol: "URIBL_RED", Score: 0.5, Bits: 8},
	}}, Lookup: []string{LookupEnvFrom}}
	c := w.check(t, config(multi))
	for _, tc := range []struct {
		from   string
		want   []string
		status checks.Status
	}{
		{"x@black.example", []string{"URIBL_BLACK"}, checks.StatusListed},
		{"x@mail.greyred.example", []string{"URIBL_GREY", "URIBL_RED"}, checks.StatusListed},
		{"x@blocked.example", []string{"RBL_URIBL_FAIL"}, checks.StatusTemperror},
		{"x@clean.example", nil, checks.StatusClean},
	} {
		m := message("192.0.2.1")
		m.MailFrom = tc.from
		r := c.Check(context.Background(), m, nil)
		if got := names(r); !slices.Equal(got, tc.want) || r.Status != tc.status {
			t.Errorf("%s: %v %s (%s)", tc.from, got, r.Status, r.Reason)
		}
	}
}

// Each error answer gives <SYMBOL>_FAIL with score 0 and a warning line,
// never a listing; so do timeouts, SERVFAIL and REFUSED. NXDOMAIN is
// "not listed".
func TestErrorAnswersAndFailures(t *testing.T) {
	w := newWorld(t)
	w.srv.Fault("2.2.0.192.dead.test", 0, zoneserver.Drop())
	w.srv.Fault("2.2.0.192.broken.test", 0, zoneserver.ServFail())
	w.srv.Fault("3.2.0.192.broken.test", 0, zoneserver.Refused())
	dead := ListConfig{ListConfig: dnsbl.ListConfig{Name: "DEAD", Zone: "dead.test", Timeout: 200 * time.Millisecond}}
	broken := ListConfig{ListConfig: dnsbl.ListConfig{Name: "BROKEN", Zone: "broken.test"}}
	c := w.check(t, config(zen(), dead, broken))
	for _, tc := range []struct {
		ip, list, reason string
	}{
		{"192.0.2.252", "RBL_SPAMHAUS_ZEN_FAIL", "answer 127.255.255.252 (malformed query)"},
		{"192.0.2.254", "RBL_SPAMHAUS_ZEN_FAIL", "answer 127.255.255.254 (query through a public or open resolver refused)"},
		{"192.0.2.255", "RBL_SPAMHAUS_ZEN_FAIL", "answer 127.255.255.255 (too many queries)"},
		{"192.0.2.99", "RBL_SPAMHAUS_ZEN_FAIL", "answer 127.0.0.1 (query refused or blocked)"},
		{"192.0.2.98", "RBL_SPAMHAUS_ZEN_FAIL", "answer 198.51.100.7 outside 127.0.0.0/8"},
		{"192.0.2.2", "RBL_DEAD_FAIL", "timeout"},
		{"192.0.2.2", "RBL_BROKEN_FAIL", "SERVFAIL"},
		{"192.0.2.3", "RBL_BROKEN_FAIL", "REFUSED"},
	} {
		start := time.Now()
		r := c.Check(context.Background(), message(tc.ip), nil)
		if time.Since(start) > 1500*time.Millisecond {
			t.Errorf("%s: took %v", tc.ip, time.Since(start))
		}
		s, ok := symbols(r)[tc.list]
		if !ok || s.Score != 0 || s.Detail != tc.reason {
			t.Errorf("%s: %s = %+v (symbols %v)", tc.ip, tc.list, s, names(r))
		}
		for _, l := range r.Listed {
			if l == strings.TrimSuffix(strings.TrimPrefix(tc.list, "RBL_"), "_FAIL") {
				t.Errorf("%s: %s counted as listed", tc.ip, l)
			}
		}
		found := false
		for _, e := range r.Events {
			if strings.Contains(e.Line, "RBL warning: list ") && strings.Contains(e.Line, tc.reason) && strings.HasSuffix(e.Line, "not counted as a listing") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no warning line for %s: %v", tc.ip, tc.reason, r.Events)
		}
	}
	// NXDOMAIN everywhere: clean, no _FAIL.
	r := c.Check(context.Background(), message("192.0.2.1"), nil)
	if r.Status != checks.StatusClean || len(r.Symbols) != 0 || len(r.Events) != 0 {
		t.Errorf("NXDOMAIN: %s %v %v", r.Status, names(r), r.Events)
	}
}

// A list that only fails gives temperror, never listed.
func TestAllListsFailing(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, config(ListConfig{ListConfig: dnsbl.ListConfig{Name: "REFUSING", Zone: "refusing.test", ProbeListed: "-"}}))
	r := c.Check(context.Background(), message("192.0.2.2"), nil)
	if r.Status != checks.StatusTemperror || len(r.Listed) != 0 || r.Score != 0 {
		t.Errorf("%s %v %v", r.Status, r.Listed, r.Score)
	}
}

// IPv6 clients are asked by nibbles (RFC 5782 §2.4); skip_ipv6 leaves
// them out; an IPv4-mapped address is asked as IPv4.
func TestIPv6(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, config(zen()))
	r := c.Check(context.Background(), message("2001:db8::2"), nil)
	if got := names(r); !slices.Equal(got, []string{"RBL_SPAMHAUS_SBL"}) || symbols(r)["RBL_SPAMHAUS_SBL"].Detail != "2001:db8::2:client" {
		t.Errorf("v6: %v %v", got, r.Symbols)
	}
	r = c.Check(context.Background(), message("2001:db8:1::5"), nil)
	if got := names(r); !slices.Equal(got, []string{"RBL_SPAMHAUS_PBL"}) {
		t.Errorf("v6 PBL: %v", got)
	}
	r = c.Check(context.Background(), message("::ffff:192.0.2.3"), nil)
	if got := names(r); !slices.Equal(got, []string{"RBL_SPAMHAUS_CSS"}) {
		t.Errorf("mapped: %v", got)
	}
	no6 := zen()
	no6.SkipIPv6 = true
	c6 := w.check(t, config(no6))
	if r := c6.Check(context.Background(), message("2001:db8::2"), nil); r.Status != checks.StatusNone {
		t.Errorf("skip_ipv6: %s %v", r.Status, names(r))
	}
}

// Received hops: private, own and the client itself are skipped;
// positions bound which hops a list sees.
func TestReceivedHops(t *testing.T) {
	w := newWorld(t)
	hdr := []string{
		"Received: from mx.relay.example (mx.relay.example [198.51.100.1]) by mx.ours.example (Postfix) with ESMTP id 1; Mon, 1 Jan 2024 00:00:00 +0000",
		"Received: from inside.example (inside.example [10.1.2.3]) by mx.relay.example with ESMTP id 2",
		"Received: from spam.example ([203.0.113.5] helo=spam) by inside.example with esmtp (Exim 4.96) id 3",
		"Received: from origin (HELO origin) (203.0.113.6) by spam.example with SMTP; 1 Jan 2024",
		"Received: by localhost with local (envelope-from <x@y>)",
	}
	received := func(lo, hi int) Config {
		l := zen(LookupReceived)
		l.ReceivedMin, l.ReceivedMax = lo, hi
		cfg := config(l)
		cfg.Own = []string{"198.51.100.0/24"}
		return cfg
	}
	for _, tc := range []struct {
		lo, hi int
		want   string
	}{
		{0, 0, "203.0.113.5:received,203.0.113.6:received"},
		{1, 3, "203.0.113.5:received"},
		{4, 0, "203.0.113.6:received"},
		{-2, -2, "203.0.113.6:received"},
		{-1, 0, ""},
		{1, 2, ""},
	} {
		c := w.check(t, received(tc.lo, tc.hi))
		r := c.Check(context.Background(), message("198.51.100.1", hdr...), nil)
		var got []string
		for _, s := range r.Symbols {
			got = append(got, s.Detail)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("min %d max %d: %v, want %s (%s)", tc.lo, tc.hi, got, tc.want, r.Reason)
		}
	}
	// The hop equal to the client is the client's business.
	c := w.check(t, config(zen(LookupClient, LookupReceived)))
	r := c.Check(context.Background(), message("203.0.113.5", hdr[2]), nil)
	if s := symbols(r)["RBL_SPAMHAUS_XBL"]; s.Detail != "203.0.113.5:client" {
		t.Errorf("client hop: %+v", r.Symbols)
	}
	// A private client is not asked about.
	if r := c.Check(context.Background(), message("10.0.0.1"), nil); r.Status != checks.StatusNone {
		t.Errorf("private client: %s", r.Status)
	}
}

func TestReceivedAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"from a.example (b.example [192.0.2.1]) by c", "192.0.2.1"},
		{"from b.example ([192.0.2.1] helo=a) by c", "192.0.2.1"},
		{"from unknown (HELO x) (192.0.2.1) by c", "192.0.2.1"},
		{"from x (unknown [IPv6:2001:db8::1]) by y", "2001:db8::1"},
		{"from X.example (2603:10a6::5) by Y.example (2603:10a6::6) with Microsoft SMTP Server", "2603:10a6::5"},
		{"from [192.0.2.9] (helo) by x", "192.0.2.9"},
		{"from 10.0.0.1 (rdns [192.0.2.1]) by c", "192.0.2.1"},
		{"by localhost with local; 1 Jan", ""},
		{"from 1.2.3.4.example (x) by c", ""},
		{"from a by b with (envelope-from 192.0.2.1)", ""},
		{"from a\r\n\t(b [192.0.2.77])\r\n\tby c", "192.0.2.77"},
		{strings.Repeat("from ", 10000), ""},
		// Bytes whose lower case is longer (invalid UTF-8, U+0130) must
		// not shift the clause or panic.
		{"\xff\xff\xff\xff\xff\xff\xff\xff from a ([192.0.2.5]) by c", "192.0.2.5"},
		{"\u0130\u0130\u0130\u0130\u0130\u0130 FROM a ([192.0.2.6]) BY c", "192.0.2.6"},
	} {
		a, ok := receivedAddr(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("%.60q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Domain lists: HELO, envelope sender and header From, registrable domain
// by default.
func TestDomainLookups(t *testing.T) {
	w := newWorld(t)
	dbl := ListConfig{ListConfig: dnsbl.ListConfig{Name: "spamhaus-DBL", Zone: "dbl.test", Codes: []dnsbl.Code{
		{Symbol: "DBL_SPAM", Score: 6.5, Match: "127.0.1.2"}, {Symbol: "DBL_PHISH", Score: 6.5, Match: "127.0.1.4"},
		{Symbol: "DBL_ABUSE", Score: 2, Match: "127.0.1.102"},
	}}, Lookup: []string{LookupHELO, LookupEnvFrom, LookupHeaderFrom}}
	c := w.check(t, config(dbl))
	m := message("192.0.2.1", "From: \"Bank\" <alerts@mail.phish.example>, other@abused.example")
	m.HELO = "smtp.spam.example"
	m.MailFrom = "bounce@clean.example"
	r := c.Check(context.Background(), m, nil)
	s := symbols(r)
	if s["DBL_SPAM"].Detail != "spam.example:helo" || s["DBL_PHISH"].Detail != "phish.example:header_from" || s["DBL_ABUSE"].Detail != "abused.example:header_from" {
		t.Errorf("%+v", r.Symbols)
	}
	if !slices.Equal(r.Listed, []string{"spamhaus-DBL"}) {
		t.Errorf("listed %v", r.Listed)
	}
	// Full domains, and an IP asked of DBL as a domain is an error
	// answer.
	full := dbl
	full.FullDomain = true
	cf := w.check(t, config(full))
	m = message("192.0.2.1")
	m.HELO = "mail.full.example"
	m.MailFrom = "x@full.example"
	if r := cf.Check(context.Background(), m, nil); !slices.Equal(names(r), []string{"DBL_SPAM"}) || r.Symbols[0].Detail != "mail.full.example:helo" {
		t.Errorf("full: %+v", r.Symbols)
	}
	// IP-literal and single-label HELOs are no domains.
	m.HELO = "[192.0.2.1]"
	m.MailFrom = ""
	if r := c.Check(context.Background(), m, nil); r.Status != checks.StatusNone {
		t.Errorf("literal HELO: %s %v", r.Status, names(r))
	}
}

// Allowlists: negative scores, never listed; with overrides they drop the
// blocklist hits of the keys they list.
func TestAllowlist(t *testing.T) {
	w := newWorld(t)
	wl := ListConfig{ListConfig: dnsbl.ListConfig{Name: "DNSWL", Zone: "wl.test", Allow: true, Errors: []string{"127.0.0.255"},
		Codes: []dnsbl.Code{
			{Symbol: "RCVD_IN_DNSWL_HI", Score: -3, Match: "127.0.*.3"},
			{Symbol: "RCVD_IN_DNSWL_LOW", Score: -0.7, Match: "127.0.*.1"},
		}}}
	c := w.check(t, config(zen(), wl))
	r := c.Check(context.Background(), message("192.0.2.2"), nil)
	if got := names(r); !slices.Equal(got, []string{"RBL_SPAMHAUS_SBL", "RCVD_IN_DNSWL_HI"}) || r.Score != 1 ||
		!slices.Equal(r.Listed, []string{"spamhaus-ZEN"}) || !slices.Equal(r.Facts["allowed"].([]string), []string{"DNSWL"}) {
		t.Errorf("%v score %v listed %v facts %v", got, r.Score, r.Listed, r.Facts)
	}
	r = c.Check(context.Background(), message("192.0.2.50"), nil)
	if r.Status != checks.StatusClean || r.Score != -0.7 || len(r.Listed) != 0 {
		t.Errorf("low trust: %s %v %v", r.Status, r.Score, r.Listed)
	}
	wl.Overrides = true
	co := w.check(t, config(zen(), wl))
	r = co.Check(context.Background(), message("192.0.2.2"), nil)
	if got := names(r); !slices.Equal(got, []string{"RCVD_IN_DNSWL_HI"}) || len(r.Listed) != 0 || r.Status != checks.StatusClean {
		t.Errorf("overrides: %v %v %s", got, r.Listed, r.Status)
	}
}

func TestSkipAuthenticated(t *testing.T) {
	w := newWorld(t)
	c := w.check(t, config(zen()))
	m := message("192.0.2.10")
	m.AuthUser = "alice"
	if r := c.Check(context.Background(), m, nil); r.Status != checks.StatusSkipped || len(r.Symbols) != 0 {
		t.Errorf("%s %v", r.Status, r.Symbols)
	}
	cfg := config(zen())
	cfg.SkipAuthenticated = false
	c = w.check(t, cfg)
	if r := c.Check(context.Background(), m, nil); r.Status != checks.StatusListed {
		t.Errorf("not skipped: %s", r.Status)
	}
	if r := w.check(t, config()).Check(context.Background(), message("192.0.2.2"), nil); r.Status != checks.StatusNone {
		t.Errorf("no lists: %s", r.Status)
	}
}

// All lists are asked at once: two lists that each take 400 ms answer in
// well under 800 ms, and a list's own timeout does not hold up the others.
func TestParallel(t *testing.T) {
	w := newWorld(t)
	w.srv.Fault("2.2.0.192.slow.test", 0, zoneserver.Delay(400*time.Millisecond))
	w.srv.Fault("2.2.0.192.zen.test", 0, zoneserver.Delay(400*time.Millisecond))
	w.srv.Fault("2.2.0.192.dead.test", 0, zoneserver.Drop())
	slow := ListConfig{ListConfig: dnsbl.ListConfig{Name: "SLOW", Zone: "slow.test"}}
	dead := ListConfig{ListConfig: dnsbl.ListConfig{Name: "DEAD", Zone: "dead.test", Timeout: 600 * time.Millisecond}}
	c := w.check(t, config(zen(), slow, dead))
	c.Check(context.Background(), message("192.0.2.1"), nil) // probes
	start := time.Now()
	r := c.Check(context.Background(), message("192.0.2.2"), nil)
	d := time.Since(start)
	if d > 750*time.Millisecond {
		t.Errorf("took %v", d)
	}
	if !slices.Equal(r.Listed, []string{"spamhaus-ZEN", "SLOW"}) || symbols(r)["RBL_DEAD_FAIL"].Detail != "timeout" {
		t.Errorf("%v %v", r.Listed, r.Symbols)
	}
}

// The health probe: a list that lists 127.0.0.1 (everything), one that
// does not list 127.0.0.2, and one that refuses us are suspended; healthy
// lists are used. Probes are asked once, not per message.
func TestHealthProbe(t *testing.T) {
	w := newWorld(t)
	lists := []ListConfig{zen(),
		{ListConfig: dnsbl.ListConfig{Name: "EVERYTHING", Zone: "everything.test"}},
		{ListConfig: dnsbl.ListConfig{Name: "EMPTY", Zone: "empty.test"}},
		{ListConfig: dnsbl.ListConfig{Name: "REFUSING", Zone: "refusing.test"}},
	}
	c := w.check(t, config(lists...))
	for range 3 {
		r := c.Check(context.Background(), message("192.0.2.2"), nil)
		if !slices.Equal(r.Listed, []string{"spamhaus-ZEN"}) {
			t.Errorf("listed %v", r.Listed)
		}
		s := symbols(r)
		for sym, why := range map[string]string{
			"RBL_EVERYTHING_FAIL": "suspended: health probe: dnsbl: the entry that must not be listed is listed (127.0.0.1 answers 127.0.0.2)",
			"RBL_EMPTY_FAIL":      "suspended: health probe: dnsbl: the test entry is not listed (127.0.0.2)",
			"RBL_REFUSING_FAIL":   "suspended: health probe: 127.0.0.2: answer 127.255.255.254 (query through a public or open resolver refused)",
		} {
			if s[sym].Detail != why || s[sym].Score != 0 {
				t.Errorf("%s: %q, want %q", sym, s[sym].Detail, why)
			}
		}
	}
	if n := w.srv.QueriesFor("2.0.0.127.zen.test", mdns.TypeA); n != 1 {
		t.Errorf("probe asked %d times", n)
	}
	if n := w.srv.QueriesFor("2.2.0.192.everything.test", 0); n != 0 {
		t.Errorf("suspended list asked %d times", n)
	}
	h := c.Set().Health()
	if !h[1].Suspended || h[0].Suspended {
		t.Errorf("health %+v", h)
	}
}

// A list failing 7 of its last 10 queries is suspended; after Retry it is
// probed again and used again once the probe passes. Probes are due every
// ProbeInterval.
func TestSuspendAndReprobe(t *testing.T) {
	w := newWorld(t)
	clock := storetest.NewClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	probes := 0
	healthy := true
	prober := func(ctx context.Context, l *dnsbl.List) error {
		mu.Lock()
		defer mu.Unlock()
		probes++
		if !healthy {
			return errors.New("still down")
		}
		return nil
	}
	cfg := config(zen())
	cfg.Health.Retry = time.Minute
	cfg.Health.ProbeInterval = 10 * time.Minute
	c := w.check(t, cfg, Options{Now: clock.Now, Prober: prober})
	w.srv.Fault("2.2.0.192.zen.test", 0, zoneserver.ServFail())
	ask := func() checks.Result { return c.Check(context.Background(), message("192.0.2.2"), nil) }
	// 3 good, then failures: the 7th failure within 10 suspends.
	w.srv.Fault("2.2.0.192.zen.test", 0, zoneserver.Fault{})
	for range 3 {
		if r := ask(); r.Status != checks.StatusListed {
			t.Fatalf("%s %s", r.Status, r.Reason)
		}
	}
	w.srv.Fault("2.2.0.192.zen.test", 0, zoneserver.ServFail())
	for i := range 7 {
		r := ask()
		if r.Status != checks.StatusTemperror {
			t.Fatalf("failure %d: %s", i, r.Status)
		}
	}
	before := w.srv.QueriesFor("2.2.0.192.zen.test", 0)
	r := ask()
	if s := symbols(r)["RBL_SPAMHAUS_ZEN_FAIL"]; s.Detail != "suspended: 7 of the last 10 queries failed" {
		t.Errorf("suspended: %+v", r.Symbols)
	}
	if w.srv.QueriesFor("2.2.0.192.zen.test", 0) != before {
		t.Error("a suspended list was asked")
	}
	// After Retry: re-probed; the probe fails, so it stays out.
	mu.Lock()
	healthy = false
	mu.Unlock()
	clock.Add(time.Minute)
	waitProbes := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			p := probes
			mu.Unlock()
			if p >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d probes, want %d", p, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ask()
	waitProbes(2)
	waitHealth(t, c, func(h dnsbl.Health) bool { return h.Suspended && strings.Contains(h.Reason, "still down") })
	// The list recovers; the next probe after Retry brings it back.
	w.srv.Fault("2.2.0.192.zen.test", 0, zoneserver.Fault{})
	mu.Lock()
	healthy = true
	mu.Unlock()
	clock.Add(time.Minute)
	ask()
	waitProbes(3)
	waitHealth(t, c, func(h dnsbl.Health) bool { return !h.Suspended })
	if r := ask(); r.Status != checks.StatusListed {
		t.Errorf("after recovery: %s %s", r.Status, r.Reason)
	}
	// Periodic probe.
	clock.Add(11 * time.Minute)
	ask()
	waitProbes(4)
}

func waitHealth(t *testing.T, c *Check, ok func(dnsbl.Health) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(c.Set().Health()[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("health %+v", c.Set().Health()[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Without probes a suspended list comes back by itself after Retry.
func TestSuspendWithoutProbes(t *testing.T) {
	w := newWorld(t)
	clock := storetest.NewClockAt(time.Unix(0, 0))
	cfg := config(zen())
	cfg.Health.ProbeInterval = 0
	c := w.check(t, cfg, Options{Now: clock.Now})
	w.srv.Fault("2.2.0.192.zen.test", 0, zoneserver.ServFail())
	for range 7 {
		c.Check(context.Background(), message("192.0.2.2"), nil)
	}
	if !c.Set().Health()[0].Suspended {
		t.Fatal("not suspended")
	}
	w.srv.Fault("2.2.0.192.zen.test", 0, zoneserver.Fault{})
	clock.Add(cfg.Health.Retry)
	if r := c.Check(context.Background(), message("192.0.2.2"), nil); r.Status != checks.StatusListed {
		t.Errorf("%s %s", r.Status, r.Reason)
	}
	if n := w.srv.QueriesFor("2.0.0.127.zen.test", 0); n != 0 {
		t.Errorf("probed %d times with probes off", n)
	}
}

// Background probes end with Close: no goroutine outlives the check.
func TestNoGoroutineLeak(t *testing.T) {
	w := newWorld(t)
	w.srv.Fault("2.0.0.127.slow.test", 0, zoneserver.Delay(300*time.Millisecond))
	before := runtime.NumGoroutine()
	clock := storetest.NewClockAt(time.Unix(0, 0))
	cfg := config(zen(), ListConfig{ListConfig: dnsbl.ListConfig{Name: "SLOW", Zone: "slow.test"}})
	c, err := NewWithOptions(cfg, w.r, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	c.Check(context.Background(), message("192.0.2.2"), nil)
	clock.Add(time.Hour)
	c.Check(context.Background(), message("192.0.2.2"), nil) // starts background probes
	c.Close()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+2 { // the dns client's in-flight exchanges end by their own timeout
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigErrors(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		l    ListConfig
		want string
	}{
		{ListConfig{ListConfig: dnsbl.ListConfig{Zone: "x.test"}}, "needs a name"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A B", Zone: "x.test"}}, "no spaces"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "bad zone"}}, "is not a domain name"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "x.test", Codes: []dnsbl.Code{{Symbol: "S", Match: "127.0.0.x"}}}}, "is not an IPv4 address"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "x.test", Codes: []dnsbl.Code{{Symbol: "S"}}}}, "set match or bits"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "x.test", Codes: []dnsbl.Code{{Symbol: "S", Match: "127.0.0.2", Bits: 2}}}}, "not both"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "x.test", Codes: []dnsbl.Code{{Symbol: "bad-symbol", Match: "127.0.0.2"}}}}, "symbol"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "x.test"}, Lookup: []string{"body"}}, `lookup "body"`},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "x.test", Overrides: true}}, "overrides is for allow lists"},
		{ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "x.test", Hash: "md5"}}, "hash"},
	} {
		_, err := New(config(tc.l), w.r)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
	if _, err := New(config(zen(), zen()), w.r); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("duplicate: %v", err)
	}
	cfg := config(zen())
	cfg.Own = []string{"nope"}
	if _, err := New(cfg, w.r); err == nil {
		t.Error("bad own accepted")
	}
}

// The first probes of all lists run at once: two lists whose test entry
// takes 300 ms each hold the first message for about 300 ms, not 600.
func TestProbesInParallel(t *testing.T) {
	w := newWorld(t)
	w.srv.Fault("2.0.0.127.zen.test", 0, zoneserver.Delay(300*time.Millisecond))
	w.srv.Fault("2.0.0.127.slow.test", 0, zoneserver.Delay(300*time.Millisecond))
	c := w.check(t, config(zen(), ListConfig{ListConfig: dnsbl.ListConfig{Name: "SLOW", Zone: "slow.test"}}))
	start := time.Now()
	r := c.Check(context.Background(), message("192.0.2.2"), nil)
	if d := time.Since(start); d > 550*time.Millisecond {
		t.Errorf("first message took %v", d)
	}
	if !slices.Equal(r.Listed, []string{"spamhaus-ZEN", "SLOW"}) {
		t.Errorf("listed %v (%s)", r.Listed, r.Reason)
	}
}

// A From value that does not parse is searched for "@" in time linear in
// its length: a hostile "@a@a@a…" header must not cost seconds.
func TestFromDomainsLinear(t *testing.T) {
	if got := fromDomains("bad <<a@x.example> b@y.example@"); !slices.Equal(got, []string{"x.example", "y.example"}) {
		t.Errorf("fromDomains: %v", got)
	}
	v := strings.Repeat("@a", 60000)
	start := time.Now()
	fromDomains(v)
	if d := time.Since(start); d > time.Second {
		t.Errorf("fromDomains of %d bytes took %v", len(v), d)
	}
}
