// Package helo is the "helo" check: what the SMTP client says it is and
// what the DNS says about it. Each finding is a symbol with a small
// default score; none is conclusive alone, so the check is never decisive
// and its status only sums them up.
//
// Findings:
//
//   - HELO_IP_LITERAL: the HELO is an address literal ("[192.0.2.1]",
//     RFC 5321 §4.1.3), which well-run servers rarely send;
//     HELO_IP_MISMATCH: the literal is not the client's address.
//   - HELO_BARE_IP: an address without brackets, which RFC 5321 §4.1.1.1
//     does not allow.
//   - HELO_NOT_FQDN: a name of one label ("User", "localhost").
//   - HELO_BAD_SYNTAX: characters no host name has.
//   - HELO_OURS: our own host name or address: a forgery, since our
//     clients are not us.
//   - HELO_NORESOLVE: a name with neither A nor AAAA record (NXDOMAIN or
//     no data).
//   - RDNS_NONE: the client's address has no PTR record.
//   - RDNS_MISMATCH: no PTR name resolves back to the client's address
//     (forward-confirmed reverse DNS fails).
//   - SENDER_NO_MX_A: the envelope sender's domain has neither MX nor
//     address records, so no reply can reach it (MailCleaner's "verify
//     sender domain"; RFC 5321 §5.1); SENDER_NULL_MX: it publishes a
//     null MX (RFC 7505 §4.2: it sends no mail).
//
// A DNS failure (timeout, SERVFAIL) is never a finding: it gives a
// *_DNSFAIL symbol with score 0 and status temperror when nothing else was
// found. Reverse DNS is not asked for addresses that are not public.
package helo

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// Name is the check's name in configuration, logs and metrics.
const Name = "helo"

// Symbols.
const (
	SymIPLiteral   = "HELO_IP_LITERAL"
	SymIPMismatch  = "HELO_IP_MISMATCH"
	SymBareIP      = "HELO_BARE_IP"
	SymNotFQDN     = "HELO_NOT_FQDN"
	SymBadSyntax   = "HELO_BAD_SYNTAX"
	SymOurs        = "HELO_OURS"
	SymNoResolve   = "HELO_NORESOLVE"
	SymHELODNSFail = "HELO_DNSFAIL"
	SymNoPTR       = "RDNS_NONE"
	SymMismatch    = "RDNS_MISMATCH"
	SymRDNSDNSFail = "RDNS_DNSFAIL"
	SymSenderNoMXA = "SENDER_NO_MX_A"
	SymSenderNull  = "SENDER_NULL_MX"
	SymSenderFail  = "SENDER_DNSFAIL"
)

// Scores are the default scores of the findings.
type Scores struct {
	IPLiteral  float64 `yaml:"ip_literal"`
	IPMismatch float64 `yaml:"ip_mismatch"`
	BareIP     float64 `yaml:"bare_ip"`
	NotFQDN    float64 `yaml:"not_fqdn"`
	BadSyntax  float64 `yaml:"bad_syntax"`
	Ours       float64 `yaml:"ours"`
	NoResolve  float64 `yaml:"no_resolve"`
	NoPTR      float64 `yaml:"no_ptr"`
	Mismatch   float64 `yaml:"rdns_mismatch"`
	SenderNoMX float64 `yaml:"sender_no_mx_a"`
	SenderNull float64 `yaml:"sender_null_mx"`
}

// Config configures the check. Decode over DefaultConfig().
type Config struct {
	// Hostnames are our own names and Addresses our own addresses
	// (HELO_OURS).
	Hostnames []string `yaml:"hostnames"`
	Addresses []string `yaml:"addresses"`
	// ResolveHELO asks whether the HELO name resolves.
	ResolveHELO bool `yaml:"resolve_helo"`
	// ReverseDNS asks for the client's PTR and forward-confirms it.
	ReverseDNS bool `yaml:"reverse_dns"`
	// VerifySender asks whether the envelope sender's domain has MX or
	// address records.
	VerifySender bool `yaml:"verify_sender"`
	// SkipAuthenticated skips the check for clients that authenticated:
	// a laptop's HELO says nothing about the mail it submits.
	SkipAuthenticated bool `yaml:"skip_authenticated"`
	// MaxPTR bounds the PTR names forward-confirmed (default 5).
	MaxPTR int    `yaml:"max_ptr"`
	Scores Scores `yaml:"-"` // the defaults; configuration overrides them with the chain entry's scores:
}

