package attachment

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/checktest"
)

type part struct {
	name, ctype string
	data        []byte
}

// msg builds a multipart/mixed message from parts (base64 for
// application/*, as is for text).
func msg(parts ...part) *checks.Message {
	var b bytes.Buffer
	b.WriteString("This is a multi-part message in MIME format.\r\n")
	for _, p := range parts {
		b.WriteString("--XyZ\r\n")
		if strings.HasPrefix(p.ctype, "text/") {
			fmt.Fprintf(&b, "Content-Type: %s\r\n", p.ctype)
			if p.name != "" {
				fmt.Fprintf(&b, "Content-Disposition: attachment; filename=\"%s\"\r\n", p.name)
			}
			b.WriteString("\r\n")
			b.Write(p.data)
			b.WriteString("\r\n")
			continue
		}
		fmt.Fprintf(&b, "Content-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", p.ctype, p.name, p.name)
		b.WriteString(checktest.Base64Lines(p.data))
	}
	b.WriteString("--XyZ--\r\n")
	s := checks.NewSpool(0, "")
	s.Write(b.Bytes())
	return &checks.Message{
		Envelope: checks.Envelope{QueueID: "4QueueID01", ClientIP: net.ParseIP("192.0.2.1")},
		Header: []checks.HeaderField{
			{Name: "From", Value: "a@example.net"}, {Name: "Subject", Value: "files"},
			{Name: "MIME-Version", Value: "1.0"}, {Name: "Content-Type", Value: `multipart/mixed; boundary="XyZ"`},
		},
		Body: s,
	}
}

var exe = append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00"), make([]byte, 100)...)

