// Package spf is the "spf" check: it evaluates the Sender Policy
// Framework (RFC 7208) for the SMTP client's address and reports the
// result in RFC words, with rspamd-style symbols, the checked domain and
// identity as facts, and an Authentication-Results entry.
//
// Evaluation is done by blitiri.com.ar/go/spf over the project's resolver
// (checks/dns), with three additions of ours:
//
//   - Every SPF record the library fetches is first parsed against the
//     whole grammar of RFC 7208 §12 (record.go); a record with an error
//     anywhere gives permerror (§4.6), even past a mechanism that matched.
//   - The identity is chosen as §2.4 says: the MAIL FROM domain, or
//     "postmaster@" and the HELO name when the reverse-path is null; a
//     malformed or single-label domain gives "none" without any query
//     (§4.3). The HELO identity can also be checked first (§2.3).
//   - On "fail", the explanation of exp= is fetched and expanded (§6.2),
//     which the library does not do.
//
// DNS failures are never turned into a verdict on the sender: a timeout,
// SERVFAIL or REFUSED gives temperror (§4.4, §5), never fail or permerror.
package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"chainmail/checks"
	"chainmail/checks/auth"
	"chainmail/checks/dns"

	libspf "blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
)

// Name is the check's name in configuration, logs and metrics.
const Name = "spf"

// Symbols, one per result, named as rspamd names them.
const (
	SymbolAllow    = "R_SPF_ALLOW"    // pass
	SymbolFail     = "R_SPF_FAIL"     // fail
	SymbolSoftfail = "R_SPF_SOFTFAIL" // softfail
	SymbolNeutral  = "R_SPF_NEUTRAL"  // neutral
	SymbolNA       = "R_SPF_NA"       // none
	SymbolDNSFail  = "R_SPF_DNSFAIL"  // temperror
	SymbolPermFail = "R_SPF_PERMFAIL" // permerror
)

// Identities, the value of the "identity" fact.
const (
	IdentityMailFrom = string(auth.IdentityMailFrom)
	IdentityHELO     = string(auth.IdentityHELO)
)

// Scores gives the score of each result's symbol.
type Scores struct {
	Pass      float64 `yaml:"pass"`
	Fail      float64 `yaml:"fail"`
	Softfail  float64 `yaml:"softfail"`
	Neutral   float64 `yaml:"neutral"`
	None      float64 `yaml:"none"`
	Temperror float64 `yaml:"temperror"`
	Permerror float64 `yaml:"permerror"`
}

// Config configures the check. Decode configuration over DefaultConfig()
// so that fields left out keep their defaults.
type Config struct {
	// CheckHELO also evaluates the HELO identity, before MAIL FROM
	// (RFC 7208 §2.3). A HELO "fail" is conclusive and is the result;
	// any other HELO result is kept as the fact helo_result and MAIL
	// FROM decides. With a null reverse-path the HELO identity is the
	// one checked whatever this says (§2.4).
	CheckHELO bool `yaml:"check_helo"`
	// Explanation fetches the exp= text on "fail" (§6.2): one more TXT
	// query, after the result is known.
	Explanation bool `yaml:"explanation"`
	// Receiver is our host name, what %{r} stands for in explanations.
	// Empty: "unknown".
	Receiver string `yaml:"receiver"`
	// MaxLookups bounds the mechanisms and modifiers that cause DNS
	// queries (§4.6.4: 10, the default when 0). Going past it is
	// permerror.
	MaxLookups int `yaml:"max_lookups"`
	// MaxVoidLookups bounds lookups that find nothing (§4.6.4: 2, the
	// default when 0).
	MaxVoidLookups int    `yaml:"max_void_lookups"`
	Scores         Scores `yaml:"-"` // the defaults; configuration overrides them with the chain entry's scores:
}

// DefaultConfig returns the defaults: rspamd's scores, HELO checked only
// for the null reverse-path, explanations on, the RFC's lookup limits.
func DefaultConfig() Config {
	return Config{
		Explanation:    true,
		MaxLookups:     10,
		MaxVoidLookups: 2,
		Scores: Scores{
			Pass: -0.20,
			Fail: 1.00,
		},
	}
}

// Check is the spf check.
type Check struct {
	cfg Config
	r   dns.Resolver
}

var _ checks.Check = (*Check)(nil)

// New returns the check, resolving through r.
func New(cfg Config, r dns.Resolver) (*Check, error) {
	if r == nil {
		return nil, errors.New("spf: no resolver")
	}
	if cfg.MaxLookups < 0 || cfg.MaxVoidLookups < 0 {
		return nil, errors.New("spf: max_lookups and max_void_lookups must not be negative")
	}
	if cfg.MaxLookups == 0 {
		cfg.MaxLookups = 10
	}
	if cfg.MaxVoidLookups == 0 {
		cfg.MaxVoidLookups = 2
	}
	if cfg.Receiver == "" {
		cfg.Receiver = "unknown"
	}
	return &Check{cfg: cfg, r: r}, nil
}

// Name returns "spf".
func (c *Check) Name() string { return Name }

// outcome is the evaluation of one identity.
type outcome struct {
	identity    string
	domain      string
	result      libspf.Result
	err         error
	explanation string
}

