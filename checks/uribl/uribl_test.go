package uribl

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/checks/dnsbl"
)

func newCheck(t *testing.T, cfg Config) (*Check, *zoneserver.Server) {
	t.Helper()
	srv := dnstest.Start(t, "testdata/uribl.zone")
	r, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: time.Second, Retries: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, srv
}

func lists(ls ...ListConfig) Config {
	cfg := DefaultConfig()
	cfg.Lists = ls
	return cfg
}

var (
	dbl = ListConfig{ListConfig: dnsbl.ListConfig{Name: "spamhaus-DBL", Zone: "dbl.test", Codes: []dnsbl.Code{
		{Symbol: "DBL_SPAM", Score: 6.5, Match: "127.0.1.2"}, {Symbol: "DBL_PHISH", Score: 7.5, Match: "127.0.1.4"},
	}}, Lookup: []string{LookupDomains}, Sources: []string{"link", "text", "image", "subject", "email"}}
	multi = ListConfig{ListConfig: dnsbl.ListConfig{Name: "URIBL-multi", Zone: "multi.test", Codes: []dnsbl.Code{
		{Symbol: "URIBL_BLACK", Score: 7.5, Bits: 2}, {Symbol: "URIBL_GREY", Score: 1.5, Bits: 4}, {Symbol: "URIBL_RED", Score: 0.5, Bits: 8},
	}}}
)

func syms(r checks.Result) map[string]string {
	out := map[string]string{}
	for _, s := range r.Symbols {
		out[s.Name] = s.Detail
	}
	return out
}

func TestLists(t *testing.T) {
	zenURL := ListConfig{ListConfig: dnsbl.ListConfig{Name: "ZEN-URL", Zone: "zen.test", Codes: []dnsbl.Code{
		{Symbol: "URIBL_SBL", Score: 4, Match: "127.0.0.2"}, {Symbol: "URIBL_XBL", Score: 2, Match: "127.0.0.4-127.0.0.7"},
		{Symbol: "URIBL_CSS", Score: 2, Match: "127.0.0.3"},
	}}, Lookup: []string{LookupIPs, LookupResolvedIPs}}
	hashed := ListConfig{ListConfig: dnsbl.ListConfig{Name: "HASHED", Zone: "hashed.test", Hash: "blake2b", ProbeListed: "-", ProbeUnlisted: "-"},
		Lookup: []string{LookupDomains}}
	ebl := ListConfig{ListConfig: dnsbl.ListConfig{Name: "EBL", Zone: "ebl.test", ProbeListed: "-"},
		Lookup: []string{LookupEmailAddress}, Sources: []string{"email", "reply_to"}}
	images := ListConfig{ListConfig: dnsbl.ListConfig{Name: "IMAGES", Zone: "multi.test", Symbol: "URIBL_IMAGES"}, Sources: []string{"image"}}
	c, _ := newCheck(t, lists(dbl, multi, zenURL, hashed, ebl, images))
	m := parse(t, "Subject: offer\r\nReply-To: alice@example.org\r\nContent-Type: text/html\r\n\r\n"+
		"<a href=\"http://www.example.com/\">spam</a> <a href=\"https://login.example.net/\">phish</a>"+
		"<a href=\"http://shop.example.org/\">black</a> <a href=\"http://grey.example/\">grey</a>"+
		"<a href=\"http://192.0.2.2/\">ip</a> <a href=\"http://[2001:db8::1]/\">v6</a> <a href=\"http://resolves.example/\">r</a>"+
		"<img src=\"http://x.grey.example/i.png\"> http://мойсайт.рф/\r\n")
	r := c.Check(context.Background(), m, nil)
	got := syms(r)
	want := map[string]string{
		"DBL_SPAM":                "example.com:url,xn--80arbjktj.xn--p1ai:url",
		"DBL_PHISH":               "example.net:url",
		"URIBL_BLACK":             "example.org:url,192.0.2.2:url",
		"URIBL_GREY":              "grey.example:url",
		"URIBL_RED":               "grey.example:url",
		"URIBL_SBL":               "192.0.2.2:url",
		"URIBL_CSS":               "2001:db8::1:url",
		"URIBL_XBL":               "192.0.2.5:resolves.example:url",
		"URIBL_HASHED":            "example.com:url",
		"URIBL_EBL":               "alice.example.org:email",
		"URIBL_IMAGES":            "grey.example:url",
		"URIBL_SPAMHAUS_DBL_FAIL": "",
	}
	delete(want, "URIBL_SPAMHAUS_DBL_FAIL") // DBL is never asked about addresses here (lookup: domains)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("symbols %v", got)
	}
	if !slices.Equal(r.Listed, []string{"spamhaus-DBL", "URIBL-multi", "ZEN-URL", "HASHED", "EBL", "IMAGES"}) || r.Status != checks.StatusListed {
		t.Errorf("listed %v %s", r.Listed, r.Status)
	}
}