func newCheck(t *testing.T, mod func(*Config)) *Check {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func lines(r checks.Result) []string {
	var out []string
	for _, e := range r.Events {
		out = append(out, e.Line)
	}
	return out
}

func TestDefaultRulesBlockExecutables(t *testing.T) {
	c := newCheck(t, nil)
	r := c.Check(context.Background(), msg(
		part{"", "text/plain", []byte("Hello")},
		part{"invoice.pdf.exe", "application/octet-stream", exe},
	), nil)
	if r.Status != checks.StatusBlocked || r.Facts["blocked"] != true {
		t.Fatalf("%s %q", r.Status, r.Reason)
	}
	want := []string{
		"Filename Checks: File extension “double” not allowed (4QueueID01 invoice.pdf.exe)",
		"Filetype Checks: File type “executable” not allowed (4QueueID01 invoice.pdf.exe)",
	}
	if strings.Join(lines(r), "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s", strings.Join(lines(r), "\n"))
	}
	// A clean message: no status, no symbol; the one line is QuickSand's
	// verdict on the document.
	r = c.Check(context.Background(), msg(part{"", "text/plain", []byte("Hello")}, part{"report.pdf", "application/pdf", []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n")}), nil)
	if r.Status != checks.StatusClean || len(r.Symbols) != 0 || r.NewBody != nil || strings.Join(lines(r), "\n") != "QuickSand found no active content in file report.pdf in 4QueueID01" {
		t.Errorf("clean: %+v", r)
	}
}

// MailScanner's own rule files, given as paths, decide as MailScanner's
// do; their log texts are in the lines.
func TestMailScannerRuleFiles(t *testing.T) {
	dir := checktest.Corpus(t, "mailscanner-default-rules")
	c := newCheck(t, func(cfg *Config) {
		cfg.BaseDir = dir
		cfg.FilenameRules = []string{"filename.rules.conf"}
		cfg.FiletypeRules = []string{"filetype.rules.conf"}
		cfg.ArchiveFilenameRules = []string{"archives.filename.rules.conf"}
		cfg.ArchiveFiletypeRules = []string{"archives.filetype.rules.conf"}
	})
	zip := zipOf(t, "setup.exe", exe)
	r := c.Check(context.Background(), msg(part{"notes.abc.abc", "application/octet-stream", []byte("x")}, part{"files.zip", "application/zip", zip}, part{"photo.doc.jpg", "image/jpeg", []byte("\xff\xd8\xff\xe0")}), nil)
	want := []string{
		"Filename Checks: Windows/DOS Executable (4QueueID01 files.zip/setup.exe)",
		"Filetype Checks: No executables (4QueueID01 files.zip/setup.exe)",
	}
	if got := lines(r); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s", strings.Join(got, "\n"))
	}
	if r.Status != checks.StatusBlocked {
		t.Errorf("status %s", r.Status)
	}
}

// deny+delete cuts the part out and puts a note in its place; the rest
// of the body is kept byte for byte; rename rewrites the file name.
func TestDenyDeleteAndRename(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fn.rules"), []byte("deny+delete\t\\.exe$\tExecutable removed\tPrograms are removed\nrename\t\\.pps$\tRenamed slide show\t-\n"), 0o644)
	c := newCheck(t, func(cfg *Config) {
		cfg.BaseDir = dir
		cfg.FilenameRules = []string{"fn.rules"}
		cfg.FiletypeRules = nil
	})
	m := msg(part{"", "text/plain", []byte("Hello")}, part{"tool.exe", "application/octet-stream", exe}, part{"show.pps", "application/octet-stream", []byte("slides")}, part{"notes.txt", "text/plain", []byte("keep me")})
	r := c.Check(context.Background(), m, nil)
	if r.Status != StatusDeleted || r.NewBody == nil || r.Facts["deleted"] != 1 || r.Facts["renamed"] != 1 {
		t.Fatalf("%s %q %v", r.Status, r.Reason, r.Facts)
	}
	nb, _ := io.ReadAll(io.NewSectionReader(r.NewBody, 0, r.NewBody.Size()))
	orig, _ := io.ReadAll(m.BodyReader())
	s := string(nb)
	for _, want := range []string{"Hello", "keep me", `The attachment "tool.exe" was removed`, "Reason: Programs are removed", `filename="show.pps.disarmed"`, `name="show.pps.disarmed"`, "--XyZ--"} {
		if !strings.Contains(s, want) {
			t.Errorf("new body lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, base64.StdEncoding.EncodeToString(exe)[:40]) {
		t.Error("the removed part is still there")
	}
	// Everything before the removed part is unchanged.
	cut := bytes.Index(orig, []byte("Content-Type: application/octet-stream; name=\"tool.exe\""))
	if !bytes.Equal(nb[:cut], orig[:cut]) {
		t.Error("the body before the removed part changed")
	}
	// The new body is still a message with the same parts.
	full := append(m.RawHeader(), nb...)
	tree := attachments.Walk(bytes.NewReader(full), int64(len(full)), attachments.WalkOptions{})
	if n := len(tree.Root.Children); n != 4 || len(tree.Problems) != 0 {
		t.Errorf("new body: %d parts, problems %v", n, tree.Problems)
	}
	want := []string{
		"Filename Checks: Executable removed (4QueueID01 tool.exe)",
		"Filename Checks: Renamed slide show (4QueueID01 show.pps)",
	}
	if strings.Join(lines(r), "\n") != strings.Join(want, "\n") {
		t.Errorf("lines:\n%s", strings.Join(lines(r), "\n"))
	}
}

func TestFindingsAreFacts(t *testing.T) {
	c := newCheck(t, nil)
	pwzip, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "oletools-test-data"), "msodde", "dde-test-from-office2016.doc.zip"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Check(context.Background(), msg(part{"doc.zip", "application/zip", pwzip}), nil)
	if r.Status != StatusUnscannable || r.Facts["unscannable"] != true {
		t.Errorf("password zip: %s %v", r.Status, r.Facts)
	}
	if !strings.Contains(strings.Join(lines(r), "\n"), "Attachment Checks: unscannable: password-protected zip (1 encrypted entry) (4QueueID01 doc.zip)") {
		t.Errorf("lines %q", lines(r))
	}
	r = c.Check(context.Background(), msg(part{"photo\u202egpj.zip", "application/zip", zipOf(t, "a.txt", []byte("x"))}), nil)
	if r.Facts["suspicious"] != true || !hasSymbol(r, SymDisguisedName) {
		t.Errorf("RTLO: %s %v %v", r.Status, r.Facts, r.Symbols)
	}
}

func hasSymbol(r checks.Result, name string) bool {
	for _, s := range r.Symbols {
		if s.Name == name {
			return true
		}
	}
	return false
}

func TestBadRuleFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.rules"), []byte("# ok\ndeny\t(?<=x)\\.exe$\tx\ty\n"), 0o644)
	cfg := DefaultConfig()
	cfg.BaseDir, cfg.FilenameRules = dir, []string{"bad.rules"}
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), "bad.rules:2:") {
		t.Errorf("%v", err)
	}
	cfg.FilenameRules = []string{"missing.rules"}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "missing.rules") {
		t.Errorf("%v", err)
	}
}

func zipOf(t *testing.T, files ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		f, err := w.Create(files[i].(string))
		if err != nil {
			t.Fatal(err)
		}
		f.Write(files[i+1].([]byte))
	}
	w.Close()
	return b.Bytes()
}
