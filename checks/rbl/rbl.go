// Package rbl is the "rbl" check: it asks DNS blocklists and allowlists
// (RFC 5782) about the SMTP client's address, the addresses of the hosts
// named in the Received header fields, and the HELO, envelope-sender and
// header From domains, all lists in parallel, each with its own timeout.
//
// Each list names what it is asked about (lookup), how return codes map to
// symbols and scores (see package dnsbl for the code syntax and for how
// error answers, timeouts, suspension and health probes work), and
// whether it is an allowlist. The check reports every symbol that matched
// and, in Result.Listed, the names of the blocklists that listed
// something, in configured order: the verdict log prints them as
// MailScanner does ("RBL checks: <id> found in spamhaus-ZEN, SpamCop" and
// "is spam, spamhaus-ZEN, SpamCop, chainmail (…)").
//
// Received hops are read top down (position 1 is the newest field, the one
// our MTA or the nearest relay added). A hop is skipped when its address is
// not public (loopback, RFC 1918, link-local, …), is one of our own
// relays (own), or is the SMTP client itself (already asked as "client").
// received_min and received_max bound the positions a list looks at; a
// negative position counts from the bottom (-1 is the oldest field, the
// origin).
package rbl

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// Name is the check's name in configuration, logs and metrics.
const Name = "rbl"

// What a list may be asked about.
const (
	LookupClient     = "client"      // the SMTP client's address
	LookupReceived   = "received"    // addresses in Received fields
	LookupHELO       = "helo"        // the HELO/EHLO name
	LookupEnvFrom    = "env_from"    // the envelope sender's domain
	LookupHeaderFrom = "header_from" // the header From domains
)

// ListConfig is one list of the rbl check.
type ListConfig struct {
	dnsbl.ListConfig `yaml:",inline"`
	// Lookup says what the list is asked about: client, received, helo,
	// env_from, header_from. Empty: client.
	Lookup []string `yaml:"lookup"`
	// ReceivedMin and ReceivedMax bound the Received positions asked
	// about (1 = newest; negative counts from the oldest, -1; 0 = no
	// bound).
	ReceivedMin int `yaml:"received_min"`
	ReceivedMax int `yaml:"received_max"`
	// SkipIPv4 and SkipIPv6 leave addresses of one family out (many
	// lists have no IPv6 data).
	SkipIPv4 bool `yaml:"skip_ipv4"`
	SkipIPv6 bool `yaml:"skip_ipv6"`
	// FullDomain asks about domains as they are; by default the
	// registrable domain is asked (mail.example.co.uk → example.co.uk),
	// which is what domain lists such as Spamhaus DBL index.
	FullDomain bool `yaml:"full_domain"`
}

// Config configures the check. Decode over DefaultConfig().
type Config struct {
	// Lists are asked in parallel. None: the check reports "none".
	Lists []ListConfig `yaml:"lists"`
	// SkipAuthenticated skips the check for clients that authenticated
	// (SASL): a roaming user's dynamic address is on policy lists such
	// as Spamhaus PBL by design (MailScanner "Spam List Skip If
	// Authenticated").
	SkipAuthenticated bool `yaml:"skip_authenticated"`
	// Own are our own relays (addresses or CIDR prefixes): never asked
	// about, in the client or in Received hops.
	Own []string `yaml:"own"`
	// MaxHops bounds the Received fields read (default 20).
	MaxHops int `yaml:"max_hops"`
	// MaxFrom bounds the header From addresses asked about (default 5).
	MaxFrom int `yaml:"max_from"`
	// Timeout is a list's query timeout when the list sets none.
	Timeout time.Duration `yaml:"timeout"`
	// Health: probes and suspension (see dnsbl.HealthConfig).
	Health dnsbl.HealthConfig `yaml:"health"`
}

// DefaultConfig returns no lists, authenticated senders skipped, 20 hops,
// 3 s per query and the dnsbl health defaults.
func DefaultConfig() Config {
	return Config{SkipAuthenticated: true, MaxHops: 20, MaxFrom: 5, Timeout: 3 * time.Second, Health: dnsbl.DefaultHealth()}
}

// Options are the check's collaborators besides the resolver.
type Options struct {
	// Now is the clock; Prober replaces the RFC 5782 health probe (see
	// dnsbl.Options).
	Now    func() time.Time
	Prober func(ctx context.Context, l *dnsbl.List) error
}

// Check is the rbl check.
type Check struct {
	cfg   Config
	lists []ListConfig
	set   *dnsbl.Set
	own   []netip.Prefix
	kinds []lookupSet
}

// lookupSet is what one list is asked about.
type lookupSet struct {
	client, received, helo, envFrom, headerFrom bool
}

var _ checks.Check = (*Check)(nil)

// New returns the check, resolving through r.
func New(cfg Config, r dns.Resolver) (*Check, error) { return NewWithOptions(cfg, r, Options{}) }

