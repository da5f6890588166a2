package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Defaults for Config fields left at their zero value.
const (
	DefaultTimeout   = 2 * time.Second
	DefaultRetries   = 1
	DefaultCacheSize = 10000
)

// ednsSize is the UDP payload size we advertise (EDNS0, RFC 6891): the
// 2020 DNS flag day value, which avoids IP fragmentation. Larger answers
// come back truncated and are fetched again over TCP.
const ednsSize = 1232

// maxCNAMEHops bounds the CNAME chain we follow inside one answer.
const maxCNAMEHops = 16

// Config configures a Client.
type Config struct {
	// Servers are the recursive resolvers to ask, as host:port (a bare
	// host means port 53). Empty: the nameservers of /etc/resolv.conf.
	Servers []string `yaml:"servers"`
	// Timeout bounds one exchange with one server (default 2s). A TCP
	// fallback after a truncated UDP answer gets its own Timeout.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many more rounds over all servers follow a round
	// that found no answer (timeout, SERVFAIL, REFUSED, network error).
	// 0 means the default (1); a negative value means no retry.
	Retries int `yaml:"retries"`
	// CacheSize bounds the cache in answers (default 10000); a negative
	// value turns the cache off.
	CacheSize int `yaml:"cache_size"`
}

// Client is a caching stub resolver on miekg/dns. It implements Resolver
// with *net.Resolver's error conventions (see errors.go). It is safe for
// concurrent use.
//
// Each question goes through: the cache (positive answers for their TTL,
// NXDOMAIN and NODATA for the SOA's negative TTL, RFC 2308 §5); then a
// singleflight group, so identical questions asked at the same time cost
// one query; then the servers in order over UDP, each try bounded by
// Timeout, with a TCP retry of the same server when the answer is
// truncated (RFC 7766 §6).
type Client struct {
	servers  []string
	timeout  time.Duration
	attempts int
	udp, tcp *mdns.Client
	cache    *cache // nil when turned off
	flight   singleflight.Group
	metrics  *metrics
	now      func() time.Time
}

var (
	_ Resolver   = (*Client)(nil)
	_ IPLookuper = (*Client)(nil)
)

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	c := &Client{
		timeout:  cfg.Timeout,
		attempts: 1 + cfg.Retries,
		metrics:  newMetrics(),
		now:      time.Now,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case cfg.Retries == 0:
		c.attempts = 1 + DefaultRetries
	case cfg.Retries < 0:
		c.attempts = 1
	}
	switch {
	case cfg.CacheSize == 0:
		c.cache = newCache(DefaultCacheSize)
	case cfg.CacheSize > 0:
		c.cache = newCache(cfg.CacheSize)
	}
	servers := cfg.Servers
	if len(servers) == 0 {
		rc, err := mdns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("dns: no servers configured and /etc/resolv.conf unusable: %w", err)
		}
		for _, s := range rc.Servers {
			servers = append(servers, net.JoinHostPort(s, rc.Port))
		}
		if len(servers) == 0 {
			return nil, errors.New("dns: no servers configured and none in /etc/resolv.conf")
		}
	}
	for _, s := range servers {
		addr, err := serverAddr(s)
		if err != nil {
			return nil, err
		}
		c.servers = append(c.servers, addr)
	}
	c.udp = &mdns.Client{Net: "udp", UDPSize: ednsSize, Timeout: c.timeout}
	c.tcp = &mdns.Client{Net: "tcp", Timeout: c.timeout}
	return c, nil
}

// serverAddr normalises a server given as host, host:port, [v6]:port or
// a bare IPv6 address.
func serverAddr(s string) (string, error) {
	if host, port, err := net.SplitHostPort(s); err == nil {
		if host == "" || port == "" {
			return "", fmt.Errorf("dns: bad server address %q", s)
		}
		return s, nil
	}
	host := strings.Trim(s, "[]")
	if host == "" || strings.ContainsAny(host, " /") {
		return "", fmt.Errorf("dns: bad server address %q", s)
	}
	return net.JoinHostPort(host, "53"), nil
}

