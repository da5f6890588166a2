// Package lookalike finds names and domains made to look like others:
// the display-name and cousin-domain half of whaling (business e-mail
// compromise) detection.
//
// # Normalising a display name
//
//  1. At most MaxNameBytes are read (a 1 000-character name costs the same
//     as its first 4 KiB).
//  2. NFKC folds compatibility forms (fullwidth, mathematical bold,
//     ligatures) into plain letters.
//  3. Format and control characters go: bidi embeddings, overrides and
//     isolates (U+202A–202E, U+2066–2069), marks (U+200E, U+200F,
//     U+061C), zero-width characters, soft hyphens, tags, variation
//     selectors.
//  4. The UTS #39 skeleton: NFD, each character mapped to its confusable
//     prototype (Cyrillic а → a, Greek Ο → O, 0 → O, m → rn), combining
//     marks dropped (so "Jöhn" and "John" meet too), then full case
//     folding, twice (a folded letter may have a prototype of its own).
//  5. Tokens are the runs of letters and digits; punctuation, emoji and
//     symbols separate them.
//
// Matching a name against a protected person then tolerates token order
// ("Doe, John"), up to two extra tokens ("John Doe CEO"), the tokens run
// together ("JohnDoe") and a small edit distance (optimal string
// alignment: insertions, deletions, substitutions, transpositions).
package lookalike

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// MaxNameBytes bounds the part of a display name that is looked at.
const MaxNameBytes = 4096

// maxTokens bounds the tokens kept from one name.
const maxTokens = 64

var folder = cases.Fold()

// Name is a normalised display name.
type Name struct {
	// Tokens are the skeleton tokens in their order.
	Tokens []string
	// Folded are the skeleton tokens of the case-folded name: the
	// skeleton is case-sensitive (I → l but i stays i), so "MARIA" and
	// "Maria" meet only here.
	Folded []string
	// Plain are the tokens with only NFKC, format removal, marks removed
	// and case folding: where they differ from Tokens, confusables were
	// at work.
	Plain []string

	// keys are the sorted-and-joined forms of Plain, Tokens and Folded.
	keys [3]string
}

func (n Name) withKeys() Name {
	n.keys = [3]string{sortedJoin(n.Plain), sortedJoin(n.Tokens), sortedJoin(n.Folded)}
	return n
}

// Key is the sorted tokens joined by spaces (order-free comparison).
func (n Name) Key() string { return n.keys[1] }

func sortedJoin(ts []string) string {
	s := append([]string(nil), ts...)
	sort.Strings(s)
	return strings.Join(s, " ")
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// invisible reports characters that are dropped before anything else:
// format (Cf: bidi controls, zero-width, soft hyphen, tags), controls,
// variation selectors and other default-ignorables that are not marks.
func invisible(r rune) bool {
	switch {
	case r == utf8.RuneError:
		return true
	case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Cc, r):
		return true
	case r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0100 && r <= 0xE01EF:
		return true
	case r == 0x115F || r == 0x1160 || r == 0x3164 || r == 0xFFA0: // Hangul fillers
		return true
	}
	return false
}

// Clean applies steps 1–3: NFKC with invisible characters removed.
func Clean(s string) string {
	s = clip(s, MaxNameBytes)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	s = norm.NFKC.String(s)
	return strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, s)
}

// Skeleton is step 4 on an already cleaned string: prototypes, no marks,
// folded. Skeleton(Clean(a)) == Skeleton(Clean(b)) means a and b look
// alike.
func Skeleton(s string) string {
	s = mapConfusables(norm.NFD.String(s))
	s = folder.String(s)
	// A folded letter may have a prototype (and a prototype may be upper
	// case): one more round settles it.
	s = folder.String(mapConfusables(norm.NFD.String(s)))
	return norm.NFC.String(s)
}

func mapConfusables(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) {
			continue
		}
		if p, ok := confusables[r]; ok {
			b.WriteString(p)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// tokens splits s into runs of letters and digits.
func tokens(s string) []string {
	var out []string
	for _, t := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len(out) == maxTokens {
			break
		}
		out = append(out, t)
	}
	return out
}

// NormalizeName normalises a display name (steps 1–5).
func NormalizeName(s string) Name {
	if isASCII(s) {
		return normalizeASCII(s).withKeys()
	}
	return normalizeUnicode(s).withKeys()
}

func normalizeUnicode(s string) Name {
	c := Clean(s)
	f := folder.String(c)
	return Name{Tokens: tokens(Skeleton(c)), Folded: tokens(Skeleton(f)), Plain: tokens(stripMarks(f))}
}

