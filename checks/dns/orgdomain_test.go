package dns_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"

	"chainmail/checks/checktest"
	"chainmail/checks/dns"
)

// The one registrable-domain helper: what the DNS lists used to call
// Registrable (ICANN and private sections alike, a public suffix stays
// itself).
func TestOrganizationalDomain(t *testing.T) {
	for in, want := range map[string]string{
		"mail.example.co.uk": "example.co.uk",
		"user.blogspot.com":  "user.blogspot.com",
		"a.b.judo.za.org":    "judo.za.org",
		"co.uk":              "co.uk",
	} {
		if got := dns.OrganizationalDomain(in); got != want {
			t.Errorf("OrganizationalDomain(%s) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]bool{"example.com": true, "www.example.unknowntld": false, "unknowntld": false, "co.uk": true} {
		if _, _, listed := dns.OrganizationalDomainOK(in); listed != want {
			t.Errorf("%s: listed %v, want %v", in, listed, want)
		}
	}
}

// On the Public Suffix List's own vectors (A-labels; the U-label ones
// are the callers' to normalise first), OrganizationalDomainOK says ok
// exactly where the list expects a registrable domain, gives that
// domain, and agrees with golang.org/x/net's EffectiveTLDPlusOne.
func TestOrganizationalDomainPSLVectors(t *testing.T) {
	f, err := os.Open(filepath.Join(checktest.Corpus(t, "publicsuffix-list"), "tests.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		in, want, _ := strings.Cut(line, " ")
		if in == "null" {
			in = ""
		}
		in = strings.ToLower(in)
		if strings.ToLower(want) != want || !isASCII(in) {
			continue
		}
		n++
		org, ok, _ := dns.OrganizationalDomainOK(in)
		got := "null"
		if ok {
			got = org
		} else if org != in {
			t.Errorf("%q: no organizational domain but %q returned", in, org)
		}
		if got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
		etld1, err := publicsuffix.EffectiveTLDPlusOne(in)
		if (err == nil) != ok || ok && etld1 != org {
			t.Errorf("%q: %q %v, EffectiveTLDPlusOne %q %v", in, org, ok, etld1, err)
		}
	}
	if n < 50 {
		t.Fatalf("only %d vectors", n)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
