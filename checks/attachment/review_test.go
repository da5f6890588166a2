package attachment

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks"
)

// A zip with data in front of it (a self-extractor's stub, or any junk):
// unzip ("extra bytes at beginning"), Python's zipfile and 7-Zip list
// and extract its members, so the check does too, whatever the file is
// called.
func TestZipWithPrependedData(t *testing.T) {
	c := newCheck(t, nil)
	z := append(bytes.Repeat([]byte("X"), 5000), zipOf(t, "evil.exe", exe)...)
	if unzip, err := exec.LookPath("unzip"); err == nil {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "junk.zip"), z, 0o644)
		out, _ := exec.Command(unzip, "-l", filepath.Join(dir, "junk.zip")).CombinedOutput()
		if !strings.Contains(string(out), "evil.exe") {
			t.Fatalf("unzip does not list evil.exe: %s", out)
		}
	} else {
		t.Log("unzip not installed: what it lists is not confirmed")
	}
	for _, name := range []string{"files.zip", "files.dat", "scan.pdf"} {
		r := c.Check(context.Background(), msg(part{name, "application/octet-stream", z}), nil)
		if r.Status != checks.StatusBlocked || !strings.Contains(strings.Join(lines(r), "\n"), name+"/evil.exe)") {
			t.Errorf("%s: status %s (%s), lines %q", name, r.Status, r.Reason, lines(r))
		}
	}
	// A PDF with a zip appended opens in a PDF reader and in unzip.
	pdf := append([]byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"), zipOf(t, "evil.exe", exe)...)
	if r := c.Check(context.Background(), msg(part{"scan.pdf", "application/pdf", pdf}), nil); r.Status != checks.StatusBlocked {
		t.Errorf("pdf+zip: status %s (%s), lines %q", r.Status, r.Reason, lines(r))
	}
	// Over the milter protocol.
	m := msg(part{"", "text/plain", []byte("see attached")}, part{"files.zip", "application/zip", z})
	if got := sendOverMilter(t, newCheck(t, nil), m); !strings.HasPrefix(got, "reject 550 5.7.1") {
		t.Fatalf("outcome %q", got)
	}
}
