package lookalike

import (
	"strings"

	"golang.org/x/net/idna"
)

// Cousin kinds.
const (
	CousinHomograph = "homograph" // looks the same (confusables, IDN)
	CousinTypo      = "typo"      // one or two keystrokes away
	CousinOtherTLD  = "other-tld" // the same name under another suffix
	CousinCombo     = "combo"     // the name with a word added by a hyphen
)

// splitDomain splits a registrable domain into its first label and the
// rest ("example.co.uk" → "example", "co.uk"), with A-labels decoded.
// Case is kept: "exampIe.com" is one DNS name with "exampie.com", but
// what the reader sees is the capital I.
func splitDomain(d string) (label, suffix string) {
	d = strings.TrimSuffix(d, ".")
	if strings.Contains(strings.ToLower(d), "xn--") {
		if u, err := idna.ToUnicode(strings.ToLower(d)); err == nil {
			d = u
		}
	}
	label, suffix, _ = strings.Cut(d, ".")
	return label, strings.ToLower(suffix)
}

// domainSkeleton is the skeleton of a label with hyphens and dots kept.
func domainSkeleton(label string) string {
	if isASCII(label) {
		return skeletonASCII(label)
	}
	return Skeleton(Clean(label))
}

// plainLabel is a label folded, nothing else.
func plainLabel(label string) string {
	if isASCII(label) {
		return strings.ToLower(strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, label))
	}
	return folder.String(Clean(label))
}

// Own is one of the organisation's registrable domains, prepared for
// Cousin.
type Own struct {
	Name          string
	label, suffix string
	plain, skel   string
	limit         int
}

// NewOwn prepares own.
func NewOwn(own string) Own {
	l, suf := splitDomain(own)
	o := Own{Name: own, label: l, suffix: suf, plain: plainLabel(l), skel: domainSkeleton(l)}
	switch n := len([]rune(o.plain)); {
	case n >= 9:
		o.limit = 2
	case n >= 4:
		o.limit = 1
	}
	return o
}

// Cousin reports whether candidate (a registrable domain) is made to look
// like own (a registrable domain) without being it, and how.
func Cousin(candidate, own string) (string, bool) { return NewOwn(own).Cousin(candidate) }

// Cousin reports whether candidate (a registrable domain) is made to look
// like o without being it, and how.
func (o Own) Cousin(candidate string) (string, bool) {
	cl, cs := splitDomain(candidate)
	cp := plainLabel(cl)
	if cp == "" || o.plain == "" || (cp == o.plain && cs == o.suffix) {
		return "", false
	}
	if cp == o.plain {
		return CousinOtherTLD, true
	}
	ck := domainSkeleton(cl)
	if ck == o.skel {
		return CousinHomograph, true
	}
	// Typos on the letters as typed (a transposed m must not count as
	// two edits of "rn"), and on the skeletons (a typo plus a homograph).
	if o.limit > 0 && (Distance(cp, o.plain, o.limit) <= o.limit || Distance(ck, o.skel, o.limit) <= o.limit) {
		return CousinTypo, true
	}
	if o.limit > 0 && (strings.HasPrefix(cp, o.plain+"-") || strings.HasSuffix(cp, "-"+o.plain)) {
		return CousinCombo, true
	}
	return "", false
}
