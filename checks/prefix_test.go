package checks

import "testing"

func TestParsePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1/32",
		" 192.0.2.0/24 ":          "192.0.2.0/24",
		"192.0.2.77/24":           "192.0.2.0/24",
		"2001:db8::1":             "2001:db8::1/128",
		"2001:db8::1/32":          "2001:db8::/32",
		"::ffff:192.0.2.1":        "192.0.2.1/32",
		"::ffff:10.0.0.0/104":     "10.0.0.0/8",
		"::ffff:198.51.100.9/120": "198.51.100.0/24",
		"fe80::1%eth0":            "fe80::1/128",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "300.1.1.1", "192.0.2.0/33", "example.com", "192.0.2.0/"} {
		if p, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q) = %v, want an error", in, p)
		}
	}
}
