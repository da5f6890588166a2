// Package dnsbl queries DNS blocklists and allowlists (RFC 5782) for the
// rbl and uribl checks: it turns list answers into symbols, keeps answers
// that are errors from being read as listings, tracks each list's health
// and suspends lists that stop answering.
//
// A list is a DNS zone. To ask whether a key is listed, the key is put in
// front of the zone — a reversed IPv4 address ("2.0.0.127.zen.example"),
// the 32 reversed nibbles of an IPv6 address (RFC 5782 §2.4), a domain
// (§2.3), or for hashed lists a digest of it — and the A records of that
// name are asked for. NXDOMAIN (or no A record) means "not listed"; A
// records in 127.0.0.0/8 mean "listed", each address a return code that
// the list's Codes map to symbols: an exact code, a range, a CIDR prefix,
// a pattern with wildcard octets, or a bitmask as the SURBL and URIBL
// multi lists use. TXT records are never needed: RFC 5782 §2.1 makes the
// A record the listing, so a list that publishes only TXT lists nothing.
//
// Some answers say the query was not served (Spamhaus's 127.255.255.x,
// DBL's 127.0.1.255, URIBL's 127.0.0.1, anything outside 127/8 such as an
// ISP resolver's rewritten NXDOMAIN). They, timeouts and server failures
// are never listings: the list gets a <SYMBOL>_FAIL symbol with score 0
// and a warning line. A list that failed Failures of its last Window
// queries (MailScanner's "Max Spam List Timeouts" 7 of "Spam List
// Timeouts History" 10) is suspended and probed again after Retry.
//
// The health probe of RFC 5782 §5 runs before a list is first used and
// every ProbeInterval after: the test entry (127.0.0.2, or the domain
// "test") must be listed and the entry 127.0.0.1 (or "invalid") must not.
// A list that fails it is suspended like a failing one. Probes run on
// goroutines the Set owns; Close cancels and waits for them.
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"chainmail/checks/dns"
)

// ListConfig is one list. The rbl and uribl checks embed it in their own
// list configuration.
type ListConfig struct {
	// Name is the list's name in logs, as MailScanner prints it
	// ("spamhaus-ZEN"): "RBL checks: <id> found in spamhaus-ZEN".
	Name string `yaml:"name"`
	// Zone is the DNS zone queried ("zen.spamhaus.org").
	Zone string `yaml:"zone"`
	// Symbol and Score apply to a listing no Code matches (and to every
	// listing when there are no Codes); Symbol also names the _FAIL
	// symbol. Empty: derived from Name.
	Symbol string  `yaml:"symbol"`
	Score  float64 `yaml:"score"`
	// Codes map return codes to symbols. An answer may match several.
	Codes []Code `yaml:"codes"`
	// Unknown makes an answer in 127/8 that matches no Code a listing
	// under Symbol; without it such an answer is ignored.
	Unknown bool `yaml:"unknown"`
	// Allow marks an allowlist (DNSWL style): its hits carry their
	// (negative) scores and are never "listed".
	Allow bool `yaml:"allow"`
	// Overrides, on an allowlist, drops the blocklist hits of every key
	// it lists (rspamd's whitelist semantics).
	Overrides bool `yaml:"overrides"`
	// Errors are more answers that mean "not served", added to
	// DefaultErrors (e.g. DNSWL's "127.0.0.255" for too many queries).
	Errors []string `yaml:"errors"`
	// Timeout bounds one query; 0 means the check's default.
	Timeout time.Duration `yaml:"timeout"`
	// Hash queries a digest of the key instead of the key: "blake2b"
	// for rspamd-style hashed lists (see HashLabel); "" for plain.
	Hash string `yaml:"hash"`
	// ProbeListed and ProbeUnlisted are the health probe's entries: an IP
	// address or a domain; "-" leaves that half out. Empty: the RFC 5782
	// §5 entries for the kind of list (127.0.0.2 / 127.0.0.1, or test /
	// invalid).
	ProbeListed   string `yaml:"probe_listed"`
	ProbeUnlisted string `yaml:"probe_unlisted"`
}

// HealthConfig is how lists are watched.
type HealthConfig struct {
	// ProbeInterval is how often each list's health is probed; 0 turns
	// probes off.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// ProbeTimeout bounds one probe.
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
	// Retry is how long a suspended list rests before it is probed (or,
	// without probes, used) again.
	Retry time.Duration `yaml:"retry"`
	// Failures of the last Window queries suspend a list.
	Failures int `yaml:"failures"`
	Window   int `yaml:"window"`
}

// DefaultHealth returns the defaults: probes every 10 minutes, 7 failures
// of the last 10 queries suspend a list for 2 minutes.
func DefaultHealth() HealthConfig {
	return HealthConfig{ProbeInterval: 10 * time.Minute, ProbeTimeout: 3 * time.Second, Retry: 2 * time.Minute, Failures: 7, Window: 10}
}

