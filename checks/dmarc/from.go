package dmarc

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Author is what the RFC5322.From fields of a message name (RFC 7489
// §6.6.1).
type Author struct {
	// Domains are the domains of every address found, normalised
	// (lower-case A-labels, no trailing dot), without duplicates, in
	// order.
	Domains []string
	// Fields is the number of From fields; Addresses the number of
	// mailboxes found in them.
	Fields, Addresses int
	// Problem is empty for the one case DMARC is defined for — one From
	// field holding one well-formed mailbox with a domain — and otherwise
	// says what is wrong: no From field, several, several addresses, an
	// address without a usable domain, or syntax the extraction had to
	// guess through.
	Problem string
}

// ParseAuthor reads the From field values (unfolded) of a message.
//
// The extraction is lenient where that cannot hide a domain: comments and
// quoted strings are skipped (a quoted display name may contain '@' and
// ','), the address in angle brackets wins over a display name, group
// syntax ("Name: addr;") is understood even without its ";", and junk
// around an address is tolerated — OpenDMARC's test table is the
// benchmark. It is strict where a guess could pick the wrong domain: every
// address of every From field is returned, never only the first, and
// anything but exactly one clean mailbox sets Problem. RFC 7489 §6.6.1
// says to evaluate each domain of a multi-valued From and apply the
// strictest failing policy; the check does that for every case that
// yields domains.
func ParseAuthor(values []string) Author {
	a := Author{Fields: len(values)}
	var problems []string
	for _, v := range values {
		addrs, malformed := parseAddressList(v)
		if malformed {
			problems = appendOnce(problems, "malformed From")
		}
		for _, ad := range addrs {
			a.Addresses++
			if ad.domain == "" {
				problems = appendOnce(problems, "address without domain")
				continue
			}
			d, err := NormalizeDomain(ad.domain)
			if err != nil {
				problems = appendOnce(problems, fmt.Sprintf("invalid domain %q", clip(ad.domain, 60)))
				continue
			}
			a.Domains = appendOnce(a.Domains, d)
		}
	}
	switch {
	case a.Fields == 0:
		problems = append([]string{"no From field"}, problems...)
	case a.Fields > 1:
		problems = append([]string{fmt.Sprintf("%d From fields", a.Fields)}, problems...)
	case a.Addresses == 0:
		problems = append([]string{"no address in From"}, problems...)
	case a.Addresses > 1:
		problems = append([]string{fmt.Sprintf("%d addresses in From", a.Addresses)}, problems...)
	}
	a.Problem = strings.Join(problems, "; ")
	return a
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

var errBadDomain = errors.New("dmarc: not a valid domain name")

// NormalizeDomain returns d as DMARC compares and looks it up: lower-case,
// U-labels converted to A-labels (IDNA2008 lookup rules, so "Bücher.Example"
// and "xn--bcher-kva.example" are the same author), one trailing dot
// dropped, every label 1 to 63 octets, the whole at most 253 octets.
//
// An ASCII label may hold any RFC 5322 atext character, not only letters,
// digits and hyphens: the From domain is a dot-atom (RFC 5322 §3.4.1), a
// DNS label may hold any octet (RFC 2181 §11), and names such as
// "mail_gw.example.com" exist. Refusing them would let a From naming such
// a subdomain of a p=reject domain escape the policy with a permerror,
// where RFC 7489 §6.6.3 falls back to the organizational domain's record.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 1024 {
		return "", errBadDomain
	}
	if !utf8.ValidString(d) {
		return "", errBadDomain
	}
	if !isASCII(d) || strings.Contains(strings.ToLower(d), "xn--") {
		a, err := idna.Lookup.ToASCII(d)
		if err != nil {
			return "", errBadDomain
		}
		// A second pass checks the A-labels produced (or given) decode to
		// valid U-labels, so the result is a fixed point.
		if b, err := idna.Lookup.ToASCII(a); err != nil || b != a {
			return "", errBadDomain
		}
		d = a
	}
	d = strings.ToLower(d)
	if len(d) > 253 {
		return "", errBadDomain
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 {
			return "", errBadDomain
		}
		for i := 0; i < len(l); i++ {
			if !isAtext(l[i]) {
				return "", errBadDomain
			}
		}
	}
	return d, nil
}

// isAtext tells whether c is an RFC 5322 §3.2.3 atext character (ASCII).
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// RFC 5322 lexical tokens, as far as extraction needs them.
type tokenKind uint8

const (
	tAtom    tokenKind = iota // atext run (UTF-8 allowed, RFC 6532)
	tQuoted                   // quoted-string, content unused
	tLiteral                  // domain-literal [ ... ]
	tSpecial                  // one of < > @ , ; : .
)

type token struct {
	kind tokenKind
	text string
}

func (t token) is(c byte) bool { return t.kind == tSpecial && t.text[0] == c }

// maxTokens bounds the work on one From value.
const maxTokens = 10000

// tokenize splits an RFC 5322 address-list into tokens, dropping white
// space and comments. malformed is set for an unclosed comment, quoted
// string or domain literal, a stray backslash or ')' or '[' , or more
// than maxTokens tokens.
func tokenize(s string) (toks []token, malformed bool) {
	for i := 0; i < len(s); {
		if len(toks) >= maxTokens {
			return toks, true
		}
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(':
			depth := 0
			j := i
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j >= len(s) {
				return toks, true
			}
			i = j + 1
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return append(toks, token{tQuoted, s[i:]}), true
			}
			toks = append(toks, token{tQuoted, s[i : j+1]})
			i = j + 1
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return append(toks, token{tLiteral, s[i:]}), true
			}
			toks = append(toks, token{tLiteral, s[i : i+j+1]})
			i += j + 1
		case strings.IndexByte("<>@,;:.", c) >= 0:
			toks = append(toks, token{tSpecial, s[i : i+1]})
			i++
		case c == ')' || c == ']' || c == '\\' || c < 0x20 || c == 0x7f:
			malformed = true
			i++
		default:
			j := i
			for j < len(s) && !isDelimiter(s[j]) {
				j++
			}
			toks = append(toks, token{tAtom, s[i:j]})
			i = j
		}
	}
	return toks, malformed
}

