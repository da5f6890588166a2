// Package dmarc is chainmail's DMARC check (name "dmarc", RFC 7489). It
// runs after the "spf" and "dkim" checks, reads their results, and
// reports whether the message's author domain authenticated and what the
// domain owner asks for when it did not. It never rejects anything itself:
// policy rules in the configuration act on its facts, e.g.
//
//	dmarc.policy == "reject" && dmarc.status == "fail"
//	    → reject "5.7.1 Email rejected per DMARC policy"
//	dmarc.status == "temperror" && (dmarc.policy == "reject" || dmarc.temperror_policy_unknown)
//	    → tempfail
//
// # Mechanism
//
//  1. Author domain (§6.6.1, §3.1): the domain of the RFC5322.From
//     address, normalised to lower-case A-labels (see ParseAuthor). A
//     message with no From field, several From fields, several addresses,
//     an address without a domain or a From the parser had to guess
//     through gets the DMARC_BAD_FROM symbol. When it still yields
//     domains, every one is evaluated and the strictest outcome reported
//     (§6.6.1: "apply the most strict policy selected among the checks
//     that fail"), so a second From cannot smuggle a spoofed domain past
//     the check; with no domain at all the status is permerror.
//  2. Policy discovery (§6.6.3): TXT at _dmarc.<domain>; records not
//     starting with v=DMARC1 are discarded; if none is left, TXT at
//     _dmarc.<organizational domain> (public suffix list, §3.2). More than
//     one record, or a record that does not parse (and has no rua= for the
//     step 6 fallback to p=none), is permerror
//     (DMARC_BAD_POLICY). NXDOMAIN or no TXT is "no record"; any other DNS
//     failure is temperror with the policy unknown (DMARC_DNSFAIL,
//     Facts temperror_policy_unknown).
//  3. Alignment (§3.1): SPF counts only when it passed for the MAIL FROM
//     identity (§4.1: "DMARC uses the result of SPF authentication of the
//     MAIL FROM identity"; for a null reverse-path that identity is
//     postmaster@<HELO>, RFC 7208 §2.4, so a pass for the HELO identity
//     counts then and only then); DKIM counts when any passing
//     signature's d= is aligned. Relaxed or strict per aspf=/adkim=.
//  4. Result: pass when either aligns. Otherwise, when an identifier that
//     would be aligned could not be checked — an SPF or DKIM temperror on
//     an aligned domain, or the spf/dkim check timed out or failed — the
//     status is temperror (the policy is known: a reject "could not be
//     decided", which the default rules turn into a tempfail); else fail.
//  5. Disposition (§6.6.4, §6.3 pct): p=, or sp= when the record came from
//     the organizational domain of a subdomain author. A failing message
//     is sampled with probability pct/100; one sampled out gets the next
//     lower policy (reject → quarantine, quarantine → none). The random
//     source is Config.Rand.
//
// # Results
//
// Status: pass, fail, none (no record), temperror, permerror (bad or
// duplicate record, no usable author domain, too many). Facts, as rules
// see them under dmarc.*:
//
//	policy                    effective disposition after sampling: "reject",
//	                          "quarantine", "none"; "" without a usable record
//	published_policy          p= or sp= as published
//	pct                       pct= (0 without a record)
//	sampled                   false when pct sampling lowered the policy, or
//	                          there is no policy; true otherwise
//	domain, org_domain        the author domain reported, its organizational domain
//	record_domain             where the record was found ("" for none)
//	domains                   every author domain of the From fields
//	spf_aligned, dkim_aligned bools
//	temperror_policy_unknown  the DMARC record itself could not be fetched
//	from_problem              what DMARC_BAD_FROM is about ("" when none)
//
// Symbols: DMARC_POLICY_ALLOW (pass), DMARC_POLICY_REJECT /
// DMARC_POLICY_QUARANTINE / DMARC_POLICY_SOFTFAIL (fail, by effective
// policy), DMARC_NA (none), DMARC_DNSFAIL (temperror), DMARC_BAD_POLICY
// (unusable record), DMARC_BAD_FROM (see above).
package dmarc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"

	"chainmail/checks"
	"chainmail/checks/auth"
	"chainmail/checks/dns"

	"github.com/emersion/go-msgauth/authres"
)