// stripMarks drops combining marks: "García" → "Garcia".
func stripMarks(s string) string {
	return norm.NFC.String(strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) {
			return -1
		}
		return r
	}, norm.NFD.String(s)))
}

// Match kinds, strongest first.
const (
	MatchExact      = "exact"      // the same tokens in the same order
	MatchReordered  = "reordered"  // the same tokens in another order
	MatchConfusable = "confusable" // the same once confusables are folded
	MatchJoined     = "joined"     // the tokens run together
	MatchContains   = "contains"   // the name with up to two extra tokens
	MatchSimilar    = "similar"    // within the edit distance
)

// maxExtraTokens is how many tokens a display name may add to a protected
// name ("CEO", "Mr", a department) and still match.
const maxExtraTokens = 2

// MatchName compares a display name with a protected one. maxDist is the
// edit distance allowed between the sorted token strings (names of at
// least 6 letters only; 0 turns it off).
func MatchName(display, protected Name, maxDist int) (string, bool) {
	if len(protected.Tokens) == 0 || len(display.Tokens) == 0 {
		return "", false
	}
	if equal(display.Plain, protected.Plain) {
		return MatchExact, true
	}
	if display.keys[0] == protected.keys[0] {
		return MatchReordered, true
	}
	// The case-sensitive skeletons, then the folded ones.
	pairs := [2][2][]string{{display.Tokens, protected.Tokens}, {display.Folded, protected.Folded}}
	if display.keys[1] == protected.keys[1] || display.keys[2] == protected.keys[2] {
		return MatchConfusable, true
	}
	for _, p := range pairs {
		if strings.Join(p[0], "") == strings.Join(p[1], "") {
			return MatchJoined, true
		}
	}
	for _, p := range pairs {
		d, w := p[0], p[1]
		if len(d) > len(w) && len(d)-len(w) <= maxExtraTokens && containsAll(d, w) {
			return MatchContains, true
		}
	}
	for i := range pairs {
		dk, pk := display.keys[i+1], protected.keys[i+1]
		if maxDist > 0 && utf8.RuneCountInString(pk) >= 6 &&
			abs(utf8.RuneCountInString(dk)-utf8.RuneCountInString(pk)) <= maxDist && Distance(dk, pk, maxDist) <= maxDist {
			return MatchSimilar, true
		}
	}
	return "", false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// containsAll reports whether have holds every token of want (as a
// multiset).
func containsAll(have, want []string) bool {
	left := map[string]int{}
	for _, t := range have {
		left[t]++
	}
	for _, t := range want {
		if left[t] == 0 {
			return false
		}
		left[t]--
	}
	return true
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Distance is the optimal-string-alignment distance between a and b (in
// runes), or limit+1 as soon as it must exceed limit.
func Distance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if abs(len(ra)-len(rb)) > limit {
		return limit + 1
	}
	// Three rows: i-2, i-1, i.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			best = min(best, v)
		}
		if best > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// skeletonASCII is Skeleton(Clean(s)) for ASCII s.
func skeletonASCII(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
		case c == '0':
			b.WriteByte('o')
		case c == '1' || c == 'I' || c == '|':
			b.WriteByte('l')
		case c == 'm' || c == 'M':
			b.WriteString("rn")
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// normalizeASCII is normalizeUnicode for ASCII input, which most display
// names are: NFKC, NFD and marks do nothing there, folding is lower-casing
// and only five confusables are ASCII (0 → O, 1 → l, I → l, | → l,
// m → rn). FuzzNormalizeName holds the two paths to the same answers.
func normalizeASCII(s string) Name {
	s = clip(s, MaxNameBytes)
	var tok, fold, plain strings.Builder
	tok.Grow(len(s))
	fold.Grow(len(s))
	plain.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			continue // controls are dropped, not separators
		}
		lower := c
		if 'A' <= c && c <= 'Z' {
			lower = c + 'a' - 'A'
		}
		plain.WriteByte(lower)
		// The case-sensitive skeleton, then folded.
		switch c {
		case '0':
			tok.WriteByte('o')
		case '1', 'I', '|':
			tok.WriteByte('l')
		case 'm', 'M':
			tok.WriteString("rn")
		default:
			tok.WriteByte(lower)
		}
		// The skeleton of the folded name: I is i by then.
		switch lower {
		case '0':
			fold.WriteByte('o')
		case '1', '|':
			fold.WriteByte('l')
		case 'm':
			fold.WriteString("rn")
		default:
			fold.WriteByte(lower)
		}
	}
	return Name{Tokens: tokens(tok.String()), Folded: tokens(fold.String()), Plain: tokens(plain.String())}
}
