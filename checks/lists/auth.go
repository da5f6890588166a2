package lists

import (
	"strings"

	"golang.org/x/net/idna"

	"chainmail/checks"
	"chainmail/checks/auth"
	"chainmail/checks/dns"
)

// DependsOn implements checks.Dependent: sender allow entries need the
// authentication results.
func (c *Check) DependsOn() []string {
	if c.cfg.AllowSendersNeedAuth && len(c.allow.senders) > 0 {
		return []string{"spf", "dkim", "dmarc"}
	}
	return nil
}

// authenticated returns the senders of m an allow entry may match: all of
// them for a client that authenticated with SASL; else the envelope
// sender when SPF passed for its domain, and a header From address when
// its domain passed DMARC, or when SPF (MAIL FROM) or a valid DKIM
// signature passed for a domain aligned with it in the relaxed sense of
// RFC 7489 §3.1 (same organizational domain) — the From domain may
// publish no DMARC record at all.
func authenticated(m *checks.Message, prior checks.Results) []string {
	if m.AuthUser != "" {
		return senderAddresses(m)
	}
	var spfDomain string
	if r, ok := auth.SPFOf(prior); ok && r.Status == checks.StatusPass && r.Identity == auth.IdentityMailFrom {
		spfDomain = normDomain(r.Domain)
	}
	var dkimPass []string
	if r, ok := auth.DKIMOf(prior); ok {
		dkimPass = r.Domains(checks.StatusPass)
	}
	// A DMARC pass authenticates the author domains the dmarc check
	// evaluated, and only those: its From parser and ours may read a
	// malformed From differently ("boss@ok.example <me@evil.example>" is
	// evil.example to DMARC), so an address whose domain DMARC did not
	// see gets nothing from the pass.
	dmarcPass := map[string]bool{}
	if r, ok := auth.DMARCOf(prior); ok && r.Status == checks.StatusPass {
		for _, d := range r.Domains {
			dmarcPass[normDomain(d)] = true
		}
	}

	var out []string
	if m.MailFrom != "" && spfDomain != "" && normDomain(domainOf(normAddr(m.MailFrom))) == spfDomain {
		out = append(out, normAddr(m.MailFrom))
	}
	for _, a := range headerFromAddresses(m) {
		d := normDomain(domainOf(a))
		if d == "" {
			continue
		}
		// DMARC pass: every author domain passed (the strictest outcome
		// of all of them is reported).
		ok := dmarcPass[d] || aligned(spfDomain, d)
		for _, k := range dkimPass {
			ok = ok || aligned(normDomain(k), d)
		}
		if ok {
			out = append(out, a)
		}
	}
	return out
}

// normDomain returns d as the dmarc check names it: lower case, A-labels,
// no trailing dot; a name IDNA refuses is kept lower-cased (it then
// matches nothing the checks passed).
func normDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if a, err := idna.Lookup.ToASCII(d); err == nil {
		return a
	}
	return d
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.TrimSuffix(addr[i+1:], ".")
	}
	return ""
}

// aligned reports relaxed alignment: the same organizational domain.
// Unlike dmarc.Aligned it does not normalise (its callers do) and a domain
// the Public Suffix List cannot be applied to aligns only with itself.
func aligned(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return a == b || dns.OrganizationalDomain(a) == dns.OrganizationalDomain(b)
}
