package attachment

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/milter/miltertest"
)

// eocdOf returns the offset of a zip's 32-bit end record (no comment).
func eocdOf(t *testing.T, z []byte) int {
	t.Helper()
	i := len(z) - 22
	if i < 0 || !bytes.Equal(z[i:i+4], []byte("PK\x05\x06")) {
		t.Fatal("no end record")
	}
	return i
}

// withZip64End inserts a zip64 end record (with its locator) claiming
// count entries in front of the 32-bit end record, with the directory's
// true offset and size, as a zip64 writer would.
func withZip64End(t *testing.T, z []byte, count uint64) []byte {
	t.Helper()
	e := eocdOf(t, z)
	cdSize := binary.LittleEndian.Uint32(z[e+12:])
	cdOff := binary.LittleEndian.Uint32(z[e+16:])
	rec := make([]byte, 56)
	copy(rec, "PK\x06\x06")
	binary.LittleEndian.PutUint64(rec[4:], 44)
	binary.LittleEndian.PutUint16(rec[12:], 45)
	binary.LittleEndian.PutUint16(rec[14:], 45)
	binary.LittleEndian.PutUint64(rec[24:], count)
	binary.LittleEndian.PutUint64(rec[32:], count)
	binary.LittleEndian.PutUint64(rec[40:], uint64(cdSize))
	binary.LittleEndian.PutUint64(rec[48:], uint64(cdOff))
	loc := make([]byte, 20)
	copy(loc, "PK\x06\x07")
	binary.LittleEndian.PutUint64(loc[8:], uint64(e))
	binary.LittleEndian.PutUint32(loc[16:], 1)
	out := append([]byte(nil), z[:e]...)
	out = append(out, rec...)
	out = append(out, loc...)
	return append(out, z[e:]...)
}

// withoutDirEntry removes the central directory entry of name, leaving
// its local header and data in place (a file only a streaming extractor
// produces).
func withoutDirEntry(t *testing.T, z []byte, name string) []byte {
	t.Helper()
	e := eocdOf(t, z)
	cdSize := int(binary.LittleEndian.Uint32(z[e+12:]))
	cdOff := int(binary.LittleEndian.Uint32(z[e+16:]))
	var cd []byte
	n := 0
	for p := cdOff; p < cdOff+cdSize; {
		l := 46 + int(binary.LittleEndian.Uint16(z[p+28:])) + int(binary.LittleEndian.Uint16(z[p+30:])) + int(binary.LittleEndian.Uint16(z[p+32:]))
		if string(z[p+46:p+46+int(binary.LittleEndian.Uint16(z[p+28:]))]) != name {
			cd = append(cd, z[p:p+l]...)
			n++
		}
		p += l
	}
	end := append([]byte(nil), z[e:]...)
	binary.LittleEndian.PutUint16(end[8:], uint16(n))
	binary.LittleEndian.PutUint16(end[10:], uint16(n))
	binary.LittleEndian.PutUint32(end[12:], uint32(len(cd)))
	out := append([]byte(nil), z[:cdOff]...)
	out = append(out, cd...)
	return append(out, end...)
}

// A zip64 end record that claims no entries does not hide the entries
// of the directory (unzip and Python's zipfile extract them): the .exe
// is blocked and the disagreement is reported.
func TestZip64EndRecordClaimingNoEntries(t *testing.T) {
	c := newCheck(t, nil)
	evil := withZip64End(t, zipOf(t, "evil.exe", exe), 0)
	r := c.Check(context.Background(), msg(part{"", "text/plain", []byte("see attached")}, part{"files.zip", "application/zip", evil}), nil)
	if r.Status != checks.StatusBlocked {
		t.Fatalf("status %s (%s), findings %v", r.Status, r.Reason, r.Facts["findings"])
	}
	if !strings.Contains(strings.Join(lines(r), "\n"), "(4QueueID01 files.zip/evil.exe)") {
		t.Errorf("lines %q", lines(r))
	}
	if !hasFinding(r, attachments.KindZipDirectoryMismatch) || r.Facts["suspicious"] != true {
		t.Errorf("findings %v", r.Facts["findings"])
	}
}

