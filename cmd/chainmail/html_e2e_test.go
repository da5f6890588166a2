package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks"
)

// TestHTMLDisarmedThroughMilter: a message whose HTML part carries a
// script reaches the MTA, over the milter protocol, without it; every
// other byte of the body is the one sent, and the verdict log says what
// was disabled.
func TestHTMLDisarmedThroughMilter(t *testing.T) {
	tmp := t.TempDir()
	logPath := filepath.Join(tmp, "mail.log")
	cfg := fmt.Sprintf(`log:
  sinks:
    - {type: file, path: %q}
checks:
  - name: attachment
  - name: html
`, logPath)
	srv := startServing(t, cfg, t.Logf)

	before := "This is a multi-part message in MIME format.\r\n" +
		"--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"See the HTML version.\r\n" +
		"--alt\r\n" +
		"Content-Type: text/html; charset=us-ascii\r\n" +
		"Content-Transfer-Encoding: 7bit\r\n\r\n"
	html := "<html><body><p>Your invoice</p>\r\n<script>window.location='http://evil.example/'</script>\r\n<p>Regards</p></body></html>"
	after := "\r\n--alt--\r\n\r\n" +
		"--outer\r\n" +
		"Content-Type: text/plain; name=\"notes.txt\"\r\n" +
		"Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n" +
		"plain notes\r\n" +
		"--outer--\r\n"
	header := "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: invoice\r\nMessage-ID: <html1@partner.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.9"), HELO: "mail.partner.test", MailFrom: "alice@partner.test",
		Rcpts: []string{"bob@example.org"}, QueueID: "4HtmlDisarm1"}
	out := srv.Send(t, env, header+before+html+after)
	if out.Action != "accept" {
		t.Fatalf("action %s %s", out.Action, out.Reply)
	}
	wantHTML := "<html><body><p>Your invoice</p>\r\n\r\n<p>Regards</p></body></html>"
	want := strings.ReplaceAll(before+wantHTML+after, "\r\n", "\n") // the client reads the MTA's line ends
	if string(out.Body) != want {
		t.Errorf("delivered body\n%s\nwant\n%s", out.Body, want)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "Content Checks: Detected and have disabled HTML script tags in 4HtmlDisarm1\n") {
		t.Errorf("no disarm line in the log:\n%s", data)
	}

	// A message with nothing to disarm keeps its body: no replacement.
	env.QueueID = "4HtmlClean1"
	out = srv.Send(t, env, header+before+"<p>hello</p>"+after)
	if out.Action != "accept" || out.Body != nil {
		t.Errorf("clean HTML: action %s, body replaced: %q", out.Action, out.Body)
	}
}