// Name is the check's name in configuration, logs and rules.
const Name = "dmarc"

// Symbols.
const (
	SymAllow      = "DMARC_POLICY_ALLOW"
	SymReject     = "DMARC_POLICY_REJECT"
	SymQuarantine = "DMARC_POLICY_QUARANTINE"
	SymSoftfail   = "DMARC_POLICY_SOFTFAIL" // fail with policy none
	SymNA         = "DMARC_NA"
	SymDNSFail    = "DMARC_DNSFAIL"
	SymBadPolicy  = "DMARC_BAD_POLICY"
	SymBadFrom    = "DMARC_BAD_FROM"
)

// Config configures the check.
type Config struct {
	// Scores maps symbol names to scores. Symbols not listed keep their
	// default: DMARC_POLICY_ALLOW -0.50, DMARC_POLICY_REJECT 2.00,
	// DMARC_POLICY_QUARANTINE 1.50, DMARC_POLICY_SOFTFAIL 0.10, DMARC_NA
	// 0.00, DMARC_DNSFAIL 0.00, DMARC_BAD_POLICY 0.50, DMARC_BAD_FROM 1.00.
	// Not read from configuration: the chain entry's scores: overrides
	// a symbol's score there.
	Scores map[string]float64 `yaml:"-"`
	// MaxAuthorDomains bounds the From domains evaluated (two DNS lookups
	// each). A From naming more is permerror with DMARC_BAD_FROM: choosing
	// some would let a spoofed domain hide behind the others. Default 10.
	MaxAuthorDomains int `yaml:"max_author_domains"`
	// Rand returns a uniform integer in [0, n) for pct sampling; nil is
	// math/rand/v2.IntN. Tests inject a fixed source.
	Rand func(n int) int `yaml:"-"`
}

func defaultScores() map[string]float64 {
	return map[string]float64{
		SymAllow:      -0.50,
		SymReject:     2.00,
		SymQuarantine: 1.50,
		SymSoftfail:   0.10,
		SymNA:         0,
		SymDNSFail:    0,
		SymBadPolicy:  0.50,
		SymBadFrom:    1.00,
	}
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Scores: defaultScores(), MaxAuthorDomains: 10}
}

// Check evaluates DMARC. It is safe for concurrent use when Config.Rand
// is.
type Check struct {
	cfg    Config
	scores map[string]float64
	r      dns.Resolver
	rand   func(int) int
}

// New returns a check.
func New(cfg Config, r dns.Resolver) (*Check, error) {
	if r == nil {
		return nil, errors.New("dmarc: no resolver")
	}
	scores := defaultScores()
	for k, v := range cfg.Scores {
		if _, ok := scores[k]; !ok {
			return nil, fmt.Errorf("dmarc: unknown symbol %q in scores", k)
		}
		scores[k] = v
	}
	if cfg.MaxAuthorDomains < 0 {
		return nil, errors.New("dmarc: max_author_domains must not be negative")
	}
	if cfg.MaxAuthorDomains == 0 {
		cfg.MaxAuthorDomains = 10
	}
	c := &Check{cfg: cfg, scores: scores, r: r, rand: cfg.Rand}
	if c.rand == nil {
		c.rand = rand.IntN
	}
	return c, nil
}

// Name returns "dmarc".
func (c *Check) Name() string { return Name }

// DependsOn names the checks whose results DMARC reads.
func (c *Check) DependsOn() []string { return []string{"spf", "dkim"} }

// Errors carried in Result.Err.
var (
	ErrMultipleRecords = errors.New("dmarc: more than one DMARC record")
	ErrTooManyAuthors  = errors.New("dmarc: too many author domains")
	ErrNoAuthorDomain  = errors.New("dmarc: no author domain")
)