// DBL's 127.0.1.255 (an address asked as a domain) and URIBL's 127.0.0.1
// are failures, never listings.
func TestErrorAnswers(t *testing.T) {
	asIP := dbl
	asIP.Lookup = []string{LookupIPs}
	asIP.ProbeListed = "-"
	c, _ := newCheck(t, lists(asIP, multi))
	r := c.Check(context.Background(), parse(t, "\r\nhttp://192.0.2.2/ http://blocked.example/\r\n"), nil)
	got := syms(r)
	if got["URIBL_SPAMHAUS_DBL_FAIL"] != "answer 127.0.1.255 (IP address queried as a domain)" ||
		got["URIBL_URIBL_MULTI_FAIL"] != "answer 127.0.0.1 (query refused or blocked)" {
		t.Errorf("%v", got)
	}
	if !slices.Equal(r.Listed, []string{"URIBL-multi"}) { // 192.0.2.2 is black on multi
		t.Errorf("listed %v", r.Listed)
	}
	if len(r.Events) != 2 || !strings.HasPrefix(r.Events[0].Line, "URIBL warning: list spamhaus-DBL (dbl.test)") {
		t.Errorf("events %v", r.Events)
	}
}

// The per-message cap: 100 000 URLs cost at most max_lookups lookups per
// list.
func TestLookupCap(t *testing.T) {
	c, srv := newCheck(t, lists(multi))
	var b strings.Builder
	b.WriteString("Content-Type: text/html\r\n\r\n")
	for i := range 100000 {
		b.WriteString(`<a href="http://host`)
		b.WriteString(itoa(i % 5000))
		b.WriteString(`.com/">x</a>`)
	}
	srv.ResetQueries()
	start := time.Now()
	r := c.Check(context.Background(), parse(t, b.String()), nil)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// The probe plus at most 50 keys.
	if q := srv.Queries(); q > 52 {
		t.Errorf("%d DNS queries", q)
	}
	if r.Facts["domains"].(int) != 50 || r.Facts["urls"].(int) != 10000 || r.Facts["dropped"].(int) != 10000-2*50 {
		t.Errorf("facts %v", r.Facts)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

func TestPhishingInCheck(t *testing.T) {
	c, _ := newCheck(t, DefaultConfig())
	r := c.Check(context.Background(), parse(t, "Content-Type: text/html\r\n\r\nlol <a href=\"http://www.example.net\">http://www.cnn.com</a>\r\n"), nil)
	if syms(r)["PHISHING"] != "cnn.com->example.net" || r.Facts["phishing"] != true || r.Score != 4 {
		t.Errorf("%+v", r)
	}
	if r := c.Check(context.Background(), parse(t, "\r\nno links\r\n"), nil); r.Status != checks.StatusNone || len(r.Symbols) != 0 {
		t.Errorf("%+v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	srv := dnstest.Start(t, "testdata/uribl.zone")
	r, _ := dns.New(dns.Config{Servers: []string{srv.Addr()}})
	bad := []Config{
		lists(ListConfig{ListConfig: dnsbl.ListConfig{Name: "X", Zone: "x.test"}, Lookup: []string{"urls"}}),
		lists(ListConfig{ListConfig: dnsbl.ListConfig{Name: "X", Zone: "x.test"}, Sources: []string{"pdf"}}),
		func() Config { c := DefaultConfig(); c.Exclude = []string{"not a domain"}; return c }(),
		func() Config {
			c := DefaultConfig()
			c.Phishing.Strict = []StrictSites{{Domains: []string{"bank.com"}}}
			return c
		}(),
	}
	for i, cfg := range bad {
		if _, err := New(cfg, r); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}

// BenchmarkCheckWarm is one message with 50 URLs on 50 domains asked of
// two lists, every answer in the resolver's cache.
func BenchmarkCheckWarm(b *testing.B) {
	srv := dnstest.Start(b, "testdata/uribl.zone")
	r, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(lists(dbl, multi), r)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var sb strings.Builder
	sb.WriteString("Content-Type: text/html\r\n\r\n")
	for i := range 50 {
		sb.WriteString(`<p><a href="https://www.site` + itoa(i) + `.com/articles?id=1">read the whole story</a> on our partner's site.</p>` + "\r\n")
	}
	m := parse(b, sb.String())
	c.Check(context.Background(), m, nil)
	for b.Loop() {
		c.Check(context.Background(), m, nil)
	}
}

// BenchmarkCheckNoLists is the default configuration (phishing only) on a
// 10 KB plain-text message.
func BenchmarkCheckNoLists(b *testing.B) {
	r, _ := dns.New(dns.Config{Servers: []string{"127.0.0.1:1"}})
	c, err := New(DefaultConfig(), r)
	if err != nil {
		b.Fatal(err)
	}
	m := sizedMessage(10<<10, false)
	for b.Loop() {
		c.Check(context.Background(), m, nil)
	}
}
