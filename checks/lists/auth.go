package lists

import (
	"strings"

	"golang.org/x/net/publicsuffix"

	"chainmail/checks"
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
	if r, ok := prior.Get("spf"); ok && r.Status == checks.StatusPass {
		if id, _ := r.Facts["identity"].(string); id == "mailfrom" {
			spfDomain, _ = r.Facts["domain"].(string)
			spfDomain = strings.ToLower(strings.TrimSuffix(spfDomain, "."))
		}
	}
	var dkimPass []string
	if r, ok := prior.Get("dkim"); ok {
		switch d := r.Facts["domains_pass"].(type) {
		case []string:
			dkimPass = d
		case []any:
			for _, v := range d {
				if s, ok := v.(string); ok {
					dkimPass = append(dkimPass, s)
				}
			}
		}
	}
	dmarcPass := false
	if r, ok := prior.Get("dmarc"); ok && r.Status == checks.StatusPass {
		dmarcPass = true
	}

	var out []string
	if m.MailFrom != "" && spfDomain != "" && domainOf(normAddr(m.MailFrom)) == spfDomain {
		out = append(out, normAddr(m.MailFrom))
	}
	for _, a := range headerFromAddresses(m) {
		d := domainOf(a)
		if d == "" {
			continue
		}
		// DMARC pass: every author domain passed (the strictest outcome
		// of all of them is reported).
		ok := dmarcPass || aligned(spfDomain, d)
		for _, k := range dkimPass {
			ok = ok || aligned(strings.ToLower(strings.TrimSuffix(k, ".")), d)
		}
		if ok {
			out = append(out, a)
		}
	}
	return out
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.TrimSuffix(addr[i+1:], ".")
	}
	return ""
}

// aligned reports relaxed alignment: the same organizational domain.
func aligned(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	oa, err1 := publicsuffix.EffectiveTLDPlusOne(a)
	ob, err2 := publicsuffix.EffectiveTLDPlusOne(b)
	return err1 == nil && err2 == nil && oa == ob
}