// Check evaluates SPF for m's client address.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	if m.ClientIP == nil || m.ClientIP.To16() == nil {
		return checks.Result{Check: Name, Status: checks.StatusSkipped, Reason: "client address unknown"}
	}
	// An IPv4-mapped IPv6 client is an IPv4 client (§5, ¶9).
	ip := m.ClientIP
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	helo := strings.TrimSpace(m.HELO)
	local, domain := splitAddress(m.MailFrom)

	var heloOut *outcome
	if c.cfg.CheckHELO && domain != "" {
		o := c.evaluate(ctx, ip, helo, "postmaster@"+helo, helo, IdentityHELO)
		if o.result == libspf.Fail {
			return c.report(o, nil, m.MailFrom)
		}
		heloOut = &o
	}
	var o outcome
	if domain == "" {
		// Null reverse-path: the HELO identity, as postmaster@helo
		// (§2.4).
		o = c.evaluate(ctx, ip, helo, "postmaster@"+helo, helo, IdentityHELO)
	} else {
		// §4.3: an empty local-part stands for "postmaster".
		if local == "" {
			local = "postmaster"
		}
		o = c.evaluate(ctx, ip, helo, local+"@"+domain, domain, IdentityMailFrom)
	}
	return c.report(o, heloOut, m.MailFrom)
}

// splitAddress splits a reverse-path at its last "@". No "@" at all is
// treated as no domain.
func splitAddress(addr string) (local, domain string) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return addr, ""
	}
	return addr[:i], addr[i+1:]
}

// errMalformedDomain: the identity's domain cannot be checked (§4.3).
var errMalformedDomain = errors.New("spf: malformed domain")

// evaluate runs check_host() for one identity.
func (c *Check) evaluate(ctx context.Context, ip net.IP, helo, sender, domain, identity string) outcome {
	o := outcome{identity: identity, domain: domainKey(domain)}
	if !validDomain(domain) {
		o.result, o.err = libspf.None, errMalformedDomain
		return o
	}
	o.result, o.err = c.checkHost(ctx, ip, helo, sender, nil)
	if o.result == libspf.Fail && c.cfg.Explanation {
		o.explanation = c.explain(ctx, ip, helo, sender, o.domain)
	}
	return o
}

// checkHost runs the library over our resolver. override is passed to the
// recordResolver (see there).
func (c *Check) checkHost(ctx context.Context, ip net.IP, helo, sender string, override map[string]string) (libspf.Result, error) {
	return libspf.CheckHostWithSender(ip, helo, sender,
		libspf.WithContext(ctx),
		libspf.WithResolver(recordResolver{Resolver: c.r, ip: ip, override: override}),
		libspf.OverrideLookupLimit(uint(c.cfg.MaxLookups)),
		libspf.OverrideVoidLookupLimit(uint(c.cfg.MaxVoidLookups)),
	)
}

// validDomain tells whether an identity's domain can be checked (§4.3):
// a multi-label name, labels of 1 to 63 octets, at most 253 in all, not a
// domain literal or an IP address.
func validDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 || strings.HasPrefix(d, "[") || net.ParseIP(d) != nil {
		return false
	}
	n := 0
	for label := range strings.SplitSeq(d, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		n++
	}
	return n >= 2
}

// report turns an outcome into the check's Result.
func (c *Check) report(o outcome, heloOut *outcome, mailFrom string) checks.Result {
	sym, score := c.symbol(o.result)
	status := checks.Status(o.result)
	res := checks.Result{
		Check:   Name,
		Status:  status,
		Score:   score,
		Symbols: []checks.Symbol{{Name: sym, Score: score, Detail: o.identity + ":" + o.domain}},
		Reason:  reason(o),
		Facts: map[string]any{
			"domain":   o.domain,
			"identity": o.identity,
		},
	}
	res.Auth = auth.SPF{Status: status, Identity: auth.Identity(o.identity), Domain: o.domain}
	if o.explanation != "" {
		res.Facts["explanation"] = o.explanation
	}
	if heloOut != nil {
		res.Facts["helo_result"] = string(heloOut.result)
	}
	// go-msgauth quotes the reason but does not escape backslashes.
	ar := &authres.SPFResult{Value: authres.ResultValue(status), Reason: strings.ReplaceAll(res.Reason, `\`, `\\`)}
	if o.identity == IdentityMailFrom {
		ar.From = mailFrom
	} else {
		ar.Helo = o.domain
	}
	res.AuthResults = []authres.Result{ar}
	if o.result == libspf.TempError || o.result == libspf.PermError {
		res.Err = o.err
	}
	return res
}

func (c *Check) symbol(r libspf.Result) (string, float64) {
	s := c.cfg.Scores
	switch r {
	case libspf.Pass:
		return SymbolAllow, s.Pass
	case libspf.Fail:
		return SymbolFail, s.Fail
	case libspf.SoftFail:
		return SymbolSoftfail, s.Softfail
	case libspf.Neutral:
		return SymbolNeutral, s.Neutral
	case libspf.TempError:
		return SymbolDNSFail, s.Temperror
	case libspf.PermError:
		return SymbolPermFail, s.Permerror
	}
	return SymbolNA, s.None
}

// reason is the short text of a result: what was checked and why.
func reason(o outcome) string {
	s := fmt.Sprintf("%s %s: %s", o.identity, o.domain, o.result)
	why := ""
	switch {
	case errors.Is(o.err, errMalformedDomain):
		why = "malformed domain"
	case o.result == libspf.None:
		why = "no SPF record"
	case o.result == libspf.Neutral && o.err == nil:
		why = "no mechanism matched"
	case o.err != nil:
		why = strings.TrimPrefix(o.err.Error(), "spf: ")
	}
	if why != "" {
		s += " (" + why + ")"
	}
	if len(s) > maxReason {
		s = s[:maxReason-3] + "..."
	}
	return printable(s)
}

// maxReason bounds Result.Reason, which goes into log lines and the
// Authentication-Results header.
const maxReason = 200

// printable replaces every octet outside printable US-ASCII with "?": the
// domain and the texts come from the network.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 || b[j] > 0x7e {
					b[j] = '?'
				}
			}
			return string(b)
		}
	}
	return s
}
