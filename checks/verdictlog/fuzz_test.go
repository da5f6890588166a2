package verdictlog

import (
	"strings"
	"testing"
	"unicode/utf8"

	"chainmail/checks"
)

// FuzzSanitize: whatever goes in, what comes out is valid UTF-8 without a
// line break, clean input is kept, and sanitising twice changes nothing.
// The whole per-message line set is fuzzed through the subject too.
func FuzzSanitize(f *testing.F) {
	f.Add("plain subject")
	f.Add("a\r\nb\rc\nd")
	f.Add("\xff\xfe invalid \xc3")
	f.Add("nel\u0085 ls\u2028 ps\u2029")
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if strings.ContainsAny(out, "\r\n") {
			t.Fatalf("Sanitize(%q) = %q holds a line break", s, out)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("Sanitize(%q) = %q is not valid UTF-8", s, out)
		}
		if Sanitize(out) != out {
			t.Fatalf("Sanitize is not idempotent on %q", s)
		}
		clean := utf8.ValidString(s)
		for _, r := range s {
			if unsafeRune(r) {
				clean = false
			}
		}
		if clean && out != s {
			t.Fatalf("clean %q changed to %q", s, out)
		}
		if !clean && out == s {
			t.Fatalf("unclean %q kept", s)
		}

		m := msg(s, "192.0.2.1", s, []string{s, "x@" + s}, s)
		v := &checks.Verdict{Spam: true, Action: checks.Tempfail, Why: checks.Why{By: checks.ByRule, Name: s}, Listed: []string{s},
			Symbols: []checks.Symbol{{Name: s, Score: 1}},
			Results: checks.Results{{Check: s, Status: checks.StatusError, Reason: s}}}
		for _, line := range Lines(m, v) {
			if strings.ContainsAny(line, "\r\n") || !utf8.ValidString(line) {
				t.Fatalf("line %q from input %q", line, s)
			}
		}
	})
}
