package dmarc

import (
	"strings"

	"chainmail/checks/dns"
)

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
	return dns.OrganizationalDomain(a) == dns.OrganizationalDomain(b)
}
