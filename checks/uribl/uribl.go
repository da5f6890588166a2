// Package uribl is the "uribl" check: it finds the URLs and e-mail
// addresses of a message and asks URI blocklists (SURBL, URIBL, Spamhaus
// DBL and ZEN for address hosts, rspamd-style hashed lists) about their
// domains, and reports links that show one site while leading to another
// (phishing).
//
// Extraction (extract.go, html.go) reads the Subject, the Reply-To field
// and every text/plain and text/html part, in attached messages too,
// after transfer decoding (base64, quoted-printable) and charset decoding
// (an unknown charset is read as it is). In HTML the link targets (href,
// action, frame src) and image sources are URLs of their own origin,
// character references are decoded, and the visible text is scanned like
// plain text. Text is scanned in one pass for a web scheme followed by
// "://" (or ":\\"), "www." at the start of a word, and addresses around
// "@"; each trigger looks a bounded number of bytes back and ahead, and
// text is read in chunks, so time is linear in the message size and
// memory bounded. Hosts are percent-decoded, stripped of invisible
// characters, mapped to ASCII by IDNA (Unicode and punycode spellings
// meet), and read as addresses in every form a browser accepts
// (http://0x7f.1/). A link's query is percent-decoded once and scanned
// too, so a redirector's destination is looked up as well.
//
// Each host is reduced to its registrable domain by the public suffix list
// (private section included: user.blogspot.com stays itself), deduplicated,
// and at most max_lookups distinct domains and addresses per message are
// looked up, the first found first: a message with 100 000 URLs costs no
// more DNS than one with 50. Address hosts are asked of lists in reversed
// form (SURBL, URIBL and ZEN take them; DBL does not and answers
// 127.0.1.255, which is an error answer, never a listing).
//
// See package dnsbl for return codes, bitmasks, error answers, failure
// tracking and health probes.
package uribl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// Name is the check's name in configuration, logs and metrics.
const Name = "uribl"

// What a list may be asked about.
const (
	LookupDomains      = "domains"         // registrable domains of URL hosts and addresses
	LookupIPs          = "ips"             // address hosts of URLs (http://192.0.2.1/)
	LookupResolvedIPs  = "resolved_ips"    // the A records of URL domains (for IP lists)
	LookupEmailAddress = "email_addresses" // whole addresses, as local.domain
)

// ListConfig is one list of the uribl check.
type ListConfig struct {
	dnsbl.ListConfig `yaml:",inline"`
	// Lookup: domains, ips, resolved_ips, email_addresses. Empty:
	// domains and ips.
	Lookup []string `yaml:"lookup"`
	// Sources: where the URLs and addresses asked about were found:
	// link, text, image, subject, email, reply_to. Empty: link, text,
	// image, subject.
	Sources []string `yaml:"sources"`
}

// Config configures the check. Decode over DefaultConfig().
type Config struct {
	Lists []ListConfig `yaml:"lists"`
	// MaxLookups bounds the distinct domains and addresses looked up per
	// message (default 50); each is asked of every list that takes it.
	MaxLookups int `yaml:"max_lookups"`
	// MaxResolve bounds the domains resolved for resolved_ips lists
	// (default 10).
	MaxResolve int `yaml:"max_resolve"`
	// MaxURLs bounds the URLs parsed per message (default 10000).
	MaxURLs int `yaml:"max_urls"`
	// MaxScan bounds the decoded text read per message (default 16 MiB).
	MaxScan checks.Size `yaml:"max_scan"`
	// Exclude are registrable domains never looked up (your own, big
	// providers).
	Exclude []string `yaml:"exclude"`
	// Timeout is a list's query timeout when the list sets none.
	Timeout  time.Duration      `yaml:"timeout"`
	Health   dnsbl.HealthConfig `yaml:"health"`
	Phishing PhishingConfig     `yaml:"phishing"`
	// Shorteners: follow shortened URLs and look up where they lead
	// (shortener.go). Off by default.
	Shorteners ShortenerConfig `yaml:"shorteners"`
}

