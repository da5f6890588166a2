package dmarc

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks/checktest"
	"chainmail/checks/dns"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// The public corpora are read in place; nothing is copied into the
// repository.

type opendmarcTables struct {
	Parse []struct {
		Record         string `json:"record"`
		ExpectedStatus string `json:"expected_status"`
	} `json:"dmarc_record_parse"`
	Alignment []struct {
		DomainA  string `json:"domain_a"`
		DomainB  string `json:"domain_b"`
		Mode     string `json:"mode"`
		Expected int    `json:"expected"`
	} `json:"alignment"`
	From []struct {
		Raw            string `json:"raw"`
		ExpectedDomain string `json:"expected_domain"`
	} `json:"from_header_domain_extraction"`
}

func loadOpenDMARC(t *testing.T) opendmarcTables {
	t.Helper()
	dir := checktest.Corpus(t, "opendmarc-libtests")
	b, err := os.ReadFile(filepath.Join(dir, "opendmarc-libtests.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tab opendmarcTables
	if err := json.Unmarshal(b, &tab); err != nil {
		t.Fatal(err)
	}
	if len(tab.Parse) == 0 || len(tab.Alignment) == 0 || len(tab.From) == 0 {
		t.Fatal("empty OpenDMARC tables")
	}
	return tab
}

// openDMARCStatus is OpenDMARC's parse status for our result.
// DMARC_PARSE_ERROR_BAD_VALUE covers both our SyntaxError and a record that
// parses with Warnings (malformed reporting tags, which we do not let
// switch the policy off).
func openDMARCStatus(rec *Record, err error) string {
	switch {
	case err == nil && len(rec.Warnings) == 0 && !rec.FallbackNone:
		return "DMARC_PARSE_OKAY"
	case err == nil:
		return "DMARC_PARSE_ERROR_BAD_VALUE"
	case errors.Is(err, ErrNotDMARC):
		return "DMARC_PARSE_ERROR_BAD_VERSION" // or _EMPTY, below
	case errors.Is(err, ErrNoPolicy):
		return "DMARC_PARSE_ERROR_NO_REQUIRED_P"
	}
	return "DMARC_PARSE_ERROR_BAD_VALUE"
}

// parseExceptions are the records where we differ from OpenDMARC, with
// the reason.
var parseExceptions = map[string]string{
	// OpenDMARC takes the first letter of p=; RFC 7489 §6.3 defines exactly
	// "none", "quarantine" and "reject". Without rua= the record is
	// unusable (§6.6.3 step 6.2): permerror, DMARC_BAD_POLICY.
	"v=DMARC1; p=n;": "abbreviated p=n is not an RFC 7489 policy value",
}

func TestOpenDMARCRecordParse(t *testing.T) {
	tab := loadOpenDMARC(t)
	match, warnOnly := 0, 0
	for _, c := range tab.Parse {
		rec, err := ParseRecord(c.Record)
		got := openDMARCStatus(rec, err)
		want := c.ExpectedStatus
		if want == "DMARC_PARSE_ERROR_EMPTY" && errors.Is(err, ErrNotDMARC) {
			got = want
		}
		if why, ok := parseExceptions[c.Record]; ok {
			if got == want {
				t.Errorf("%q: listed as an exception (%s) but matches", c.Record, why)
			}
			t.Logf("exception %q: OpenDMARC %s, ours %s (%v): %s", c.Record, want, got, err, why)
			continue
		}
		if got != want {
			t.Errorf("%q: %s, want %s (rec %+v, err %v)", c.Record, got, want, rec, err)
			continue
		}
		match++
		if err == nil && rec != nil && len(rec.Warnings) > 0 {
			warnOnly++
			t.Logf("%q: BAD_VALUE as a warning only, policy %s still applies: %v", c.Record, rec.Policy, rec.Warnings)
		}
	}
	t.Logf("dmarc_record_parse: %d of %d match OpenDMARC (%d of them as warnings), %d exceptions", match, len(tab.Parse), warnOnly, len(parseExceptions))
}

func TestOpenDMARCAlignment(t *testing.T) {
	tab := loadOpenDMARC(t)
	for _, c := range tab.Alignment {
		mode := Relaxed
		if c.Mode == "DMARC_RECORD_A_STRICT" {
			mode = Strict
		}
		want := c.Expected == 0
		if got := Aligned(c.DomainA, c.DomainB, mode); got != want {
			t.Errorf("Aligned(%q, %q, %s) = %v, want %v", c.DomainA, c.DomainB, mode, got, want)
		}
		// Symmetric.
		if got := Aligned(c.DomainB, c.DomainA, mode); got != want {
			t.Errorf("Aligned(%q, %q, %s) = %v, want %v", c.DomainB, c.DomainA, mode, got, want)
		}
	}
	t.Logf("alignment: %d cases", len(tab.Alignment))
}

func TestOpenDMARCFromDomain(t *testing.T) {
	tab := loadOpenDMARC(t)
	multi := 0
	for _, c := range tab.From {
		a := ParseAuthor([]string{c.Raw})
		if len(a.Domains) == 0 || a.Domains[0] != c.ExpectedDomain {
			t.Errorf("%q: domains %v, want %s first", c.Raw, a.Domains, c.ExpectedDomain)
			continue
		}
		if len(a.Domains) > 1 {
			// OpenDMARC uses the first address; we return all and the check
			// applies the strictest outcome (RFC 7489 §6.6.1).
			multi++
			t.Logf("exception %q: OpenDMARC %s, ours %v (problem %q)", c.Raw, c.ExpectedDomain, a.Domains, a.Problem)
		} else if a.Problem != "" {
			t.Logf("%q: %s, flagged %q", c.Raw, c.ExpectedDomain, a.Problem)
		}
	}
	t.Logf("from_header_domain_extraction: %d cases, first domain always OpenDMARC's; %d also yield a second domain", len(tab.From), multi)
}

// TestPublicSuffixVectors checks golang.org/x/net/publicsuffix, through
// NormalizeDomain, against the list's own test vectors: the Organizational
// Domain of RFC 7489 §3.2 is exactly the expected registrable domain.
func TestPublicSuffixVectors(t *testing.T) {
	dir := checktest.Corpus(t, "publicsuffix-list")
	f, err := os.Open(filepath.Join(dir, "tests.txt"))
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
			in = "" // the "null input" vector
		}
		got := "null"
		if d, err := NormalizeDomain(in); err == nil {
			if org, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
				got = org
				if dns.OrganizationalDomain(d) != org {
					t.Errorf("OrganizationalDomain(%q) = %q, EffectiveTLDPlusOne %q", d, dns.OrganizationalDomain(d), org)
				}
				if !isASCII(in) {
					got, _ = idna.Lookup.ToUnicode(org)
				}
			}
		}
		if got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
		n++
	}
	t.Logf("publicsuffix tests.txt: %d vectors", n)
}
