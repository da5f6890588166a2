package verdictlog

import (
	"net"
	"strings"
	"testing"

	"chainmail/checks"
)

// An IfBlocked event is logged only when the message is blocked
// (quarantine, discard, reject; not in monitor mode), whatever decided
// the verdict; the check's results are not changed.
func TestIfBlockedEvents(t *testing.T) {
	m := &checks.Message{Envelope: checks.Envelope{ClientIP: net.ParseIP("192.0.2.1"), MailFrom: "a@example.com", Rcpts: []string{"b@example.org"}, QueueID: "4Q1"}}
	mk := func() checks.Results {
		return checks.Results{{Check: "whaling", Status: checks.StatusFail, Events: []checks.Event{
			{Name: "note", Line: "always"},
			{Name: "whaling", Line: "blocked", IfBlocked: true},
		}}}
	}
	events := func(lines []string) string {
		var out []string
		for _, l := range lines {
			if l == "always" || l == "blocked" {
				out = append(out, l)
			}
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		action  checks.Action
		monitor bool
		want    string
	}{
		{checks.Quarantine, false, "always,blocked"},
		{checks.Reject, false, "always,blocked"},
		{checks.Discard, false, "always,blocked"},
		{checks.Tag, false, "always"},
		{checks.Accept, false, "always"},
		{checks.Tempfail, false, "always"},
		{checks.Quarantine, true, "always"},
	} {
		p := checks.DefaultPolicy()
		p.Monitor = tc.monitor
		if tc.action != checks.Accept {
			p.Rules = []checks.Rule{{Name: "r", If: `whaling.status == "fail"`, Action: tc.action}}
		}
		rs := mk()
		v := p.Decide(m, rs, []string{"whaling"})
		if got := events(Lines(m, v)); got != tc.want {
			t.Errorf("%v monitor=%v: events %q, want %q", tc.action, tc.monitor, got, tc.want)
		}
		if len(rs[0].Events) != 2 {
			t.Errorf("the chain's results were changed: %v", rs[0].Events)
		}
	}
}