// Genuine zip64 archives are read: their members meet the rules and no
// damage is reported.
func TestZip64Genuine(t *testing.T) {
	c := newCheck(t, nil)
	check := func(name string, z []byte, wantFindings ...string) {
		t.Helper()
		r := c.Check(context.Background(), msg(part{name, "application/zip", z}), nil)
		if r.Status != checks.StatusBlocked {
			t.Errorf("%s: status %s (%s), findings %v", name, r.Status, r.Reason, r.Facts["findings"])
		}
		if !strings.Contains(strings.Join(lines(r), "\n"), name+"/evil.exe)") {
			t.Errorf("%s: lines %q", name, lines(r))
		}
		got := fmt.Sprint(r.Facts["findings"])
		if got != fmt.Sprint(wantFindings) {
			t.Errorf("%s: findings %s, want %v", name, got, wantFindings)
		}
	}
	// Written by hand: zip64 end record with the true count.
	check("hand64.zip", withZip64End(t, zipOf(t, "evil.exe", exe, "a.txt", []byte("hi")), 2))

	// More than 65535 entries: archive/zip writes the zip64 records (the
	// 32-bit count saturated). The check reads the first max_entries.
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.CreateHeader(&zip.FileHeader{Name: "evil.exe", Method: zip.Store})
	f.Write(exe)
	for i := 0; i < 65536; i++ {
		w.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("d/%05d", i), Method: zip.Store})
	}
	w.Close()
	check("many.zip", b.Bytes(), "limit-entries")

	// Info-ZIP's zip -fz, when it is installed.
	zipBin, err := exec.LookPath("zip")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zip is not installed (apt-get install zip); CI is set, so this is a failure, not a skip")
		}
		t.Log("!!! zip not installed: zip -fz case skipped")
		return
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "evil.exe"), exe, 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644)
	cmd := exec.Command(zipBin, "-q", "-fz", "fz.zip", "evil.exe", "a.txt")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip -fz: %v %s", err, out)
	}
	fz, err := os.ReadFile(filepath.Join(dir, "fz.zip"))
	if err != nil {
		t.Fatal(err)
	}
	check("fz.zip", fz)
}

// A file whose local header is in the archive but whose directory entry
// is not (Java's ZipInputStream and other streaming readers extract it)
// is checked like the others, and the disagreement is reported.
func TestZipLocalHeaderNotInDirectory(t *testing.T) {
	c := newCheck(t, nil)
	z := withoutDirEntry(t, zipOf(t, "readme.txt", []byte("hello"), "evil.exe", exe), "evil.exe")
	r := c.Check(context.Background(), msg(part{"files.zip", "application/zip", z}), nil)
	if r.Status != checks.StatusBlocked || !hasFinding(r, attachments.KindZipDirectoryMismatch) {
		t.Fatalf("status %s (%s), findings %v", r.Status, r.Reason, r.Facts["findings"])
	}
}

// hasFinding takes a FindingKind or its name; a name that is no kind is
// a mistake in the test.
func hasFinding(r checks.Result, kind any) bool {
	name := fmt.Sprint(kind)
	if _, ok := attachments.ParseFindingKind(name); !ok {
		panic("no finding kind " + name)
	}
	for _, k := range r.Facts["findings"].([]string) {
		if k == name {
			return true
		}
	}
	return false
}

// sendOverMilter checks m with c through the milter protocol (the default
// policy's attachment rules) and returns what the MTA is told.
func sendOverMilter(t *testing.T, c *Check, m *checks.Message) string {
	t.Helper()
	p := checks.DefaultPolicy()
	p.Hostname = "mx.chainmail.test"
	p.Rules = []checks.Rule{
		{Name: "attachment-blocked", If: `attachment.status == "blocked"`, Action: checks.Reject, Code: "550", Reply: "5.7.1 Message rejected: it carries a blocked attachment"},
		{Name: "attachment-unscannable", If: `attachment.unscannable == true`, Action: checks.Quarantine},
		{Name: "attachment-suspicious", If: `attachment.suspicious == true`, Action: checks.Quarantine},
	}
	if err := p.Compile([]string{"attachment"}); err != nil {
		t.Fatal(err)
	}
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: c, Timeout: 60 * time.Second}}}, Policy: p, Known: []string{"attachment"}}
	srv := miltertest.Start(t, eng)
	var raw bytes.Buffer
	for _, h := range m.Header {
		raw.WriteString(h.Name + ": " + h.Value + "\r\n")
	}
	raw.WriteString("\r\n")
	body, _ := io.ReadAll(m.BodyReader())
	raw.Write(body)
	env := checks.Envelope{ClientIP: m.Envelope.ClientIP, ClientName: "mail.example.net", HELO: "mail.example.net", MailFrom: "a@example.net", Rcpts: []string{"b@example.org"}, QueueID: "4QueueID01"}
	out := srv.Send(t, env, raw.String())
	return out.Action + " " + out.Reply
}

// Through the milter protocol: the zip64-hidden .exe is rejected, not
// accepted clean.
func TestZip64HiddenExeOverMilter(t *testing.T) {
	m := msg(part{"", "text/plain", []byte("see attached")}, part{"files.zip", "application/zip", withZip64End(t, zipOf(t, "evil.exe", exe), 0)})
	if got := sendOverMilter(t, newCheck(t, nil), m); !strings.HasPrefix(got, "reject 550 5.7.1") {
		t.Fatalf("outcome %q", got)
	}
}
