package dmarc

import (
	"context"
	"testing"

	"chainmail/checks"
	"chainmail/checks/auth"
)

// TestTakesTypedResults: DMARC takes what spf and dkim found as typed
// values (checks/auth), not facts by name: results without any facts
// still give their passes, so renaming a fact cannot lose them.
func TestTakesTypedResults(t *testing.T) {
	dkimPass := checks.Result{Check: "dkim", Status: checks.StatusPass, Auth: auth.DKIM{Signatures: []auth.Signature{
		{Domain: "other.net", Status: checks.StatusFail},
		{Domain: "mail.example.com", Selector: "s", Status: checks.StatusPass},
	}}}
	spfPass := checks.Result{Check: "spf", Status: checks.StatusPass, Auth: auth.SPF{Identity: auth.IdentityMailFrom, Domain: "bounce.example.com"}}
	spfFail := checks.Result{Check: "spf", Status: checks.StatusFail, Auth: auth.SPF{Identity: auth.IdentityMailFrom, Domain: "other.net"}}
	dkimNone := checks.Result{Check: "dkim", Status: checks.StatusNone}
	for _, tc := range []struct {
		name  string
		prior checks.Results
		want  checks.Status
	}{
		{"dkim pass, no facts", checks.Results{dkimPass, spfFail}, checks.StatusPass},
		{"spf pass, no facts", checks.Results{dkimNone, spfPass}, checks.StatusPass},
		{"neither", checks.Results{dkimNone, spfFail}, checks.StatusFail},
	} {
		r := newCheck(t, DefaultConfig(), zone()).Check(context.Background(), msg("joe@example.com"), tc.prior)
		if r.Status != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.name, r.Status, r.Reason, tc.want)
		}
	}
}
