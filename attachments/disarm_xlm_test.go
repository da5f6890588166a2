package attachments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks/checktest"
)

// biffRec builds one BIFF record.
func biffRec(typ uint16, body []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, typ)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// biffName builds a BIFF8 NAME record body with an 8-bit name.
func biffName(grbit uint16, name string) []byte {
	b := binary.LittleEndian.AppendUint16(nil, grbit)
	b = append(b, 0, byte(len(name)), 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	return append(append(b, name...), 0x3a, 0, 0)
}

// testWorkbook: a BIFF8 globals substream with the given records, a
// macro sheet and a worksheet; the BOUNDSHEET offsets are filled in.
func testWorkbook(extra ...[]byte) []byte {
	bof := func(dt uint16) []byte {
		return biffRec(0x0809, []byte{0, 6, byte(dt), byte(dt >> 8), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	}
	sheet := func(dt byte, name string) []byte {
		return biffRec(0x0085, append([]byte{0, 0, 0, 0, 0, dt, byte(len(name)), 0}, name...))
	}
	var g []byte
	g = append(g, bof(0x0005)...)
	for _, r := range extra {
		g = append(g, r...)
	}
	at1 := len(g)
	g = append(g, sheet(1, "Macro1")...)
	at2 := len(g)
	g = append(g, sheet(0, "Sheet1")...)
	g = append(g, biffRec(0x000a, nil)...)
	binary.LittleEndian.PutUint32(g[at1+4:], uint32(len(g)))
	g = append(g, bof(0x0040)...)
	g = append(g, biffRec(0x000a, nil)...)
	binary.LittleEndian.PutUint32(g[at2+4:], uint32(len(g)))
	g = append(g, bof(0x0010)...)
	return append(g, biffRec(0x000a, nil)...)
}

func TestNeutraliseBIFF(t *testing.T) {
	wb := testWorkbook(
		biffRec(0x0018, biffName(0x0020, "\x01")),        // built-in Auto_Open
		biffRec(0x0018, biffName(0x0008, "aUTO_oPEN_2")), // runs too
		biffRec(0x0018, biffName(0x0000, "xuto_open_2")), // taken: not the new name
		biffRec(0x0018, biffName(0x0020, "\x06")),        // Print_Area stays
		biffRec(0x0018, biffName(0x0000, "Autumn")),      // stays
	)
	in := append([]byte(nil), wb...)
	removed, err := neutraliseBIFF(wb)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 3 || !strings.Contains(removed[0], "Macro1") {
		t.Errorf("removed %q", removed)
	}
	if a := biffFindings(wb); len(a) != 0 {
		t.Errorf("still found %v", a)
	}
	for _, want := range []string{"\x20\x00\x00\x01", "aUTO_oPEN_2", "\x20\x00\x00\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06", "Autumn"} {
		if !bytes.Contains(in, []byte(want)) {
			t.Fatalf("fixture lacks %q", want)
		}
	}
	for want, n := range map[string]int{
		"\x00\x00\x00\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00x": 1, // Auto_Open: x, not built in
		"yUTO_oPEN_2": 1, "xuto_open_2": 1, "Autumn": 1,
		"\x20\x00\x00\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06": 1,
		"\x09\x08\x10\x00\x00\x06\x10\x00":                                 2, "\x09\x08\x10\x00\x00\x06\x40\x00": 0, // BOF types
	} {
		if c := bytes.Count(wb, []byte(want)); c != n {
			t.Errorf("%q: %d times, want %d", want, c, n)
		}
	}
	diff := 0
	for k := range in {
		if in[k] != wb[k] {
			diff++
		}
	}
	// BOUNDSHEET type, BOF type, two grbits, two first letters.
	if diff != 6 {
		t.Errorf("%d bytes changed, want 6", diff)
	}
	// Through Disarm, the workbook stream in the mini stream of a
	// compound file: changed as neutraliseBIFF changes it, nothing else.
	cfb := testCFB([]cfbEntry{{"Workbook", 2, 0, in}, {"\x05SummaryInformation", 2, 0, []byte("s")}})
	d, err := Disarm("a.xls", cfb)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOLE(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := o.Stream(o.Find("Workbook"), -1); !bytes.Equal(got, wb) {
		t.Error("workbook stream in the compound file not as neutraliseBIFF makes it")
	}
	if n := diffCount(cfb, d.Data); n != 6 {
		t.Errorf("%d bytes of the compound file changed, want 6", n)
	}
	// Encrypted, a BOF elsewhere, another BIFF version: refused.
	for name, wb := range map[string][]byte{
		"encrypted": testWorkbook(biffRec(0x002f, []byte{0, 0})),
		"BOF":       bytes.Replace(testWorkbook(), []byte("\x00\x06\x40\x00"), []byte("\x00\x06\x20\x00"), 1),
		"version":   bytes.Replace(testWorkbook(), []byte("\x00\x06\x05\x00"), []byte("\x00\x04\x05\x00"), 1),
	} {
		if _, err := neutraliseBIFF(wb); !errors.Is(err, ErrCannotDisarm) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestDisarmXLMCorpus(t *testing.T) {
	dir := checktest.Corpus(t, "oletools-test-data")
	for _, p := range []string{
		"excel4-macros/excel4_sample_macro.xls",
		"excel4-macros/excel4_sample_macro.xlt",
		"excel4-macros/excel4_sample_macro_excel5_format.xls",
	} {
		in, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		d, err := Disarm(filepath.Base(p), in)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if a := Analyse(d.Data); len(a) != 0 {
			t.Errorf("%s: still active: %v", p, a)
		}
		if strings.Join(d.Removed, ";") != "Excel 4 macro sheet Macro1 (now a worksheet);auto-run defined name Auto_Open" {
			t.Errorf("%s: removed %q", p, d.Removed)
		}
		oi, _ := ParseOLE(in)
		oo, err := ParseOLE(d.Data)
		if err != nil || len(d.Data) != len(in) {
			t.Fatalf("%s: output does not parse (%v) or has another length", p, err)
		}
		// Only the workbook stream changed, and in it only the four
		// bytes expected: the BOUNDSHEET type, the BOF type of the
		// macro sheet, the NAME's flags and its name.
		diff := 0
		for k := range in {
			if in[k] != d.Data[k] {
				diff++
			}
		}
		if diff != 4 {
			t.Errorf("%s: %d bytes changed", p, diff)
		}
		for i, e := range oi.Entries {
			if e.Type != 2 {
				continue
			}
			x, _ := oi.Stream(i, -1)
			y, _ := oo.Stream(i, -1)
			if e.Name != "Workbook" && e.Name != "Book" {
				if !bytes.Equal(x, y) {
					t.Errorf("%s: stream %s changed", p, e.Path)
				}
				continue
			}
			want := append([]byte(nil), x...)
			if _, err := neutraliseBIFF(want); err != nil || !bytes.Equal(y, want) {
				t.Errorf("%s: workbook stream not as neutraliseBIFF makes it (%v)", p, err)
			}
			if bytes.Contains(y, []byte("\x09\x08\x10\x00\x00\x06\x40\x00")) || bytes.Contains(y, []byte("\x09\x08\x08\x00\x00\x06\x40\x00")) {
				t.Errorf("%s: macro sheet BOF left", p)
			}
		}
	}
}

func diffCount(a, b []byte) int {
	n := 0
	for k := range a {
		if k >= len(b) || a[k] != b[k] {
			n++
		}
	}
	return n
}