// Probe entries of RFC 5782 §5.
const (
	ProbeIPListed       = "127.0.0.2"
	ProbeIPUnlisted     = "127.0.0.1"
	ProbeDomainListed   = "test"
	ProbeDomainUnlisted = "invalid"
)

// List is one compiled list.
type List struct {
	ListConfig
	// FailSymbol is the symbol of a failed query.
	FailSymbol string

	codes  []matcher
	errs   []errorAnswer
	health health
}

// Options are the Set's collaborators.
type Options struct {
	// Timeout is the default per-query timeout (default 3s).
	Timeout time.Duration
	// Parallel bounds the queries in flight for one Lookup call
	// (default 32); InFlight bounds them for the whole Set, all
	// messages together (default 128), so a burst of messages does not
	// flood the resolver (a UDP resolver drops what its socket buffer
	// cannot hold, and every drop costs a timeout).
	Parallel int
	InFlight int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Prober checks one list's health; nil means the RFC 5782 §5 probe
	// over the resolver (Set.Probe).
	Prober func(ctx context.Context, l *List) error
}

// DefaultTimeout is the per-query default.
const DefaultTimeout = 3 * time.Second

// Set is a group of lists sharing a resolver. It is safe for concurrent
// use.
type Set struct {
	Lists  []*List
	r      dns.Resolver
	health HealthConfig
	opts   Options

	// inflight holds one token per query being asked, all Lookups
	// together.
	inflight chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// untrack ends the reports of SuspendedMetric.Track (nil: untracked).
	untrack func()
}

// Errors of New.
var (
	ErrNoResolver = errors.New("dnsbl: no resolver")
)

// SymbolFromName derives a symbol from a list name: prefix + the name in
// upper case with every run of other characters than letters and digits
// made one "_" ("spamhaus-ZEN" → RBL_SPAMHAUS_ZEN with prefix "RBL_").
func SymbolFromName(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	under := strings.HasSuffix(prefix, "_") || prefix == ""
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
			under = false
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b.WriteRune(r)
			under = false
		default:
			if !under {
				b.WriteByte('_')
				under = true
			}
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}

// NewSet compiles lists. symbolPrefix derives missing symbols
// (SymbolFromName); ipList[i] tells whether list i takes IP addresses
// (it decides the default probe entries).
func NewSet(lists []ListConfig, ipList []bool, symbolPrefix string, r dns.Resolver, health HealthConfig, opts Options) (*Set, error) {
	if r == nil {
		return nil, ErrNoResolver
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 32
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 128
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if health.Window <= 0 {
		health.Window = 10
	}
	if health.Failures <= 0 || health.Failures > health.Window {
		return nil, fmt.Errorf("dnsbl: failures must be between 1 and window (%d)", health.Window)
	}
	if health.ProbeTimeout <= 0 {
		health.ProbeTimeout = DefaultHealth().ProbeTimeout
	}
	if health.Retry <= 0 {
		health.Retry = DefaultHealth().Retry
	}
	if health.ProbeInterval < 0 {
		return nil, errors.New("dnsbl: probe_interval must not be negative")
	}
	s := &Set{r: r, health: health, opts: opts, inflight: make(chan struct{}, opts.InFlight)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	names := map[string]bool{}
	for i, lc := range lists {
		l, err := compile(lc, i < len(ipList) && ipList[i], symbolPrefix, health.Window)
		if err != nil {
			return nil, err
		}
		if names[strings.ToLower(l.Name)] {
			return nil, fmt.Errorf("dnsbl: list %q defined twice", l.Name)
		}
		names[strings.ToLower(l.Name)] = true
		s.Lists = append(s.Lists, l)
	}
	return s, nil
}

func compile(lc ListConfig, ipList bool, prefix string, window int) (*List, error) {
	l := &List{ListConfig: lc}
	if l.Name == "" {
		return nil, errors.New("dnsbl: a list needs a name")
	}
	for _, r := range l.Name {
		if r <= ' ' || r == ',' || r == 0x7f {
			return nil, fmt.Errorf("dnsbl: list name %q: no spaces, commas or control characters", l.Name)
		}
	}
	where := fmt.Sprintf("dnsbl: list %q", l.Name)
	l.Zone = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(l.Zone), "."))
	if _, ok := queryName("x", l.Zone); !ok || !validLabelChars(l.Zone) {
		return nil, fmt.Errorf("%s: zone %q is not a domain name", where, lc.Zone)
	}
	if l.Symbol == "" {
		l.Symbol = SymbolFromName(prefix, l.Name)
	}
	if !validSymbol(l.Symbol) {
		return nil, fmt.Errorf("%s: symbol %q: use letters, digits and _", where, l.Symbol)
	}
	l.FailSymbol = l.Symbol + "_FAIL"
	for i, c := range l.Codes {
		if !validSymbol(c.Symbol) {
			return nil, fmt.Errorf("%s: code %d: symbol %q: use letters, digits and _", where, i+1, c.Symbol)
		}
		var m matcher
		switch {
		case c.Match != "" && c.Bits != 0:
			return nil, fmt.Errorf("%s: code %s: set match or bits, not both", where, c.Symbol)
		case c.Bits != 0:
			m = matcher{wild: [4]int16{-2}, bits: c.Bits}
		case c.Match != "":
			var err error
			if m, err = parseMatch(c.Match); err != nil {
				return nil, fmt.Errorf("%s: code %s: %v", where, c.Symbol, err)
			}
		default:
			return nil, fmt.Errorf("%s: code %s: set match or bits", where, c.Symbol)
		}
		l.codes = append(l.codes, m)
	}
	l.errs = append(l.errs, defaultErrors...)
	for _, e := range l.Errors {
		m, err := parseMatch(e)
		if err != nil {
			return nil, fmt.Errorf("%s: errors: %v", where, err)
		}
		l.errs = append(l.errs, errorAnswer{m: m, meaning: "answer configured as an error"})
	}
	if l.Overrides && !l.Allow {
		return nil, fmt.Errorf("%s: overrides is for allow lists", where)
	}
	if l.Timeout < 0 {
		return nil, fmt.Errorf("%s: timeout must not be negative", where)
	}
	switch l.Hash {
	case "", "blake2b":
	default:
		return nil, fmt.Errorf("%s: hash %q (want blake2b or nothing)", where, l.Hash)
	}
	if l.ProbeListed == "" {
		l.ProbeListed = ProbeDomainListed
		if ipList {
			l.ProbeListed = ProbeIPListed
		}
	}
	if l.ProbeUnlisted == "" {
		l.ProbeUnlisted = ProbeDomainUnlisted
		if ipList {
			l.ProbeUnlisted = ProbeIPUnlisted
		}
	}
	for _, p := range []string{l.ProbeListed, l.ProbeUnlisted} {
		if p == "-" {
			continue
		}
		if _, ok := l.probeName(p); !ok {
			return nil, fmt.Errorf("%s: probe entry %q cannot be queried", where, p)
		}
	}
	l.health.ring = make([]bool, window)
	return l, nil
}