// DefaultConfig returns no lists, 50 lookups, phishing on.
func DefaultConfig() Config {
	return Config{MaxLookups: 50, MaxResolve: 10, MaxURLs: 10000, MaxScan: 16 << 20, Timeout: 3 * time.Second,
		Health: dnsbl.DefaultHealth(), Phishing: DefaultPhishing(), Shorteners: DefaultShorteners()}
}

// Options are the check's collaborators besides the resolver.
type Options struct {
	Now    func() time.Time
	Prober func(ctx context.Context, l *dnsbl.List) error
	// Walk bounds the walk over MIME parts: the limits every check shares.
	Walk attachments.WalkOptions
}

// Check is the uribl check.
type Check struct {
	cfg      Config
	r        dns.Resolver
	set      *dnsbl.Set
	lists    []list
	exclude  map[string]bool
	phishing *phishing
	walk     attachments.WalkOptions
	short    *shortener // nil when shorteners.enabled is off
}

// list is what one list takes.
type list struct {
	domains, ips, resolved, emails bool
	sources                        Origin
}

var _ checks.Check = (*Check)(nil)

func errorf(format string, args ...any) error { return fmt.Errorf("uribl: "+format, args...) }

// New returns the check, resolving through r.
func New(cfg Config, r dns.Resolver) (*Check, error) { return NewWithOptions(cfg, r, Options{}) }

