package spf

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Macros (RFC 7208 §7). The SPF library expands the macros of mechanisms
// and of redirect= itself; this code expands what the library leaves out:
// the exp= domain and the explanation text (§6.2), and the redirect=
// targets the explanation search follows, where it must land on the same
// names as the library (see expand).

type tokKind int

const (
	tokLiteral tokKind = iota // text copied as it is
	tokEscape                 // %% %_ %-: a macro-expand with a fixed value
	tokMacro                  // %{...}
)

type macroToken struct {
	kind    tokKind
	text    string // literal text, or the value of an escape
	letter  byte   // macro letter, lower case
	upper   bool   // letter given in upper case: URL-escape the value
	digits  int    // keep this many right-hand parts; 0 = all
	reverse bool
	delims  string // split on these; "" = "."
}

// parseMacroString splits a macro-string into tokens. In explanation
// text (explain) the letters c, r and t and spaces are allowed (§7.1,
// explain-string); elsewhere they are not (§7.2: "c, r, t ... only in
// exp text").
func parseMacroString(s string, explain bool) ([]macroToken, error) {
	var toks []macroToken
	lit := func(t string) {
		if n := len(toks); n > 0 && toks[n-1].kind == tokLiteral {
			toks[n-1].text += t
			return
		}
		toks = append(toks, macroToken{kind: tokLiteral, text: t})
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			// macro-literal = %x21-24 / %x26-7E; explain-string adds SP.
			if c < 0x21 || c > 0x7e {
				if !(explain && c == ' ') {
					return nil, fmt.Errorf("invalid character %+q", string([]byte{c}))
				}
			}
			lit(string(c))
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("'%' at the end")
		}
		i++
		switch s[i] {
		case '%':
			toks = append(toks, macroToken{kind: tokEscape, text: "%"})
		case '_':
			toks = append(toks, macroToken{kind: tokEscape, text: " "})
		case '-':
			toks = append(toks, macroToken{kind: tokEscape, text: "%20"})
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, errors.New("unterminated macro")
			}
			t, err := parseMacro(s[i+1:i+end], explain)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i += end
		default:
			return nil, fmt.Errorf("'%%' followed by %q", s[i])
		}
	}
	if len(toks) == 0 {
		toks = append(toks, macroToken{kind: tokLiteral})
	}
	return toks, nil
}

// parseMacro parses the inside of %{...}: macro-letter transformers
// *delimiter, transformers = *DIGIT [ "r" ].
func parseMacro(body string, explain bool) (macroToken, error) {
	bad := func(why string) (macroToken, error) {
		return macroToken{}, fmt.Errorf("bad macro %%{%s}: %s", body, why)
	}
	if body == "" {
		return bad("no letter")
	}
	t := macroToken{kind: tokMacro}
	l := body[0]
	t.letter = l | 0x20
	t.upper = 'A' <= l && l <= 'Z'
	switch t.letter {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !explain {
			return bad("c, r and t are for explanations only")
		}
	default:
		return bad("unknown letter")
	}
	rest := body[1:]
	n := 0
	for n < len(rest) && isDigit(rest[n]) {
		n++
	}
	if n > 0 {
		d, err := strconv.Atoi(rest[:n])
		// §7.3: a DIGIT transformer must be nonzero.
		if err != nil || d == 0 {
			return bad("digit transformer must be 1 or more")
		}
		t.digits = d
		rest = rest[n:]
	}
	if rest != "" && (rest[0] == 'r' || rest[0] == 'R') {
		t.reverse = true
		rest = rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(".-+,/_=", rest[i]) < 0 {
			return bad("bad delimiter")
		}
	}
	t.delims = rest
	return t, nil
}

// macroEnv holds the values the macro letters stand for (§7.3).
type macroEnv struct {
	sender   string // <sender>, local-part@domain
	domain   string // <domain> of the check_host() being run
	ip       net.IP // 4-byte form for IPv4
	helo     string
	receiver string
	now      time.Time
	// ptr returns the validated name of ip for %{p}; nil means
	// "unknown", as the SPF library always has it.
	ptr func() string
}

// expand returns the value of a macro-string.
func (e *macroEnv) expand(toks []macroToken) string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind != tokMacro {
			b.WriteString(t.text)
			continue
		}
		b.WriteString(e.macro(t))
	}
	return b.String()
}

// macro expands one %{...}. Parts are split on the delimiters with empty
// parts dropped and joined with ".", as the SPF library does, so that a
// redirect= target we expand is the name the library queried.
func (e *macroEnv) macro(t macroToken) string {
	local, domain, _ := strings.Cut(e.sender, "@")
	var v string
	switch t.letter {
	case 's':
		v = e.sender
	case 'l':
		v = local
	case 'o':
		v = domain
	case 'd':
		v = e.domain
	case 'i':
		v = dottedIP(e.ip)
	case 'p':
		v = "unknown"
		if e.ptr != nil {
			v = e.ptr()
		}
	case 'v':
		v = "ip6"
		if e.ip.To4() != nil {
			v = "in-addr"
		}
	case 'h':
		v = e.helo
	case 'c':
		v = e.ip.String()
	case 'r':
		v = e.receiver
	case 't':
		v = strconv.FormatInt(e.now.Unix(), 10)
	}
	delims := t.delims
	if delims == "" {
		delims = "."
	}
	parts := strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(delims, r) })
	if t.reverse {
		slices.Reverse(parts)
	}
	if t.digits > 0 && t.digits < len(parts) {
		parts = parts[len(parts)-t.digits:]
	}
	v = strings.Join(parts, ".")
	if t.upper {
		v = urlEscape(v)
	}
	return v
}

// dottedIP is %{i}: dotted quad for IPv4, dot-separated nibbles for IPv6.
func dottedIP(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	var b strings.Builder
	for i, x := range ip.To16() {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprintf(&b, "%x.%x", x>>4, x&0xf)
	}
	return b.String()
}

// urlEscape escapes every octet outside the URI unreserved set
// (ALPHA / DIGIT / "-" / "." / "_" / "~"), as §7.3 asks of upper-case
// macro letters.
func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// truncateDomain shortens an expanded domain-spec used in a query to 253
// characters by removing labels from the left (§7.3).
func truncateDomain(d string) string {
	for len(strings.TrimSuffix(d, ".")) > 253 {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
	}
	return d
}