func isDelimiter(c byte) bool {
	return c <= ' ' || c == 0x7f || strings.IndexByte(`()<>[]:;@\,."`, c) >= 0
}

// address is one mailbox found in a From field; domain is as written, ""
// when it has none (or a domain literal).
type address struct{ domain string }

// parseAddressList finds the mailboxes of one From value. See ParseAuthor.
func parseAddressList(v string) (addrs []address, malformed bool) {
	toks, malformed := tokenize(v)
	depth := 0
	start := 0
	inGroup := false
	flush := func(end int) {
		a, bad := parseMailbox(toks[start:end])
		addrs = append(addrs, a...)
		malformed = malformed || bad
		start = end + 1
	}
	for i, t := range toks {
		switch {
		case t.is('<'):
			depth++
		case t.is('>'):
			if depth == 0 {
				malformed = true
			} else {
				depth--
			}
		case depth > 0:
		case t.is(','):
			flush(i)
		case t.is(';'):
			if !inGroup {
				malformed = true
			}
			inGroup = false
			flush(i)
		case t.is(':'):
			// "display-name :" opens a group (RFC 5322 §3.4, allowed in
			// From by RFC 6854); what precedes is its name.
			if hasSpecial(toks[start:i], '@') || inGroup {
				malformed = true
			}
			inGroup = true
			start = i + 1
		}
	}
	if depth > 0 {
		malformed = true
	}
	if inGroup {
		malformed = true // no ";": "Mail From:<joe@joe.com>"
	}
	flush(len(toks))
	return addrs, malformed
}

func hasSpecial(toks []token, c byte) bool {
	for _, t := range toks {
		if t.is(c) {
			return true
		}
	}
	return false
}

// parseMailbox reads one list element: a name-addr (display name and
// angle-addr) or an addr-spec. An empty element (obs-mbox-list) yields
// nothing.
func parseMailbox(toks []token) (addrs []address, malformed bool) {
	if len(toks) == 0 {
		return nil, false
	}
	if !hasSpecial(toks, '<') {
		return parseAddrSpec(toks)
	}
	// name-addr: the addr-specs are inside the innermost <...>; what is
	// outside is the display name (obs-phrase: words and dots).
	depth, open := 0, -1
	segments := 0
	for i, t := range toks {
		switch {
		case t.is('<'):
			if depth > 0 {
				malformed = true
			}
			depth++
			open = i
		case t.is('>'):
			if depth == 0 {
				malformed = true
				continue
			}
			depth--
			if open >= 0 {
				inner := toks[open+1 : i]
				// obs-route: "<@a.example,@b.example:joe@c.example>".
				for j := len(inner) - 1; j >= 0; j-- {
					if inner[j].is(':') {
						inner = inner[j+1:]
						break
					}
				}
				if len(inner) > 0 {
					a, bad := parseAddrSpec(inner)
					addrs = append(addrs, a...)
					malformed = malformed || bad
					segments++
				}
				open = -1
			}
		case depth == 0:
			if t.kind == tSpecial && !t.is('.') || t.kind == tLiteral {
				malformed = true // e.g. an unquoted '@' in the display name
			}
		}
	}
	if segments == 0 {
		// "<>" only: a null address, no domain.
		return []address{{}}, true
	}
	if segments > 1 || depth != 0 {
		malformed = true
	}
	return addrs, malformed
}

// parseAddrSpec reads local-part "@" domain. Tokens before the local part
// (a display name without angle brackets) and after the domain are
// tolerated as malformed; every "@" yields its domain, so "a@b@c"
// reports both b and c.
func parseAddrSpec(toks []token) (addrs []address, malformed bool) {
	var at []int
	for i, t := range toks {
		if t.is('@') {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return []address{{}}, true
	}
	if len(at) > 1 {
		malformed = true
	}
	// The local part: word *("." word) right before the first "@".
	isWord := func(t token) bool { return t.kind == tAtom || t.kind == tQuoted }
	j := at[0] - 1
	if j < 0 || !isWord(toks[j]) {
		malformed = true
	} else {
		j--
		for j >= 1 && toks[j].is('.') && isWord(toks[j-1]) {
			j -= 2
		}
	}
	if j >= 0 {
		malformed = true // a display name without angle brackets
	}
	end := 0
	for n, i := range at {
		d, next := readDomain(toks, i+1)
		if d.domain == "" {
			malformed = true
		}
		addrs = append(addrs, d)
		end = next
		if n+1 < len(at) && next != at[n+1] {
			malformed = true
		}
	}
	if end < len(toks) {
		malformed = true
	}
	return addrs, malformed
}

// readDomain reads dot-atom (or obs-domain) or a domain-literal starting at
// toks[i]; it returns the domain ("" for a literal or nothing) and the
// index after it.
func readDomain(toks []token, i int) (address, int) {
	if i < len(toks) && toks[i].kind == tLiteral {
		return address{}, i + 1
	}
	var b strings.Builder
	for i < len(toks) {
		t := toks[i]
		if t.kind == tAtom {
			b.WriteString(t.text)
			i++
			if i < len(toks) && toks[i].is('.') {
				b.WriteByte('.')
				i++
				continue
			}
		}
		break
	}
	return address{domain: b.String()}, i
}