// NewWithOptions is New with a clock and a prober of the caller's choosing.
func NewWithOptions(cfg Config, r dns.Resolver, o Options) (*Check, error) {
	if r == nil {
		return nil, errors.New("uribl: no resolver")
	}
	def := DefaultConfig()
	if cfg.MaxLookups <= 0 {
		cfg.MaxLookups = def.MaxLookups
	}
	if cfg.MaxResolve < 0 {
		return nil, errorf("max_resolve must not be negative")
	}
	if cfg.MaxURLs <= 0 {
		cfg.MaxURLs = def.MaxURLs
	}
	if cfg.MaxScan <= 0 {
		cfg.MaxScan = def.MaxScan
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	c := &Check{cfg: cfg, r: r, exclude: map[string]bool{}, walk: o.Walk}
	for _, d := range cfg.Exclude {
		n, ok := dnsbl.Domain(d)
		if !ok {
			return nil, errorf("exclude: %q is not a domain", d)
		}
		c.exclude[dns.OrganizationalDomain(n)] = true
	}
	confs := make([]dnsbl.ListConfig, len(cfg.Lists))
	ipList := make([]bool, len(cfg.Lists))
	for i, lc := range cfg.Lists {
		var l list
		lookups := lc.Lookup
		if len(lookups) == 0 {
			lookups = []string{LookupDomains, LookupIPs}
		}
		for _, w := range lookups {
			switch w {
			case LookupDomains:
				l.domains = true
			case LookupIPs:
				l.ips = true
			case LookupResolvedIPs:
				l.resolved = true
			case LookupEmailAddress:
				l.emails = true
			default:
				return nil, errorf("list %q: lookup %q (want domains, ips, resolved_ips or email_addresses)", lc.Name, w)
			}
		}
		sources := lc.Sources
		if len(sources) == 0 {
			sources = []string{"link", "text", "image", "subject"}
		}
		for _, s := range sources {
			o, ok := originNames[s]
			if !ok {
				return nil, errorf("list %q: source %q (want link, text, image, subject, email or reply_to)", lc.Name, s)
			}
			l.sources |= o
		}
		c.lists = append(c.lists, l)
		confs[i] = lc.ListConfig
		ipList[i] = !l.domains && !l.emails
	}
	set, err := dnsbl.NewSet(confs, ipList, "URIBL_", r, cfg.Health, dnsbl.Options{Timeout: cfg.Timeout, Now: o.Now, Prober: o.Prober})
	if err != nil {
		return nil, fmt.Errorf("uribl: %v", strings.TrimPrefix(err.Error(), "dnsbl: "))
	}
	c.set = set
	short, err := newShortener(cfg.Shorteners, r)
	if err != nil {
		return nil, err
	}
	if cfg.Shorteners.Enabled {
		c.short = short
	}
	if cfg.Phishing.Enabled {
		if c.phishing, err = newPhishing(cfg.Phishing); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// SymbolUnscannable (score 0) marks a message whose MIME structure goes
// past the shared limits: the URLs of the parts past them were not read.
const SymbolUnscannable = "URIBL_UNSCANNABLE"

// Name returns "uribl".
func (c *Check) Name() string { return Name }

// Facts declares the facts rules may use, with their values when the
// check did not run (checks.Factual): urls parsed, distinct domains kept,
// domains dropped over max_lookups, phishing found, queries sent, and
// the allowlists and failed lists.
func (*Check) Facts() map[string]any {
	return map[string]any{"urls": 0, "domains": 0, "dropped": 0, "phishing": false, "queries": 0,
		"allowed": []string{}, "failed": []string{}, "unscannable": false, "shortened": 0, "shortened_hosts": []string{}}
}

// Set returns the check's lists, for health reports.
func (c *Check) Set() *dnsbl.Set { return c.set }

// Close stops the background health probes.
func (c *Check) Close() error {
	c.set.Close()
	if c.short != nil {
		c.short.client.CloseIdleConnections()
	}
	return nil
}

// Limits returns the extraction limits of the configuration.
func (c *Check) Limits() Limits {
	lim := Limits{MaxKeys: c.cfg.MaxLookups, MaxURLs: c.cfg.MaxURLs, MaxScan: int64(c.cfg.MaxScan), Exclude: c.exclude, Walk: c.walk}
	if c.short != nil && len(c.lists) > 0 {
		lim.Shorteners, lim.MaxShort = c.short.hosts, c.short.cfg.MaxURLs
	}
	return lim
}

// source is the detail word of an origin set, as rspamd writes it.
func source(o Origin) string {
	if o&urlOrigins != 0 {
		return "url"
	}
	return "email"
}

// Check extracts m's URLs and asks the lists about them.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) (res checks.Result) {
	if len(c.lists) == 0 && c.phishing == nil {
		return checks.Result{Status: checks.StatusNone, Reason: "no lists configured"}
	}
	lim := c.Limits()
	// Without lists only the phishing finding needs reading: anchors.
	lim.LinksOnly = len(c.lists) == 0
	found := Extract(m, lim)
	res = checks.Result{Facts: map[string]any{
		"urls":        found.URLs,
		"domains":     len(found.Keys),
		"dropped":     found.Dropped,
		"phishing":    false,
		"unscannable": found.Unscannable != "",
		"shortened":   0, "shortened_hosts": []string{},
	}}
	if found.Unscannable != "" {
		// Parts past the shared MIME limits were not read: say so.
		res.Symbols = append(res.Symbols, checks.Symbol{Name: SymbolUnscannable, Detail: found.Unscannable})
		defer func() { res.Reason += "; parts not read: " + found.Unscannable }()
	}
	if c.phishing != nil {
		if syms := c.phishing.find(found.Links); len(syms) > 0 {
			res.Symbols = append(res.Symbols, syms...)
			res.Facts["phishing"] = true
		}
	}
	if len(found.Short) > 0 {
		// Where shortened links lead is looked up like the body's hosts.
		if why := c.shortened(ctx, found, &res); why != "" {
			defer func() { res.Reason += why }()
		}
		res.Facts["domains"] = len(found.Keys)
		res.Facts["dropped"] = found.Dropped
	}
	qs := c.queries(ctx, found)
	res.Facts["queries"] = len(qs)
	if len(qs) == 0 {
		res.Status = checks.StatusNone
		res.Reason = fmt.Sprintf("nothing to look up (%d URLs)", found.URLs)
		if len(c.lists) == 0 {
			res.Reason = "no lists configured"
		}
		c.total(&res)
		return res
	}
	outs := c.set.Lookup(ctx, qs)
	sum := c.set.Summarize(outs, "URIBL")
	res.Symbols = append(res.Symbols, sum.Symbols...)
	res.Listed = sum.Listed
	res.Events = sum.Events
	res.Facts["allowed"] = nonNil(sum.Allowed)
	res.Facts["failed"] = nonNil(sum.Failed)
	res.Status, res.Reason = dnsbl.Status(outs, sum, "", fmt.Sprintf("%d domains, %d queries", len(found.Keys), len(qs)))
	if found.Dropped > 0 {
		res.Reason += fmt.Sprintf("; %d more domains not looked up (max_lookups %d)", found.Dropped, c.cfg.MaxLookups)
	}
	c.total(&res)
	return res
}

func (c *Check) total(r *checks.Result) {
	r.Score = 0
	for _, s := range r.Symbols {
		r.Score += s.Score
	}
}

// queries builds the list queries for what was found.
func (c *Check) queries(ctx context.Context, f *Found) []dnsbl.Query {
	var qs []dnsbl.Query
	var resolved map[string][]netip.Addr
	// One resolution serves every resolved_ips list: resolve the domains
	// of all their sources, not only the first such list's.
	var rsources Origin
	for _, l := range c.lists {
		if l.resolved {
			rsources |= l.sources
		}
	}
	for i, l := range c.lists {
		if l.resolved && resolved == nil {
			resolved = c.resolve(ctx, f.Keys, rsources)
		}
		for _, k := range f.Keys {
			if k.Origins&l.sources == 0 {
				continue
			}
			src := source(k.Origins & l.sources)
			switch {
			case k.Host.ip.IsValid():
				if l.ips {
					qs = append(qs, dnsbl.Query{List: i, Key: dnsbl.ReverseIP(k.Host.ip), Value: k.Value, Source: src})
				}
			default:
				if l.domains {
					qs = append(qs, dnsbl.Query{List: i, Key: k.Value, Value: k.Value, Source: src})
				}
				if l.resolved {
					for _, a := range resolved[k.Value] {
						qs = append(qs, dnsbl.Query{List: i, Key: dnsbl.ReverseIP(a), Value: a.String() + ":" + k.Value, Source: src})
					}
				}
			}
		}
		if l.emails {
			for _, e := range f.Emails {
				if e.Origins&l.sources == 0 {
					continue
				}
				v := e.Local + "." + e.Domain
				qs = append(qs, dnsbl.Query{List: i, Key: v, Value: v, Source: "email"})
			}
		}
	}
	return qs
}

// resolve looks up the A records of up to MaxResolve domains, in
// parallel; addresses that are not public are left out.
func (c *Check) resolve(ctx context.Context, keys []Key, sources Origin) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	for _, k := range keys {
		if k.Host.ip.IsValid() || k.Origins&sources == 0 || n >= c.cfg.MaxResolve {
			continue
		}
		n++
		wg.Add(1)
		go func(d string) {
			defer wg.Done()
			var addrs []netip.Addr
			if lk, ok := c.r.(dns.IPLookuper); ok {
				ips, _ := lk.LookupIP(ctx, "ip4", d)
				for _, ip := range ips {
					if a, ok := netip.AddrFromSlice(ip); ok && dnsbl.Public(a.Unmap()) {
						addrs = append(addrs, a.Unmap())
					}
				}
			} else {
				ips, _ := c.r.LookupIPAddr(ctx, d)
				for _, ip := range ips {
					if a, ok := netip.AddrFromSlice(ip.IP); ok && a.Unmap().Is4() && dnsbl.Public(a.Unmap()) {
						addrs = append(addrs, a.Unmap())
					}
				}
			}
			if len(addrs) > 4 {
				addrs = addrs[:4]
			}
			mu.Lock()
			out[d] = addrs
			mu.Unlock()
		}(k.Value)
	}
	wg.Wait()
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
