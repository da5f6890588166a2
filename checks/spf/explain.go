package spf

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	libspf "blitiri.com.ar/go/spf"
)

// maxExplanation bounds the explanation text: it is meant for an SMTP
// reply line (§6.2 lets implementations limit it).
const maxExplanation = 400

// explain returns the expanded exp= text for a "fail" of domain, or ""
// when there is none to give. Per §6.2 the explanation comes from the
// record whose mechanism failed: redirect= hands the evaluation, and so
// the explanation, to the target's record ("when executing redirect, exp=
// from the original domain MUST NOT be used"), while include: never
// passes a fail up, so an included record's exp= is never used. Any
// problem with the explanation (DNS error, no record or several, bad
// syntax, non-ASCII text) means no explanation, never a different result.
//
// All lookups but the last go to records the evaluation has just read, so
// they come from the cache; the exp= lookup itself does not count against
// the lookup limits (§4.6.4).
func (c *Check) explain(ctx context.Context, ip net.IP, helo, sender, domain string) string {
	rr := recordResolver{Resolver: c.r, ip: ip}
	env := &macroEnv{sender: sender, ip: ip, helo: helo, receiver: c.cfg.Receiver, now: time.Now()}
	var rec *record
	// Follow the redirect chain to the record that decided; it cannot be
	// longer than the lookup limit allowed.
	for hop := 0; ; hop++ {
		if hop > c.cfg.MaxLookups {
			return ""
		}
		var err error
		if rec, err = rr.spfRecord(ctx, domain); err != nil {
			return ""
		}
		if rec.redirect == "" || rec.hasAll {
			break // no redirect, or one that "all" voids (§6.1)
		}
		// A redirect record whose own mechanisms could fail: find out
		// whether they did, by evaluating it again without redirect=.
		if rec.hasFail {
			override := map[string]string{domainKey(domain): rec.withoutRedirect()}
			if r, _ := c.checkHost(ctx, ip, helo, sender, override); r == libspf.Fail {
				break
			}
		}
		toks, err := parseMacroString(rec.redirect, false)
		if err != nil {
			return ""
		}
		env.domain = domain
		domain = env.expand(toks)
	}
	if rec.exp == "" {
		return ""
	}
	env.domain = domain
	toks, err := parseMacroString(rec.exp, false)
	if err != nil {
		return ""
	}
	txts, err := c.r.LookupTXT(ctx, truncateDomain(env.expand(toks)))
	if err != nil || len(txts) != 1 {
		return ""
	}
	// §6.2: the text must be US-ASCII, and an explain-string.
	text := txts[0]
	for i := 0; i < len(text); i++ {
		if text[i] >= 0x80 {
			return ""
		}
	}
	toks, err = parseMacroString(text, true)
	if err != nil {
		return ""
	}
	env.ptr = sync.OnceValue(func() string { return c.validatedName(ctx, ip, domain) })
	// The macros bring in the sender's local-part, which may hold
	// anything the MTA took: keep the text US-ASCII (§6.2).
	out := printable(env.expand(toks))
	if len(out) > maxExplanation {
		out = out[:maxExplanation]
	}
	return out
}

// validatedName is %{p} (§7.3): a name of ip whose addresses include ip,
// one under domain if there is one, else the first, else "unknown". At
// most 10 PTR names are tried (§4.6.4).
func (c *Check) validatedName(ctx context.Context, ip net.IP, domain string) string {
	names, err := c.r.LookupAddr(ctx, ip.String())
	if err != nil {
		return "unknown"
	}
	first := ""
	for i, n := range names {
		if i == 10 {
			break
		}
		addrs, err := c.r.LookupIPAddr(ctx, n)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if !a.IP.Equal(ip) {
				continue
			}
			n = strings.TrimSuffix(n, ".")
			if lower := strings.ToLower(n); lower == domain || strings.HasSuffix(lower, "."+domain) {
				return n
			}
			if first == "" {
				first = n
			}
			break
		}
	}
	if first == "" {
		return "unknown"
	}
	return first
}
