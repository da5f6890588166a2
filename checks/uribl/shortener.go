package uribl

// URL shorteners (MailCleaner's "Resolve URL shorteners"). A shortened
// link hides its destination from the URI lists: only the shortener's
// own domain is in the message. When shorteners.enabled is set, the
// http and https URLs whose host is on shorteners.hosts are followed, and
// every host the redirects lead through is looked up like a host of the
// body.
//
// Following a link makes outbound HTTP requests to third parties chosen
// by the sender, so it is bounded and fenced:
//   - HEAD first; GET only when HEAD is refused (4xx/5xx), reading at most
//     maxShortBody bytes of the body; response headers at most 16 KiB;
//   - at most max_hops redirects (301, 302, 303, 307, 308) per URL, every
//     redirect a hop whether or not its target is a shortener; a target
//     seen before is a loop;
//   - http and https only, on ports 80 and 443;
//   - the address actually dialed must be public: every address a name
//     resolves to is checked before dialing and again by the dialer's
//     Control function on the socket's own address, so a name that
//     resolves to 10.0.0.1, 127.0.0.1 or 169.254.169.254 (DNS rebinding
//     included) is never connected to; no proxy from the environment;
//   - names are resolved through the check's resolver (dns.servers);
//   - one deadline (timeout, 3s) for all URLs of a message, at most
//     max_urls URLs, followed at once; never more than half of what is
//     left of the check's own timeout, so the list queries keep theirs.
//
// A resolution that fails is SHORTENER_FAIL (score 0): never a listing.
// Outcomes other than timeouts and connection errors are cached (LRU,
// cache_size entries, cache_ttl).

