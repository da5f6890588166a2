package dns

import (
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// queryName turns a name as callers of a *net.Resolver-style API give it
// (text, labels separated by dots, optional trailing dot, any other byte
// taken literally) into miekg/dns presentation form, fully qualified. It
// reports false when the name cannot be queried: empty, an empty label
// other than the root, a label over 63 octets or a name over 255 octets on
// the wire (RFC 1035 §2.3.4).
//
// Special bytes are escaped, so the caller's bytes reach the wire as they
// are: SPF macro expansion (RFC 7208 §7.3) can produce names with spaces,
// '%' or '\' in them, and they must be queried, not reinterpreted.
func queryName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	if name == "." {
		return ".", true
	}
	name = strings.TrimSuffix(name, ".")
	var b strings.Builder
	wire := 1 // the root label
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return "", false
		}
		wire += 1 + len(label)
		// Escape exactly as miekg/dns does when it unpacks a name, so
		// that the names in answers compare equal to ours as strings.
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case strings.IndexByte(` '@;()"\\`, c) >= 0:
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < ' ' || c > '~':
				b.WriteString(`\` + pad3(int(c)))
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('.')
	}
	if wire > 255 {
		return "", false
	}
	return b.String(), true
}

func pad3(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

// canonical is the cache key form of a presentation-form name: fully
// qualified and lower case (RFC 4343: ASCII case-insensitive).
func canonical(name string) string {
	return mdns.CanonicalName(name)
}

// unescapeText turns a miekg/dns character-string in presentation form
// (\DDD and \X escapes) back into the octets that were on the wire.
func unescapeText(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		i++
		if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			n := int(s[i]-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0')
			if n <= 255 {
				b = append(b, byte(n))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