// DefaultConfig returns every test on and small scores: a few findings
// together tag a message, none rejects it alone.
func DefaultConfig() Config {
	return Config{
		ResolveHELO: true, ReverseDNS: true, VerifySender: true, SkipAuthenticated: true, MaxPTR: 5,
		Scores: Scores{IPLiteral: 0.5, IPMismatch: 1, BareIP: 1.5, NotFQDN: 1, BadSyntax: 1, Ours: 3,
			NoResolve: 0.5, NoPTR: 1, Mismatch: 0.5, SenderNoMX: 2, SenderNull: 2},
	}
}

// Check is the helo check.
type Check struct {
	cfg   Config
	r     dns.Resolver
	names map[string]bool
	addrs map[netip.Addr]bool
}

var _ checks.Check = (*Check)(nil)

// New returns the check, resolving through r.
func New(cfg Config, r dns.Resolver) (*Check, error) {
	if r == nil {
		return nil, errors.New("helo: no resolver")
	}
	if cfg.MaxPTR <= 0 {
		cfg.MaxPTR = 5
	}
	c := &Check{cfg: cfg, r: r, names: map[string]bool{}, addrs: map[netip.Addr]bool{}}
	for _, h := range cfg.Hostnames {
		d, ok := dnsbl.Domain(h)
		if !ok {
			if strings.TrimSpace(h) == "" {
				continue
			}
			d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		}
		c.names[d] = true
	}
	for _, a := range cfg.Addresses {
		ip, err := netip.ParseAddr(strings.TrimSpace(a))
		if err != nil {
			return nil, errors.New("helo: addresses: " + err.Error())
		}
		c.addrs[ip.Unmap()] = true
	}
	return c, nil
}

// Name returns "helo".
func (c *Check) Name() string { return Name }

// Facts declares the facts rules may use, with their values when the
// check did not run (checks.Factual): the HELO as given, the client's
// first PTR name, and whether reverse DNS is forward-confirmed.
func (*Check) Facts() map[string]any {
	return map[string]any{"helo": "", "ptr": "", "fcrdns": false}
}

// findings collects symbols from several goroutines.
type findings struct {
	mu    sync.Mutex
	syms  []checks.Symbol
	facts map[string]any
}

func (f *findings) add(name string, score float64, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syms = append(f.syms, checks.Symbol{Name: name, Score: score, Detail: printable(detail)})
}

func (f *findings) fact(k string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.facts[k] = v
}

// Check examines m's HELO, client address and envelope sender.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	if c.cfg.SkipAuthenticated && m.AuthUser != "" {
		return checks.Result{Status: checks.StatusSkipped, Reason: "authenticated sender"}
	}
	f := &findings{facts: map[string]any{}}
	client, _ := netip.AddrFromSlice(m.ClientIP)
	client = client.Unmap()

	var wg sync.WaitGroup
	helo := strings.TrimSpace(m.HELO)
	f.fact("helo", printable(helo))
	if helo != "" {
		name, resolve := c.heloSyntax(helo, client, f)
		if resolve && c.cfg.ResolveHELO {
			wg.Go(func() { c.resolveHELO(ctx, name, f) })
		}
	}
	if c.cfg.ReverseDNS && client.IsValid() && dnsbl.Public(client) {
		wg.Go(func() { c.reverse(ctx, client, f) })
	}
	if c.cfg.VerifySender {
		if i := strings.LastIndexByte(m.MailFrom, '@'); i >= 0 {
			if d, ok := dnsbl.Domain(m.MailFrom[i+1:]); ok {
				wg.Go(func() { c.verifySender(ctx, d, f) })
			}
		}
	}
	wg.Wait()

	// Goroutines finish in any order: report in a stable one.
	sort.Slice(f.syms, func(i, j int) bool { return f.syms[i].Name < f.syms[j].Name })
	res := checks.Result{Symbols: f.syms, Facts: f.facts}
	var found, failed []string
	for _, sym := range f.syms {
		res.Score += sym.Score
		if strings.HasSuffix(sym.Name, "_DNSFAIL") {
			failed = append(failed, sym.Name)
		} else {
			found = append(found, sym.Name)
		}
	}
	switch {
	case len(found) > 0:
		res.Status = checks.StatusFail
		res.Reason = strings.Join(found, ", ")
	case len(failed) > 0:
		res.Status = checks.StatusTemperror
		res.Reason = strings.Join(failed, ", ")
	default:
		res.Status = checks.StatusPass
		res.Reason = "no findings"
	}
	return res
}