func validSymbol(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// keyFor returns the label to query for a value: the value itself (a
// domain or an already reversed address) or its digest for hashed lists.
func (l *List) keyFor(key, value string) string {
	if l.Hash == "blake2b" {
		return HashLabel(value)
	}
	return key
}

// probeName is the query name of a probe entry.
func (l *List) probeName(entry string) (string, bool) {
	if a, err := netip.ParseAddr(entry); err == nil {
		return queryName(l.keyFor(ReverseIP(a), entry), l.Zone)
	}
	return queryName(l.keyFor(strings.ToLower(entry), strings.ToLower(entry)), l.Zone)
}

// Hit is one symbol a list answer matched.
type Hit struct {
	Symbol string
	Score  float64
	Answer netip.Addr
}

// classify reads the answers to one query. fail is set when the answers
// say the query was not served; hits are empty when the answers match
// nothing the list counts.
func (l *List) classify(ans []netip.Addr) (hits []Hit, fail string) {
	for _, a := range ans {
		a = a.Unmap()
		if !a.Is4() || a.As4()[0] != 127 {
			return nil, fmt.Sprintf("answer %s outside 127.0.0.0/8", a)
		}
		v := u32(a)
		for _, e := range l.errs {
			if e.m.matches(v) {
				return nil, fmt.Sprintf("answer %s (%s)", a, e.meaning)
			}
		}
	}
	for _, a := range ans {
		v := u32(a.Unmap())
		matched := false
		for i, m := range l.codes {
			if m.matches(v) {
				hits = appendHit(hits, Hit{Symbol: l.Codes[i].Symbol, Score: l.Codes[i].Score, Answer: a.Unmap()})
				matched = true
			}
		}
		if !matched && (len(l.codes) == 0 || l.Unknown) {
			hits = appendHit(hits, Hit{Symbol: l.Symbol, Score: l.Score, Answer: a.Unmap()})
		}
	}
	return hits, ""
}

func appendHit(hits []Hit, h Hit) []Hit {
	for _, x := range hits {
		if x.Symbol == h.Symbol {
			return hits
		}
	}
	return append(hits, h)
}

// Close stops the Set's background probes and waits for them.
func (s *Set) Close() {
	if s.untrack != nil {
		s.untrack()
	}
	s.cancel()
	s.wg.Wait()
}