// outcome is the evaluation for one author domain.
type outcome struct {
	status        checks.Status
	domain, org   string
	recordDomain  string
	published     Policy // p or sp as published
	policy        Policy // after sampling
	pct           int
	sampled       bool
	spf, dkim     bool // aligned
	policyUnknown bool // DMARC DNS temperror
	err           error
	reason        string
}

// rank orders outcomes by strictness (§6.6.1): a failing reject first.
func (o *outcome) rank() int {
	switch o.status {
	case checks.StatusFail:
		switch o.policy {
		case PolicyReject:
			return 6
		case PolicyQuarantine:
			return 5
		}
		return 3
	case checks.StatusTemperror:
		return 4
	case checks.StatusPermerror:
		return 2
	case checks.StatusNone:
		return 1
	}
	return 0
}

// Check evaluates m against the DMARC policy of its author domain.
func (c *Check) Check(ctx context.Context, m *checks.Message, prior checks.Results) checks.Result {
	res := checks.Result{Check: Name}
	author := ParseAuthor(m.Values("From"))
	in := inputsFrom(m, prior)

	var best *outcome
	switch {
	case len(author.Domains) == 0:
		best = &outcome{status: checks.StatusPermerror, err: ErrNoAuthorDomain, reason: author.Problem}
	case len(author.Domains) > c.cfg.MaxAuthorDomains:
		best = &outcome{status: checks.StatusPermerror, domain: author.Domains[0], err: ErrTooManyAuthors,
			reason: fmt.Sprintf("%d author domains (limit %d)", len(author.Domains), c.cfg.MaxAuthorDomains)}
	default:
		for _, d := range author.Domains {
			o := c.evaluate(ctx, d, in)
			if best == nil || o.rank() > best.rank() {
				best = o
			}
		}
	}

	res.Status = best.status
	res.Err = best.err
	switch best.status {
	case checks.StatusPass:
		c.addSymbol(&res, SymAllow, best.domain)
	case checks.StatusFail:
		switch best.policy {
		case PolicyReject:
			c.addSymbol(&res, SymReject, best.domain)
		case PolicyQuarantine:
			c.addSymbol(&res, SymQuarantine, best.domain)
		default:
			c.addSymbol(&res, SymSoftfail, best.domain)
		}
	case checks.StatusNone:
		c.addSymbol(&res, SymNA, best.domain)
	case checks.StatusTemperror:
		c.addSymbol(&res, SymDNSFail, best.domain)
	case checks.StatusPermerror:
		if best.err != ErrNoAuthorDomain && best.err != ErrTooManyAuthors {
			c.addSymbol(&res, SymBadPolicy, best.domain)
		}
	}
	if author.Problem != "" {
		c.addSymbol(&res, SymBadFrom, author.Problem)
	}

	res.Reason = best.reason
	if best.domain != "" && res.Reason != "" {
		res.Reason = best.domain + ": " + res.Reason
	} else if best.domain != "" {
		res.Reason = best.domain
	}
	if author.Problem != "" && best.err != ErrNoAuthorDomain {
		res.Reason += " (" + author.Problem + ")"
	}
	pct := 0
	if best.published != "" {
		pct = best.pct
	}
	res.Auth = auth.DMARC{Status: res.Status, Domains: author.Domains}
	res.Facts = map[string]any{
		"policy":                   string(best.policy),
		"published_policy":         string(best.published),
		"pct":                      pct,
		"sampled":                  best.sampled,
		"domain":                   best.domain,
		"org_domain":               best.org,
		"record_domain":            best.recordDomain,
		"spf_aligned":              best.spf,
		"dkim_aligned":             best.dkim,
		"temperror_policy_unknown": best.policyUnknown,
		"domains":                  nonNil(author.Domains),
		"from_problem":             author.Problem,
	}
	ar := &authres.DMARCResult{Value: authres.ResultValue(best.status), From: best.domain}
	if best.status == checks.StatusTemperror || best.status == checks.StatusPermerror {
		ar.Reason = clip(best.reason, 100)
	}
	res.AuthResults = []authres.Result{ar}
	return res
}