// NewWithOptions is New with a clock and a prober of the caller's choosing.
func NewWithOptions(cfg Config, r dns.Resolver, o Options) (*Check, error) {
	if r == nil {
		return nil, errors.New("rbl: no resolver")
	}
	if cfg.MaxHops <= 0 {
		cfg.MaxHops = DefaultConfig().MaxHops
	}
	if cfg.MaxFrom <= 0 {
		cfg.MaxFrom = DefaultConfig().MaxFrom
	}
	c := &Check{cfg: cfg, lists: cfg.Lists}
	for _, s := range cfg.Own {
		p, err := checks.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("rbl: own: %v", err)
		}
		c.own = append(c.own, p)
	}
	confs := make([]dnsbl.ListConfig, len(cfg.Lists))
	ipList := make([]bool, len(cfg.Lists))
	for i, l := range cfg.Lists {
		var k lookupSet
		lookups := l.Lookup
		if len(lookups) == 0 {
			lookups = []string{LookupClient}
		}
		for _, w := range lookups {
			switch w {
			case LookupClient:
				k.client = true
			case LookupReceived:
				k.received = true
			case LookupHELO:
				k.helo = true
			case LookupEnvFrom:
				k.envFrom = true
			case LookupHeaderFrom:
				k.headerFrom = true
			default:
				return nil, fmt.Errorf("rbl: list %q: lookup %q (want client, received, helo, env_from or header_from)", l.Name, w)
			}
		}
		if l.SkipIPv4 && l.SkipIPv6 && !k.helo && !k.envFrom && !k.headerFrom {
			return nil, fmt.Errorf("rbl: list %q skips both address families and looks up no domain", l.Name)
		}
		c.kinds = append(c.kinds, k)
		confs[i] = l.ListConfig
		ipList[i] = k.client || k.received
	}
	set, err := dnsbl.NewSet(confs, ipList, "RBL_", r, cfg.Health, dnsbl.Options{Timeout: cfg.Timeout, Now: o.Now, Prober: o.Prober})
	if err != nil {
		return nil, fmt.Errorf("rbl: %v", strings.TrimPrefix(err.Error(), "dnsbl: "))
	}
	c.set = set
	return c, nil
}

// Name returns "rbl".
func (c *Check) Name() string { return Name }

// Facts declares the facts rules may use, with their values when the
// check did not run (checks.Factual): allowed and failed name the
// allowlists that vouched and the lists that failed; queries counts the
// lookups.
func (*Check) Facts() map[string]any {
	return map[string]any{"allowed": []string{}, "failed": []string{}, "queries": 0}
}

// Set returns the check's lists, for health reports.
func (c *Check) Set() *dnsbl.Set { return c.set }

// Close stops the background health probes.
func (c *Check) Close() error {
	c.set.Close()
	return nil
}

func (c *Check) isOwn(a netip.Addr) bool {
	for _, p := range c.own {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// subjects are the values of one message the lists may be asked about.
type subjects struct {
	client     netip.Addr // invalid when not asked
	hops       []hop
	nhops      int // Received fields read
	helo       string
	envFrom    string
	headerFrom []string
}

func (c *Check) subjects(m *checks.Message) subjects {
	var s subjects
	var client netip.Addr
	if a, ok := netip.AddrFromSlice(m.ClientIP); ok {
		client = a.Unmap()
		if dnsbl.Public(client) && !c.isOwn(client) {
			s.client = client
		}
	}
	for _, f := range m.Header {
		if !strings.EqualFold(f.Name, "Received") {
			continue
		}
		if s.nhops >= c.cfg.MaxHops {
			break
		}
		s.nhops++
		a, ok := receivedAddr(f.Value)
		if !ok || !dnsbl.Public(a) || c.isOwn(a) || a == client {
			continue
		}
		s.hops = append(s.hops, hop{pos: s.nhops, addr: a})
	}
	if h := strings.TrimSpace(m.HELO); h != "" && !strings.HasPrefix(h, "[") {
		if d, ok := dnsbl.Domain(h); ok {
			s.helo = d
		}
	}
	if i := strings.LastIndexByte(m.MailFrom, '@'); i >= 0 {
		if d, ok := dnsbl.Domain(m.MailFrom[i+1:]); ok {
			s.envFrom = d
		}
	}
	seen := map[string]bool{}
	for _, v := range m.Values("From") {
		for _, d := range fromDomains(v) {
			if len(s.headerFrom) >= c.cfg.MaxFrom {
				break
			}
			if !seen[d] {
				seen[d] = true
				s.headerFrom = append(s.headerFrom, d)
			}
		}
	}
	return s
}

// fromDomains returns the domains of the addresses in a From value; when
// the value does not parse, the text after each "@" is tried.
func fromDomains(v string) []string {
	var out []string
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
				if d, ok := dnsbl.Domain(a.Address[i+1:]); ok {
					out = append(out, d)
				}
			}
		}
		return out
	}
	for rest := v; ; {
		i := strings.IndexByte(rest, '@')
		if i < 0 {
			return out
		}
		rest = rest[i+1:]
		// '@' ends the host too (no domain has one), so that each
		// byte is scanned once: "@a@a@a…" is not quadratic.
		end := strings.IndexFunc(rest, func(r rune) bool {
			return r == '>' || r == ' ' || r == ',' || r == ';' || r == ')' || r == '"' || r == '@'
		})
		host := rest
		if end >= 0 {
			host = rest[:end]
		}
		if d, ok := dnsbl.Domain(host); ok {
			out = append(out, d)
		}
	}
}

