package attachments

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"chainmail/checks/checktest"
)

// peBytes is the start of a Windows executable.
var peBytes = append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"), bytes.Repeat([]byte{0}, 200)...)

// evilPart is a base64 part named evil.exe with the header given.
func evilMessage(partHeader string) []byte {
	return []byte("From: a@example.com\nTo: b@example.com\nSubject: invoice\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nSee the invoice.\n--b\n" +
		partHeader + "\n" + base64.StdEncoding.EncodeToString(peBytes) + "\n--b--\n")
}

// bareCR turns every line end of b into a bare CR.
func bareCR(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r"))
}

func fileNames(r *Report) []string {
	var out []string
	for _, f := range r.Files {
		out = append(out, f.NameList()...)
	}
	return out
}

func hasFile(r *Report, name string) bool {
	for _, n := range fileNames(r) {
		if n == name {
			return true
		}
	}
	return false
}

// TestBareCRLineEnds: a message whose lines end with a bare CR is read as
// Python's email package reads it: the base64 evil.exe part is found.
// Before: one header line, no attachment.
func TestBareCRLineEnds(t *testing.T) {
	plain := evilMessage("Content-Type: application/octet-stream; name=\"evil.exe\"\nContent-Disposition: attachment; filename=\"evil.exe\"\nContent-Transfer-Encoding: base64\n")
	for name, msg := range map[string][]byte{
		"LF":      plain,
		"bare CR": bareCR(plain),
		// As a milter sees it: the MTA split nothing, the whole message is
		// the value of its first field, then an empty body.
		"bare CR in one field": append(bareCR(plain), "\r\n\r\n"...),
		// Mixed: header with CRLF, parts with bare CR.
		"mixed": append(append([]byte(nil), plain[:bytes.Index(plain, []byte("--b\n"))]...), bareCR(plain[bytes.Index(plain, []byte("--b\n")):])...),
	} {
		r := scanBytes(msg, Options{})
		if !hasFile(r, "evil.exe") {
			t.Errorf("%s: evil.exe not found; files %v, problems %v", name, fileNames(r), r.Tree.Problems)
			continue
		}
		for _, f := range r.Files {
			if f.Name == "evil.exe" && !strings.Contains(f.Type.Description, "executable") && !strings.Contains(strings.ToLower(f.Type.Description), "ms-dos") {
				t.Errorf("%s: evil.exe sniffed as %q", name, f.Type.Description)
			}
		}
		if name != "LF" && !hasProblem(r.Tree, "bare CR") {
			t.Errorf("%s: no problem says bare CR: %v", name, r.Tree.Problems)
		}
	}
}

func hasProblem(tr *Tree, sub string) bool {
	for _, p := range tr.Problems {
		if strings.Contains(p.Detail, sub) {
			return true
		}
	}
	return false
}

// TestUnindentedContinuation: the MailScanner v4#58 shapes, an unindented
// "x-unix-mode=0600;" line inside a part header, do not hide the part's
// name and transfer encoding. Before: the header ended at that line and
// evil.exe was never seen.
func TestUnindentedContinuation(t *testing.T) {
	for name, hdr := range map[string]string{
		"mode on the first line": "Content-Type: application/octet-stream; x-unix-mode=0600;\nname=\"evil.exe\"\nContent-Transfer-Encoding: base64\n",
		"mode alone":             "Content-Type: application/octet-stream;\nx-unix-mode=0600;\n\tname=\"evil.exe\"\nContent-Transfer-Encoding: base64\n",
		"name last":              "Content-Transfer-Encoding: base64\nContent-Type: application/octet-stream;\nx-unix-mode=0600;\nname=\"evil.exe\"\n",
		"disposition after":      "Content-Type: application/octet-stream;\nx-unix-mode=0600\nContent-Disposition: attachment; filename=\"evil.exe\"\nContent-Transfer-Encoding: base64\n",
	} {
		for _, eol := range []string{"LF", "CR"} {
			msg := evilMessage(hdr)
			if eol == "CR" {
				msg = bareCR(msg)
			}
			r := scanBytes(msg, Options{})
			if !hasFile(r, "evil.exe") {
				t.Errorf("%s (%s): evil.exe not found; files %v, problems %v", name, eol, fileNames(r), r.Tree.Problems)
			}
			if !hasProblem(r.Tree, "without a colon") {
				t.Errorf("%s (%s): the continuation is not reported: %v", name, eol, r.Tree.Problems)
			}
		}
	}
	// A body that starts without the empty line is still a body: no
	// field below it.
	msg := evilMessage("Content-Type: application/octet-stream; name=\"evil.exe\"\nContent-Transfer-Encoding: base64")
	msg = bytes.Replace(msg, []byte("base64\n\n"), []byte("base64\n"), 1)
	if r := scanBytes(msg, Options{}); !hasFile(r, "evil.exe") || r.Files[len(r.Files)-1].Type.Description == "" {
		t.Errorf("body without an empty line: files %v", fileNames(r))
	}
}

