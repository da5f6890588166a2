package uribl

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dnsbl"
)

// shortSite is a loopback HTTP server acting as every host of
// testdata/shortener.zone: short.example and hop.example (shorteners),
// final.example (listed on short-list.test) and clean.example.
type shortSite struct {
	srv      *httptest.Server
	port     string
	hits     atomic.Int64  // requests served
	bodyGone chan struct{} // closed when the endless body's writer failed
	release  chan struct{} // closed when the test ends: the slow handler returns
	once     sync.Once
}

func newShortSite(t *testing.T) *shortSite {
	s := &shortSite{bodyGone: make(chan struct{}), release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.release)
		s.srv.Close()
	})
	_, s.port, _ = net.SplitHostPort(s.srv.Listener.Addr().String())
	return s
}

// at is a URL on one of the site's hosts.
func (s *shortSite) at(host, path string) string {
	return "http://" + host + ".example:" + s.port + path
}

func (s *shortSite) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	host, _, _ := net.SplitHostPort(r.Host)
	redirect := func(code int, loc string) {
		w.Header().Set("Location", loc)
		w.WriteHeader(code)
	}
	switch host + r.URL.Path {
	case "short.example/direct":
		redirect(301, s.at("final", "/landing"))
	case "short.example/chain1": // five redirects, every kind, relative ones too
		redirect(301, "/chain2")
	case "short.example/chain2":
		redirect(302, s.at("hop", "/chain3"))
	case "hop.example/chain3":
		redirect(303, "//short.example:"+s.port+"/chain4")
	case "short.example/chain4":
		redirect(307, "chain5")
	case "short.example/chain5":
		redirect(308, s.at("final", "/landing"))
	case "short.example/loop1":
		redirect(302, "/loop2")
	case "short.example/loop2":
		redirect(302, "/loop1?")
	case "short.example/clean":
		redirect(301, s.at("clean", "/"))
	case "short.example/nohead", "short.example/huge":
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if host+r.URL.Path == "short.example/nohead" {
			redirect(302, s.at("final", "/landing"))
			return
		}
		// An endless body: the writer fails only when the client hangs up.
		w.WriteHeader(200)
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				s.once.Do(func() { close(s.bodyGone) })
				return
			}
		}
	case "short.example/slow":
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
	case "short.example/ftp":
		redirect(301, "ftp://final.example/file")
	default:
		if strings.HasPrefix(r.URL.Path, "/to/") {
			redirect(302, strings.TrimPrefix(r.URL.Path, "/to/"))
			return
		}
		w.WriteHeader(200)
	}
}

// shortCheck is a uribl check with the short-list.test list, shorteners
// on (short.example and hop.example) and the site's address allowed.
func shortCheck(t *testing.T, site *shortSite, edit func(*ShortenerConfig)) *Check {
	t.Helper()
	srv := dnstest.Start(t, "testdata/shortener.zone")
	r, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: time.Second, Retries: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := lists(ListConfig{ListConfig: dnsbl.ListConfig{Name: "SHORT-LIST", Zone: "short-list.test", Symbol: "URIBL_SHORT_LIST", Score: 5}})
	cfg.Shorteners.Enabled = true
	cfg.Shorteners.Hosts = []string{"short.example", "hop.example"}
	if edit != nil {
		edit(&cfg.Shorteners)
	}
	c, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.short != nil {
		c.short.allowDial = map[netip.AddrPort]bool{netip.MustParseAddrPort(site.srv.Listener.Addr().String()): true}
	}
	return c
}

func shortMsg(t *testing.T, urls ...string) *checks.Message {
	return parse(t, "Subject: look\r\nContent-Type: text/plain\r\n\r\nsee "+strings.Join(urls, " and ")+" today.\r\n")
}

