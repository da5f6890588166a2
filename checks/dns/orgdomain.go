package dns

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// OrganizationalDomain returns the Organizational Domain of d (RFC 7489
// §3.2): the public suffix that matches the most labels of d plus one more
// label, from the Public Suffix List compiled into golang.org/x/net
// (ICANN and PRIVATE sections, as OpenDMARC and rspamd use it). d must be
// normalised (lower-case A-labels, as dmarc.NormalizeDomain gives them);
// the library gives wrong answers for U-labels ("食狮.公司.cn" →
// "公司.cn"). When d is itself a public suffix there is no such domain and
// d is returned; so is d when the list cannot be applied to it (an empty
// label).
//
// It is chainmail's one registrable-domain helper: DMARC alignment, the
// DNS lists (rbl, uribl, helo), whaling and reputation all use it.
func OrganizationalDomain(d string) string {
	org, _, _ := OrganizationalDomainOK(d)
	return org
}

// OrganizationalDomainOK is OrganizationalDomain that also reports, from
// one search of the list, whether d has an Organizational Domain (ok:
// d lies below a public suffix and has no empty label; when not, org is
// d) and whether d ends in a suffix the list names (listed: not only its
// catch-all rule for unknown top-level domains).
func OrganizationalDomainOK(d string) (org string, ok, listed bool) {
	ps, icann := publicsuffix.PublicSuffix(d)
	listed = icann || strings.IndexByte(ps, '.') >= 0
	// The empty-label rule is golang.org/x/net's EffectiveTLDPlusOne's.
	if strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return d, false, listed
	}
	if len(ps) >= len(d) || d[len(d)-len(ps)-1] != '.' {
		return d, false, listed
	}
	i := strings.LastIndexByte(d[:len(d)-len(ps)-1], '.')
	return d[i+1:], true, listed
}
