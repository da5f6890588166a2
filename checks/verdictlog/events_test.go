package verdictlog

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"

	"chainmail/checks"
)

// Each event a check hands over has its line and the JSON facts it has on
// every path, with values taken from a message sanitised.
func TestEventConstructors(t *testing.T) {
	cases := []struct {
		ev    checks.Event
		name  string
		line  string
		facts []string
	}{
		{Infected("Q1", "192.0.2.7", "Eicar-Test", "clamd"), "infected", "Infected message Q1 came from 192.0.2.7", []string{"client_ip", "scanner", "virus"}},
		{Filename("Q1", FileHit{Filename: "a\nb.exe", Path: "2", Action: "deny", Text: "File extension “exe” not allowed", Rule: "filename.rules:25"}),
			"filename", "Filename Checks: File extension “exe” not allowed (Q1 a b.exe)", []string{"action", "file", "log_text", "path", "rule"}},
		{Filetype("", FileHit{Filename: "x.pdf", Text: "File type “executable” not allowed"}),
			"filetype", "Filetype Checks: File type “executable” not allowed (NOQUEUE x.pdf)", []string{"action", "file", "log_text", "path", "rule"}},
		{AttachmentOverflow("Q1", 3), "attachment", "Attachment Checks: 3 more findings not logged (Q1)", []string{"more"}},
		{AttachmentFinding{Category: "unscannable", Kind: "encrypted", Path: "2", File: "a.zip", Shown: "a.zip", Detail: "password-protected archive"}.Event("Q1"),
			"attachment", "Attachment Checks: unscannable: password-protected archive (Q1 a.zip)", []string{"category", "detail", "file", "kind", "path"}},
		{Whaling("Q1", "John Doe", "<john@example.org>", "confusable", "ceo@free.test"), "whaling",
			"Message Q1 has been blocked as Whaling attack to John Doe john@example.org", []string{"from", "match", "target", "target_address"}},
		{SDRDomains{HELO: "h.test"}.Event("Q1"), "sdr_domains",
			"MID Q1 SDR: Domains for which SDR is requested: reverse DNS host: Not Present, helo: h.test, env-from: Not Present, header-from: Not Present, reply-to: Not Present",
			[]string{"env_from", "header_from", "helo", "reply_to", "reverse_dns"}},
		{SDRVerdict{Verdict: "poor", ThreatCategory: "Spam", SuspectedDomains: []string{"x.test"}, YoungestDomain: "x.test", AgeDays: 209, AgeKnown: true}.Event("Q1"),
			"sdr_verdict", "MID Q1 SDR: Consolidated Sender Reputation: Poor, Threat Category: Spam, Suspected Domain(s) : x.test. Youngest Domain Age: 6 months 29 days for domain: x.test",
			[]string{"age_days", "evidence", "suspected", "threat", "trust", "verdict", "youngest_domain"}},
		{SDREvidence("", "x.test registered 2 days ago (-4)"), "sdr_evidence", "MID NOQUEUE SDR: Evidence: x.test registered 2 days ago (-4)", nil},
		{Greylist{Action: "defer", Reason: "new", ClientAddress: "192.0.2.7", ClientNet: "192.0.2.0/24", HELO: "h", Recipient: "b@example.org"}.Event(),
			"greylist", "module=Greylist, action=defer, reason=new, client_address=192.0.2.7, client_net=192.0.2.0/24, helo=h, sender=<>, recipient=b@example.org",
			[]string{"action", "client_address", "client_net", "helo", "reason", "recipient", "sender"}},
		{ListWarning{Label: "RBL", List: "zen", Zone: "zen.test", Value: "192.0.2.7", Queried: true, Reason: "SERVFAIL"}.Event(),
			"rbl_fail", "RBL warning: list zen (zen.test) did not answer for 192.0.2.7: SERVFAIL; not counted as a listing", []string{"list", "reason", "value", "zone"}},
		{ListWarning{Label: "URIBL", List: "dbl", Zone: "dbl.test", Value: "x.test", Reason: "suspended"}.Event(),
			"uribl_fail", "URIBL warning: list dbl (dbl.test) not queried for x.test: suspended; not counted as a listing", []string{"list", "reason", "value", "zone"}},
	}
	for _, c := range cases {
		if c.ev.Name != c.name || c.ev.Line != c.line {
			t.Errorf("%s: got %s %q\nwant line %q", c.name, c.ev.Name, c.ev.Line, c.line)
		}
		var keys []string
		if c.ev.Facts != nil {
			b, err := json.Marshal(c.ev.Facts)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
		}
		if !reflect.DeepEqual(keys, c.facts) {
			t.Errorf("%s: facts %v, want %v", c.name, keys, c.facts)
		}
	}
	if ev := Whaling("Q1", "x", "y@z", "", ""); !ev.IfBlocked {
		t.Error("the whaling line says the message was blocked: it must be IfBlocked")
	}
}
