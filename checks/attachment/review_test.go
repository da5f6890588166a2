package attachment

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// uuencodeLines is data uuencoded ("begin 644 name" … "end"), lines
// ended by eol.
func uuencodeLines(name string, data []byte, eol string) string {
	var b strings.Builder
	b.WriteString("begin 644 " + name + eol)
	enc := func(c byte) byte {
		if c == 0 {
			return '`'
		}
		return c + 32
	}
	for len(data) > 0 {
		n := min(45, len(data))
		chunk := append([]byte(nil), data[:n]...)
		for len(chunk)%3 != 0 {
			chunk = append(chunk, 0)
		}
		b.WriteByte(enc(byte(n)))
		for i := 0; i < len(chunk); i += 3 {
			v := uint32(chunk[i])<<16 | uint32(chunk[i+1])<<8 | uint32(chunk[i+2])
			for _, s := range []uint{18, 12, 6, 0} {
				b.WriteByte(enc(byte(v >> s & 63)))
			}
		}
		b.WriteString(eol)
		data = data[n:]
	}
	b.WriteString("`" + eol + "end" + eol)
	return b.String()
}

// A uuencoded program in a message text whose lines end with a bare CR:
// the MIME walk reads bare CRs as line ends (as Python's email package
// and Thunderbird's MIME parser do), and so does the search for
// uuencoded files in the text, which Thunderbird shows as attachments.
func TestUuencodeInBareCRText(t *testing.T) {
	text := "hello\r\r" + uuencodeLines("evil.exe", exe, "\r") + "bye\r"
	for _, eol := range []string{"\r\n", "\r"} {
		c := newCheck(t, nil)
		r := c.Check(context.Background(), msg(part{"", "text/plain", []byte(strings.ReplaceAll(text, "\r", eol))}), nil)
		if r.Status != checks.StatusBlocked || !strings.Contains(strings.Join(lines(r), "\n"), "evil.exe)") {
			t.Errorf("eol %q: status %s (%s), lines %q", eol, r.Status, r.Reason, lines(r))
		}
	}
	body := checks.NewSpool(0, "")
	body.Write([]byte(text))
	m := &checks.Message{
		Envelope: checks.Envelope{QueueID: "4QueueID01", ClientIP: net.ParseIP("192.0.2.1")},
		Header:   []checks.HeaderField{{Name: "From", Value: "a@example.net"}, {Name: "MIME-Version", Value: "1.0"}, {Name: "Content-Type", Value: "text/plain"}},
		Body:     body,
	}
	if got := sendOverMilter(t, newCheck(t, nil), m); !strings.HasPrefix(got, "reject 550 5.7.1") {
		t.Fatalf("outcome %q", got)
	}
}

// An xz file whose index hides its second block, which declares a 4 GiB
// dictionary (xz -dc unpacks both blocks): the dictionary is refused,
// not allocated (4 GiB per message before, whatever the memory budget),
// and the file is unscannable; over the milter protocol it is not
// accepted.
func TestXZHiddenBlockDictionary(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "attachments", "testdata", "xz-lying-index-4GiB-dict.xz"))
	if err != nil {
		t.Fatal(err)
	}
	c := newCheck(t, nil)
	m := msg(part{"", "text/plain", []byte("see attached")}, part{"data.xz", "application/x-xz", b})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := c.Check(context.Background(), m, nil)
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 200<<20 {
		t.Errorf("%d MiB allocated for a %d-byte xz", a>>20, len(b))
	}
	if r.Status != StatusUnscannable {
		t.Errorf("status %s (%s) %v", r.Status, r.Reason, r.Facts["findings"])
	}
	m = msg(part{"", "text/plain", []byte("see attached")}, part{"data.xz", "application/x-xz", b})
	if got := sendOverMilter(t, newCheck(t, nil), m); strings.HasPrefix(got, "accept") {
		t.Fatalf("outcome %q", got)
	}
}

// zipUnicodePath is a zip of one file named name in its headers and
// real in an Info-ZIP Unicode Path extra field (0x7075), which unzip
// and 7-Zip extract it as.
func zipUnicodePath(t *testing.T, name, real string, data []byte) []byte {
	t.Helper()
	ex := []byte{1}
	ex = binary.LittleEndian.AppendUint32(ex, crc32.ChecksumIEEE([]byte(name)))
	ex = append(ex, real...)
	extra := binary.LittleEndian.AppendUint16(nil, 0x7075)
	extra = binary.LittleEndian.AppendUint16(extra, uint16(len(ex)))
	extra = append(extra, ex...)
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.CreateRaw(&zip.FileHeader{Name: name, Method: zip.Store, Extra: extra, CRC32: crc32.ChecksumIEEE(data), CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	w.Close()
	return b.Bytes()
}

// A file name given in a zip's Unicode Path extra field is the name
// unzip and 7-Zip write the file under: it meets the rules like the
// header's name (a script whose content cannot tell it was delivered
// clean as "readme.txt").
func TestZipUnicodePathName(t *testing.T) {
	z := zipUnicodePath(t, "readme.txt", "evil.exe", []byte("hello world\n"))
	for _, tool := range [][]string{{"unzip", "-o", "-q"}, {"7z", "x", "-y"}} {
		bin, err := exec.LookPath(tool[0])
		if err != nil {
			t.Logf("%s not installed: what it extracts is not confirmed", tool[0])
			continue
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "a.zip"), z, 0o644)
		cmd := exec.Command(bin, append(tool[1:], "a.zip")...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", tool[0], err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "evil.exe")); err != nil {
			t.Fatalf("%s did not extract evil.exe: %v", tool[0], err)
		}
	}
	c := newCheck(t, nil)
	r := c.Check(context.Background(), msg(part{"files.zip", "application/zip", z}), nil)
	if r.Status != checks.StatusBlocked || !strings.Contains(strings.Join(lines(r), "\n"), "Filename Checks: File extension “exe” not allowed") {
		t.Errorf("status %s (%s), lines %q", r.Status, r.Reason, lines(r))
	}
	m := msg(part{"", "text/plain", []byte("see attached")}, part{"files.zip", "application/zip", z})
	if got := sendOverMilter(t, newCheck(t, nil), m); !strings.HasPrefix(got, "reject 550 5.7.1") {
		t.Fatalf("outcome %q", got)
	}
}
