package verdictlog

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"chainmail/checks"
)

// TestEngineFromVerdict: with log.engine left empty, the verdict line
// names the scanner that scored the message (Verdict.Engine), else
// chainmail; a configured engine always wins.
func TestEngineFromVerdict(t *testing.T) {
	m := &checks.Message{Envelope: checks.Envelope{QueueID: "4SaQ", ClientIP: net.ParseIP("192.0.2.1"), MailFrom: "a@example.com", Rcpts: []string{"b@example.org"}}}
	sa := &checks.Verdict{Spam: true, Score: 6.58, Required: 5, Engine: "SpamAssassin", Symbols: []checks.Symbol{{Name: "BAYES_50", Score: 0.8}, {Name: "MISSING_DATE", Score: 2.7}}}
	plain := &checks.Verdict{Spam: true, Score: 6.58, Required: 5}
	const head = "Message 4SaQ from 192.0.2.1 (a@example.com) to example.org is spam, "
	for _, c := range []struct {
		cfg  Config
		v    *checks.Verdict
		want string
	}{
		{Config{}, sa, head + "SpamAssassin (not cached, score=6.58, required 5.00, BAYES_50 0.80, MISSING_DATE 2.70)"},
		{Config{}, plain, head + "chainmail (not cached, score=6.58, required 5.00)"},
		{Config{Engine: "chainmail"}, sa, head + "chainmail (not cached, score=6.58, required 5.00, BAYES_50 0.80, MISSING_DATE 2.70)"},
		{Config{Engine: "Scanner"}, plain, head + "Scanner (not cached, score=6.58, required 5.00)"},
	} {
		lines := c.cfg.Lines(m, c.v)
		if !hasLine(lines, c.want) {
			t.Errorf("engine %q, verdict engine %q: lines\n  %s\nwant\n  %s", c.cfg.Engine, c.v.Engine, strings.Join(lines, "\n  "), c.want)
		}
		// The Logger writes what Lines gives.
		var buf bytes.Buffer
		l := newTestLogger(t, c.cfg, &buf)
		if got := l.Message(m, c.v); !hasLine(got, c.want) {
			t.Errorf("Logger with engine %q: %q", c.cfg.Engine, got)
		}
	}
}

func hasLine(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}