// leafDigest is what a reader sees of a message: every leaf's name and
// decoded content.
func leafDigest(t *testing.T, msg []byte) []string {
	t.Helper()
	tr := walkBytes(msg)
	var out []string
	for _, e := range tr.Root.Leaves() {
		d := e.Open()
		var b bytes.Buffer
		_, _ = b.ReadFrom(d)
		// Text parts keep their line ends in the decoded content: compare
		// them without.
		c := b.Bytes()
		if strings.HasPrefix(e.MediaType, "text/") || e.Encoding == "" || e.Encoding == "7bit" || e.Encoding == "8bit" || e.Encoding == "quoted-printable" {
			c = bytes.ReplaceAll(bytes.ReplaceAll(c, []byte("\r"), nil), []byte("\n"), nil)
		}
		out = append(out, e.Filename()+"|"+e.MediaType+"|"+string(c))
	}
	return out
}

// TestCorpusBareCRAndUnindented reads the corpus messages that carry the
// x-unix-mode parameter (Apple Mail) and the cpython and mime4j test
// messages in place, then the same messages with bare CR line ends and
// with their x-unix-mode line unindented: every variant shows the same
// leaf parts, named the same, with the same content.
func TestCorpusBareCRAndUnindented(t *testing.T) {
	var files []string
	for _, dir := range []string{"ruby-mail-fixtures", "cpython-test-email", "mime4j-testmsgs"} {
		root := checktest.Corpus(t, dir)
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".eml") || strings.HasSuffix(p, ".msg") || (strings.Contains(p, "msg_") && strings.HasSuffix(p, ".txt"))) {
				files = append(files, p)
			}
			return nil
		})
	}
	unindent := regexp.MustCompile(`(?m)^[ \t]+(x-unix-mode=)`)
	checked, mode := 0, 0
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte("\r")) && !bytes.Contains(raw, []byte("\r\n")) {
			continue // already bare CR (binary samples)
		}
		want := leafDigest(t, raw)
		if got := leafDigest(t, bareCR(raw)); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%s with bare CR line ends: %d leaves %q…, want %d %q…", p, len(got), short(got), len(want), short(want))
		}
		checked++
		if unindent.Match(raw) {
			mode++
			if got := leafDigest(t, unindent.ReplaceAll(raw, []byte("$1"))); strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Errorf("%s with x-unix-mode unindented: %d leaves %q…, want %d %q…", p, len(got), short(got), len(want), short(want))
			}
		}
	}
	if checked < 100 || mode < 4 {
		t.Fatalf("only %d corpus messages (%d with x-unix-mode) found", checked, mode)
	}
	t.Logf("%d corpus messages agree with their bare-CR form, %d with their x-unix-mode line unindented", checked, mode)
}

func short(s []string) []string {
	out := make([]string, 0, 3)
	for _, x := range s {
		if len(out) == 3 {
			break
		}
		out = append(out, truncateString(x, 60))
	}
	return out
}

// TestNormalizeCR: bare CRs become CRLF, CRLF and LF stay, across reads
// of any size.
func TestNormalizeCR(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"a\r\nb\n":      "a\r\nb\n",
		"a\rb\r":        "a\r\nb\r\n",
		"a\r\r\nb\r\rc": "a\r\n\r\nb\r\n\r\nc",
	} {
		var got bytes.Buffer
		if _, err := got.ReadFrom(NormalizeCR(iotest.OneByteReader(strings.NewReader(in)))); err != nil || got.String() != want {
			t.Errorf("NormalizeCR(%q) = %q, %v; want %q", in, got.String(), err, want)
		}
		bare, err := HasBareCR(iotest.OneByteReader(strings.NewReader(in)))
		if err != nil || bare != (in != want) {
			t.Errorf("HasBareCR(%q) = %v, %v", in, bare, err)
		}
	}
}