import (
	lru "container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// Symbols of the shortener resolution.
const (
	// SymbolShortenerFail (0): a shortened URL could not be followed
	// (timeout, refused address, connection error, bad redirect).
	SymbolShortenerFail = "SHORTENER_FAIL"
	// SymbolShortenerLoop (0.5): the redirects lead back to a URL seen
	// before.
	SymbolShortenerLoop = "SHORTENER_LOOP"
	// SymbolShortenerTooManyHops (0.5): more than max_hops redirects.
	SymbolShortenerTooManyHops = "SHORTENER_TOO_MANY_HOPS"
)

// Scores of the shortener symbols (the chain's scores setting overrides
// them).
const (
	scoreShortenerLoop = 0.5
	scoreShortenerHops = 0.5
)

// maxShortBody bounds the body bytes read from a GET; maxShortURL the
// length of a URL followed (as written or as a Location).
const (
	maxShortBody = 4 << 10
	maxShortURL  = 2048
)

// ShortenerConfig configures the resolution of URL shorteners.
type ShortenerConfig struct {
	// Enabled: follow shortened URLs. Off by default: it makes HTTP
	// requests to third parties.
	Enabled bool `yaml:"enabled"`
	// Hosts are the shortener host names (exact, or with "www."); the
	// setting replaces the default list.
	Hosts []string `yaml:"hosts"`
	// MaxHops bounds the redirects followed per URL (default 5, at most 20).
	MaxHops int `yaml:"max_hops"`
	// Timeout bounds the whole resolution of one message (default 3s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxURLs bounds the shortened URLs followed per message (default 10).
	MaxURLs int `yaml:"max_urls"`
	// CacheSize and CacheTTL bound the cache of outcomes (10000, 1h).
	CacheSize int           `yaml:"cache_size"`
	CacheTTL  time.Duration `yaml:"cache_ttl"`
}

// DefaultShortenerHosts are well-known public URL shorteners.
var DefaultShortenerHosts = []string{
	"bit.ly", "bitly.com", "j.mp", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "v.gd",
	"buff.ly", "rebrand.ly", "cutt.ly", "tiny.cc", "t.ly", "shorturl.at", "rb.gy", "bl.ink",
	"s.id", "lnkd.in", "db.tt", "qr.ae", "adf.ly", "clck.ru", "tiny.one", "shorte.st", "bc.vc",
	"soo.gd", "x.co", "u.to", "urlz.fr",
}

// DefaultShorteners returns the resolution off, with the default hosts
// and bounds.
func DefaultShorteners() ShortenerConfig {
	return ShortenerConfig{Hosts: slices.Clone(DefaultShortenerHosts), MaxHops: 5, Timeout: 3 * time.Second,
		MaxURLs: 10, CacheSize: 10000, CacheTTL: time.Hour}
}

// ShortURL is one URL on a shortener host, as found.
type ShortURL struct {
	URL     string
	Origins Origin
}

// urlTextEnd returns where the path, query and fragment of a URL written
// in text that continue at k end: at white space, quotes or angle
// brackets, at most maxShortURL bytes on.
func urlTextEnd(b []byte, k int) int {
	end := k
	for end < len(b) && end-k < maxShortURL {
		switch b[end] {
		case ' ', '\t', '\r', '\n', '"', '\'', '<', '>':
			return end
		}
		end++
	}
	return end
}

// addShort keeps scheme://auth rest when h is a shortener host and the
// scheme is http or https.
func (c *collector) addShort(h host, scheme, auth, rest string, origin Origin) {
	if h.name == "" || !shortHost(c.lim.Shorteners, h.name) {
		return
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return
	}
	// Text ends a URL at the closing punctuation of a sentence.
	rest = strings.TrimRight(rest, ".,;:!?)]}")
	u := scheme + "://" + auth + rest
	if len(u) > maxShortURL {
		return
	}
	for i := range c.found.Short {
		if c.found.Short[i].URL == u {
			c.found.Short[i].Origins |= origin
			return
		}
	}
	if len(c.found.Short) < c.lim.MaxShort {
		c.found.Short = append(c.found.Short, ShortURL{URL: u, Origins: origin})
	}
}

func shortHost(hosts map[string]bool, name string) bool {
	return hosts[name] || strings.HasPrefix(name, "www.") && hosts[name[4:]]
}

// shortener follows shortened URLs.
type shortener struct {
	cfg    ShortenerConfig
	hosts  map[string]bool
	r      dns.Resolver
	client *http.Client
	cache  *shortCache
	// allowDial holds addresses that may be dialed although they are not
	// public or not on port 80 or 443. Only this package's tests set it
	// (loopback test servers); configuration cannot reach it.
	allowDial map[netip.AddrPort]bool
}

func newShortener(cfg ShortenerConfig, r dns.Resolver) (*shortener, error) {
	def := DefaultShorteners()
	switch {
	case cfg.MaxHops < 0 || cfg.MaxHops > 20:
		return nil, errorf("shorteners.max_hops: %d (want 1 to 20)", cfg.MaxHops)
	case cfg.Timeout < 0:
		return nil, errorf("shorteners.timeout: must not be negative")
	case cfg.MaxURLs < 0:
		return nil, errorf("shorteners.max_urls: must not be negative")
	case cfg.CacheSize < 0:
		return nil, errorf("shorteners.cache_size: must not be negative")
	case cfg.CacheTTL < 0:
		return nil, errorf("shorteners.cache_ttl: must not be negative")
	}
	if cfg.MaxHops == 0 {
		cfg.MaxHops = def.MaxHops
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.MaxURLs == 0 {
		cfg.MaxURLs = def.MaxURLs
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = def.CacheSize
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = def.CacheTTL
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = def.Hosts
	}
	s := &shortener{cfg: cfg, hosts: map[string]bool{}, r: r, cache: newShortCache(cfg.CacheSize, cfg.CacheTTL)}
	for _, h := range cfg.Hosts {
		n, ok := dnsbl.Domain(h)
		if !ok {
			return nil, errorf("shorteners.hosts: %q is not a host name", h)
		}
		s.hosts[n] = true
	}
	tr := &http.Transport{
		Proxy:                  nil, // never through a proxy named by the environment
		DialContext:            s.dial,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           32,
		IdleConnTimeout:        30 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
	}
	s.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // hops are followed (and counted) by follow
	}}
	return s, nil
}

// errNotPublic: the address to dial is private, loopback, link-local,
// multicast, unspecified or otherwise not public, or not on port 80/443.
var errNotPublic = errors.New("not a public address on port 80 or 443")

// errBadRedirect: a redirect without a usable target.
var errBadRedirect = errors.New("redirect")

