package checks

import (
	"strconv"
	"testing"
)

// FuzzParsePrefix: whatever it accepts is a valid, masked prefix of an
// unmapped address without a zone, and parsing its own text gives it back.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "192.0.2.0/24", "::ffff:10.0.0.0/104", "fe80::1%eth0", "2001:db8::/32", "300.1.1.1", "/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %v", s, p)
		}
		if q, err := ParsePrefix(p.String()); err != nil || q != p {
			t.Fatalf("ParsePrefix(%q) = %v, again %v, %v", s, p, q, err)
		}
	})
}

// FuzzParseSize: an accepted size is never negative, and its bare byte
// count reads back the same.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1048576", "512KiB", "10MiB", "2 GiB", "9223372036854775807", "8589934592G", "10XB", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if v, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || v != n {
			t.Fatalf("ParseSize(%q) = %d; its bytes read back as %d, %v", s, n, v, err)
		}
	})
}
