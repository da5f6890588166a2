package dmarc

import (
	"strings"

	"golang.org/x/net/publicsuffix"
)

// OrganizationalDomain returns the Organizational Domain of d (RFC 7489
// §3.2): the public suffix that matches the most labels of d plus one more
// label, from the Public Suffix List compiled into golang.org/x/net
// (ICANN and PRIVATE sections, as OpenDMARC and rspamd use it). d must be
// normalised (NormalizeDomain: lower-case A-labels); the library gives
// wrong answers for U-labels ("食狮.公司.cn" → "公司.cn"). When d is itself a
// public suffix there is no such domain and d is returned.
func OrganizationalDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// Aligned reports whether two domains are aligned (RFC 7489 §3.1.1,
// §3.1.2): equal in strict mode, with the same Organizational Domain in
// relaxed mode. Both are compared lower-case without leading or trailing
// dots (OpenDMARC's normalisation: ".mac.com." is mac.com).
func Aligned(a, b string, mode Alignment) bool {
	a = strings.Trim(strings.ToLower(a), ".")
	b = strings.Trim(strings.ToLower(b), ".")
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	if mode == Strict {
		return false
	}
	return OrganizationalDomain(a) == OrganizationalDomain(b)
}
