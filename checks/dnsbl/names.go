package dnsbl

import (
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/net/idna"
)

// ReverseIP returns the query label of addr (RFC 5782 §2.1, §2.4): the
// four octets of an IPv4 address in reverse order ("192.0.2.99" →
// "99.2.0.192"), or the 32 nibbles of an IPv6 address in reverse order,
// dot-separated, lower-case hex. An IPv4-mapped IPv6 address is reversed
// as the IPv4 address it carries: lists index the client, not its
// socket's family.
func ReverseIP(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		var s strings.Builder
		s.Grow(15)
		for i := 3; i >= 0; i-- {
			s.WriteString(strconv.Itoa(int(b[i])))
			if i > 0 {
				s.WriteByte('.')
			}
		}
		return s.String()
	}
	b := addr.As16()
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 63)
	for i := 15; i >= 0; i-- {
		out = append(out, hex[b[i]&0xf], '.', hex[b[i]>>4])
		if i > 0 {
			out = append(out, '.')
		}
	}
	return string(out)
}

// zbase32 is the alphabet of z-base-32, the encoding rspamd's hashed lists
// use for their labels.
const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// HashLabel returns the label of s in a hashed list: the BLAKE2b-512
// digest of s, encoded in z-base-32 taking the bits of each byte from the
// least significant up (as rspamd does), cut to 32 characters. rspamd's
// own URL lists are queried this way, so they do not see the domains.
func HashLabel(s string) string {
	sum := blake2b.Sum512([]byte(s))
	out := make([]byte, 0, 32)
	var acc uint32
	bits := 0
	for _, b := range sum {
		acc |= uint32(b) << bits
		bits += 8
		for bits >= 5 && len(out) < 32 {
			out = append(out, zbase32[acc&31])
			acc >>= 5
			bits -= 5
		}
		if len(out) == 32 {
			break
		}
	}
	return string(out)
}

// validLabelChars reports whether every byte of s may appear in a query
// name made of a key and a zone: letters, digits, '-', '_' and '.'.
// Anything else (spaces, '@', escapes) makes no sense in a list query and
// is never sent.
func validLabelChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// queryName joins key and zone and checks that the name can be queried:
// no empty label, labels of at most 63 octets, at most 253 in all
// (RFC 1035 §2.3.4).
func queryName(key, zone string) (string, bool) {
	if !validLabelChars(key) {
		return "", false
	}
	name := key + "." + zone
	if len(name) > 253 {
		return "", false
	}
	for l := range strings.SplitSeq(name, ".") {
		if l == "" || len(l) > 63 {
			return "", false
		}
	}
	return name, true
}

// Domain normalises a host name for a list query: trimmed, without the
// trailing dot, IDNA-mapped to lower-case ASCII (Unicode labels become
// punycode, RFC 5891), at least two labels of letters, digits, '-' and
// '_' of 1 to 63 octets, at most 253 octets in all, and not an address.
// ok is false for anything else.
func Domain(s string) (string, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" || len(s) > 1024 {
		return "", false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		s = strings.ToLower(s)
	} else {
		a, err := idnaLookup.ToASCII(s)
		if err != nil {
			if a, err = idna.Punycode.ToASCII(strings.ToLower(s)); err != nil {
				return "", false
			}
		}
		s = strings.ToLower(a)
	}
	// An address has a numeric last label (IPv4, refused below) or a
	// colon (IPv6, refused by the label check).
	if len(s) > 253 || !strings.Contains(s, ".") {
		return "", false
	}
	for l := range strings.SplitSeq(s, ".") {
		if l == "" || len(l) > 63 {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	// A top-level label of digits only is no domain (RFC 3696 §2).
	tld := s[strings.LastIndexByte(s, '.')+1:]
	if strings.Trim(tld, "0123456789") == "" {
		return "", false
	}
	return s, true
}

// idnaLookup maps Unicode host names the way browsers do (UTS #46
// non-transitional), without rejecting what registries allow but the
// strict profile refuses (underscores in labels seen in mail).
var idnaLookup = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// Public reports whether a is worth asking a list about: a global unicast
// address, not loopback, private (RFC 1918, RFC 4193), link-local, shared
// (RFC 6598), benchmarking (RFC 2544), multicast or reserved space. The
// documentation ranges count as public so that tests can use them.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fec0::/10"),
}