// Servers returns the servers the Client asks, as host:port.
func (c *Client) Servers() []string { return slices.Clone(c.servers) }

// Lookup asks for the records of qtype at name and returns those at the
// end of the CNAME chain (the CNAMEs themselves are not returned unless
// qtype is CNAME). Errors are *net.DNSError as described in errors.go.
// The returned records are shared with the cache: do not modify them.
func (c *Client) Lookup(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	qt := typeName(qtype)
	c.metrics.lookups.WithLabelValues(qt).Inc()
	fq, ok := queryName(name)
	if !ok {
		return nil, c.fail(classBadName, name, "", "")
	}
	key := cacheKey{name: canonical(fq), qtype: qtype}
	if c.cache != nil {
		if a, ok := c.cache.get(key, c.now()); ok {
			c.metrics.cacheHits.WithLabelValues(qt).Inc()
			return c.result(a, name)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, c.ctxFail(err, name)
	}
	ch := c.flight.DoChan(key.name+"\x00"+qt, func() (any, error) {
		// The exchange outlives a caller that gives up: others may be
		// waiting for it, and its own tries are bounded by Timeout.
		a, err := c.exchange(context.WithoutCancel(ctx), fq, qtype)
		if err == nil && c.cache != nil {
			c.cache.put(key, a, c.now())
		}
		return a, err
	})
	select {
	case r := <-ch:
		if r.Shared {
			c.metrics.shared.Inc()
		}
		if r.Err != nil {
			var qe *queryError
			if errors.As(r.Err, &qe) {
				return nil, c.fail(qe.class, name, qe.server, qe.detail)
			}
			return nil, c.fail(classServer, name, "", r.Err.Error())
		}
		return c.result(r.Val.(*answer), name)
	case <-ctx.Done():
		return nil, c.ctxFail(ctx.Err(), name)
	}
}

func (c *Client) result(a *answer, name string) ([]mdns.RR, error) {
	switch a.kind {
	case kindNXDomain:
		return nil, c.fail(classNXDomain, name, a.server, "")
	case kindNoData:
		return nil, c.fail(classNoData, name, a.server, "")
	}
	return a.rrs, nil
}

func (c *Client) fail(class errClass, name, server, detail string) error {
	c.metrics.errors.WithLabelValues(string(class)).Inc()
	return dnsError(class, name, server, detail)
}

func (c *Client) ctxFail(err error, name string) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return c.fail(classTimeout, name, "", "deadline exceeded")
	}
	return c.fail(classCanceled, name, "", "")
}

// exchange asks the servers in turn, for up to c.attempts rounds, until
// one gives a usable answer (NOERROR or NXDOMAIN).
func (c *Client) exchange(ctx context.Context, fq string, qtype uint16) (*answer, error) {
	var last error
	for range c.attempts {
		for _, srv := range c.servers {
			resp, err := c.exchangeOne(ctx, fq, qtype, srv)
			if err != nil {
				last = err
				continue
			}
			switch resp.Rcode {
			case mdns.RcodeSuccess, mdns.RcodeNameError:
				return parseAnswer(resp, fq, qtype, srv)
			case mdns.RcodeServerFailure:
				last = &queryError{class: classServFail, server: srv}
			case mdns.RcodeRefused:
				last = &queryError{class: classRefused, server: srv}
			default:
				last = &queryError{class: classServer, server: srv, detail: "rcode " + mdns.RcodeToString[resp.Rcode]}
			}
		}
	}
	return nil, last
}

