package lookalike

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzNormalizeName: any input normalises without panicking into bounded,
// valid, visible tokens; normalising the result again changes nothing;
// and a name always matches itself.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"John Doe", "Doe, John", "Jоhn Dое", "\u202eeoD nhoJ", "J\u200bohn", "🐳 CEO 🐳", "=?utf-8?q?x?=", "\xff\xfe", "Straße Ǆ ﬁ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeName(s)
		if isASCII(s) {
			if u := normalizeUnicode(s).withKeys(); !reflect.DeepEqual(u, n) {
				t.Fatalf("ASCII fast path %q: %+v, general path %+v", s, n, u)
			}
			if a, u := skeletonASCII(s), Skeleton(Clean(s)); a != u {
				t.Fatalf("ASCII skeleton %q: %q, general %q", s, a, u)
			}
			if a, u := plainLabel(s), folder.String(Clean(s)); a != u {
				t.Fatalf("ASCII plain %q: %q, general %q", s, a, u)
			}
		}
		if len(n.Tokens) > maxTokens || len(n.Plain) > maxTokens {
			t.Fatalf("%d tokens", len(n.Tokens))
		}
		total := 0
		for _, tok := range n.Tokens {
			total += len(tok)
			if tok == "" || !utf8.ValidString(tok) {
				t.Fatalf("bad token %q", tok)
			}
			for _, r := range tok {
				if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
					t.Fatalf("token %q holds %U", tok, r)
				}
			}
		}
		// The skeleton can grow a name (m → rn), by at most 3x.
		if total > 3*MaxNameBytes {
			t.Fatalf("%d bytes of tokens", total)
		}
		again := NormalizeName(strings.Join(n.Tokens, " "))
		if strings.Join(again.Tokens, " ") != strings.Join(n.Tokens, " ") {
			t.Fatalf("not idempotent: %q → %q → %q", s, n.Tokens, again.Tokens)
		}
		if len(n.Tokens) > 0 {
			if _, ok := MatchName(n, n, 1); !ok {
				t.Fatalf("%q does not match itself", s)
			}
		}
	})
}
