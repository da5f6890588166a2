package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/milter"
)

// replayOutConfig writes a configuration with the attachment check (a
// deny+delete rule for programs) and the html check, and a rule that
// rejects a blocked attachment.
func replayOutConfig(t *testing.T) string {
	t.Helper()
	rules := deleteExeRules(t)
	conf := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`hostname: mx.chainmail.test
checks:
  - name: attachment
    options:
      filename_rules: [%q, default]
  - name: html
rules:
  - name: attachment-blocked
    if: 'attachment.status == "blocked"'
    action: reject
    reply: "550 5.7.1 Message rejected: it carries a blocked attachment"
`, rules)), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestReplayOut: replay --out writes the message as the MTA delivers it:
// the program replaced by the removal note, the script gone from the HTML
// part, the forged X-Spam-Status removed and chainmail's fields added,
// every other byte the one received. A rejected message is not written
// and a name already taken is not overwritten.
func TestReplayOut(t *testing.T) {
	conf := replayOutConfig(t)
	in := t.TempDir()
	header := "Received: from mail.partner.test (mail.partner.test [192.0.2.9])\r\n\tby mx.chainmail.test with ESMTP id 4OutTest1\r\n" +
		"From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: invoice\r\n" +
		"X-Spam-Status: No, forged by the sender\r\nMessage-ID: <out1@partner.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
	before, html, wantHTML, middle := invoiceBefore, invoiceHTML, invoiceDisarmed, invoiceNotes+"--outer\r\n"
	program := "Content-Type: application/octet-stream; name=\"setup.exe\"\r\n" +
		"Content-Disposition: attachment; filename=\"setup.exe\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		checktest.Base64Lines([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff program bytes "+strings.Repeat("A", 300)))
	end := "--outer--\r\n"
	msg := header + before + html + middle + program + end
	if err := os.WriteFile(filepath.Join(in, "invoice.eml"), []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same message as a zip member: the default archive rules block it.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("tool.exe")
	w.Write([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff program bytes " + strings.Repeat("A", 300)))
	zw.Close()
	rejected := "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: tools\r\nMessage-ID: <out2@partner.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b\r\nContent-Type: application/zip; name=\"tools.zip\"\r\nContent-Disposition: attachment; filename=\"tools.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		checktest.Base64Lines(zb.Bytes()) + "--b--\r\n"
	if err := os.WriteFile(filepath.Join(in, "tools.eml"), []byte(rejected), 0o644); err != nil {
		t.Fatal(err)
	}

	outDir := filepath.Join(t.TempDir(), "delivered")
	args := []string{"replay", "-c", conf, "--zone", emptyZone(t), "--client-ip", "192.0.2.9", "--out", outDir}
	code, _, errOut := runCmd(t, append(args, in)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "tools.eml: not written: message reject") {
		t.Errorf("no line for the rejected message: %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(outDir, "tools.eml")); err == nil {
		t.Errorf("the rejected message was written")
	}
	got, err := os.ReadFile(filepath.Join(outDir, "invoice.eml"))
	if err != nil {
		t.Fatal(err)
	}
	h, body, ok := strings.Cut(string(got), "\r\n\r\n")
	if !ok {
		t.Fatalf("no header end:\n%s", got)
	}
	kept := strings.Replace(strings.TrimSuffix(header, "\r\n\r\n"), "X-Spam-Status: No, forged by the sender\r\n", "", 1)
	if !strings.HasPrefix(h, kept+"\r\n") {
		t.Errorf("header fields received changed:\n%s\nwant them to start with\n%s", h, kept)
	}
	added := strings.TrimPrefix(h, kept+"\r\n")
	if strings.Contains(added, "forged by the sender") || !strings.Contains(added, "X-Spam-Status: ") {
		t.Errorf("fields added:\n%s", added)
	}
	note := string(attachments.RemovalNote("setup.exe", "Programs are removed from mail", "\r\n"))
	wantBody := before + wantHTML + middle + note + "\r\n" + end
	if body != wantBody {
		t.Errorf("delivered body\n%q\nwant\n%q", body, wantBody)
	}

	// Again into the same directory: nothing is overwritten.
	code, _, errOut = runCmd(t, append(args, filepath.Join(in, "invoice.eml"))...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	again, err := os.ReadFile(filepath.Join(outDir, "invoice-2.eml"))
	if err != nil || !bytes.Equal(again, got) {
		t.Errorf("second run: %v, same content %v", err, bytes.Equal(again, got))
	}
}

// TestReplayJSONAttachments: replay --json lists each file the attachment
// check saw with what was done to it: a program inside a zip blocks the
// message, and with it the zip, while the zip's other member would have
// been delivered; a
// program a deny+delete rule removes is "removed"; a disarmed script is
// listed under disarmed.
func TestReplayJSONAttachments(t *testing.T) {
	conf := replayOutConfig(t)
	in := t.TempDir()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("docs/readme.txt")
	w.Write([]byte("read me\n"))
	w, _ = zw.Create("bin/tool.exe")
	w.Write([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff program bytes " + strings.Repeat("A", 300)))
	zw.Close()
	zipped := "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: tools\r\nMessage-ID: <j1@partner.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--b\r\nContent-Type: application/zip; name=\"tools.zip\"\r\nContent-Disposition: attachment; filename=\"tools.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		checktest.Base64Lines(zb.Bytes()) + "--b--\r\n"
	removed := "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: setup\r\nMessage-ID: <j2@partner.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<p>hi</p><script>alert(1)</script>\r\n" +
		"--b\r\nContent-Type: application/octet-stream; name=\"setup.exe\"\r\nContent-Disposition: attachment; filename=\"setup.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		checktest.Base64Lines([]byte("MZ\x90\x00\x03\x00\x00\x00 program")) + "--b--\r\n"
	for name, m := range map[string]string{"1-zip.eml": zipped, "2-removed.eml": removed} {
		if err := os.WriteFile(filepath.Join(in, name), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCmd(t, "replay", "-c", conf, "--zone", emptyZone(t), "--client-ip", "192.0.2.9", "--json", in)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	type result struct {
		File        string
		Action      string
		Attachments []struct{ Name, Path, Action string }
		Disarmed    []string
	}
	var rs []result
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r result
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		rs = append(rs, r)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results: %s", len(rs), out)
	}
	actions := func(r result) map[string]string {
		m := map[string]string{}
		for _, a := range r.Attachments {
			m[a.Name+" @"+a.Path] = a.Action
		}
		return m
	}
	z := actions(rs[0])
	if rs[0].Action != "reject" || z["tools.zip/bin/tool.exe @1.2/tools.zip/bin/tool.exe"] != "blocked" ||
		z["tools.zip/docs/readme.txt @1.2/tools.zip/docs/readme.txt"] != "delivered" || z["tools.zip @1.2"] != "blocked" {
		t.Errorf("zip: action %s, attachments %v", rs[0].Action, z)
	}
	d := actions(rs[1])
	if rs[1].Action == "reject" || d["setup.exe @1.2"] != "removed" {
		t.Errorf("deny+delete: action %s, attachments %v", rs[1].Action, d)
	}
	if len(rs[1].Disarmed) == 0 {
		t.Errorf("no disarmed kinds: %s", out)
	}
}

// TestDeliveredMessage: the milter's changes applied to a message with
// LF line ends: the second Subject rewritten (index among fields of that
// name), a folded field removed, one added at the end of the header; the
// other bytes as they were.
func TestDeliveredMessage(t *testing.T) {
	raw := "From: a@example.net\nSubject: one\nX-Spam-Status: Yes,\n\tforged\nsubject: two\n\nbody\r\nline\n"
	o := &milter.Outcome{Action: "accept", Headers: []checks.Header{
		{Name: "X-Spam-Status[1]"},
		{Name: "X-Spam-Status", Value: "No, score=0.0\n\trequired=5.0"},
		{Name: "Subject[2]", Value: "[SPAM] two"},
	}}
	want := "From: a@example.net\nSubject: one\nSubject: [SPAM] two\nX-Spam-Status: No, score=0.0\n\trequired=5.0\n\nbody\r\nline\n"
	if got := string(deliveredMessage([]byte(raw), o)); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	o.Body = []byte("new\r\nbody\n")
	want = "From: a@example.net\nSubject: one\nSubject: [SPAM] two\nX-Spam-Status: No, score=0.0\n\trequired=5.0\n\nnew\nbody\n"
	if got := string(deliveredMessage([]byte(raw), o)); got != want {
		t.Errorf("replaced body: got\n%q\nwant\n%q", got, want)
	}
	for in, want := range map[string]string{
		"/x/inbox.mbox#3":       "inbox.mbox-3.eml",
		"/x/cur/17.M1P2.h:2,S":  "17.M1P2.h_2,S",
		"/x/.hidden eml":        "_hidden_eml",
		"/x/../a/b/message.eml": "message.eml",
	} {
		if got := outName(in); got != want {
			t.Errorf("outName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A quarantined message is what would sit in the hold queue: --out writes
// it, as it would be delivered from there.
func TestReplayOutQuarantined(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte(`hostname: mx.chainmail.test
checks:
  - name: gtube
rules:
  - name: hold-invoices
    if: 'envelope.from endsWith "@partner.test"'
    action: quarantine
`), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "held.eml")
	msg := "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: invoice\r\nMessage-ID: <held@partner.test>\r\n\r\nplease pay\r\n"
	if err := os.WriteFile(in, []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	code, stdout, errOut := runCmd(t, "replay", "-c", conf, "--zone", emptyZone(t), "--from", "alice@partner.test", "--json", "--out", outDir, in)
	if code != exitOK || !strings.Contains(stdout, `"action":"quarantine"`) {
		t.Fatalf("exit %d: %s\n%s", code, stdout, errOut)
	}
	got, err := os.ReadFile(filepath.Join(outDir, "held.eml"))
	if err != nil {
		t.Fatalf("the quarantined message was not written: %v\n%s", err, errOut)
	}
	if !strings.HasSuffix(string(got), "\r\n\r\nplease pay\r\n") || !strings.HasPrefix(string(got), "From: alice@partner.test\r\n") {
		t.Errorf("written:\n%s", got)
	}
}

// TestReplayDisarmedDocument: replay --json gives a macro document's
// category and what became of it, and replay --out writes the message
// with the document disarmed, as the milter would deliver it.
func TestReplayDisarmedDocument(t *testing.T) {
	conf := replayOutConfig(t)
	in := t.TempDir()
	msg := "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: order\r\nMessage-ID: <qs1@partner.test>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nthe order form\r\n" +
		"--b\r\nContent-Type: application/octet-stream; name=\"order.docm\"\r\nContent-Disposition: attachment; filename=\"order.docm\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		checktest.Base64Lines(autoRunDocm(t)) + "--b--\r\n"
	if err := os.WriteFile(filepath.Join(in, "order.eml"), []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(t.TempDir(), "delivered")
	code, out, errOut := runCmd(t, "replay", "-c", conf, "--zone", emptyZone(t), "--client-ip", "192.0.2.9", "--json", "--out", outDir, in)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Action      string
		Attachments []struct{ Name, Path, Action, Category string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(r.Attachments) != 1 || r.Attachments[0].Name != "order.docm" || r.Attachments[0].Action != "disarmed" || r.Attachments[0].Category != "suspicious" {
		t.Errorf("attachments %+v", r.Attachments)
	}
	written, err := os.ReadFile(filepath.Join(outDir, "order.eml"))
	if err != nil {
		t.Fatal(err)
	}
	tree := attachments.Walk(bytes.NewReader(written), int64(len(written)), attachments.WalkOptions{})
	var docx []byte
	for _, e := range tree.Root.Leaves() {
		if e.Filename() == "order.docx" {
			docx, _ = io.ReadAll(e.Open())
		}
	}
	if docx == nil || len(attachments.Analyse(docx)) != 0 {
		t.Errorf("written message: no disarmed order.docx (%d bytes)\n%.2000s", len(docx), written)
	}
}
