package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/spamassassin/spamdtest"
)

// TestSpamAssassinE2E: through serve's configuration loader and the milter
// protocol, with the real spamd and log.engine left at its default, a
// GTUBE message is rejected and its verdict line names SpamAssassin with
// SpamAssassin's rule names and scores, matching the MailScanner parsers'
// regex; a ham of the public corpus is accepted with a "not spam,
// SpamAssassin" line; with spamd stopped the next message is accepted,
// unscored, its line naming chainmail.
func TestSpamAssassinE2E(t *testing.T) {
	sd, err := spamdtest.Start()
	if err != nil {
		if err == spamdtest.ErrNotInstalled {
			t.Skip("!!! SKIPPING SPAMASSASSIN TEST: " + err.Error() + " !!!")
		}
		t.Fatal(err)
	}
	t.Cleanup(sd.Stop)

	tmp := t.TempDir()
	logPath := filepath.Join(tmp, "mail.log")
	cfg := fmt.Sprintf(`log:
  sinks:
    - {type: file, path: %q}
checks:
  - name: spamassassin
    enabled: true
    options: {address: %q}
`, logPath, "unix:"+sd.Socket)
	srv := startServing(t, cfg, t.Logf)

	env := func(id string) checks.Envelope {
		return checks.Envelope{ClientIP: net.ParseIP("192.0.2.25"), HELO: "mail.sender.test", MailFrom: "sender@sender.test",
			Rcpts: []string{"recipient@example.org"}, QueueID: id}
	}
	gtube := "From: sender@sender.test\r\nTo: recipient@example.org\r\nSubject: test\r\nDate: Mon, 7 Dec 2026 06:00:00 +0000\r\nMessage-ID: <4SaGtube@sender.test>\r\n\r\n" +
		"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
	if out := srv.Send(t, env("4SaGtube"), gtube); out.Action != "reject" {
		t.Errorf("GTUBE: %+v, want reject", out)
	}
	hams, _ := filepath.Glob(filepath.Join(checktest.Corpus(t, "spamassassin-public-corpus-sample"), "easy-ham-1", "*.eml"))
	if len(hams) == 0 {
		t.Fatal("no ham in the corpus")
	}
	raw, err := os.ReadFile(hams[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, rest, ok := strings.Cut(string(raw), "\n"); ok && strings.HasPrefix(string(raw), "From ") {
		raw = []byte(rest) // the mbox line no MTA sends
	}
	if out := srv.Send(t, env("4SaHam"), string(raw)); out.Action != "accept" && out.Action != "continue" {
		t.Errorf("ham: %+v, want accept", out)
	}
	sd.Stop()
	if out := srv.Send(t, env("4SaDown"), gtube); out.Action != "accept" && out.Action != "continue" {
		t.Errorf("spamd down: %+v, want accept", out)
	}

	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	var re string
	for _, p := range readSIEMPatterns(t) {
		if p.event == "spam-report" {
			re = p.regex
			if line := lineWith(log, "Message 4SaGtube "); !p.re.MatchString(line) {
				t.Errorf("GTUBE line does not match the MailScanner regex\n  line:  %s\n  regex: %s", line, p.regex)
			}
		}
	}
	if re == "" {
		t.Error("patterns.tsv has no spam-report row")
	}
	for id, want := range map[string][]string{
		"4SaGtube": {"to example.org is spam, SpamAssassin (not cached, score=10", "GTUBE 1000.00", "NO_RELAYS 0.00"},
		"4SaHam":   {"is not spam, SpamAssassin (not cached, score="},
		"4SaDown":  {"is not spam, chainmail (not cached, score=0.00, required 5.00)"},
	} {
		line := lineWith(log, "Message "+id+" ")
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: line %q, want it to contain %q", id, line, w)
			}
		}
	}
}

// lineWith returns the text after "TAG[PID]: " of the first log line
// containing s.
func lineWith(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, s); i >= 0 {
			return l[i:]
		}
	}
	return ""
}
