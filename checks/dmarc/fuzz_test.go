package dmarc

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseRecord: any TXT string parses to a record within RFC 7489's
// value ranges or to an error, never both, never a panic. The seed corpus
// is testdata/fuzz/FuzzParseRecord.
func FuzzParseRecord(f *testing.F) {
	f.Add("v=DMARC1; p=reject; sp=none; adkim=s; aspf=r; pct=50; rua=mailto:a@example.com!10m; ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600")
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseRecord(txt)
		if (rec == nil) == (err == nil) {
			t.Fatalf("rec %v, err %v", rec, err)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.Is(err, ErrNotDMARC) && !errors.As(err, &se) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if !strings.HasPrefix(strings.TrimLeft(txt, " \t\r\n"), "v") && !strings.HasPrefix(strings.TrimLeft(txt, " \t\r\n"), "V") {
			t.Fatalf("accepted %q without v= first", txt)
		}
		if _, ok := parsePolicy(string(rec.Policy)); !ok {
			t.Fatalf("policy %q", rec.Policy)
		}
		if rec.SubdomainPolicy != "" {
			if _, ok := parsePolicy(string(rec.SubdomainPolicy)); !ok {
				t.Fatalf("sp %q", rec.SubdomainPolicy)
			}
		}
		if rec.Percent < 0 || rec.Percent > 100 {
			t.Fatalf("pct %d", rec.Percent)
		}
		for _, a := range []Alignment{rec.ADKIM, rec.ASPF} {
			if a != Relaxed && a != Strict {
				t.Fatalf("alignment %q", a)
			}
		}
		if rec.FallbackNone && (rec.Policy != PolicyNone || len(rec.RUA) == 0) {
			t.Fatalf("fallback %+v", rec)
		}
	})
}

// FuzzParseAuthor: any From value yields normalised domains and a defined
// problem, never a panic; a value without a problem has exactly one
// domain. The seed corpus is testdata/fuzz/FuzzParseAuthor.
func FuzzParseAuthor(f *testing.F) {
	f.Add(`"Joe Q. Public" <john.q.public@example.com>`)
	f.Fuzz(func(t *testing.T, from string) {
		for _, values := range [][]string{{from}, {from, from}} {
			a := ParseAuthor(values)
			if a.Problem == "" && (len(a.Domains) != 1 || a.Addresses != 1 || a.Fields != 1) {
				t.Fatalf("%q: no problem but %+v", from, a)
			}
			if len(values) == 2 && a.Problem == "" {
				t.Fatalf("two From fields without a problem")
			}
			for _, d := range a.Domains {
				n, err := NormalizeDomain(d)
				if err != nil || n != d || !utf8.ValidString(d) || strings.ToLower(d) != d {
					t.Fatalf("%q: domain %q not normalised (%q, %v)", from, d, n, err)
				}
			}
			if len(a.Domains) > a.Addresses {
				t.Fatalf("%q: %d domains from %d addresses", from, len(a.Domains), a.Addresses)
			}
		}
	})
}
