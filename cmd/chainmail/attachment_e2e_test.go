package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/attachments"
	"chainmail/checks/checktest"
	"chainmail/milter/mtatest"
)

// attachmentMessage is a multipart message with a text part and base64
// attachments (name, content type, data, …).
func attachmentMessage(subject string, files ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender <sender@example.net>\r\nTo: Bob <bob@example.org>\r\nSubject: %s\r\nMessage-ID: <%s@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_part_boundary\"\r\n\r\nThis is a multi-part message in MIME format.\r\n", subject, strings.ReplaceAll(subject, " ", "."))
	b.WriteString("--=_part_boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThree files attached.\r\n")
	for i := 0; i+2 < len(files); i += 3 {
		fmt.Fprintf(&b, "--=_part_boundary\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", files[i+1], files[i], files[i])
		b.WriteString(checktest.Base64Lines([]byte(files[i+2])))
	}
	b.WriteString("--=_part_boundary--\r\n")
	return b.Bytes()
}

// deleteExeRules writes a filename rule file whose deny+delete rule
// removes programs (.exe) and returns its path.
func deleteExeRules(t *testing.T) string {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "delete.rules")
	if err := os.WriteFile(rules, []byte("deny+delete\t\\.exe$\tProgram removed\tPrograms are removed from mail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return rules
}

// deliverOne sends msg from sender@example.net to bob@example.org through
// pf, as client 192.0.2.44 (mail.example.net), and returns the one
// message Postfix delivers.
func deliverOne(t *testing.T, pf *mtatest.Postfix, msg []byte) []byte {
	t.Helper()
	c := pf.Dial(t)
	c.Ehlo("client.example")
	c.XClient("ADDR=192.0.2.44 NAME=mail.example.net HELO=mail.example.net")
	if r := c.Send("sender@example.net", []string{"bob@example.org"}, msg); r.Code != 250 {
		t.Fatalf("send: %v", r)
	}
	c.Quit()
	got := pf.Delivered(t, 1, 30*time.Second)
	if len(got) != 1 {
		t.Fatalf("delivered %d messages", len(got))
	}
	return got[0].Data
}

// Through a real Postfix: a deny+delete rule removes the program and the
// message is delivered with a note in its place and every other part
// intact; with chainmail's default rules a program is rejected at end of
// data.
func TestPostfixAttachmentDenyDelete(t *testing.T) {
	bin := buildBinary(t)
	rules := deleteExeRules(t)
	conf := fmt.Sprintf(`hostname: mx.chainmail.test
checks:
  - name: attachment
    options:
      filename_rules: [%q, default]
rules:
  - name: attachment-blocked
    if: 'attachment.status == "blocked"'
    action: reject
    reply: "550 5.7.1 Message rejected: it carries a blocked attachment"
`, rules)
	d := startDaemon(t, bin, conf)
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})

	program := "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff program bytes " + strings.Repeat("A", 300)
	pdf := "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
	csv := "date,amount\n2026-11-24,12.50\n"
	c := pf.Dial(t)
	c.Ehlo("client.example")
	c.XClient("ADDR=192.0.2.44 NAME=mail.example.net HELO=mail.example.net")
	r := c.Send("sender@example.net", []string{"bob@example.org"}, attachmentMessage("three files",
		"report.pdf", "application/pdf", pdf,
		"setup.exe", "application/octet-stream", program,
		"numbers.csv", "text/csv", csv))
	if r.Code != 250 {
		t.Fatalf("deny+delete message: %v", r)
	}
	// The default rules (second in the list) deny a script: rejected.
	r = c.Send("sender@example.net", []string{"bob@example.org"}, attachmentMessage("a script",
		"run.vbs", "text/plain", "MsgBox \"hi\"\r\n"))
	if r.Code != 550 || !strings.Contains(r.Text, "blocked attachment") {
		t.Errorf("script: %v, want 550 … blocked attachment", r)
	}
	c.Quit()

	got := pf.Delivered(t, 1, 30*time.Second)
	if len(got) != 1 {
		t.Fatalf("delivered %d messages", len(got))
	}
	data := got[0].Data
	tree := attachments.Walk(bytes.NewReader(data), int64(len(data)), attachments.WalkOptions{})
	var names []string
	content := map[string]string{}
	for _, e := range tree.Root.Leaves() {
		n := e.Filename()
		if n == "" {
			n = "(" + e.MediaType + ")"
		}
		names = append(names, n)
		var b bytes.Buffer
		b.ReadFrom(e.Open())
		content[n] = b.String()
	}
	if strings.Join(names, ",") != "(text/plain),report.pdf,(text/plain),numbers.csv" {
		t.Errorf("delivered parts %v\n%s", names, data)
	}
	if content["report.pdf"] != pdf || content["numbers.csv"] != csv {
		t.Errorf("kept attachments changed: %q %q", content["report.pdf"], content["numbers.csv"])
	}
	if bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString([]byte(program))[:60])) || bytes.Contains(data, []byte(`filename="setup.exe"`)) {
		t.Errorf("the program was delivered:\n%s", data)
	}
	if !bytes.Contains(data, []byte(`The attachment "setup.exe" was removed from this message by chainmail.`)) ||
		!bytes.Contains(data, []byte("Reason: Programs are removed from mail")) {
		t.Errorf("no removal note:\n%s", data)
	}
	if len(tree.Problems) != 0 {
		t.Errorf("delivered message has MIME problems: %v", tree.Problems)
	}
	d.waitLog(t, "Filename Checks: Program removed (", " setup.exe)")
	d.waitLog(t, "Filename Checks: File extension “vbs” not allowed (", " run.vbs)")
}
