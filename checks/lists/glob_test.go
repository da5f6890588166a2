package lists

import "testing"

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "a/b@c", true},
		{"a*", "a", true},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true}, // ? is one character, not one byte
		{"*@*.x", "u@a.b.x", true},
		{"*@*.x", "u@x", false},
		{"*b*b", "abab", true},
		{"*b*b", "abba", false},
		{"[ab]", "a", false}, // no character classes: [ is itself
		{"[ab]", "[ab]", true},
		{`a\*`, `a\b`, true},
		{"**", "anything", true},
	} {
		if got := glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