// allowed reports whether ap may be dialed.
func (s *shortener) allowed(ap netip.AddrPort) bool {
	a := ap.Addr().Unmap()
	if s.allowDial[netip.AddrPortFrom(a, ap.Port())] {
		return true
	}
	if ap.Port() != 80 && ap.Port() != 443 {
		return false
	}
	if nat64.Contains(a) {
		// NAT64 (RFC 6052) reaches the IPv4 address in its last 32 bits.
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	return dnsbl.Public(a) && !a.IsMulticast()
}

var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// dial resolves the host through the check's resolver and connects to
// the first public address that answers. The dialer checks the socket's
// address once more (Control), so no other path can reach a refused one.
func (s *shortener) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q", ps)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(h); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ips, err := s.r.LookupIPAddr(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", h, err)
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip.IP); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolving %s: no address", h)
		}
	}
	if len(addrs) > 4 {
		addrs = addrs[:4]
	}
	var last error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
		if !s.allowed(ap) {
			last = fmt.Errorf("refused %s: %w", ap, errNotPublic)
			continue
		}
		d := net.Dialer{Control: s.control}
		c, err := d.DialContext(ctx, "tcp", ap.String())
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// control is the dialer's last word on the address it connects to.
func (s *shortener) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !s.allowed(ap) {
		return fmt.Errorf("refused %s: %w", address, errNotPublic)
	}
	return nil
}

// Outcomes of one resolution.
const (
	outcomeOK   = ""
	outcomeLoop = "loop"
	outcomeHops = "hops"
	outcomeFail = "fail"
)

// resolution is where one shortened URL leads.
type resolution struct {
	// Hosts are the hosts of the redirect targets in order, the final one
	// last (without the shortener itself).
	Hosts   []string
	Outcome string
	Detail  string // why, for loop, hops and fail
	// Transient: a timeout or a connection error, not cached.
	Transient bool
}

// follow follows u's redirects.
func (s *shortener) follow(ctx context.Context, raw string) resolution {
	var res resolution
	cur, err := url.Parse(raw)
	if err != nil {
		return resolution{Outcome: outcomeFail, Detail: "unparsable URL"}
	}
	cur.User = nil // no credentials sent
	seen := map[string]bool{cur.String(): true}
	for hop := 0; ; hop++ {
		next, err := s.step(ctx, cur)
		if err != nil {
			res.Outcome, res.Detail = outcomeFail, failure(ctx, err)
			res.Transient = !errors.Is(err, errNotPublic) && !errors.Is(err, errBadRedirect)
			return res
		}
		if next == nil {
			return res
		}
		if hop >= s.cfg.MaxHops {
			res.Outcome, res.Detail = outcomeHops, fmt.Sprintf("more than %d redirects", s.cfg.MaxHops)
			return res
		}
		if next.Scheme != "http" && next.Scheme != "https" || next.Host == "" || len(next.String()) > maxShortURL {
			res.Outcome, res.Detail = outcomeFail, "redirect to an unsupported URL"
			return res
		}
		next.Fragment, next.User = "", nil
		if h := next.Hostname(); !slices.Contains(res.Hosts, h) {
			res.Hosts = append(res.Hosts, h)
		}
		if seen[next.String()] {
			res.Outcome, res.Detail = outcomeLoop, "back to "+next.Redacted()
			return res
		}
		seen[next.String()] = true
		cur = next
	}
}

// failure says why a request failed, in a few words.
func failure(ctx context.Context, err error) string {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && errors.Is(err, errNotPublic) {
		err = oe.Err
	}
	return err.Error()
}

// step asks for u once: HEAD, then GET when HEAD is refused. It returns
// the redirect's target, or nil when the answer is not a redirect.
func (s *shortener) step(ctx context.Context, u *url.URL) (*url.URL, error) {
	resp, err := s.request(ctx, http.MethodHead, u)
	if err != nil {
		return nil, err
	}
	if !redirect(resp.StatusCode) && resp.StatusCode >= 400 {
		if resp, err = s.request(ctx, http.MethodGet, u); err != nil {
			return nil, err
		}
	}
	if !redirect(resp.StatusCode) {
		return nil, nil
	}
	loc, err := resp.Location() // relative targets resolved against u
	if err != nil {
		return nil, fmt.Errorf("%w: %d without a usable Location", errBadRedirect, resp.StatusCode)
	}
	return loc, nil
}