// heloSyntax reads the HELO and reports the syntax findings; it returns
// the name to resolve and whether to resolve it.
func (c *Check) heloSyntax(helo string, client netip.Addr, f *findings) (string, bool) {
	s := c.cfg.Scores
	if strings.HasPrefix(helo, "[") && strings.HasSuffix(helo, "]") {
		lit := helo[1 : len(helo)-1]
		if len(lit) > 5 && strings.EqualFold(lit[:5], "ipv6:") {
			lit = lit[5:]
		}
		a, err := netip.ParseAddr(lit)
		if err != nil {
			f.add(SymBadSyntax, s.BadSyntax, helo)
			return "", false
		}
		a = a.Unmap()
		f.add(SymIPLiteral, s.IPLiteral, helo)
		if client.IsValid() && a != client {
			f.add(SymIPMismatch, s.IPMismatch, a.String()+" != "+client.String())
		}
		if c.addrs[a] {
			f.add(SymOurs, s.Ours, helo)
		}
		return "", false
	}
	if a, err := netip.ParseAddr(helo); err == nil {
		f.add(SymBareIP, s.BareIP, helo)
		if c.addrs[a.Unmap()] {
			f.add(SymOurs, s.Ours, helo)
		}
		return "", false
	}
	low := strings.ToLower(strings.TrimSuffix(helo, "."))
	if c.names[low] {
		f.add(SymOurs, s.Ours, helo)
		return "", false
	}
	name, ok := dnsbl.Domain(helo)
	if !ok {
		if !strings.Contains(low, ".") && hostChars(low) {
			f.add(SymNotFQDN, s.NotFQDN, helo)
		} else {
			f.add(SymBadSyntax, s.BadSyntax, helo)
		}
		return "", false
	}
	if c.names[name] {
		f.add(SymOurs, s.Ours, helo)
		return "", false
	}
	return name, true
}

func hostChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

func (c *Check) resolveHELO(ctx context.Context, name string, f *findings) {
	_, err := c.r.LookupIPAddr(ctx, name)
	switch {
	case err == nil:
	case dns.IsNotFound(err):
		f.add(SymNoResolve, c.cfg.Scores.NoResolve, name)
	default:
		f.add(SymHELODNSFail, 0, name+": "+dns.ErrText(err))
	}
}

// reverse looks for the client's PTR names and forward-confirms them.
func (c *Check) reverse(ctx context.Context, client netip.Addr, f *findings) {
	s := c.cfg.Scores
	names, err := c.r.LookupAddr(ctx, client.String())
	switch {
	case err == nil && len(names) == 0, err != nil && dns.IsNotFound(err):
		f.add(SymNoPTR, s.NoPTR, client.String())
		f.fact("fcrdns", false)
		return
	case err != nil:
		f.add(SymRDNSDNSFail, 0, client.String()+": "+dns.ErrText(err))
		return
	}
	if len(names) > c.cfg.MaxPTR {
		names = names[:c.cfg.MaxPTR]
	}
	f.fact("ptr", printable(strings.TrimSuffix(names[0], ".")))
	network := "ip4"
	if client.Is6() {
		network = "ip6"
	}
	tempfail := 0
	for _, n := range names {
		ips, err := c.lookupIP(ctx, network, n)
		if err != nil && !dns.IsNotFound(err) {
			tempfail++
			continue
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap() == client {
				f.fact("fcrdns", true)
				return
			}
		}
	}
	if tempfail == len(names) {
		f.add(SymRDNSDNSFail, 0, strings.TrimSuffix(names[0], ".")+": forward lookup failed")
		return
	}
	f.fact("fcrdns", false)
	f.add(SymMismatch, s.Mismatch, strings.TrimSuffix(names[0], ".")+" does not resolve to "+client.String())
}

func (c *Check) lookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	if lk, ok := c.r.(dns.IPLookuper); ok {
		return lk.LookupIP(ctx, network, host)
	}
	addrs, err := c.r.LookupIPAddr(ctx, host)
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, err
}

// verifySender asks whether mail can be returned to the sender's domain:
// an MX, or else an address record (the implicit MX of RFC 5321 §5.1).
func (c *Check) verifySender(ctx context.Context, d string, f *findings) {
	s := c.cfg.Scores
	mxs, err := c.r.LookupMX(ctx, d)
	switch {
	case err == nil && len(mxs) > 0:
		if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
			f.add(SymSenderNull, s.SenderNull, d)
		}
		return
	case err != nil && !dns.IsNotFound(err):
		f.add(SymSenderFail, 0, d+": "+dns.ErrText(err))
		return
	}
	_, err = c.r.LookupIPAddr(ctx, d)
	switch {
	case err == nil:
	case dns.IsNotFound(err):
		f.add(SymSenderNoMXA, s.SenderNoMX, d)
	default:
		f.add(SymSenderFail, 0, d+": "+dns.ErrText(err))
	}
}

// printable replaces bytes outside printable ASCII with "?" and bounds
// the length: the HELO comes from the client.
func printable(s string) string {
	if len(s) > 255 {
		s = s[:255]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
