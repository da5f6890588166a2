package attachments

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"

	"chainmail/checks/checktest"
)

// cfbEntry is one entry of a synthetic compound file: parent is the
// index of its storage (0 the root) in the list given to testCFB, which
// starts at index 1.
type cfbEntry struct {
	name   string
	typ    byte // 1 storage, 2 stream
	parent int
	data   []byte // streams only (in the mini stream when < 4096 bytes)
}

// testCFB builds a version 3 compound file: sector 0 the FAT, 1 the mini
// FAT, then the directory, the mini stream and the large streams. The children of each
// storage are a tree ordered as [MS-CFB] wants (each child the right
// sibling of the one before).
func testCFB(entries []cfbEntry) []byte {
	all := append([]cfbEntry{{name: "Root Entry", typ: 5}}, entries...)
	n := len(all)
	child := make([]uint32, n)
	right := make([]uint32, n)
	for i := range all {
		child[i], right[i] = oleNoEntry, oleNoEntry
	}
	for p := range all {
		var kids []int
		for i := 1; i < n; i++ {
			if all[i].parent == p {
				kids = append(kids, i)
			}
		}
		sort.Slice(kids, func(a, b int) bool {
			return cfbCompare(utf16.Encode([]rune(all[kids[a]].name)), utf16.Encode([]rune(all[kids[b]].name))) < 0
		})
		for k, i := range kids {
			if k == 0 {
				child[p] = uint32(i)
			} else {
				right[kids[k-1]] = uint32(i)
			}
		}
	}
	// The mini stream.
	var mini []byte
	var miniFAT []uint32
	start := make([]uint32, n)
	for i, e := range all {
		start[i] = oleEnd
		if e.typ != 2 || len(e.data) == 0 || len(e.data) >= 4096 {
			continue
		}
		start[i] = uint32(len(mini) / 64)
		k := (len(e.data) + 63) / 64
		for j := 0; j < k; j++ {
			miniFAT = append(miniFAT, uint32(len(miniFAT)+1))
		}
		miniFAT[len(miniFAT)-1] = oleEnd
		mini = append(mini, e.data...)
		mini = append(mini, make([]byte, k*64-len(e.data))...)
	}
	dirSecs := (n + 3) / 4
	miniSecs := (len(mini) + 511) / 512
	mini = append(mini, make([]byte, miniSecs*512-len(mini))...)
	fat := []uint32{0xFFFFFFFD, oleEnd}
	for k := 0; k < dirSecs; k++ {
		fat = append(fat, uint32(len(fat)+1))
	}
	fat[len(fat)-1] = oleEnd
	miniStart := uint32(len(fat))
	for k := 0; k < miniSecs; k++ {
		fat = append(fat, uint32(len(fat)+1))
	}
	if miniSecs > 0 {
		fat[len(fat)-1] = oleEnd
	} else {
		miniStart = oleEnd
	}
	var big []byte
	for i, e := range all {
		if e.typ != 2 || len(e.data) < 4096 {
			continue
		}
		start[i] = uint32(len(fat))
		k := (len(e.data) + 511) / 512
		for j := 0; j < k; j++ {
			fat = append(fat, uint32(len(fat)+1))
		}
		fat[len(fat)-1] = oleEnd
		big = append(big, e.data...)
		big = append(big, make([]byte, k*512-len(e.data))...)
	}
	le := binary.LittleEndian
	h := make([]byte, 512)
	copy(h, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	le.PutUint16(h[0x18:], 0x3e)
	le.PutUint16(h[0x1a:], 3)
	le.PutUint16(h[0x1c:], 0xfffe)
	le.PutUint16(h[0x1e:], 9)
	le.PutUint16(h[0x20:], 6)
	le.PutUint32(h[0x2c:], 1)
	le.PutUint32(h[0x30:], 2)
	le.PutUint32(h[0x38:], 4096)
	le.PutUint32(h[0x3c:], 1)
	le.PutUint32(h[0x40:], 1)
	le.PutUint32(h[0x44:], oleEnd)
	for k := 0; k < 109; k++ {
		le.PutUint32(h[0x4c+4*k:], oleFree)
	}
	le.PutUint32(h[0x4c:], 0)
	sec := func(words []uint32) []byte {
		b := make([]byte, 512)
		for k := range b {
			b[k] = 0xff
		}
		for k, w := range words {
			le.PutUint32(b[4*k:], w)
		}
		return b
	}
	out := append(h, sec(fat)...)
	out = append(out, sec(miniFAT)...)
	dir := make([]byte, dirSecs*512)
	for i, e := range all {
		d := dir[128*i : 128*i+128]
		u := utf16.Encode([]rune(e.name))
		for k, c := range u {
			le.PutUint16(d[2*k:], c)
		}
		le.PutUint16(d[0x40:], uint16(2*len(u)+2))
		d[0x42], d[0x43] = e.typ, 1
		le.PutUint32(d[0x44:], oleNoEntry)
		le.PutUint32(d[0x48:], right[i])
		le.PutUint32(d[0x4c:], child[i])
		size := uint32(len(e.data))
		if i == 0 {
			start[i], size = miniStart, uint32(len(bytes.TrimRight(mini, "\x00")))
			size = uint32((int(size) + 63) / 64 * 64)
		}
		le.PutUint32(d[0x74:], start[i])
		le.PutUint32(d[0x78:], size)
	}
	for i := n; i < dirSecs*4; i++ {
		le.PutUint32(dir[128*i+0x44:], oleNoEntry)
		le.PutUint32(dir[128*i+0x48:], oleNoEntry)
		le.PutUint32(dir[128*i+0x4c:], oleNoEntry)
	}
	out = append(out, dir...)
	out = append(out, mini...)
	return append(out, big...)
}

// testDoc is a small Word-like file with a VBA project beside other
// streams and storages.
func testDoc(rootExtra ...string) []byte {
	es := []cfbEntry{
		{"WordDocument", 2, 0, bytes.Repeat([]byte("doc text "), 600)},
		{"1Table", 2, 0, []byte("table stream")},
		{"\x05SummaryInformation", 2, 0, []byte("summary")},
		{"Macros", 1, 0, nil}, // 4
		{"VBA", 1, 4, nil},    // 5
		{"PROJECT", 2, 4, []byte("ID=\"{X}\"\r\nDocument=ThisDocument/&H00000000\r\n")},
		{"PROJECTwm", 2, 4, []byte("ThisDocument\x00")},
		{"dir", 2, 5, bytes.Repeat([]byte{1, 2, 3}, 100)},
		{"_VBA_PROJECT", 2, 5, []byte{0xcc, 0x61, 0xff, 0xff}},
		{"ThisDocument", 2, 5, []byte("Attribute VB_Name = \"ThisDocument\"\r\nSub AutoOpen()\r\nEnd Sub\r\n")},
		{"Module1", 2, 5, bytes.Repeat([]byte("Sub Macro()\r\n"), 500)},
		{"ObjectPool", 1, 0, nil}, // 12
		{"_1234", 1, 12, nil},
		{"\x01CompObj", 2, 13, []byte("compobj")},
	}
	for _, n := range rootExtra {
		es = append(es, cfbEntry{n, 2, 0, []byte("x")})
	}
	return testCFB(es)
}

// checkOLEDisarmed verifies a neutralised compound file against its
// original: same length, every stream of a VBA storage zeroed, every
// other stream byte-identical, only VBA names changed (same length), the
// directory trees still in order, and nothing left for Analyse.
func checkOLEDisarmed(t *testing.T, in, out []byte) {
	t.Helper()
	if len(out) != len(in) {
		t.Fatalf("length changed: %d → %d", len(in), len(out))
	}
	oi, err := ParseOLE(in)
	if err != nil {
		t.Fatal(err)
	}
	oo, err := ParseOLE(out)
	if err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	if len(oi.Entries) != len(oo.Entries) {
		t.Fatalf("entries %d → %d", len(oi.Entries), len(oo.Entries))
	}
	zeroed := 0
	for i, a := range oi.Entries {
		b := oo.Entries[i]
		if a.Name != b.Name && (!isVBAName(a.Name) || len(a.Name) != len(b.Name) || isVBAName(b.Name)) {
			t.Errorf("entry %q renamed %q", a.Name, b.Name)
		}
		if isVBAName(a.Name) && a.Name == b.Name {
			t.Errorf("entry %q not renamed", a.Path)
		}
		if a.Type != 2 || a.Path == "" {
			continue
		}
		x, _ := oi.Stream(i, -1)
		y, _ := oo.Stream(i, -1)
		inVBA := false
		for _, p := range strings.Split(a.Path, "/") {
			inVBA = inVBA || isVBAName(p)
		}
		switch {
		case inVBA && (len(y) != len(x) || len(bytes.Trim(y, "\x00")) > 0):
			t.Errorf("%s not zeroed", a.Path)
		case inVBA:
			zeroed++
		case !bytes.Equal(x, y):
			t.Errorf("%s changed", a.Path)
		}
	}
	if zeroed == 0 {
		t.Error("no stream zeroed")
	}
	// In-order walk of each tree: names strictly increasing.
	for p, e := range oo.Entries {
		if e.Type != 1 && e.Type != 5 {
			continue
		}
		var names [][]uint16
		var walk func(n uint32, depth int)
		walk = func(n uint32, depth int) {
			if n == oleNoEntry || int(n) >= len(oo.Entries) || depth > len(oo.Entries) {
				return
			}
			walk(oo.Entries[n].left, depth+1)
			names = append(names, utf16.Encode([]rune(oo.Entries[n].Name)))
			walk(oo.Entries[n].right, depth+1)
		}
		walk(oo.Entries[p].child, 0)
		for k := 1; k < len(names); k++ {
			if cfbCompare(names[k-1], names[k]) >= 0 {
				t.Errorf("tree of %q out of order: %q before %q", e.Name, string(utf16.Decode(names[k-1])), string(utf16.Decode(names[k])))
			}
		}
	}
	if left := Analyse(out); len(left) > 0 {
		t.Errorf("active content left: %v", left)
	}
}

func TestDisarmOLESynthetic(t *testing.T) {
	in := testDoc()
	if a := Analyse(in); len(a) == 0 || a[0].Kind != KindVBA {
		t.Fatalf("synthetic doc: %v", a)
	}
	d, err := Disarm("a.doc", in)
	if err != nil {
		t.Fatal(err)
	}
	checkOLEDisarmed(t, in, d.Data)
	if d.Name != "" || d.MIME != "" || len(d.Removed) != 1 || d.Removed[0] != "VBA project Macros" {
		t.Errorf("name %q type %q removed %q", d.Name, d.MIME, d.Removed)
	}
	// A sibling right after the only obvious new name: another is found.
	in = testDoc("MacroX", "Macro_", "MacroA")
	d, err = Disarm("a.doc", in)
	if err != nil {
		t.Fatal(err)
	}
	checkOLEDisarmed(t, in, d.Data)
	// Siblings on both sides of "Macros" at its last letter, and no other
	// letter can change without moving it past one of them.
	in = testDoc("MacroR", "MacroT")
	if _, err := Disarm("a.doc", in); !errors.Is(err, ErrCannotDisarm) {
		t.Errorf("no safe name: err %v", err)
	}
}

func TestDisarmOLERefuses(t *testing.T) {
	// A package object beside the VBA.
	pkg := append([]byte{0, 0, 0, 0, 2, 0}, "a.exe\x00C:\\a.exe\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00MZ"...)
	in := testCFB([]cfbEntry{{"WordDocument", 2, 0, []byte("x")}, {"\x01Ole10Native", 2, 0, pkg}, {"Macros", 1, 0, nil}, {"PROJECT", 2, 3, []byte("p")}})
	if _, err := Disarm("a.doc", in); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), "package") {
		t.Errorf("package: err %v", err)
	}
	// DDE in a Word document.
	in = testCFB([]cfbEntry{{"WordDocument", 2, 0, []byte("\xec\xa5\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00 \x13 DDEAUTO c:\\\\windows\\\\cmd.exe \x14\x15")}})
	if _, err := Disarm("a.doc", in); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), "DDE") {
		t.Errorf("DDE: err %v", err)
	}
	// Nothing active: the file comes back as it was.
	in = testCFB([]cfbEntry{{"WordDocument", 2, 0, []byte("x")}})
	if d, err := Disarm("a.doc", in); err != nil || !bytes.Equal(d.Data, in) {
		t.Errorf("clean file: err %v", err)
	}
}

