package rbl

import (
	"net/netip"
	"strings"
)

// hop is the sending host of one Received header field.
type hop struct {
	// pos is the field's position from the top, 1 for the newest (the
	// one the nearest MTA added).
	pos  int
	addr netip.Addr
}

// maxReceivedBytes bounds how much of one Received field is read.
const maxReceivedBytes = 2048

// receivedAddr finds the address of the host that handed the message on,
// in the "from" clause of a Received field (RFC 5321 §4.4 "From-domain
// TCP-info"). MTAs write it in many ways:
//
//	from helo (rdns [192.0.2.1])                      Postfix, sendmail
//	from rdns ([192.0.2.1] helo=helo)                 Exim
//	from helo (HELO x) (192.0.2.1)                    qmail
//	from host (2001:db8::1) by …                      Microsoft
//	from helo (unknown [IPv6:2001:db8::1])            Postfix, IPv6
//	from [192.0.2.1] (helo) by …                      address literal
//
// A bracketed address wins over a bare one; the first of each kind
// counts. The clause ends at " by ", " with ", " id ", " for " or ";".
func receivedAddr(v string) (netip.Addr, bool) {
	if len(v) > maxReceivedBytes {
		v = v[:maxReceivedBytes]
	}
	v = strings.Join(strings.Fields(v), " ")
	// ASCII-only lower case: strings.ToLower may change the length of
	// non-ASCII or invalid UTF-8 text, and low's indexes are used on v.
	low := asciiLower(v)
	start := strings.Index(low, "from ")
	if start != 0 && (start < 0 || low[start-1] != ' ') {
		return netip.Addr{}, false
	}
	clause := v[start+5:]
	lclause := low[start+5:]
	end := len(clause)
	for _, stop := range []string{" by ", " with ", " id ", " for ", ";", " via "} {
		if i := strings.Index(lclause, stop); i >= 0 && i < end {
			end = i
		}
	}
	clause = clause[:end]
	// Bracketed addresses first.
	for rest := clause; ; {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			break
		}
		if a, ok := parseAddr(rest[i+1 : i+j]); ok {
			return a, true
		}
		rest = rest[i+j+1:]
	}
	// Then words, with parentheses and the punctuation around them
	// taken off.
	for w := range strings.FieldsFuncSeq(clause, func(r rune) bool {
		return r == ' ' || r == '(' || r == ')' || r == ',' || r == '='
	}) {
		if a, ok := parseAddr(w); ok {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// asciiLower lowers the ASCII letters of s and keeps every other byte,
// so that the result has the same length and byte offsets as s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// parseAddr reads an address as written in a Received field: bare,
// "IPv6:" prefixed (RFC 5321 §4.1.3), with a zone or a port cut off.
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 5 && strings.EqualFold(s[:5], "ipv6:") {
		s = s[5:]
	}
	if !strings.ContainsAny(s, ".:") || len(s) > 64 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		// "192.0.2.1:25" or "[2001:db8::1]:25"
		if ap, err := netip.ParseAddrPort(s); err == nil {
			a = ap.Addr()
		} else {
			return netip.Addr{}, false
		}
	}
	return a.WithZone("").Unmap(), true
}
