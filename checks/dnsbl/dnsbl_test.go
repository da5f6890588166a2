package dnsbl

import (
	"net/netip"
	"testing"
)

func TestReverseIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.99":       "99.2.0.192",
		"127.0.0.2":        "2.0.0.127",
		"::ffff:192.0.2.1": "1.2.0.192",
		// RFC 5782 §2.4's example.
		"2001:db8:1:2:3:4:567:89ab": "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2",
		"::1":                       "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
	} {
		if got := ReverseIP(netip.MustParseAddr(in)); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// The labels of rspamd's hashed test lists (rspamd-functional fake DNS).
func TestHashLabel(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":            "rciuosbadgpq6b5wt436nhgnwzmfh9w9",
		"testtest.com":           "rcf1ecxtxrrpfncqzsdaiezjkf7f1rzz",
		"xn--80arbjktj.xn--p1ai": "g9ifs3q39oh5jwru94cj7ffaqd6rfyq6",
	} {
		if got := HashLabel(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		match string
		bits  uint32
		in    string
		want  bool
	}{
		{"127.0.0.2", 0, "127.0.0.2", true},
		{"127.0.0.2", 0, "127.0.0.3", false},
		{"127.0.0.4-127.0.0.7", 0, "127.0.0.5", true},
		{"127.0.0.4-127.0.0.7", 0, "127.0.0.8", false},
		{"127.0.0.10/31", 0, "127.0.0.11", true},
		{"127.0.0.10/31", 0, "127.0.0.12", false},
		{"127.0.*.3", 0, "127.0.15.3", true},
		{"127.0.*.3", 0, "127.0.15.2", false},
		{"", 8, "127.0.0.14", true},
		{"", 8, "127.0.0.6", false},
		{"", 64, "127.0.0.64", true},
	} {
		var m matcher
		if tc.bits != 0 {
			m = matcher{wild: [4]int16{-2}, bits: tc.bits}
		} else {
			var err error
			if m, err = parseMatch(tc.match); err != nil {
				t.Fatal(err)
			}
		}
		if got := m.matches(u32(netip.MustParseAddr(tc.in))); got != tc.want {
			t.Errorf("%s/%d vs %s: %v", tc.match, tc.bits, tc.in, got)
		}
	}
	for _, bad := range []string{"127.0.0", "127.0.0.300", "127.0.0.7-127.0.0.4", "::1", "127.*.0", "10.0.0.0/33"} {
		if _, err := parseMatch(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDomain(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM.":           "example.com",
		"мойсайт.рф":             "xn--80arbjktj.xn--p1ai",
		"xn--80arbjktj.xn--p1ai": "xn--80arbjktj.xn--p1ai",
		"mail_1.example.org":     "mail_1.example.org",
		"localhost":              "",
		"192.0.2.1":              "",
		"a..b":                   "",
		"exa mple.com":           "",
		"1.2.3.400":              "",
		"":                       "",
	} {
		got, ok := Domain(in)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestPublic(t *testing.T) {
	for in, want := range map[string]bool{
		"192.0.2.1": true, "8.8.8.8": true, "2001:db8::1": true, "::ffff:203.0.113.1": true,
		"10.1.1.1": false, "127.0.0.1": false, "100.64.1.1": false, "169.254.1.1": false, "::1": false,
		"fd00::1": false, "fe80::1": false, "224.0.0.1": false, "0.1.2.3": false, "255.255.255.255": false,
	} {
		if got := Public(netip.MustParseAddr(in)); got != want {
			t.Errorf("%s: %v", in, got)
		}
	}
}

func TestSymbolFromName(t *testing.T) {
	for in, want := range map[string]string{
		"spamhaus-ZEN": "RBL_SPAMHAUS_ZEN", "SpamCop.net": "RBL_SPAMCOP_NET", "--x--": "RBL_X",
	} {
		if got := SymbolFromName("RBL_", in); got != want {
			t.Errorf("%s: %s", in, got)
		}
	}
}
