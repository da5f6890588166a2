package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks"
)

// Through the milter protocol with chainmail's default rules: the first
// fragment of a message/partial carrying setup.exe and a
// message/external-body are rejected with the format reply, an inline
// PGP message is delivered and logged as not scanned, a file over
// max_attachment_size is rejected with 552 5.3.4; each with its log line.
func TestMessageFormatPolicyMilter(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "mail.log")
	cfg := fmt.Sprintf(`log:
  sinks:
    - {type: file, path: %q}
checks:
  - name: attachment
    options:
      max_attachment_size: 1KiB
`, logPath)
	srv := startServing(t, cfg, t.Logf)
	env := func(id string) checks.Envelope {
		return checks.Envelope{ClientIP: net.ParseIP("192.0.2.25"), HELO: "mail.sender.test", MailFrom: "sender@sender.test",
			Rcpts: []string{"recipient@example.org"}, QueueID: id}
	}
	head := "From: sender@sender.test\r\nTo: recipient@example.org\r\nMIME-Version: 1.0\r\n"
	exe := base64.StdEncoding.EncodeToString(append([]byte("MZ\x90\x00\x03\x00\x00\x00"), make([]byte, 300)...))
	partial := head + "Subject: setup (1/2)\r\nContent-Type: message/partial; id=\"setup-7@sender.test\"; number=1; total=2\r\n\r\n" +
		"From: sender@sender.test\r\nSubject: setup\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=setup.exe\r\nContent-Transfer-Encoding: base64\r\n\r\n" + exe[:200] + "\r\n"
	external := head + "Subject: report\r\nContent-Type: message/external-body; access-type=URL; URL=\"http://files.sender.test/r.exe\"\r\n\r\nContent-Type: application/octet-stream\r\n\r\n"
	pgp := head + "Subject: secret\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA8ZrjzIFMm0NAQf/Z4l0xXw\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n"
	big := head + "Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n" +
		"--b\r\nContent-Type: application/pdf; name=big.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("%PDF-1.4\n"+strings.Repeat("0", 2000))) + "\r\n--b--\r\n"

	const format = "550 5.7.1 Message rejected: this message format (partial, external body, encrypted or signed) is not accepted here"
	for _, tc := range []struct{ id, msg, action, reply string }{
		{"4FmtPart", partial, "reject", format},
		{"4FmtExt", external, "reject", format},
		{"4FmtPgp", pgp, "accept", ""},
		{"4FmtBig", big, "reject", "552 5.3.4 Message rejected: an attachment is larger than this site accepts"},
	} {
		out := srv.Send(t, env(tc.id), tc.msg)
		action := out.Action
		if action == "continue" {
			action = "accept"
		}
		if action != tc.action || out.Reply != tc.reply {
			t.Errorf("%s: %s %q, want %s %q", tc.id, out.Action, out.Reply, tc.action, tc.reply)
		}
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	for _, want := range []string{
		`Attachment Checks: policy: message/partial: fragment 1 of 2 of message "setup-7@sender.test", reassembled by the reader's client, never scanned whole (4FmtPart message)`,
		`Attachment Checks: policy: message/external-body: content fetched by the reader's client from elsewhere (URL http://files.sender.test/r.exe), never scanned (4FmtExt message)`,
		`Attachment Checks: policy: encrypted message (inline PGP in text/plain): content not scanned (4FmtPgp message)`,
		`Attachment Checks: policy: PDF document of 2009 bytes, over the 1024 bytes allowed per attachment (4FmtBig big.pdf)`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log has no line with\n  %s\nlog:\n%s", want, log)
		}
	}
}