// TestShortenerListed: the final host of a shortened link is looked up
// on the lists; the message gets the list's symbol only when the
// shortener is followed.
func TestShortenerListed(t *testing.T) {
	site := newShortSite(t)
	for _, path := range []string{"/direct", "/chain1", "/nohead"} {
		m := shortMsg(t, site.at("short", path))
		off := shortCheck(t, site, func(s *ShortenerConfig) { s.Enabled = false })
		if r := off.Check(context.Background(), m, nil); syms(r)["URIBL_SHORT_LIST"] != "" || r.Facts["shortened"] != 0 {
			t.Errorf("%s, shorteners off: %v %v", path, syms(r), r.Facts)
		}
		before := site.hits.Load()
		r := shortCheck(t, site, nil).Check(context.Background(), m, nil)
		if got := syms(r)["URIBL_SHORT_LIST"]; got != "final.example:url" || r.Status != checks.StatusListed || r.Score != 5 {
			t.Errorf("%s: symbols %v status %s score %v reason %q", path, syms(r), r.Status, r.Score, r.Reason)
		}
		if r.Facts["shortened"] != 1 || !strings.Contains(r.Reason, "shortened: short.example:"+site.port+path+" → ") ||
			!strings.HasSuffix(r.Reason, "final.example") {
			t.Errorf("%s: facts %v reason %q", path, r.Facts, r.Reason)
		}
		if site.hits.Load() == before {
			t.Errorf("%s: the site was not asked", path)
		}
	}
}

// TestShortenerHops: five redirects of every kind (301 302 303 307 308,
// relative, scheme-relative, through a second shortener) are followed at
// max_hops 5 and are one too many at 4; a loop is found; an unlisted
// destination gives no listing.
func TestShortenerHops(t *testing.T) {
	site := newShortSite(t)
	r := shortCheck(t, site, nil).Check(context.Background(), shortMsg(t, site.at("short", "/chain1")), nil)
	hosts, _ := r.Facts["shortened_hosts"].([]string)
	if strings.Join(hosts, ",") != "short.example,hop.example,final.example" {
		t.Errorf("hosts %v", r.Facts)
	}
	r = shortCheck(t, site, func(s *ShortenerConfig) { s.MaxHops = 4 }).Check(context.Background(), shortMsg(t, site.at("short", "/chain1")), nil)
	if got := syms(r); got[SymbolShortenerTooManyHops] != "short.example:"+site.port+"/chain1: more than 4 redirects" || r.Facts["shortened"] != 0 {
		t.Errorf("max_hops 4: %v %v", got, r.Facts)
	}
	r = shortCheck(t, site, nil).Check(context.Background(), shortMsg(t, site.at("short", "/loop1")), nil)
	if got := syms(r); !strings.HasPrefix(got[SymbolShortenerLoop], "short.example:"+site.port+"/loop1: back to ") || r.Score != 0.5 {
		t.Errorf("loop: %v score %v", got, r.Score)
	}
	r = shortCheck(t, site, nil).Check(context.Background(), shortMsg(t, site.at("short", "/clean")), nil)
	if len(r.Symbols) != 0 || r.Status != checks.StatusClean || r.Facts["shortened"] != 1 {
		t.Errorf("clean: %v %s %v", syms(r), r.Status, r.Facts)
	}
}

// TestShortenerRefusesInside: redirects to private, link-local and
// loopback addresses (literal or by name) are never connected to; they
// are SHORTENER_FAIL (0), never a listing. The loopback target is a
// second server the test watches.
func TestShortenerRefusesInside(t *testing.T) {
	site := newShortSite(t)
	var insideHits atomic.Int64
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		insideHits.Add(1)
		w.Header().Set("Location", site.at("final", "/landing"))
		w.WriteHeader(302)
	}))
	defer inside.Close()
	_, ip, _ := net.SplitHostPort(inside.Listener.Addr().String())
	for _, target := range []string{
		"http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", inside.URL + "/",
		"http://inside.example:" + ip + "/", "http://private.example:" + site.port + "/",
		"http://metadata.example/", "http://[::1]:" + ip + "/", "http://0.0.0.0:" + ip + "/",
		"http://[::ffff:127.0.0.1]:" + ip + "/",
	} {
		c := shortCheck(t, site, nil)
		r := c.Check(context.Background(), shortMsg(t, site.at("short", "/to/"+target)), nil)
		got := syms(r)
		if !strings.Contains(got[SymbolShortenerFail], "not a public address") || r.Score != 0 ||
			got["URIBL_SHORT_LIST"] != "" || r.Status == checks.StatusListed {
			t.Errorf("%s: %v score %v status %s", target, got, r.Score, r.Status)
		}
	}
	if n := insideHits.Load(); n != 0 {
		t.Errorf("the loopback server was reached %d times", n)
	}
	r := shortCheck(t, site, nil).Check(context.Background(), shortMsg(t, site.at("short", "/ftp")), nil)
	if syms(r)[SymbolShortenerFail] != "short.example:"+site.port+"/ftp: redirect to an unsupported URL" {
		t.Errorf("ftp: %v", syms(r))
	}
}

