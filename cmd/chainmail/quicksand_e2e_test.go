package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks/checktest"
	"chainmail/milter/mtatest"
)

// autoRunDocm builds a Word document whose VBA project runs by itself:
// the corpus's macro document (oletools' oleform-PR314.docm) with the VBA
// project of SpamAssassin's auto-run workbook (automacro.xlsm, "Sub
// autoexec()") in place of its own.
func autoRunDocm(t *testing.T) []byte {
	t.Helper()
	docm, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "oletools-test-data"), "oleform", "oleform-PR314.docm"))
	if err != nil {
		t.Fatal(err)
	}
	eml, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "apache-spamassassin-t-data"), "spam", "olevbmacro", "malicemacro.eml"))
	if err != nil {
		t.Fatal(err)
	}
	var xlsm []byte
	tree := attachments.Walk(bytes.NewReader(eml), int64(len(eml)), attachments.WalkOptions{})
	for _, e := range tree.Root.Leaves() {
		if strings.HasSuffix(e.Filename(), ".xlsm") {
			xlsm, _ = io.ReadAll(e.Open())
		}
	}
	vba, err := attachments.ReadZipEntry(xlsm, "xl/vbaProject.bin", 1<<20)
	if err != nil {
		t.Fatalf("malicemacro.eml: %v", err)
	}
	out, err := attachments.RewriteZip(docm, map[string]*attachments.ZipChange{"word/vbaProject.bin": {Data: vba}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range attachments.Analyse(out) {
		found = found || a.Kind == attachments.KindVBAAutoExec
	}
	if !found {
		t.Fatalf("the test document has no auto-run macro: %v", attachments.Analyse(out))
	}
	return out
}

// TestPostfixQuickSand: through a real Postfix, a Word document with an
// auto-run macro arrives as a macro-free .docx that LibreOffice opens
// with the same text, the HTML part of the same message arrives without
// its script (two checks change one body), and QuickSand's line is
// logged.
func TestPostfixQuickSand(t *testing.T) {
	soffice := checktest.Soffice(t)
	docm := autoRunDocm(t)
	bin := buildBinary(t)
	d := startDaemon(t, bin, "hostname: mx.chainmail.test\nchecks:\n  - name: attachment\n  - name: html\n")
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})

	msg := "From: Sender <sender@example.net>\r\nTo: Bob <bob@example.org>\r\nSubject: order\r\nMessage-ID: <qspf@example.net>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>The order form.</p><script>alert(1)</script>\r\n" +
		"--outer\r\nContent-Type: application/vnd.ms-word.document.macroEnabled.12; name=\"order.docm\"\r\nContent-Disposition: attachment; filename=\"order.docm\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		checktest.Base64Lines(docm) +
		"--outer--\r\n"
	data := deliverOne(t, pf, []byte(msg))
	tree := attachments.Walk(bytes.NewReader(data), int64(len(data)), attachments.WalkOptions{})
	if len(tree.Problems) != 0 {
		t.Errorf("delivered message has MIME problems: %v", tree.Problems)
	}
	var docx []byte
	var html string
	for _, e := range tree.Root.Leaves() {
		b, _ := io.ReadAll(e.Open())
		switch {
		case e.MediaType == "text/html":
			html = string(b)
		case e.Filename() == "order.docx":
			docx = b
			if e.MediaType != "application/vnd.openxmlformats-officedocument.wordprocessingml.document" {
				t.Errorf("docx delivered as %s", e.MediaType)
			}
		case e.Filename() != "":
			t.Errorf("unexpected file %q delivered", e.Filename())
		}
	}
	if html != "<p>The order form.</p>" {
		t.Errorf("delivered HTML %q", html)
	}
	if docx == nil {
		t.Fatalf("no order.docx delivered:\n%.3000s", data)
	}
	if left := attachments.Analyse(docx); len(left) != 0 {
		t.Errorf("active content left in the delivered document: %v", left)
	}
	zr, err := zip.NewReader(bytes.NewReader(docx), int64(len(docx)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if strings.Contains(strings.ToLower(f.Name), "vba") {
			t.Errorf("delivered document still has %s", f.Name)
		}
	}
	want := strings.TrimSpace(checktest.WriterText(t, soffice, "original.docm", docm))
	if want == "" {
		t.Fatal("LibreOffice could not open the original")
	}
	if got := strings.TrimSpace(checktest.WriterText(t, soffice, "delivered.docx", docx)); got != want {
		t.Errorf("LibreOffice reads the delivered document as %q, the original as %q", got, want)
	}
	d.waitLog(t, "QuickSand disarmed file order.docm in ", "")
	d.waitLog(t, "Content Checks: Detected and have disabled HTML script tags in ", "")
}
