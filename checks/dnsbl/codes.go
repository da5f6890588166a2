package dnsbl

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Code maps list answers to a symbol. Exactly one of Match and Bits is
// set.
type Code struct {
	// Symbol is named when an answer matches; Score is its score.
	Symbol string  `yaml:"symbol"`
	Score  float64 `yaml:"score"`
	// Match is one answer ("127.0.0.2"), an inclusive range
	// ("127.0.0.4-127.0.0.7"), a CIDR prefix ("127.0.0.10/31") or a
	// pattern with "*" for any octet ("127.0.*.3", as DNSWL's trust
	// levels are read).
	Match string `yaml:"match"`
	// Bits matches an answer whose address, read as a 32-bit number,
	// has any of these bits set: the multi lists of SURBL and URIBL
	// (URIBL: 2 black, 4 grey, 8 red) put one bit per sub-list in the
	// last octet.
	Bits uint32 `yaml:"bits"`
}

// matcher is a compiled Code.
type matcher struct {
	lo, hi uint32   // range match, inclusive
	wild   [4]int16 // pattern match: octet value, -1 for any; wild[0] == -2: not a pattern
	bits   uint32
}

func (m matcher) matches(v uint32) bool {
	switch {
	case m.bits != 0:
		return v&m.bits != 0
	case m.wild[0] != -2:
		for i := 0; i < 4; i++ {
			o := int16(v >> (24 - 8*i) & 0xff)
			if m.wild[i] >= 0 && m.wild[i] != o {
				return false
			}
		}
		return true
	}
	return m.lo <= v && v <= m.hi
}

// parseMatch compiles a Match string.
func parseMatch(s string) (matcher, error) {
	m := matcher{wild: [4]int16{-2}}
	s = strings.TrimSpace(s)
	switch {
	case strings.Contains(s, "*"):
		parts := strings.Split(s, ".")
		if len(parts) != 4 {
			return m, fmt.Errorf("%q: a pattern has four octets", s)
		}
		for i, p := range parts {
			if p == "*" {
				m.wild[i] = -1
				continue
			}
			n, err := strconv.ParseUint(p, 10, 8)
			if err != nil {
				return m, fmt.Errorf("%q: octet %q", s, p)
			}
			m.wild[i] = int16(n)
		}
		return m, nil
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return m, fmt.Errorf("%q is not an IPv4 prefix", s)
		}
		p = p.Masked()
		m.lo = u32(p.Addr())
		m.hi = m.lo | (1<<(32-p.Bits()) - 1)
		return m, nil
	case strings.Contains(s, "-"):
		a, b, _ := strings.Cut(s, "-")
		lo, err1 := netip.ParseAddr(strings.TrimSpace(a))
		hi, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || !lo.Is4() || !hi.Is4() || hi.Less(lo) {
			return m, fmt.Errorf("%q is not a range of IPv4 addresses", s)
		}
		m.lo, m.hi = u32(lo), u32(hi)
		return m, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return m, fmt.Errorf("%q is not an IPv4 address", s)
	}
	m.lo = u32(a)
	m.hi = m.lo
	return m, nil
}

func u32(a netip.Addr) uint32 {
	b := a.Unmap().As4()
	return binary.BigEndian.Uint32(b[:])
}

// errorAnswer is an answer that says the query was not served.
type errorAnswer struct {
	m       matcher
	meaning string
}

// DefaultErrors are the answers that are never a listing: they say the
// list refused or could not serve the query. Every list has them;
// ListConfig.Errors adds more.
//
//   - 127.255.255.252, 127.255.255.254, 127.255.255.255: Spamhaus's
//     answers for a malformed query, a query through a public or open
//     resolver, and too many queries.
//   - 127.255.255.0/24: the rest of Spamhaus's error range (the failure
//     policy: no 127.255.255.x answer is a listing).
//   - 127.0.1.255: Spamhaus DBL's answer to an IP address asked as a
//     domain.
//   - 127.0.0.1: URIBL's "query refused / blocked" answer. RFC 5782 §5
//     forbids any list to list 127.0.0.1, so a list that answers it for a
//     real query is not giving a listing either.
var DefaultErrors = []struct{ Answer, Meaning string }{
	{"127.255.255.252", "malformed query"},
	{"127.255.255.254", "query through a public or open resolver refused"},
	{"127.255.255.255", "too many queries"},
	{"127.0.1.255", "IP address queried as a domain"},
	{"127.0.0.1", "query refused or blocked"},
	{"127.255.255.0/24", "error answer"},
}

var defaultErrors = func() []errorAnswer {
	out := make([]errorAnswer, 0, len(DefaultErrors))
	for _, e := range DefaultErrors {
		m, err := parseMatch(e.Answer)
		if err != nil {
			panic(err)
		}
		out = append(out, errorAnswer{m: m, meaning: e.Meaning})
	}
	return out
}()
