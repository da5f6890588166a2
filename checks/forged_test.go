package checks

import (
	"strings"
	"testing"
)

func TestClaimsAuthserv(t *testing.T) {
	for _, tc := range []struct {
		v    string
		ours bool
	}{
		{"mx.example; dkim=pass", true},
		{"MX.Example; dkim=pass", true},
		{"  mx.example ; none", true},
		{"mx.example 1; dkim=pass", true},
		{"(comment) mx.example; dkim=pass", true},
		{"(nested (comment) \\) here) mx.example; dkim=pass", true},
		{`"mx.example"; dmarc=pass`, true},
		{`"mx\.example"; dmarc=pass`, true},
		{"mx.example(c); dkim=pass", true},
		{"(unterminated mx.example; dkim=pass", true},
		{`"unterminated mx.example; dkim=pass`, true},
		{"other.example; dkim=pass", false},
		{"mx.example.evil; dkim=pass", false},
		{"(mx.example) other.example; dkim=pass", false},
		{`"other.example"; spf=pass smtp.mailfrom=mx.example`, false},
	} {
		if got := claimsAuthserv(tc.v, "mx.example"); got != tc.ours {
			t.Errorf("%q: ours %v, want %v", tc.v, got, tc.ours)
		}
	}
}

// Fields of one name come highest index first; names are counted
// case-insensitively, as the milter change-header command counts.
func TestForgedHeadersOrder(t *testing.T) {
	got := ForgedHeaders([]HeaderField{
		{Name: "Authentication-Results", Value: "mx.example; dkim=pass"},
		{Name: "X-Spam-Status", Value: "No"},
		{Name: "authentication-results", Value: "other; dkim=pass"},
		{Name: "AUTHENTICATION-RESULTS", Value: "(c) mx.example; dkim=pass"},
		{Name: "Subject", Value: "x"},
		{Name: "X-Chainmail-Verdict", Value: "accept"},
	}, "mx.example")
	var s []string
	for _, r := range got {
		s = append(s, strings.ToLower(r.Name)+"["+string(rune('0'+r.Index))+"]")
	}
	if want := "authentication-results[3] authentication-results[1] x-chainmail-verdict[1] x-spam-status[1]"; strings.Join(s, " ") != want {
		t.Errorf("got %v, want %s", s, want)
	}
}

// FuzzAuthservID: reading the authserv-id never panics, and an id read
// from a value is claimed by it.
func FuzzAuthservID(f *testing.F) {
	for _, s := range []string{"mx.example; dkim=pass", `(a (b)) "q\"x"; none`, "(", `"`, "\\", "x 1;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, ok := authservID(v)
		if ok && id != "" && !claimsAuthserv(v, id) {
			t.Errorf("%q: id %q read but not claimed", v, id)
		}
		ForgedHeaders([]HeaderField{{Name: "Authentication-Results", Value: v}}, "mx.example")
	})
}