func (c *Check) addSymbol(res *checks.Result, name, detail string) {
	sc := c.scores[name]
	res.Symbols = append(res.Symbols, checks.Symbol{Name: name, Score: sc, Detail: detail})
	res.Score += sc
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// evaluate runs policy discovery, alignment and sampling for one author
// domain.
func (c *Check) evaluate(ctx context.Context, domain string, in inputs) *outcome {
	o := &outcome{domain: domain, org: dns.OrganizationalDomain(domain)}
	rec, at, err := c.discover(ctx, domain, o.org)
	if rec != nil {
		o.recordDomain = at
	}
	switch {
	case err != nil && isTemporary(err):
		o.status, o.err, o.policyUnknown = checks.StatusTemperror, err, true
		o.reason = "DNS failure looking up the DMARC record: " + err.Error()
		return o
	case err != nil:
		o.status, o.err, o.reason = checks.StatusPermerror, err, err.Error()
		return o
	case rec == nil:
		o.status, o.reason = checks.StatusNone, "no DMARC record"
		return o
	}

	o.published = rec.Policy
	if at != domain && rec.SubdomainPolicy != "" {
		o.published = rec.SubdomainPolicy // §6.3 sp: applies to subdomains
	}
	o.policy, o.pct, o.sampled = o.published, rec.Percent, true

	o.spf = in.spfPass && Aligned(in.spfDomain, domain, rec.ASPF)
	for _, d := range in.dkimPass {
		if Aligned(d, domain, rec.ADKIM) {
			o.dkim = true
			break
		}
	}
	if o.spf || o.dkim {
		o.status = checks.StatusPass
		o.reason = "aligned " + alignedWhat(o.spf, o.dkim)
		return o
	}

	// Could an identifier that did not get checked have aligned?
	var unknown []string
	if in.spfUnknown && (in.spfDomain == "" || Aligned(in.spfDomain, domain, rec.ASPF)) {
		unknown = append(unknown, "spf "+in.spfWhy)
	}
	if in.dkimUnknown {
		unknown = append(unknown, "dkim "+in.dkimWhy)
	} else {
		for _, d := range in.dkimTemp {
			if Aligned(d, domain, rec.ADKIM) {
				unknown = append(unknown, "dkim temperror for "+d)
				break
			}
		}
	}
	if len(unknown) > 0 {
		o.status = checks.StatusTemperror
		o.reason = fmt.Sprintf("not aligned, but %s (p=%s)", strings.Join(unknown, ", "), o.published)
		return o
	}

	o.status = checks.StatusFail
	if rec.Percent < 100 && c.rand(100) >= rec.Percent {
		// §6.6.4: sampled out, the next lower policy applies.
		o.sampled = false
		o.policy = o.published.lower()
	}
	o.reason = fmt.Sprintf("no aligned identifier (p=%s", o.published)
	if !o.sampled {
		o.reason += fmt.Sprintf(", pct=%d sampled out: %s", rec.Percent, o.policy)
	}
	o.reason += ")"
	return o
}

func alignedWhat(spf, dkim bool) string {
	switch {
	case spf && dkim:
		return "spf and dkim"
	case spf:
		return "spf"
	}
	return "dkim"
}

// discover finds the DMARC record for domain (§6.6.3): at _dmarc.domain,
// else at _dmarc.org. It returns the record and the domain it was found
// at; (nil, "", nil) when there is none.
func (c *Check) discover(ctx context.Context, domain, org string) (*Record, string, error) {
	rec, err := c.lookup(ctx, domain)
	if rec != nil || err != nil || org == domain {
		return rec, domain, err
	}
	rec, err = c.lookup(ctx, org)
	if rec == nil && err == nil {
		return nil, "", nil
	}
	return rec, org, err
}

// lookup fetches and parses the DMARC records at _dmarc.<domain>. Records
// that are not DMARC are discarded; no record is (nil, nil).
func (c *Check) lookup(ctx context.Context, domain string) (*Record, error) {
	txts, err := c.r.LookupTXT(ctx, "_dmarc."+domain)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound && !de.IsTemporary && !de.IsTimeout {
			return nil, nil
		}
		// Timeout, SERVFAIL, refused, a cancelled context: the record may
		// exist, the policy is unknown.
		return nil, &temporaryError{err}
	}
	var found []*Record
	var bad error
	for _, t := range txts {
		rec, err := ParseRecord(t)
		if errors.Is(err, ErrNotDMARC) {
			continue
		}
		if err != nil {
			bad = err
		}
		found = append(found, rec)
	}
	switch {
	case len(found) > 1:
		// §6.6.3 step 5: "If the remaining set contains multiple records
		// ... DMARC processing is not applied": a misconfiguration, and a
		// finding.
		return nil, fmt.Errorf("%w at _dmarc.%s", ErrMultipleRecords, domain)
	case bad != nil:
		return nil, bad
	case len(found) == 1:
		return found[0], nil
	}
	return nil, nil
}

