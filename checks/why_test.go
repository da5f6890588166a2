package checks

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestWhyRendering: a verdict's Why is a typed value the policy compares
// by field; logs, JSON and the X-Chainmail-Verdict header show the words
// they always did.
func TestWhyRendering(t *testing.T) {
	for _, tc := range []struct {
		why  Why
		want string
	}{
		{Why{}, "score"},
		{Why{By: ByRule, Name: "deny-list"}, "rule:deny-list"},
		{Why{By: ByDecisive, Name: "gtube"}, "decisive:gtube"},
		{Why{By: ByError, Name: "spf"}, "error:spf"},
		{Why{By: ByRuleError, Name: "r"}, "error:rule:r"},
		{Why{By: ByTimeout, Name: "whaling"}, "timeout:whaling"},
	} {
		if got := tc.why.String(); got != tc.want {
			t.Errorf("%+v renders %q, want %q", tc.why, got, tc.want)
		}
		b, err := json.Marshal(&Verdict{Why: tc.why})
		if err != nil || !strings.Contains(string(b), `"why":"`+tc.want+`"`) {
			t.Errorf("%+v in JSON: %s %v", tc.why, b, err)
		}
	}
	// A rule's Why reaches the quarantine reason and the header.
	p := DefaultPolicy()
	p.Rules = []Rule{{Name: "q", If: "true", Action: Quarantine}}
	if err := p.Compile(nil); err != nil {
		t.Fatal(err)
	}
	v := p.Decide(&Message{}, nil, nil)
	if v.Why != (Why{By: ByRule, Name: "q"}) || v.QuarantineReason != "chainmail: rule:q" {
		t.Errorf("why %+v, quarantine reason %q", v.Why, v.QuarantineReason)
	}
	var hdr string
	for _, h := range v.Headers {
		if h.Name == "X-Chainmail-Verdict" {
			hdr = h.Value
		}
	}
	if hdr != "quarantine; score=0.00; why=rule:q" {
		t.Errorf("X-Chainmail-Verdict: %q", hdr)
	}
}
