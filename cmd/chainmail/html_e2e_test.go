package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/quotedprintable"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/milter/mtatest"
)

// The body of a multipart/mixed message (boundary "outer") whose HTML
// alternative carries a script, in pieces: what comes before the HTML
// text, the HTML, the HTML as the html check disarms it, and a plain
// attachment after it (before the closing delimiter or a next part).
const (
	invoiceBefore = "This is a multi-part message in MIME format.\r\n" +
		"--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"See the HTML version.\r\n" +
		"--alt\r\n" +
		"Content-Type: text/html; charset=us-ascii\r\n" +
		"Content-Transfer-Encoding: 7bit\r\n\r\n"
	invoiceHTML     = "<html><body><p>Your invoice</p>\r\n<script>window.location='http://evil.example/'</script>\r\n<p>Regards</p></body></html>"
	invoiceDisarmed = "<html><body><p>Your invoice</p>\r\n\r\n<p>Regards</p></body></html>"
	invoiceNotes    = "\r\n--alt--\r\n\r\n" +
		"--outer\r\n" +
		"Content-Type: text/plain; name=\"notes.txt\"\r\n" +
		"Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n" +
		"plain notes\r\n"
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

	before, html, after := invoiceBefore, invoiceHTML, invoiceNotes+"--outer--\r\n"
	header := "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: invoice\r\nMessage-ID: <html1@partner.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.9"), HELO: "mail.partner.test", MailFrom: "alice@partner.test",
		Rcpts: []string{"bob@example.org"}, QueueID: "4HtmlDisarm1"}
	out := srv.Send(t, env, header+before+html+after)
	if out.Action != "accept" {
		t.Fatalf("action %s %s", out.Action, out.Reply)
	}
	want := strings.ReplaceAll(before+invoiceDisarmed+after, "\r\n", "\n") // the client reads the MTA's line ends
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

// Through a real Postfix: one message whose HTML part has a script and
// which carries a program a deny+delete rule removes arrives with both
// changes (the script gone, the program replaced by a note), every other
// part as sent, and the disarm logged.
func TestPostfixHTMLDisarm(t *testing.T) {
	bin := buildBinary(t)
	rules := deleteExeRules(t)
	conf := fmt.Sprintf(`hostname: mx.chainmail.test
checks:
  - name: attachment
    options:
      filename_rules: [%q, default]
  - name: html
`, rules)
	d := startDaemon(t, bin, conf)
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})

	html := `<html><body><p>Your invoice is attached.</p><script>location="http://evil.example/"</script><a href="javascript:steal()" onmouseover="steal()">pay</a></body></html>`
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write([]byte(html))
	w.Close()
	program := "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff program bytes " + strings.Repeat("A", 300)
	msg := "From: Sender <sender@example.net>\r\nTo: Bob <bob@example.org>\r\nSubject: invoice\r\nMessage-ID: <htmlpf@example.net>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour invoice is attached.\r\n" +
		"--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp.String() + "\r\n" +
		"--alt--\r\n" +
		"--outer\r\nContent-Type: application/octet-stream; name=\"setup.exe\"\r\nContent-Disposition: attachment; filename=\"setup.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(program)) + "\r\n" +
		"--outer--\r\n"
	data := deliverOne(t, pf, []byte(msg))
	tree := attachments.Walk(bytes.NewReader(data), int64(len(data)), attachments.WalkOptions{})
	var parts []string
	content := map[string]string{}
	for _, e := range tree.Root.Leaves() {
		var b bytes.Buffer
		b.ReadFrom(e.Open())
		parts = append(parts, e.MediaType+" "+e.Encoding)
		content[e.MediaType] += b.String()
	}
	if want := "text/plain ,text/html quoted-printable,text/plain 8bit"; strings.Join(parts, ",") != want {
		t.Errorf("delivered parts %v, want %s\n%s", parts, want, data)
	}
	if want := `<html><body><p>Your invoice is attached.</p><a>pay</a></body></html>`; content["text/html"] != want {
		t.Errorf("delivered HTML %q, want %q", content["text/html"], want)
	}
	if !strings.Contains(content["text/plain"], "Your invoice is attached.") || !strings.Contains(content["text/plain"], `The attachment "setup.exe" was removed`) {
		t.Errorf("text parts %q", content["text/plain"])
	}
	if len(tree.Problems) != 0 {
		t.Errorf("delivered message has MIME problems: %v", tree.Problems)
	}
	d.waitLog(t, "Content Checks: Detected and have disabled HTML script tags in ", "")
	d.waitLog(t, "Filename Checks: Program removed (", " setup.exe)")
}