// inRange reports whether position pos of n fields is within [lo, hi].
func inRange(pos, n, lo, hi int) bool {
	if lo < 0 {
		lo = n + 1 + lo
	}
	if hi < 0 {
		hi = n + 1 + hi
	}
	if lo != 0 && pos < lo {
		return false
	}
	if hi != 0 && pos > hi {
		return false
	}
	return true
}

// queries builds the list queries for s.
func (c *Check) queries(s subjects) []dnsbl.Query {
	var qs []dnsbl.Query
	addIP := func(i int, a netip.Addr, source string) {
		l := c.lists[i]
		if (a.Is4() && l.SkipIPv4) || (a.Is6() && l.SkipIPv6) {
			return
		}
		qs = append(qs, dnsbl.Query{List: i, Key: dnsbl.ReverseIP(a), Value: a.String(), Source: source})
	}
	addDomain := func(i int, d, source string) {
		if d == "" {
			return
		}
		if !c.lists[i].FullDomain {
			d = dns.OrganizationalDomain(d)
		}
		qs = append(qs, dnsbl.Query{List: i, Key: d, Value: d, Source: source})
	}
	for i, k := range c.kinds {
		if k.client && s.client.IsValid() {
			addIP(i, s.client, LookupClient)
		}
		if k.received {
			seen := map[netip.Addr]bool{}
			for _, h := range s.hops {
				if seen[h.addr] || !inRange(h.pos, s.nhops, c.lists[i].ReceivedMin, c.lists[i].ReceivedMax) {
					continue
				}
				seen[h.addr] = true
				addIP(i, h.addr, LookupReceived)
			}
		}
		if k.helo {
			addDomain(i, s.helo, LookupHELO)
		}
		if k.envFrom {
			addDomain(i, s.envFrom, LookupEnvFrom)
		}
		if k.headerFrom {
			for _, d := range s.headerFrom {
				addDomain(i, d, LookupHeaderFrom)
			}
		}
	}
	return qs
}

// Check asks the lists about m.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	if len(c.lists) == 0 {
		return checks.Result{Status: checks.StatusNone, Reason: "no lists configured"}
	}
	if c.cfg.SkipAuthenticated && m.AuthUser != "" {
		return checks.Result{Status: checks.StatusSkipped, Reason: "authenticated sender"}
	}
	qs := c.queries(c.subjects(m))
	if len(qs) == 0 {
		return checks.Result{Status: checks.StatusNone, Reason: "nothing to look up"}
	}
	outs := c.set.Lookup(ctx, qs)
	sum := c.set.Summarize(outs, "RBL")
	res := checks.Result{
		Symbols: sum.Symbols,
		Listed:  sum.Listed,
		Events:  sum.Events,
		Facts: map[string]any{
			"allowed": nonNil(sum.Allowed),
			"failed":  nonNil(sum.Failed),
			"queries": len(qs),
		},
	}
	for _, s := range sum.Symbols {
		res.Score += s.Score
	}
	res.Status, res.Reason = dnsbl.Status(outs, sum, listedKeys(outs, c.set), fmt.Sprintf("%d queries", len(qs)))
	return res
}

// listedKeys names what was listed where, for the reason:
// "192.0.2.1 (client) 127.0.0.2 on spamhaus-ZEN".
func listedKeys(outs []dnsbl.Outcome, set *dnsbl.Set) string {
	vouched := map[string]bool{}
	for _, o := range outs {
		if o.State == dnsbl.Listed && set.Lists[o.List].Overrides {
			vouched[o.Value] = true
		}
	}
	var parts []string
	seen := map[string]bool{}
	for _, o := range outs {
		l := set.Lists[o.List]
		if o.State != dnsbl.Listed || l.Allow || vouched[o.Value] {
			continue
		}
		k := o.Value + " " + o.Source + " " + l.Name
		if seen[k] || len(parts) >= 5 {
			continue
		}
		seen[k] = true
		parts = append(parts, fmt.Sprintf("%s (%s) %s on %s", o.Value, o.Source, o.Hits[0].Answer, l.Name))
	}
	return strings.Join(parts, ", ")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
