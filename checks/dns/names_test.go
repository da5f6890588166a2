package dns

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestQueryName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"example.com", "example.com.", true},
		{"Example.COM.", "Example.COM.", true},
		{".", ".", true},
		{"macro%percent  space%20url-space.example.com", `macro%percent\ \ space%20url-space.example.com.`, true},
		{`back\slash.example`, `back\\slash.example.`, true},
		{"nul\x00.example", `nul\000.example.`, true},
		{"ctl\r8bit\xef.example", `ctl\0138bit\239.example.`, true},
		{"foo:bar/baz.example.com", "foo:bar/baz.example.com.", true},
		{"", "", false},
		{"a..example", "", false},
		{".example", "", false},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example.", true},
		{strings.Repeat("a", 64) + ".example", "", false},
		{strings.Repeat("abcdefghi.", 25) + "abc", strings.Repeat("abcdefghi.", 25) + "abc.", true}, // 255 octets
		{strings.Repeat("abcdefghi.", 25) + "abcd", "", false},
	} {
		got, ok := queryName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("queryName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		// What we send is what miekg/dns gives back when it reads the
		// name from a message: the two compare as strings.
		buf := make([]byte, 300)
		n, err := mdns.PackDomainName(got, buf, 0, nil, false)
		if err != nil {
			t.Errorf("%q does not pack: %v", got, err)
			continue
		}
		back, _, err := mdns.UnpackDomainName(buf[:n], 0)
		if err != nil || back != got {
			t.Errorf("%q round-trips as %q, %v", got, back, err)
		}
	}
}

func TestUnescapeText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":           "plain",
		`a\"b`:            `a"b`,
		`a\\b`:            `a\b`,
		`\239\187\191x`:   "\xef\xbb\xbfx",
		`\000`:            "\x00",
		`\999`:            "999",
		`trailing\`:       `trailing\`,
		`\12`:             "12",
		`mixed \065\066C`: "mixed ABC",
	} {
		if got := unescapeText(in); got != want {
			t.Errorf("unescapeText(%q) = %q, want %q", in, got, want)
		}
	}
}