type temporaryError struct{ err error }

func (e *temporaryError) Error() string { return e.err.Error() }
func (e *temporaryError) Unwrap() error { return e.err }

func isTemporary(err error) bool {
	var t *temporaryError
	return errors.As(err, &t)
}

// inputs is what DMARC takes from the SPF and DKIM results.
type inputs struct {
	spfPass    bool   // SPF passed for the MAIL FROM identity
	spfDomain  string // that identity's domain
	spfUnknown bool   // SPF temperror, timeout or error: it might have passed
	spfWhy     string

	dkimPass    []string // d= of passing signatures
	dkimTemp    []string // d= whose key lookup failed temporarily
	dkimUnknown bool     // the dkim check timed out or failed
	dkimWhy     string
}

// inputsFrom reads the spf and dkim results (checks/auth values).
func inputsFrom(m *checks.Message, prior checks.Results) inputs {
	var in inputs
	if r, ok := auth.SPFOf(prior); ok {
		domain := r.Domain
		if domain == "" {
			domain = envelopeDomain(m)
		}
		// §4.1: the MAIL FROM identity; for a null reverse-path RFC 7208
		// §2.4 makes that postmaster@HELO.
		mailfrom := r.Identity == auth.IdentityMailFrom || (r.Identity == auth.IdentityHELO && m.MailFrom == "")
		if d, err := NormalizeDomain(domain); err == nil {
			domain = d
		}
		switch r.Status {
		case checks.StatusPass:
			if mailfrom {
				in.spfPass, in.spfDomain = true, domain
			}
		case checks.StatusTemperror, checks.StatusTimeout, checks.StatusError:
			if mailfrom {
				in.spfUnknown, in.spfDomain, in.spfWhy = true, domain, string(r.Status)
			}
		}
	}
	if r, ok := auth.DKIMOf(prior); ok {
		switch r.Status {
		case checks.StatusTimeout, checks.StatusError:
			in.dkimUnknown, in.dkimWhy = true, string(r.Status)
		default:
			in.dkimPass = normalized(r.Domains(checks.StatusPass))
			in.dkimTemp = normalized(r.Domains(checks.StatusTemperror))
		}
	}
	return in
}

// envelopeDomain is the MAIL FROM domain, or the HELO name for the null
// sender: the SPF MAIL FROM identity (RFC 7208 §2.4) when the spf result
// does not name it.
func envelopeDomain(m *checks.Message) string {
	if i := strings.LastIndexByte(m.MailFrom, '@'); i >= 0 {
		return m.MailFrom[i+1:]
	}
	if m.MailFrom == "" {
		return m.HELO
	}
	return ""
}

func normalized(domains []string) []string {
	out := make([]string, 0, len(domains))
	for _, d := range domains {
		if n, err := NormalizeDomain(d); err == nil {
			out = append(out, n)
		}
	}
	return out
}
