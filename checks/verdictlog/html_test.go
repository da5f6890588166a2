package verdictlog

import (
	"encoding/json"
	"testing"

	"chainmail/checks"
)

// The html check's lines, MailScanner's Content Checks wording, and their
// JSON facts (the same keys on every path).
func TestHTMLEvents(t *testing.T) {
	for _, c := range []struct {
		ev         checks.Event
		line, json string
	}{
		{HTMLDisarmed("Q1", "script", 2), "Content Checks: Detected and have disabled HTML script tags in Q1",
			`{"kind":"script","count":2,"action":"disarmed","detail":""}`},
		{HTMLDisarmed("", "web-bug", 1), "Content Checks: Detected and have disabled web bugs in NOQUEUE",
			`{"kind":"web-bug","count":1,"action":"disarmed","detail":""}`},
		{HTMLFound("Q1", "object", 1), "Content Checks: Detected HTML object codebase tags in Q1 (1)",
			`{"kind":"object","count":1,"action":"found","detail":""}`},
		{HTMLUnscannable("Q1", "1.2: too big\n(over 4 MiB)"), "Content Checks: Could not check HTML in Q1: 1.2: too big (over 4 MiB)",
			`{"kind":"","count":0,"action":"unscannable","detail":"1.2: too big (over 4 MiB)"}`},
	} {
		if c.ev.Name != "html" || c.ev.Line != c.line {
			t.Errorf("got %s %q, want html %q", c.ev.Name, c.ev.Line, c.line)
		}
		b, _ := json.Marshal(c.ev.Facts)
		if string(b) != c.json {
			t.Errorf("facts %s, want %s", b, c.json)
		}
	}
	if Family("html") != "attachment" {
		t.Errorf("html is in family %q, want attachment (log.tags)", Family("html"))
	}
}