// exchangeOne is one try with one server: UDP, then TCP if the UDP answer
// came back truncated.
func (c *Client) exchangeOne(ctx context.Context, fq string, qtype uint16, srv string) (*mdns.Msg, error) {
	msg := new(mdns.Msg)
	msg.SetQuestion(fq, qtype)
	msg.SetEdns0(ednsSize, false)
	resp, err := c.do(ctx, c.udp, msg, srv)
	if resp != nil && resp.Truncated {
		resp, err = c.do(ctx, c.tcp, msg, srv)
	}
	if err != nil {
		return nil, err
	}
	if len(resp.Question) != 1 || resp.Question[0].Qtype != qtype ||
		!strings.EqualFold(resp.Question[0].Name, fq) {
		return nil, &queryError{class: classServer, server: srv, detail: "reply does not match the question"}
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, cl *mdns.Client, msg *mdns.Msg, srv string) (*mdns.Msg, error) {
	c.metrics.queries.WithLabelValues(typeName(msg.Question[0].Qtype)).Inc()
	start := time.Now()
	defer func() { c.metrics.latency.WithLabelValues(cl.Net).Observe(time.Since(start).Seconds()) }()

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := cl.DialContext(ctx, srv)
	if err != nil {
		return nil, netError(err, srv)
	}
	defer conn.Close()
	resp, _, err := cl.ExchangeWithConnContext(ctx, msg, conn)
	if err != nil {
		if resp != nil && resp.Truncated {
			// A truncated answer may be cut mid-record; the caller
			// asks again over TCP.
			return resp, nil
		}
		return nil, netError(err, srv)
	}
	return resp, nil
}

func netError(err error, srv string) *queryError {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return &queryError{class: classTimeout, server: srv}
	}
	return &queryError{class: classNetwork, server: srv, detail: err.Error()}
}

// parseAnswer follows the CNAME chain from fq through the answer section
// and builds what to return and cache. The TTL of a positive answer is
// the smallest TTL along the chain; that of a negative one comes from the
// SOA in the authority section, min(SOA TTL, SOA MINIMUM) (RFC 2308 §5).
// A negative answer without SOA is not cached (RFC 2308 §5).
func parseAnswer(resp *mdns.Msg, fq string, qtype uint16, srv string) (*answer, error) {
	name := canonical(fq)
	seen := map[string]bool{name: true}
	var ttl uint32 = 1<<32 - 1
	for hop := 0; ; hop++ {
		var found []mdns.RR
		next := ""
		var cnameTTL uint32
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Class != mdns.ClassINET || canonical(h.Name) != name {
				continue
			}
			if h.Rrtype == qtype {
				found = append(found, rr)
				ttl = min(ttl, h.Ttl)
			} else if cn, ok := rr.(*mdns.CNAME); ok && next == "" {
				next = canonical(cn.Target)
				cnameTTL = h.Ttl
			}
		}
		if len(found) > 0 {
			return &answer{kind: kindRecords, rrs: found, server: srv, ttl: clampTTL(ttl, maxPositiveTTL)}, nil
		}
		if next == "" {
			break
		}
		if seen[next] || hop >= maxCNAMEHops {
			return nil, &queryError{class: classLoop, server: srv, detail: next}
		}
		seen[next] = true
		ttl = min(ttl, cnameTTL)
		name = next
	}
	a := &answer{kind: kindNoData, server: srv}
	if resp.Rcode == mdns.RcodeNameError {
		a.kind = kindNXDomain
	}
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			a.ttl = clampTTL(min(soa.Hdr.Ttl, soa.Minttl), maxNegativeTTL)
			break
		}
	}
	return a, nil
}

func clampTTL(ttl uint32, max time.Duration) time.Duration {
	d := time.Duration(ttl) * time.Second
	if d > max {
		return max
	}
	return d
}

func typeName(qtype uint16) string {
	if s, ok := mdns.TypeToString[qtype]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", qtype)
}

// LookupTXT returns the TXT records of name, each one's character-strings
// joined without separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
func (c *Client) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := c.Lookup(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok {
			var b strings.Builder
			for _, s := range t.Txt {
				b.WriteString(unescapeText(s))
			}
			out = append(out, b.String())
		}
	}
	return out, nil
}

