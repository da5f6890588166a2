package lookalike

import (
	"strings"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"John Doe", "john doe"},
		{"  JOHN   DOE ", "john doe"},
		{"Jоhn Dое", "john doe"},             // Cyrillic о, е
		{"ＪＯＨＮ ＤＯＥ", "john doe"},             // fullwidth (NFKC)
		{"𝐉𝐨𝐡𝐧 𝐃𝐨𝐞", "john doe"},             // mathematical bold (NFKC)
		{"J\u200bohn D\u200doe", "john doe"}, // zero-width characters
		{"\u202eeoD nhoJ\u202c", "eod nhoj"}, // a bidi override shows it reversed; the bytes stay
		{"John\u2066 \u2069Doe\u200f", "john doe"},
		{"Jöhn Doé", "john doe"},           // marks dropped
		{"J0hn D0e", "john doe"},           // 0 → O
		{"BiII Gates", "bill gates"},       // I → l
		{"Kim", "kirn"},                    // m → rn, on both sides
		{"Doe, John 🐳💼", "doe john"},       // emoji separate, then go
		{"John \U0001F3FBDoe", "john doe"}, // a skin-tone modifier
		{"John\U000E0041Doe", "johndoe"},   // a tag character
		{"Ꭻohn Ꭰoe", "john doe"},           // Cherokee
		{"Straße", "strasse"},              // full case folding
		{"", ""},
		{"\u200b\u202e", ""},
	} {
		got := strings.Join(NormalizeName(tc.in).Tokens, " ")
		if got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMatchName(t *testing.T) {
	john := NormalizeName("John Doe")
	for _, tc := range []struct {
		display string
		want    string // "" no match
	}{
		{"John Doe", MatchExact},
		{"john doe", MatchExact},
		{"Doe, John", MatchReordered},
		{"DOE JOHN", MatchReordered},
		{"Jоhn Dое", MatchConfusable},
		{"J0hn Doe", MatchConfusable},
		{"JohnDoe", MatchJoined},
		{"John Doe (CEO)", MatchContains},
		{"Mr. John Doe, CEO", MatchContains},
		{"Jon Doe", MatchSimilar},
		{"John Deo", MatchSimilar},
		{"Jane Doe", ""},
		{"John", ""},
		{"Doe", ""},
		{"John Doe of Accounting at the Big Office", ""},
		{"", ""},
		{"🐳", ""},
	} {
		got, ok := MatchName(NormalizeName(tc.display), john, 1)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("MatchName(%q) = %q %v, want %q", tc.display, got, ok, tc.want)
		}
	}
	// Short names get no edit distance: "Al Li" vs "Al Lu" would match
	// too much.
	if k, ok := MatchName(NormalizeName("Al Lu"), NormalizeName("Al Li"), 1); ok {
		t.Errorf("short name matched by distance: %s", k)
	}
}

// A thousand characters of padding around the name: the match still
// works, bounded, and a name buried in text is not "contains".
func TestLongDisplayNames(t *testing.T) {
	john := NormalizeName("John Doe")
	pad := strings.Repeat("\u200b", 1000)
	if k, ok := MatchName(NormalizeName("John Doe"+pad), john, 1); !ok || k != MatchExact {
		t.Errorf("zero-width padding: %q %v", k, ok)
	}
	emoji := strings.Repeat("🐳", 250) // 1 000 bytes of emoji
	if k, ok := MatchName(NormalizeName(emoji+"John Doe"+emoji), john, 1); !ok || k != MatchExact {
		t.Errorf("emoji padding: %q %v", k, ok)
	}
	words := strings.Repeat("lorem ipsum ", 90) // ~1 000 characters
	if _, ok := MatchName(NormalizeName(words+"John Doe"), john, 1); ok {
		t.Error("a name inside a thousand characters of words matched")
	}
	n := NormalizeName(strings.Repeat("x", 5000))
	if len(n.Tokens) != 1 || len(n.Tokens[0]) > MaxNameBytes {
		t.Errorf("not bounded: %d tokens, %d bytes", len(n.Tokens), len(n.Tokens[0]))
	}
	if got := len(NormalizeName(strings.Repeat("a ", 1000)).Tokens); got != maxTokens {
		t.Errorf("%d tokens kept, want %d", got, maxTokens)
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"abc", "abd", 1}, {"abc", "acb", 1},
		{"john", "jon", 1}, {"kitten", "sitting", 3}, {"ab", "", 2}, {"жук", "жак", 1},
	} {
		if got := Distance(tc.a, tc.b, 5); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if got := Distance("kitten", "sitting", 1); got != 2 {
		t.Errorf("limited distance %d, want limit+1", got)
	}
}

func TestCousin(t *testing.T) {
	for _, tc := range []struct {
		d, want string
	}{
		{"example.com", ""},
		{"examp1e.com", CousinHomograph},
		{"exampIe.com", CousinHomograph},
		{"xn--exmple-4nf.com", CousinHomograph}, // exаmple with Cyrillic а
		{"exаmple.com", CousinHomograph},
		{"exmaple.com", CousinTypo},
		{"examples.com", CousinTypo},
		{"example.net", CousinOtherTLD},
		{"example.co.uk", CousinOtherTLD},
		{"example-payroll.com", CousinCombo},
		{"secure-example.com", CousinCombo},
		{"sample.com", ""},
		{"unrelated.org", ""},
		{"", ""},
	} {
		got, ok := Cousin(tc.d, "example.com")
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("Cousin(%q) = %q %v, want %q", tc.d, got, ok, tc.want)
		}
	}
}
