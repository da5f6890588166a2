package uribl

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"

	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// host is a URL's host after normalisation: a domain (ASCII, lower case,
// punycode for IDN) or an address.
type host struct {
	name string
	ip   netip.Addr
}

func (h host) String() string {
	if h.ip.IsValid() {
		return h.ip.String()
	}
	return h.name
}

// maxAuthority bounds the authority part read from one URL.
const maxAuthority = 1024

// webScheme reports whether a URL scheme names a location on a host worth
// looking up.
func webScheme(s string) bool {
	switch strings.ToLower(s) {
	case "http", "https", "ftp", "ftps", "sftp", "ws", "wss", "git", "svn", "feed":
		return true
	}
	return false
}

// parseHref reads the host out of a link target as a browser would: an
// absolute URL with a web scheme (any mix of "/" and "\" after the colon,
// as browsers accept), a scheme-relative "//host", or a schemeless
// "www.host". It returns the host and the rest after the authority (path,
// query, fragment). Relative links, javascript:, data:, cid: and the like
// have no host.
func parseHref(s string) (h host, rest string, ok bool) {
	auth, rest, ok := splitHref(s)
	if !ok {
		return host{}, rest, false
	}
	h, _, ok = parseAuthority(auth)
	return h, rest, ok
}

// splitHref cuts a link target into its authority and the rest (see
// parseHref).
func splitHref(s string) (auth, rest string, ok bool) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\t\r\n") {
		// Browsers drop tab and newline characters from URLs.
		s = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(s)
	}
	var after string
	switch {
	case strings.HasPrefix(s, "//") || strings.HasPrefix(s, `\\`):
		after = strings.TrimLeft(s, `/\`)
	case len(s) > 4 && strings.EqualFold(s[:4], "www."):
		after = s
	default:
		i := strings.IndexByte(s, ':')
		if i <= 0 || i > 10 || !webScheme(s[:i]) {
			return "", "", false
		}
		after = strings.TrimLeft(s[i+1:], `/\`)
	}
	end := len(after)
	for i := 0; i < len(after); i++ {
		if !authorityByte(after[i]) {
			end = i
			break
		}
	}
	return after[:end], after[end:], true
}

// parseAuthority reads [userinfo@]host[:port] at the start of s.
func parseAuthority(s string) (host, string, bool) {
	end := len(s)
	for i := 0; i < len(s); i++ {
		if !authorityByte(s[i]) {
			end = i
			break
		}
	}
	auth, rest := s[:end], s[end:]
	if len(auth) > maxAuthority || auth == "" {
		return host{}, rest, false
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	var hs string
	if strings.HasPrefix(auth, "[") {
		j := strings.IndexByte(auth, ']')
		if j < 0 {
			return host{}, rest, false
		}
		hs = auth[1:j]
		a, err := netip.ParseAddr(hs)
		if err != nil {
			return host{}, rest, false
		}
		return host{ip: a.WithZone("").Unmap()}, rest, true
	}
	hs = auth
	if i := strings.IndexByte(hs, ']'); i >= 0 {
		hs = hs[:i]
	}
	if i := strings.LastIndexByte(hs, ':'); i >= 0 {
		hs = hs[:i]
	}
	h, ok := normalizeHost(hs)
	return h, rest, ok
}

// authorityByte reports whether b may be part of a URL's authority as
// written in mail: host characters, userinfo and port punctuation, and
// the bytes of non-ASCII host names. Everything else ends it: "/", "?",
// "#", "\\", white space, quotes, brackets of the surrounding text, "&",
// ",", ";".
func authorityByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b >= 0x80:
		return true
	}
	return strings.IndexByte("-._~%@:[]!$*+=", b) >= 0
}

// invisible reports runes that render as nothing and are dropped from
// host names by browsers or by the IDNA mapping: soft hyphen, zero-width
// space and joiners, word joiner, BOM.
func invisible(r rune) bool {
	switch r {
	case '\u00ad', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff':
		return true
	}
	return false
}

// normalizeHost turns a host as written into a lookup key: percent-escapes
// decoded, invisible characters dropped, an address in any form a browser
// reads (dotted decimal, hexadecimal, octal or a single number: WHATWG URL
// IPv4 parser), else an IDNA-mapped ASCII domain.
func normalizeHost(s string) (host, bool) {
	if strings.IndexByte(s, '%') >= 0 {
		s = percentDecode(s)
	}
	if !isASCII(s) {
		var b strings.Builder
		for _, r := range s {
			if r == utf8.RuneError || invisible(r) {
				continue
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253*4 {
		return host{}, false
	}
	// Only a host whose last label starts with a digit can be an IPv4
	// address (WHATWG), only one with a colon an IPv6 address.
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last != "" && '0' <= last[0] && last[0] <= '9' {
		if a, ok := parseIPv4(s); ok {
			return host{ip: a}, true
		}
	}
	if strings.IndexByte(s, ':') >= 0 {
		if a, err := netip.ParseAddr(s); err == nil {
			return host{ip: a.WithZone("").Unmap()}, true
		}
	}
	d, ok := dnsbl.Domain(s)
	if !ok {
		return host{}, false
	}
	return host{name: d}, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// percentDecode decodes %XX escapes; a malformed escape stays as it is.
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// parseIPv4 is the WHATWG URL IPv4 parser: a host whose last label is a
// number is an address, written as one to four parts in decimal, octal
// (leading 0) or hexadecimal (0x), the last part filling the remaining
// bytes. "0x7f.1" and "2130706433" are 127.0.0.1 to a browser, and so to
// us. ok is false for hosts that are not numeric.
func parseIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	if _, ok := ipv4Number(parts[len(parts)-1]); !ok {
		return netip.Addr{}, false
	}
	var nums []uint64
	for _, p := range parts {
		n, ok := ipv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func ipv4Number(p string) (uint64, bool) {
	if p == "" || len(p) > 12 {
		return 0, false
	}
	base := 10
	switch {
	case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
		p, base = p[2:], 16
	case len(p) > 1 && p[0] == '0':
		p, base = p[1:], 8
	}
	n, err := strconv.ParseUint(p, base, 64)
	if err != nil || n > 0xffffffff {
		return 0, false
	}
	return n, true
}

// registrable is the lookup key of a host: the registrable domain, or the
// address.
func (h host) registrable() string {
	if h.ip.IsValid() {
		return h.ip.String()
	}
	return dns.OrganizationalDomain(h.name)
}

// knownSuffix reports whether d ends in a suffix of the public suffix
// list (not only its catch-all rule): bare "www." names and e-mail
// addresses in text count only then, so "logo@2x.png" is no address.
func knownSuffix(d string) bool {
	ps, icann := publicsuffix.PublicSuffix(d)
	return icann || strings.IndexByte(ps, '.') >= 0
}

// sameLabel reports whether two registrable domains are the same name
// under different public suffixes (example.com, example.co.za): a
// company's sites in several countries are not a phishing link.
func sameLabel(a, b string) bool {
	la, lb := label(a), label(b)
	return la != "" && la == lb
}

func label(reg string) string {
	ps, _ := publicsuffix.PublicSuffix(reg)
	if len(ps) >= len(reg) {
		return ""
	}
	return strings.TrimSuffix(reg[:len(reg)-len(ps)], ".")
}