// LookupMX returns the MX records of name sorted by preference (ties keep
// the server's order). Hosts are fully qualified, with the trailing dot;
// a null MX (RFC 7505) comes back as host ".".
func (c *Client) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, err := c.Lookup(ctx, name, mdns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]*net.MX, 0, len(rrs))
	for _, rr := range rrs {
		if mx, ok := rr.(*mdns.MX); ok {
			out = append(out, &net.MX{Host: unescapeText(mx.Mx), Pref: mx.Preference})
		}
	}
	slices.SortStableFunc(out, func(a, b *net.MX) int { return int(a.Pref) - int(b.Pref) })
	return out, nil
}

// LookupAddr returns the PTR names of addr, fully qualified.
func (c *Client) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	rev, err := mdns.ReverseAddr(ip.String())
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	rrs, err := c.Lookup(ctx, rev, mdns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if p, ok := rr.(*mdns.PTR); ok {
			out = append(out, unescapeText(p.Ptr))
		}
	}
	return out, nil
}

// LookupIPAddr returns the A and AAAA addresses of host, IPv4 first. Both
// queries go out at once. As with *net.Resolver, addresses of one family
// are returned even if the other query failed; with none, the error is
// temporary if either failure was, and not-found only when both were.
// An IP literal is returned as it is.
func (c *Client) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IPAddr{{IP: ip}}, nil
	}
	var (
		wg    sync.WaitGroup
		v6    []mdns.RR
		v6err error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		v6, v6err = c.Lookup(ctx, host, mdns.TypeAAAA)
	}()
	v4, v4err := c.Lookup(ctx, host, mdns.TypeA)
	wg.Wait()
	var addrs []net.IPAddr
	for _, rr := range v4 {
		if a, ok := rr.(*mdns.A); ok {
			addrs = append(addrs, net.IPAddr{IP: a.A})
		}
	}
	for _, rr := range v6 {
		if a, ok := rr.(*mdns.AAAA); ok {
			addrs = append(addrs, net.IPAddr{IP: a.AAAA})
		}
	}
	switch {
	case len(addrs) > 0:
		return addrs, nil
	case v4err != nil && !IsNotFound(v4err):
		return nil, v4err
	case v6err != nil && !IsNotFound(v6err):
		return nil, v6err
	case v4err != nil:
		return nil, v4err
	}
	return nil, v6err
}

// LookupIP looks up host for network "ip" (as LookupIPAddr), "ip4" (A
// only) or "ip6" (AAAA only). An IP literal of the family asked for is
// returned as it is.
func (c *Client) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	var qtype uint16
	switch network {
	case "ip":
		addrs, err := c.LookupIPAddr(ctx, host)
		ips := make([]net.IP, len(addrs))
		for i, a := range addrs {
			ips[i] = a.IP
		}
		return ips, err
	case "ip4":
		qtype = mdns.TypeA
	case "ip6":
		qtype = mdns.TypeAAAA
	default:
		return nil, &net.DNSError{Err: "unsupported network " + network, Name: host}
	}
	if ip := net.ParseIP(host); ip != nil {
		if (ip.To4() != nil) == (qtype == mdns.TypeA) {
			return []net.IP{ip}, nil
		}
		return nil, dnsError(classNoData, host, "", "")
	}
	rrs, err := c.Lookup(ctx, host, qtype)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(rrs))
	for _, rr := range rrs {
		switch a := rr.(type) {
		case *mdns.A:
			ips = append(ips, a.A)
		case *mdns.AAAA:
			ips = append(ips, a.AAAA)
		}
	}
	return ips, nil
}

// LookupHost returns the addresses of host as strings (see LookupIPAddr).
func (c *Client) LookupHost(ctx context.Context, host string) ([]string, error) {
	addrs, err := c.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.IP.String()
	}
	return out, nil
}
