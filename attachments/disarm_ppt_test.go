package attachments

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"chainmail/checks/checktest"
)

// pptRec builds one PowerPoint record.
func pptRec(ver, inst, typ uint16, body []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, ver|inst<<4)
	b = binary.LittleEndian.AppendUint16(b, typ)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// testPPT: a presentation whose PowerPoint Document stream holds a
// DocumentContainer with a VBAInfoAtom and, after it, the VBA project (a
// compound file with a Macros storage) in a compressed ExOleObjStg.
func testPPT() []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	stg := testDoc()
	zw.Write(stg)
	zw.Close()
	atom := pptRec(2, 0, 0x0400, []byte{1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0})
	list := pptRec(0xf, 0, 0x07d0, pptRec(0xf, 1, 0x03ff, atom))
	doc := pptRec(0xf, 0, 0x03e8, append(pptRec(1, 0, 0x03e9, make([]byte, 40)), list...))
	doc = append(doc, pptRec(0, 1, 0x1011, append(binary.LittleEndian.AppendUint32(nil, uint32(len(stg))), z.Bytes()...))...)
	return testCFB([]cfbEntry{{"PowerPoint Document", 2, 0, doc}, {"Current User", 2, 0, []byte("user")}})
}

func TestDisarmPPTVBA(t *testing.T) {
	in := testPPT()
	if len(pptVBAOf(t, in)) == 0 {
		t.Fatal("fixture: no PowerPoint VBA found")
	}
	d, err := Disarm("a.ppt", in)
	if err != nil {
		t.Fatal(err)
	}
	checkPPTDisarmed(t, in, d)
}

func pptVBAOf(t *testing.T, b []byte) []Active {
	t.Helper()
	o, err := ParseOLE(b)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := o.Stream(o.Find("PowerPoint Document"), -1)
	if err != nil {
		t.Fatal(err)
	}
	return pptVBA(doc)
}

// checkPPTDisarmed: nothing left; the document stream differs only in
// the body of the ExOleObjStg record (now zeros) and in fHasMacros (now
// 0); every other stream is as it was.
func checkPPTDisarmed(t *testing.T, in []byte, d *Disarmed) {
	t.Helper()
	if len(d.Data) != len(in) {
		t.Fatalf("length changed")
	}
	if a := Analyse(d.Data); len(a) != 0 {
		t.Errorf("still active: %v", a)
	}
	if len(d.Removed) != 1 || d.Removed[0] != "PowerPoint VBA project" {
		t.Errorf("removed %q", d.Removed)
	}
	oi, _ := ParseOLE(in)
	oo, err := ParseOLE(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range oi.Entries {
		x, _ := oi.Stream(i, -1)
		y, _ := oo.Stream(i, -1)
		if e.Type != 2 {
			continue
		}
		if e.Name != "PowerPoint Document" {
			if !bytes.Equal(x, y) {
				t.Errorf("stream %s changed", e.Path)
			}
			continue
		}
		h, _ := pptVBAAt(x)
		n := int(binary.LittleEndian.Uint32(x[h+4:]))
		atoms := 0
		for k := range x {
			switch {
			case k >= h+8 && k < h+8+n:
				if y[k] != 0 {
					t.Fatalf("ExOleObjStg byte %d not zeroed", k)
				}
			case x[k] != y[k]:
				// fHasMacros: 1 → 0, 4 bytes into a VBAInfoAtom body.
				if k < 12 || binary.LittleEndian.Uint16(x[k-10:]) != 0x0400 || x[k] != 1 || y[k] != 0 {
					t.Errorf("byte %d changed: %#x → %#x", k, x[k], y[k])
				}
				atoms++
			}
		}
		if atoms != 1 {
			t.Errorf("%d VBAInfoAtoms changed", atoms)
		}
	}
}

func TestDisarmPPTVBACorpus(t *testing.T) {
	dir := checktest.Corpus(t, "oletools-test-data")
	in, err := os.ReadFile(filepath.Join(dir, "olevba", "sample_with_vba.ppt"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Disarm("sample_with_vba.ppt", in)
	if err != nil {
		t.Fatal(err)
	}
	checkPPTDisarmed(t, in, d)
}

// pptVBAInfoOff walks containers only: an atom that merely contains the
// bytes of a VBAInfoAtom header is left alone, and a record running past
// its container stops the walk without a panic.
func TestPPTVBAInfoOff(t *testing.T) {
	atom := pptRec(2, 0, 0x0400, []byte{1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0})
	doc := append(pptRec(0, 0, 0x0fa0, atom), pptRec(0xf, 0, 0x03e8, atom)...)
	if n := pptVBAInfoOff(doc); n != 1 || !bytes.Contains(doc, atom) {
		t.Errorf("%d changed", n)
	}
	bad := pptRec(0xf, 0, 0x03e8, atom)
	binary.LittleEndian.PutUint32(bad[4:], 1<<31)
	if n := pptVBAInfoOff(bad); n != 0 {
		t.Errorf("broken container: %d changed", n)
	}
}