func TestDisarmOLECorpus(t *testing.T) {
	dir := checktest.Corpus(t, "oletools-test-data")
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for p, why := range map[string]string{
		"oleobj/embedded-simple-2007.doc":                  "package",
		"oleobj/embedded-simple-2007.xls":                  "package",
		"oleobj/embedded-unicode.doc":                      "package",
		"encrypted/autostart-encrypt-standardpassword.xls": "encrypted",
	} {
		if _, err := Disarm(filepath.Base(p), read(p)); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: err %v, want %q", p, err, why)
		}
	}
	// The VBA storage of the encrypted workbook is not encrypted: the
	// neutralising itself works on it (the refusal is for what the
	// encrypted workbook may hide).
	in := read("encrypted/autostart-encrypt-standardpassword.xls")
	o, err := ParseOLE(in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := neutraliseVBA(o, in)
	if err != nil {
		t.Fatal(err)
	}
	checkOLEDisarmed(t, in, d.Data)
	// A VBA project as Word keeps it in a .docm: a compound file of its own.
	zr, err := zip.NewReader(bytes.NewReader(read("oleform/oleform-PR314.docm")), int64(len(read("oleform/oleform-PR314.docm"))))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != "word/vbaProject.bin" {
			continue
		}
		rc, _ := f.Open()
		in, _ := io.ReadAll(rc)
		rc.Close()
		d, err := Disarm("vbaProject.bin", in)
		if err != nil {
			t.Fatal(err)
		}
		checkOLEDisarmed(t, in, d.Data)
		return
	}
	t.Error("no vbaProject.bin in oleform-PR314.docm")
}
