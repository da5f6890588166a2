package dns

import "golang.org/x/net/publicsuffix"

// OrganizationalDomain returns the Organizational Domain of d (RFC 7489
// §3.2): the public suffix that matches the most labels of d plus one more
// label, from the Public Suffix List compiled into golang.org/x/net
// (ICANN and PRIVATE sections, as OpenDMARC and rspamd use it). d must be
// normalised (lower-case A-labels, as dmarc.NormalizeDomain gives them);
// the library gives wrong answers for U-labels ("食狮.公司.cn" →
// "公司.cn"). When d is itself a public suffix there is no such domain and
// d is returned; so is d when the list cannot be applied to it (an empty
// label).
func OrganizationalDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}
