package dkim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// errTagList is wrapped by every tag-list syntax error.
var errTagList = errors.New("dkim: malformed tag-list")

// parseTagList parses an RFC 6376 §3.2 tag-list: tag=value pairs separated
// by ";", folding white space allowed around names and values, an optional
// trailing ";". Tag names are case-sensitive (§3.2) and must match
// ALPHA *ALNUMPUNC; a name that occurs twice makes the whole list invalid
// ("if a tag name does occur more than once, the entire tag-list is
// invalid"). Values are returned trimmed of surrounding white space.
func parseTagList(s string) (map[string]string, error) {
	tags := make(map[string]string)
	specs := strings.Split(s, ";")
	for i, spec := range specs {
		if isFWS(spec) {
			if i == len(specs)-1 {
				break // the optional trailing ";"
			}
			return nil, fmt.Errorf("%w: empty tag-spec", errTagList)
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("%w: tag-spec without '='", errTagList)
		}
		name = trimFWS(name)
		if !validTagName(name) {
			return nil, fmt.Errorf("%w: bad tag name %q", errTagList, clip(name, 20))
		}
		if _, dup := tags[name]; dup {
			return nil, fmt.Errorf("%w: tag %q appears twice", errTagList, name)
		}
		tags[name] = trimFWS(value)
	}
	return tags, nil
}

func validTagName(n string) bool {
	if n == "" || !isAlpha(n[0]) {
		return false
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if !isAlpha(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWSP(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isFWS(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWSP(s[i]) {
			return false
		}
	}
	return true
}

func trimFWS(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r < utf8.RuneSelf && isWSP(byte(r)) })
}

// stripFWS removes all white space, as needed for values that may be
// folded anywhere (b=, bh=, h=, and to be safe d= and s=).
func stripFWS(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if !isWSP(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// canonicalization is a header or body canonicalization name.
type canonicalization string

const (
	canonSimple  canonicalization = "simple"
	canonRelaxed canonicalization = "relaxed"
)

// sigField is one DKIM-Signature header field as found in the message,
// with the tags this package needs read from it. go-msgauth parses the
// field again for the verification proper; this parse serves the facts,
// the header filter and the checks go-msgauth does not make.
type sigField struct {
	index int // position in Message.Header
	tags  map[string]string
	err   error // tag-list or tag syntax error: the signature is permerror

	domain, selector, algorithm, identifier string
	headers                                 []string // h=, lower-cased
	headerCanon, bodyCanon                  canonicalization
	hasLength                               bool
	length                                  int64 // l=
}

// parseSignature reads the tags of a DKIM-Signature field value.
func parseSignature(index int, value string) *sigField {
	s := &sigField{index: index, headerCanon: canonSimple, bodyCanon: canonSimple}
	tags, err := parseTagList(value)
	if err != nil {
		s.err = err
		return s
	}
	s.tags = tags
	s.domain = strings.ToLower(stripFWS(tags["d"]))
	s.selector = strings.ToLower(stripFWS(tags["s"]))
	s.algorithm = strings.ToLower(stripFWS(tags["a"]))
	s.identifier = stripFWS(tags["i"])
	if h, ok := tags["h"]; ok {
		for _, n := range strings.Split(stripFWS(h), ":") {
			s.headers = append(s.headers, strings.ToLower(n))
		}
	}
	if c, ok := tags["c"]; ok {
		hc, bc, _ := strings.Cut(stripFWS(c), "/")
		if hc != "" {
			s.headerCanon = canonicalization(strings.ToLower(hc))
		}
		if bc != "" {
			s.bodyCanon = canonicalization(strings.ToLower(bc))
		}
	}
	if l, ok := tags["l"]; ok {
		s.hasLength = true
		// RFC 6376 §3.5: l= is 1*76DIGIT.
		n, perr := strconv.ParseInt(stripFWS(l), 10, 64)
		if perr != nil || n < 0 || len(stripFWS(l)) > 76 {
			s.err = fmt.Errorf("%w: bad l= value", errTagList)
			return s
		}
		s.length = n
	}
	for _, t := range []string{"v", "a", "b", "bh", "d", "h", "s"} {
		if _, ok := tags[t]; !ok {
			// RFC 6376 §6.1.1: a signature missing a required tag is
			// PERMFAIL (signature missing required tag).
			s.err = fmt.Errorf("%w: required tag %s= missing", errTagList, t)
			return s
		}
	}
	if v := stripFWS(tags["v"]); v != "1" {
		// §3.5: "v= ... MUST have the value "1"". Pre-RFC drafts wrote
		// none or "0.5"; they are not RFC 6376 signatures.
		s.err = fmt.Errorf("%w: v=%q is not 1", errTagList, clip(v, 10))
		return s
	}
	if _, err := lookupName(s.domain); err != nil {
		// §3.5: d= is a domain name; a value that is not one (dkimpy's
		// "legitimate.com(.attacker.com") must never reach the resolver.
		s.err = fmt.Errorf("dkim: invalid d= %q: %w", clip(s.domain, 64), err)
		return s
	}
	if _, err := lookupName(s.selector); err != nil {
		s.err = fmt.Errorf("dkim: invalid s= %q: %w", clip(s.selector, 64), err)
		return s
	}
	return s
}

// errBadName is returned for a DNS name that cannot be queried.
var errBadName = errors.New("not a valid domain name")

// lookupName returns name ready for a DNS query: U-labels converted to
// A-labels (RFC 8616 §4 allows UTF-8 in d= and s=), a trailing dot
// removed, and every label checked to be 1 to 63 letters, digits, hyphens
// or underscores (as in "_domainkey"), the whole at most 253 octets.
func lookupName(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 1024 {
		return "", errBadName
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if !isASCII(l) {
			a, err := idna.Lookup.ToASCII(l)
			if err != nil {
				return "", errBadName
			}
			labels[i] = a
			l = a
		}
		if l == "" || len(l) > 63 {
			return "", errBadName
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
				return "", errBadName
			}
		}
	}
	out := strings.Join(labels, ".")
	if len(out) > 253 {
		return "", errBadName
	}
	return out, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