// TestShortenerAllowed: without the tests' allowance only public
// addresses on ports 80 and 443 are dialed, and the dialer's Control
// refuses the others on the socket's own address.
func TestShortenerAllowed(t *testing.T) {
	s, err := newShortener(DefaultShorteners(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for ap, want := range map[string]bool{
		"192.0.2.1:80": true, "192.0.2.1:443": true, "[2001:db8::1]:443": true,
		"192.0.2.1:8080": false, "10.0.0.1:80": false, "172.16.0.1:80": false, "192.168.1.1:443": false,
		"127.0.0.1:80": false, "[::1]:80": false, "169.254.169.254:80": false, "[fe80::1]:80": false,
		"224.0.0.1:80": false, "[ff02::1]:80": false, "0.0.0.0:80": false, "[::]:80": false,
		"100.64.0.1:80": false, "[::ffff:10.0.0.1]:80": false, "[64:ff9b::a00:1]:80": false,
		"[fc00::1]:443": false,
	} {
		if got := s.allowed(netip.MustParseAddrPort(ap)); got != want {
			t.Errorf("%s: allowed %v, want %v", ap, got, want)
		}
		if err := s.control("tcp", ap, nil); (err == nil) != want {
			t.Errorf("%s: control %v", ap, err)
		}
	}
}

// TestShortenerBounds: a server that never answers costs the
// resolution's timeout, a SHORTENER_FAIL (0); an endless body is not
// read (the server sees the client hang up) and the answer still counts.
func TestShortenerBounds(t *testing.T) {
	site := newShortSite(t)
	c := shortCheck(t, site, func(s *ShortenerConfig) { s.Timeout = 300 * time.Millisecond })
	r := c.Check(context.Background(), shortMsg(t, site.at("short", "/slow"), site.at("short", "/direct")), nil)
	got := syms(r)
	if got[SymbolShortenerFail] != "short.example:"+site.port+"/slow: timeout" || r.Score != 5 || got["URIBL_SHORT_LIST"] != "final.example:url" {
		t.Errorf("slow: %v score %v", got, r.Score)
	}
	r = shortCheck(t, site, nil).Check(context.Background(), shortMsg(t, site.at("short", "/huge")), nil)
	if len(r.Symbols) != 0 || r.Facts["shortened"] != 1 {
		t.Errorf("huge: %v %v", syms(r), r.Facts)
	}
	<-site.bodyGone // the endless body's writer saw the connection close
	// The check's own deadline bounds the resolution too: half of what
	// is left goes to following links.
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	r = shortCheck(t, site, nil).Check(ctx, shortMsg(t, site.at("short", "/slow")), nil)
	if syms(r)[SymbolShortenerFail] != "short.example:"+site.port+"/slow: timeout" {
		t.Errorf("check deadline: %v", syms(r))
	}
}

// TestShortenerCache: an outcome is asked once within cache_ttl and
// again after it; max_urls bounds the URLs followed.
func TestShortenerCache(t *testing.T) {
	site := newShortSite(t)
	c := shortCheck(t, site, func(s *ShortenerConfig) { s.CacheTTL = time.Minute; s.MaxURLs = 2 })
	now := time.Now()
	c.short.cache.now = func() time.Time { return now }
	m := shortMsg(t, site.at("short", "/direct"))
	c.Check(context.Background(), m, nil)
	before := site.hits.Load()
	r := c.Check(context.Background(), m, nil)
	if site.hits.Load() != before || syms(r)["URIBL_SHORT_LIST"] != "final.example:url" {
		t.Errorf("cached: %d more requests, %v", site.hits.Load()-before, syms(r))
	}
	now = now.Add(2 * time.Minute)
	c.Check(context.Background(), m, nil)
	if site.hits.Load() == before {
		t.Errorf("expired: not asked again")
	}
	f := Extract(shortMsg(t, site.at("short", "/a"), site.at("short", "/b"), site.at("short", "/c"), "https://www.hop.example/x"), c.Limits())
	if len(f.Short) != 2 || f.Short[0].URL != site.at("short", "/a") {
		t.Errorf("max_urls 2: %+v", f.Short)
	}
}

func TestShortCacheLRU(t *testing.T) {
	c := newShortCache(2, time.Hour)
	for i := range 3 {
		c.put(fmt.Sprint(i), resolution{Hosts: []string{fmt.Sprint(i)}})
		if i == 1 {
			c.get("0") // 0 is used: 1 goes first
		}
	}
	if _, ok := c.get("1"); ok {
		t.Error("1 kept")
	}
	if r, ok := c.get("0"); !ok || r.Hosts[0] != "0" {
		t.Error("0 dropped")
	}
}

// TestShortenerExtract: shortened URLs are kept whole from text and
// links, http and https only, without the sentence's punctuation.
func TestShortenerExtract(t *testing.T) {
	lim := Limits{Shorteners: map[string]bool{"bit.ly": true}, MaxShort: 10}
	m := parse(t, "Content-Type: text/html\r\n\r\n<a href=\"https://bit.ly/AbC?x=1\">x</a> <a href=\"ftp://bit.ly/f\">f</a> "+
		"<p>http://www.bit.ly/Two. and HTTP://bit.ly/AbC?x=1 and http://other.example/x</p>\r\n")
	f := Extract(m, lim)
	var got []string
	for _, s := range f.Short {
		got = append(got, s.URL)
	}
	if strings.Join(got, " ") != "https://bit.ly/AbC?x=1 http://www.bit.ly/Two http://bit.ly/AbC?x=1" {
		t.Errorf("%q", got)
	}
}

// TestShortenerFailDetail: the reason a refused link gives, and that a
// refusal is cached while a timeout is not.
func TestShortenerFailDetail(t *testing.T) {
	site := newShortSite(t)
	c := shortCheck(t, site, func(s *ShortenerConfig) { s.Timeout = 200 * time.Millisecond })
	m := shortMsg(t, site.at("short", "/to/http://10.0.0.1/"))
	r := c.Check(context.Background(), m, nil)
	if got := syms(r)[SymbolShortenerFail]; got != "short.example:"+site.port+"/to/http://10.0.0.1/: refused 10.0.0.1:80: not a public address on port 80 or 443" {
		t.Errorf("%q", got)
	}
	if _, ok := c.short.cache.get(site.at("short", "/to/http://10.0.0.1/")); !ok {
		t.Error("refusal not cached")
	}
	c.Check(context.Background(), shortMsg(t, site.at("short", "/slow")), nil)
	if _, ok := c.short.cache.get(site.at("short", "/slow")); ok {
		t.Error("timeout cached")
	}
}

// TestShortenerHTTPS: a shortener on https (certificate checked) leads
// to the listed host.
func TestShortenerHTTPS(t *testing.T) {
	site := newShortSite(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", site.at("final", "/landing"))
		w.WriteHeader(http.StatusMovedPermanently)
	}))
	defer tlsSrv.Close()
	_, port, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())
	c := shortCheck(t, site, func(s *ShortenerConfig) { s.Hosts = []string{"tls.example.com"} })
	c.short.allowDial[netip.MustParseAddrPort(tlsSrv.Listener.Addr().String())] = true
	m := shortMsg(t, "https://tls.example.com:"+port+"/x")
	// Without the test server's certificate among the roots: refused.
	r := c.Check(context.Background(), m, nil)
	if got := syms(r); !strings.Contains(got[SymbolShortenerFail], "certificate") || got["URIBL_SHORT_LIST"] != "" {
		t.Errorf("untrusted: %v", got)
	}
	c.short.client.Transport.(*http.Transport).TLSClientConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	r = c.Check(context.Background(), m, nil)
	if got := syms(r); got["URIBL_SHORT_LIST"] != "final.example:url" {
		t.Errorf("trusted: %v %q", got, r.Reason)
	}
}

// BenchmarkExtractShorteners: extraction of a text with 1000 links on a
// shortener, shorteners on (the first 10 kept whole) and off.
func BenchmarkExtractShorteners(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("Content-Type: text/plain\r\n\r\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "see https://bit.ly/%d and http://www.example%d.com/x\r\n", i, i%40)
	}
	m := parse(b, sb.String())
	for _, on := range []bool{false, true} {
		lim := Limits{}
		if on {
			lim.Shorteners, lim.MaxShort = map[string]bool{"bit.ly": true}, 10
		}
		b.Run(fmt.Sprint("shorteners=", on), func(b *testing.B) {
			b.SetBytes(m.Size())
			for range b.N {
				Extract(m, lim)
			}
		})
	}
}
