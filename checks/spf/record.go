package spf

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// ErrSyntax is matched (errors.Is) by every *SyntaxError.
var ErrSyntax = errors.New("spf: syntax error")

// SyntaxError is a record that does not follow the grammar of RFC 7208
// §12. check_host() returns permerror for it wherever the error is in the
// record, even after a mechanism that matched (§4.6).
type SyntaxError struct {
	Domain string // whose record it is, when known
	Term   string // the offending term, "" for the record as a whole
	Reason string
}

func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString("spf: syntax error")
	if e.Domain != "" {
		b.WriteString(" in record of " + e.Domain)
	}
	if e.Term != "" {
		fmt.Fprintf(&b, ": %+q", e.Term)
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// Is makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

// term is one directive or modifier of a record.
type term struct {
	raw       string // as written
	modifier  bool
	name      string // mechanism or modifier name, lower case
	qualifier byte   // '+', '-', '~' or '?'; mechanisms only
	value     string // what follows "name:" or "name=", as written
}

// record is a parsed SPF record.
type record struct {
	terms    []term
	redirect string // domain-spec of redirect=, "" when absent
	exp      string // domain-spec of exp=, "" when absent
	// hasAll: an "all" mechanism, which makes redirect= void (§6.1).
	hasAll bool
	// hasFail: a mechanism with the "-" qualifier.
	hasFail bool
}

// isSPFRecord tells whether a TXT record is an SPF record: "v=spf1" in
// any case, alone or followed by a space (RFC 7208 §4.5). This must pick
// the same records as the SPF library does.
func isSPFRecord(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

// Mechanism and modifier shapes (RFC 7208 §4.6.1, §5, §12).
var (
	// A modifier is a name followed by "=" before any ":" or "/".
	modifierRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*=`)
	// dual-cidr-length at the end of an "a" or "mx" term.
	dualCIDRRe = regexp.MustCompile(`(?s)^(.*?)((?:/[0-9]+)?(?://[0-9]+)?)$`)
	dualOnlyRe = regexp.MustCompile(`^(?:/([0-9]+))?(?://([0-9]+))?$`)
)

// parseRecord parses an SPF record and checks all of it against the
// grammar of RFC 7208 §12 and the rules of §5, §6 and §7 that the grammar
// leaves to prose (modifiers at most once, CIDR ranges, macro letters c, r
// and t only in explanations, nonzero macro digits).
func parseRecord(txt string) (*record, error) {
	if !isSPFRecord(txt) {
		return nil, &SyntaxError{Reason: "not an SPF record (no v=spf1)"}
	}
	rec := &record{}
	seenRedirect, seenExp := false, false
	// Terms are separated by one or more spaces and nothing else
	// (§4.6.1): a tab or a line break is part of a term, and invalid.
	for raw := range strings.SplitSeq(txt[6:], " ") {
		if raw == "" {
			continue
		}
		t := term{raw: raw}
		bad := func(reason string) error { return &SyntaxError{Term: raw, Reason: reason} }
		if m := modifierRe.FindString(raw); m != "" {
			t.modifier = true
			t.name = strings.ToLower(m[:len(m)-1])
			t.value = raw[len(m):]
			switch t.name {
			case "redirect", "exp":
				// §6: each at most once.
				if t.name == "redirect" && seenRedirect || t.name == "exp" && seenExp {
					return nil, bad(t.name + "= appears twice")
				}
				if err := checkDomainSpec(t.value); err != nil {
					return nil, bad(err.Error())
				}
				if t.name == "redirect" {
					seenRedirect, rec.redirect = true, t.value
				} else {
					seenExp, rec.exp = true, t.value
				}
			default:
				// unknown-modifier = name "=" macro-string (§6, A/3).
				if _, err := parseMacroString(t.value, true); err != nil {
					return nil, bad(err.Error())
				}
			}
			rec.terms = append(rec.terms, t)
			continue
		}

		t.qualifier = '+'
		body := raw
		if strings.IndexByte("+-~?", body[0]) >= 0 {
			t.qualifier, body = body[0], body[1:]
		}
		end := strings.IndexAny(body, ":/")
		if end < 0 {
			end = len(body)
		}
		t.name, t.value = strings.ToLower(body[:end]), body[end:]
		rest := t.value
		var err error
		switch t.name {
		case "all":
			if rest != "" {
				err = errors.New("all takes no argument")
			}
			rec.hasAll = true
		case "include", "exists":
			if !strings.HasPrefix(rest, ":") {
				err = errors.New(t.name + " needs :domain")
			} else {
				err = checkDomainSpec(rest[1:])
			}
		case "a", "mx":
			if strings.HasPrefix(rest, ":") {
				m := dualCIDRRe.FindStringSubmatch(rest[1:])
				if err = checkDomainSpec(m[1]); err == nil {
					err = checkDualCIDR(m[2])
				}
			} else {
				err = checkDualCIDR(rest)
			}
		case "ptr":
			if rest != "" {
				if !strings.HasPrefix(rest, ":") {
					err = errors.New("ptr takes no CIDR length")
				} else {
					err = checkDomainSpec(rest[1:])
				}
			}
		case "ip4", "ip6":
			if !strings.HasPrefix(rest, ":") {
				err = errors.New(t.name + " needs :network")
			} else {
				err = checkNetwork(t.name, rest[1:])
			}
		default:
			err = errors.New("unknown mechanism")
		}
		if err != nil {
			return nil, bad(err.Error())
		}
		if t.qualifier == '-' {
			rec.hasFail = true
		}
		rec.terms = append(rec.terms, t)
	}
	return rec, nil
}

// withoutRedirect returns the record text with its redirect= removed.
func (r *record) withoutRedirect() string {
	parts := []string{"v=spf1"}
	for _, t := range r.terms {
		if !(t.modifier && t.name == "redirect") {
			parts = append(parts, t.raw)
		}
	}
	return strings.Join(parts, " ")
}

// checkDualCIDR checks dual-cidr-length, which may be empty.
func checkDualCIDR(s string) error {
	m := dualOnlyRe.FindStringSubmatch(s)
	if m == nil {
		return errors.New("bad CIDR length")
	}
	if m[1] != "" {
		if err := checkCIDR(m[1], 32); err != nil {
			return err
		}
	}
	if m[2] != "" {
		return checkCIDR(m[2], 128)
	}
	return nil
}

// checkCIDR checks a CIDR length: no leading zero (the grammar's
// ip4-cidr-length = "/" ("0" / %x31-39 0*1DIGIT)), at most max.
func checkCIDR(digits string, max int) error {
	bad := digits == "" || len(digits) > 3 || len(digits) > 1 && digits[0] == '0'
	for i := 0; i < len(digits); i++ {
		bad = bad || !isDigit(digits[i])
	}
	if bad {
		return fmt.Errorf("bad CIDR length %q", "/"+digits)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > max {
		return fmt.Errorf("CIDR length /%s out of range 0-%d", digits, max)
	}
	return nil
}

// checkNetwork checks the argument of ip4: or ip6:.
func checkNetwork(mech, s string) error {
	addr, cidr, hasCIDR := strings.Cut(s, "/")
	if hasCIDR {
		max := 32
		if mech == "ip6" {
			max = 128
		}
		if err := checkCIDR(cidr, max); err != nil {
			return err
		}
	}
	if mech == "ip4" {
		if !isIP4Network(addr) {
			return fmt.Errorf("bad IPv4 network %q", addr)
		}
		return nil
	}
	if !strings.Contains(addr, ":") || net.ParseIP(addr) == nil {
		return fmt.Errorf("bad IPv6 network %q", addr)
	}
	return nil
}

// isIP4Network checks ip4-network: four qnum, no leading zeros, no part
// left out (§5.6).
func isIP4Network(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 || len(p) > 1 && p[0] == '0' {
			return false
		}
		for i := 0; i < len(p); i++ {
			if !isDigit(p[i]) {
				return false
			}
		}
		if n, _ := strconv.Atoi(p); n > 255 {
			return false
		}
	}
	return true
}

// checkDomainSpec checks domain-spec = macro-string domain-end, where
// domain-end = ( "." toplabel [ "." ] ) / macro-expand (§7.1). The check
// is on the text as written, never on the result of macro expansion.
func checkDomainSpec(s string) error {
	if s == "" {
		return errors.New("empty domain-spec")
	}
	toks, err := parseMacroString(s, false)
	if err != nil {
		return err
	}
	last := toks[len(toks)-1]
	if last.kind != tokLiteral {
		return nil
	}
	lit := strings.TrimSuffix(last.text, ".")
	dot := strings.LastIndexByte(lit, '.')
	if dot < 0 {
		return errors.New("domain-spec must end in a macro or in \".\" and a top label")
	}
	if !isTopLabel(lit[dot+1:]) {
		return fmt.Errorf("bad top label %q", lit[dot+1:])
	}
	return nil
}

// isTopLabel checks toplabel = ( *alphanum ALPHA *alphanum ) /
// ( 1*alphanum "-" *( alphanum / "-" ) alphanum ): letters, digits and
// dashes, alphanumeric at both ends, not all digits.
func isTopLabel(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	letterOrDash := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || isAlpha(c):
			letterOrDash = true
		case isDigit(c):
		default:
			return false
		}
	}
	return letterOrDash
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }
