package dkim

import (
	"encoding/json"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/auth"

	"github.com/emersion/go-msgauth/dkim"
)

// The facts rules see keep their names and plain values while the checks
// after dkim take the typed auth.DKIM: a rule on them still matches, and
// the JSON of the per-signature results is what it was (statuses as
// strings).
func TestFactsForRules(t *testing.T) {
	testKeys(t)
	res := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, edKey.Public())}}}
	c := newCheck(t, DefaultConfig(), res)
	signed := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "sel", Signer: edKey})
	r := run(t, c, signed)
	d, ok := auth.DKIMOf(checks.Results{r})
	if !ok || d.Status != checks.StatusPass || len(d.Signatures) != 1 || d.Signatures[0].Status != checks.StatusPass {
		t.Fatalf("typed result %+v", d)
	}
	p := checks.DefaultPolicy()
	p.Rules = []checks.Rule{{Name: "signed", If: `"example.com" in dkim.domains_pass && dkim.domains == ["example.com"] && dkim.domains_temperror == [] && dkim.signatures == 1`, Action: checks.Quarantine}}
	if v := p.Decide(&checks.Message{}, checks.Results{r}, []string{Name}); v.Why.String() != "rule:signed" {
		t.Errorf("rule on dkim facts: %s (%s)", v.Action, v.Why)
	}
	b, err := json.Marshal(r.Facts["results"])
	if err != nil || !strings.HasPrefix(string(b), `[{"domain":"example.com","selector":"sel","algorithm":"ed25519-sha256","status":"pass"`) {
		t.Errorf("results fact JSON %s %v", b, err)
	}
}

func TestDKIMDomains(t *testing.T) {
	d := auth.DKIM{Signatures: []auth.Signature{
		{Domain: "a.example", Status: checks.StatusPass}, {Domain: "b.example", Status: checks.StatusTemperror},
		{Domain: "a.example", Status: checks.StatusFail}, {Status: checks.StatusPermerror}, {Domain: "c.example", Status: checks.StatusPass},
	}}
	for _, tc := range []struct {
		got  []string
		want string
	}{
		{d.Domains(checks.StatusPass), "a.example c.example"},
		{d.Domains(checks.StatusTemperror), "b.example"},
		{d.Domains(), "a.example b.example c.example"},
		{auth.DKIM{}.Domains(checks.StatusPass), ""},
	} {
		if got := strings.Join(tc.got, " "); got != tc.want || tc.got == nil {
			t.Errorf("Domains = %q (nil %v), want %q", got, tc.got == nil, tc.want)
		}
	}
}
