package attachments

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// The fuzz targets' seed corpora are committed under testdata/fuzz/.

func FuzzWalk(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n"))
	f.Add(message("a.exe", []byte("MZ")))
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		r := Scan(bytes.NewReader(b), int64(len(b)), Options{MaxTotal: 8 << 20})
		if time.Since(start) > 5*time.Second {
			t.Fatalf("slow: %v", time.Since(start))
		}
		r.Tree.Root.walk(func(e *Entity) {
			if e.InPlace && (e.Start < 0 || e.BodyStart < e.Start && e.BodyStart != e.End || e.End > int64(len(b))) {
				t.Fatalf("entity %s offsets %d %d %d of %d", e.Path, e.Start, e.BodyStart, e.End, len(b))
			}
		})
		// Cutting out any in-place part gives a stream of the right size.
		for _, e := range r.Tree.Root.Leaves() {
			if x := Editable(e); x != nil {
				sp, err := ApplyEdits(bytes.NewReader(b), 0, int64(len(b)), []Edit{{Entity: x, Data: []byte("X")}})
				if err != nil {
					t.Fatal(err)
				}
				if want := int64(len(b)) - (x.End - x.Start) + 1; sp.Size() != want {
					t.Fatalf("edited size %d, want %d", sp.Size(), want)
				}
			}
		}
	})
}

func FuzzFilename(f *testing.F) {
	for _, s := range []string{
		`attachment; filename="a.exe"`,
		`attachment; filename*=utf-8''%E2%80%AEfdp.exe`,
		`attachment; filename*0*=iso-8859-1''%E9t%E9; filename*1=.txt`,
		`application/octet-stream; name="=?UTF-8?B?cmVwb3J0LmV4ZQ==?="`,
		"attachment; filename=\"a\x00.txt\"",
		`attachment;; filename=foo bar.exe ;`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		_, params := ParseParams(v)
		joinParams(params)
		for _, g := range group2231(params) {
			for _, n := range NormalizeFilename(DecodeFilename(g.value), g.name) {
				if len(n.Name) > MaxNameLength {
					t.Fatalf("name of %d bytes", len(n.Name))
				}
				if strings.ContainsAny(n.Name, "/\\\x00\u202e") {
					t.Fatalf("unclean name %q", n.Name)
				}
			}
		}
	})
}

func FuzzRules(f *testing.F) {
	f.Add("deny\t\\.exe$\tExecutable\tExecutables are dangerous\n")
	f.Add("allow\t(\\.[a-z0-9]{3})\\1$\t-\t-\n# comment\n")
	f.Add("deny\t-\tx-dosexec\tNo DOS\tNo DOS\n")
	f.Add("rename to .txt\t\\.pps$\tRenamed\tRenamed\n")
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseRules("fuzz", strings.NewReader(s))
		if err != nil {
			return
		}
		for _, name := range []string{"a.exe", "a.zip.zip", "", strings.Repeat("x", 300)} {
			if r := rs.MatchName(name); r != nil {
				r.RenamedName(name, "")
			}
			rs.MatchType(name)
			rs.MatchMIME(name)
		}
	})
}

func FuzzTNEF(f *testing.F) {
	f.Add(append(append([]byte{}, TNEFSignature...), 0x01, 0x00))
	f.Fuzz(func(t *testing.T, b []byte) {
		tn, err := ParseTNEF(b)
		if err != nil {
			return
		}
		for _, a := range tn.Attachments {
			_ = a.Name()
		}
	})
}

func FuzzZip(f *testing.F) {
	f.Add(zipOf(f, "a.txt", []byte("hello"), "b/c.exe", []byte("MZ")))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ListZip(b, 100)
		if err != nil {
			return
		}
		for _, e := range l.Entries {
			if r, err := OpenZipEntry(b, e); err == nil {
				buf := make([]byte, 1<<16)
				for i := 0; i < 64; i++ {
					if _, err := r.Read(buf); err != nil {
						break
					}
				}
			}
		}
		Scan(bytes.NewReader(message("f.zip", b)), int64(len(message("f.zip", b))), Options{MaxTotal: 8 << 20})
	})
}

// FuzzReplacePart: replacing any attachment of a well-formed message with
// new content under a new name and type gives a message in which that
// part, walked again, has the new name, type and content, whatever the
// part's header was.
func FuzzReplacePart(f *testing.F) {
	f.Add(message("a.docm", []byte("PK\x03\x04 macro")))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream;\r\n\tname*0=\"a\";\r\n name*1=\".docm\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx=41\r\n--b--\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Disposition: attachment; filename=x.pdf\n\n%PDF\n--b--\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tree := Walk(bytes.NewReader(b), int64(len(b)), WalkOptions{})
		// A structure the walk had to repair (a boundary recovered, a
		// header block without its end) may be read another way once a
		// part changes: only no panic and no error are asked of it.
		strict := len(tree.Problems) == 0
		for _, e := range tree.Root.Leaves() {
			x := Editable(e)
			if x != e || !e.IsAttachment() {
				continue
			}
			content := []byte("disarmed content \x00\xff")
			data, err := ReplacePart(e, PartChange{Name: "new name.docx", MediaType: "application/x-test", Disarmed: "VBA project"}, content)
			if err != nil {
				continue
			}
			sp, err := ApplyEdits(bytes.NewReader(b), 0, int64(len(b)), []Edit{{Entity: e, Data: data}})
			if err != nil {
				t.Fatal(err)
			}
			out := sp.Bytes()
			if !strict {
				continue
			}
			found := false
			for _, n := range Walk(bytes.NewReader(out), int64(len(out)), WalkOptions{}).Root.Leaves() {
				if n.Path != e.Path {
					continue
				}
				found = true
				got, _ := io.ReadAll(n.Open())
				if n.Filename() != "new name.docx" || n.MediaType != "application/x-test" || !bytes.Equal(got, content) {
					t.Fatalf("replaced part reads as %q %q %q:\n%s", n.Filename(), n.MediaType, got, out)
				}
			}
			if !found {
				t.Fatalf("part %s gone after its replacement:\n%s", e.Path, out)
			}
		}
	})
}