func (s *shortener) request(ctx context.Context, method string, u *url.URL) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "chainmail-uribl (shortened link check)")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	// At most maxShortBody bytes are read; closing the rest unread drops
	// the connection rather than draining it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxShortBody))
	resp.Body.Close()
	return resp, nil
}

func redirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// resolveAll follows the URLs at once within the resolution's deadline,
// through the cache.
func (s *shortener) resolveAll(ctx context.Context, urls []ShortURL) []resolution {
	d := s.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) / 2; left < d {
			d = left
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out := make([]resolution, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		if r, ok := s.cache.get(u.URL); ok {
			out[i] = r
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.follow(ctx, u.URL)
			if !r.Transient {
				s.cache.put(u.URL, r)
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// shortened applies the resolutions of f.Short to f and res: the hosts
// reached become keys (within max_lookups), the outcomes symbols. It
// returns the words the reason gets.
func (c *Check) shortened(ctx context.Context, f *Found, res *checks.Result) string {
	rs := c.short.resolveAll(ctx, f.Short)
	resolved := 0
	var hosts, reached []string
	for i, r := range rs {
		u := f.Short[i]
		for _, h := range r.Hosts {
			if !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
			c.addResolvedHost(f, h, u.Origins)
		}
		switch r.Outcome {
		case outcomeOK:
			resolved++
			if len(r.Hosts) > 0 {
				reached = append(reached, shortName(u.URL)+" → "+strings.Join(r.Hosts, " → "))
			}
		case outcomeLoop:
			res.Symbols = append(res.Symbols, checks.Symbol{Name: SymbolShortenerLoop, Score: scoreShortenerLoop, Detail: shortName(u.URL) + ": " + r.Detail})
		case outcomeHops:
			res.Symbols = append(res.Symbols, checks.Symbol{Name: SymbolShortenerTooManyHops, Score: scoreShortenerHops, Detail: shortName(u.URL) + ": " + r.Detail})
		default:
			res.Symbols = append(res.Symbols, checks.Symbol{Name: SymbolShortenerFail, Detail: shortName(u.URL) + ": " + r.Detail})
		}
	}
	res.Facts["shortened"] = resolved
	res.Facts["shortened_hosts"] = nonNil(hosts)
	if len(reached) == 0 {
		return ""
	}
	return "; shortened: " + strings.Join(reached, ", ")
}

// shortName is a URL as a short detail: host and path, no query.
func shortName(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Host + p.EscapedPath()
}

// addResolvedHost adds the lookup key of a host reached by a redirect.
func (c *Check) addResolvedHost(f *Found, name string, origin Origin) {
	h, ok := normalizeHost(name)
	if !ok {
		if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
			h, ok = host{ip: a.Unmap()}, true
		}
	}
	if !ok {
		return
	}
	v := h.registrable()
	if h.ip.IsValid() && !dnsbl.Public(h.ip) || c.exclude[v] {
		return
	}
	for i := range f.Keys {
		if f.Keys[i].Value == v {
			f.Keys[i].Origins |= origin
			return
		}
	}
	if len(f.Keys) >= c.cfg.MaxLookups {
		f.Dropped++
		return
	}
	k := Key{Host: h, Value: v, Origins: origin}
	if !h.ip.IsValid() {
		k.Host = host{name: v}
	}
	f.Keys = append(f.Keys, k)
}

// shortCache is an LRU of outcomes, each kept at most ttl.
type shortCache struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	ll    *lru.List
	items map[string]*lru.Element
	now   func() time.Time
}

type shortEntry struct {
	key     string
	r       resolution
	expires time.Time
}

func newShortCache(size int, ttl time.Duration) *shortCache {
	return &shortCache{size: size, ttl: ttl, ll: lru.New(), items: map[string]*lru.Element{}, now: time.Now}
}

func (c *shortCache) get(k string) (resolution, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return resolution{}, false
	}
	en := e.Value.(*shortEntry)
	if !c.now().Before(en.expires) {
		c.ll.Remove(e)
		delete(c.items, k)
		return resolution{}, false
	}
	c.ll.MoveToFront(e)
	return en.r, true
}

func (c *shortCache) put(k string, r resolution) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		en := e.Value.(*shortEntry)
		en.r, en.expires = r, c.now().Add(c.ttl)
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&shortEntry{key: k, r: r, expires: c.now().Add(c.ttl)})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*shortEntry).key)
	}
}
