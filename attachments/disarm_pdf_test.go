package attachments

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// testPDF builds a small PDF with a correct cross-reference table: objs
// are the bodies of objects 1, 2, ...; object 1 is the catalog (its
// dictionary gets catalogExtra), 2 the pages, 3 one page showing text
// (with pageExtra).
func testPDF(catalogExtra, pageExtra string, more ...string) []byte {
	content := "BT /F1 24 Tf 72 720 Td (Hello disarmed world) Tj ET"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R " + catalogExtra + " >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> " + pageExtra + " >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	objs = append(objs, more...)
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

func zlibString(s string) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// checkXref verifies that every offset in the cross-reference table
// still points at its "N 0 obj".
func checkXref(t *testing.T, b []byte) {
	t.Helper()
	m := regexp.MustCompile(`startxref\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no startxref")
	}
	x, _ := strconv.Atoi(string(m[1]))
	if !bytes.HasPrefix(b[x:], []byte("xref")) {
		t.Fatal("startxref does not point at the xref table")
	}
	for i, e := range regexp.MustCompile(`(\d{10}) 00000 n`).FindAllSubmatch(b[x:], -1) {
		off, _ := strconv.Atoi(string(e[1]))
		if want := fmt.Sprintf("%d 0 obj", i+1); !bytes.HasPrefix(b[off:], []byte(want)) {
			t.Errorf("xref entry %d points at %.10q", i+1, b[off:])
		}
	}
}

var disarmPDFCases = []struct {
	name string
	pdf  []byte
	gone []string // names that must not be left
}{
	{"OpenAction JavaScript", testPDF("/OpenAction 6 0 R", "", "<< /Type /Action /S /JavaScript /JS (app.alert\\('hi'\\);) >>"),
		[]string{"/OpenAction", "/JavaScript", "/JS"}},
	{"page AA", testPDF("", "/AA << /O 6 0 R >>", "<< /S /JavaScript /JS 7 0 R >>", "<< /Length 10 >>\nstream\napp.beep()\nendstream"),
		[]string{"/AA", "/JavaScript", "/JS"}},
	{"Launch", testPDF("/OpenAction << /S /Launch /F (cmd.exe) /Win << /F (calc.exe) >> >>", ""),
		[]string{"/OpenAction", "/Launch"}},
	{"embedded file", testPDF("/Names << /EmbeddedFiles << /Names [(a.exe) 6 0 R] >> >>", "",
		"<< /Type /Filespec /F (a.exe) /EF << /F 7 0 R >> >>",
		"<< /Type /EmbeddedFile /Length 2 >>\nstream\nMZ\nendstream"),
		[]string{"/EmbeddedFiles", "/EmbeddedFile"}},
	{"escaped names", testPDF("/Open#41ction << /S /J#61vaScript /#4AS (app.alert\\(1\\)) >> /#41A << >>", ""),
		[]string{"/Open#41ction", "/J#61vaScript", "/#4AS", "/#41A"}},
	{"XFA and SubmitForm", testPDF("/AcroForm << /Fields [] /XFA 6 0 R >>", "", "<< /S /SubmitForm /F (http://x/) >>"),
		[]string{"/XFA", "/SubmitForm"}},
}

func TestDisarmPDF(t *testing.T) {
	for _, c := range disarmPDFCases {
		t.Run(c.name, func(t *testing.T) {
			if c.name != "XFA and SubmitForm" && len(Analyse(c.pdf)) == 0 {
				t.Fatal("test PDF not seen as active")
			}
			checkXref(t, c.pdf)
			d, err := Disarm("a.pdf", c.pdf)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Data) != len(c.pdf) {
				t.Fatalf("length changed: %d → %d", len(c.pdf), len(d.Data))
			}
			checkXref(t, d.Data)
			for _, n := range c.gone {
				if bytes.Contains(d.Data, []byte(n+" ")) || bytes.Contains(d.Data, []byte(n+"(")) || bytes.Contains(d.Data, []byte(n+"<")) {
					t.Errorf("%s left", n)
				}
			}
			// Only the neutralised tokens changed.
			changed := 0
			for i := range d.Data {
				if d.Data[i] != c.pdf[i] {
					changed++
				}
			}
			if changed == 0 || changed > 60 {
				t.Errorf("%d bytes changed", changed)
			}
			if !bytes.Contains(d.Data, []byte("(Hello disarmed world) Tj")) || len(d.Removed) == 0 {
				t.Errorf("content lost or nothing reported: %v", d.Removed)
			}
			if os.Getenv("DISARM_PDF_OUT") != "" {
				os.WriteFile(os.Getenv("DISARM_PDF_OUT")+"/"+c.name+".pdf", d.Data, 0o644)
			}
		})
	}
}

func TestDisarmPDFRefuses(t *testing.T) {
	objStm := "6 0 << /S /JavaScript /JS (app.alert\\(1\\)) >>"
	cases := map[string][]byte{
		"object stream with a predictor": testPDF("/OpenAction 6 0 R", "",
			fmt.Sprintf("<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /DecodeParms << /Predictor 12 >> /Length %d >>\nstream\n%s\nendstream", len(zlibString(objStm)), zlibString(objStm))),
		"encrypted with object streams": testPDF("", "", "<< /Type /ObjStm /N 0 /First 0 /Length 0 >>\nstream\n\nendstream",
			"<< /Filter /Standard /V 2 >>"),
		"truncated object stream": testPDF("/OpenAction 6 0 R", "",
			fmt.Sprintf("<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", len(zlibString(objStm))-4, zlibString(objStm)[:len(zlibString(objStm))-4])),
	}
	// The encrypted case names /Encrypt in its trailer.
	cases["encrypted with object streams"] = bytes.Replace(cases["encrypted with object streams"], []byte("/Root 1 0 R"), []byte("/Root 1 0 R /Encrypt 7 0 R"), 1)
	for name, b := range cases {
		if _, err := Disarm("a.pdf", b); !errors.Is(err, ErrCannotDisarm) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestDisarmPDFObjectStream(t *testing.T) {
	in := testObjStmPDF()
	if len(Analyse(in)) == 0 {
		t.Fatal("test PDF not seen as active")
	}
	d, err := Disarm("a.pdf", in)
	if err != nil {
		t.Fatal(err)
	}
	// The original bytes are kept but for the neutralised names and the
	// zeroed old object stream; the update follows.
	if !bytes.HasPrefix(d.Data[len(in):], []byte("7 0 obj")) || !bytes.HasSuffix(d.Data, []byte("%%EOF\n")) {
		t.Fatalf("no incremental update: %q", d.Data[len(in):])
	}
	old := bytes.Index(in, []byte("/Type /ObjStm"))
	changed := 0
	for i := range in {
		if in[i] != d.Data[i] && i < old {
			changed++
		}
	}
	if changed != 2 { // /OpenAction → /openaction
		t.Errorf("%d bytes changed before the object stream", changed)
	}
	// The new object stream holds the neutralised action at the same
	// offsets, and the new section points at it.
	tail := d.Data[len(in):]
	s := bytes.Index(tail, []byte("stream\n")) + len("stream\n")
	r, err := zlib.NewReader(bytes.NewReader(tail[s:]))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if want := "6 0 << /Type /Action /S /javascript /js (app.alert\\(1\\);) >>"; string(got) != want {
		t.Errorf("object stream now %q", got)
	}
	m := regexp.MustCompile(`xref\n7 1\n(\d{10}) 00000 n \ntrailer\n<< /Size 9 /Root 1 0 R /Prev (\d+) >>\nstartxref\n(\d+)\n%%EOF\n$`).FindSubmatch(d.Data)
	if m == nil {
		t.Fatalf("update section: %q", tail[bytes.LastIndex(tail, []byte("endobj")):])
	}
	if off, _ := strconv.Atoi(string(m[1])); off != len(in) {
		t.Errorf("object 7 at %d, want %d", off, len(in))
	}
	if prev, _ := strconv.Atoi(string(m[2])); !bytes.HasPrefix(in[prev:], []byte("8 0 obj")) {
		t.Errorf("/Prev %d", prev)
	}
	if x, _ := strconv.Atoi(string(m[3])); !bytes.HasPrefix(d.Data[x:], []byte("xref\n7 1")) {
		t.Errorf("startxref %d", x)
	}
	if os.Getenv("DISARM_PDF_OUT") != "" {
		os.WriteFile(os.Getenv("DISARM_PDF_OUT")+"/objstm.pdf", d.Data, 0o644)
	}
}

// testObjStmPDF builds a PDF 1.5 whose catalog's /OpenAction is object
// 6, a JavaScript action kept in the compressed object stream 7; the
// cross-reference is a stream (object 8), as object streams require.
func testObjStmPDF() []byte {
	content := "BT /F1 24 Tf 72 720 Td (Hello disarmed world) Tj ET"
	action := "<< /Type /Action /S /JavaScript /JS (app.alert\\(1\\);) >>"
	hdr := "6 0 "
	stm := zlibString(hdr + action)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
	offs := map[int]int{}
	obj := func(n int, body string) {
		offs[n] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", n, body)
	}
	for i, o := range objs {
		obj(i+1, o)
	}
	obj(7, fmt.Sprintf("<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", len(hdr), len(stm), stm))
	xrefAt := b.Len()
	var x []byte
	row := func(typ byte, f2 uint32, f3 uint16) {
		x = append(x, typ, byte(f2>>24), byte(f2>>16), byte(f2>>8), byte(f2), byte(f3>>8), byte(f3))
	}
	row(0, 0, 0xffff)
	for n := 1; n <= 5; n++ {
		row(1, uint32(offs[n]), 0)
	}
	row(2, 7, 0) // object 6: index 0 in object stream 7
	row(1, uint32(offs[7]), 0)
	row(1, uint32(xrefAt), 0)
	xs := zlibString(string(x))
	fmt.Fprintf(&b, "8 0 obj\n<< /Type /XRef /Size 9 /W [1 4 2] /Root 1 0 R /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream\nendobj\n", len(xs), xs)
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefAt)
	return b.Bytes()
}

func TestDisarmPDFUpdateClassicXref(t *testing.T) {
	objStm := "6 0 << /S /JavaScript /JS (app.alert\\(1\\)) >>"
	in := testPDF("/OpenAction 6 0 R", "",
		fmt.Sprintf("<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length 7 0 R >>\nstream\n%s\nendstream", zlibString(objStm)),
		fmt.Sprint(len(zlibString(objStm))))
	d, err := Disarm("a.pdf", in)
	if err != nil {
		t.Fatal(err)
	}
	tail := string(d.Data[len(in):])
	if !regexp.MustCompile(`^6 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length \d+ >>\nstream\n`).MatchString(tail) ||
		!regexp.MustCompile(`trailer\n<< /Size 8 /Root 1 0 R /Prev \d+ >>\nstartxref\n\d+\n%%EOF\n$`).MatchString(tail) {
		t.Errorf("update: %q", tail)
	}
	checkXref(t, d.Data[:len(in)])

	// A name that is harmless alone (an /OpenAction going to a page) in
	// an object stream is no reason for an update.
	s := "6 0 << /OpenAction << /S /GoTo /D [3 0 R /Fit] >> >>"
	in = testPDF("/Names << /JavaScript 7 0 R >>", "",
		fmt.Sprintf("<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", len(zlibString(s)), zlibString(s)))
	if d, err := Disarm("a.pdf", in); err != nil || len(d.Data) != len(in) {
		t.Errorf("harmless object stream: err %v", err)
	}
}

// Binary stream data that happens to read like an action name is data:
// an image with "/JS " and "/AA " in its bytes is not active content, and
// a disarm of the file's real JavaScript leaves the image's bytes alone.
func TestPDFNamesInBinaryStreams(t *testing.T) {
	img := "\xff\xd8\xff\xe0 /JS /AA\x00/OpenAction \x91\xff\xd9"
	image := fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /Filter /DCTDecode /Length %d >>\nstream\n%s\nendstream", len(img), img)
	clean := testPDF("", "", image)
	if a := Analyse(clean); len(a) != 0 {
		t.Errorf("image bytes taken for active content: %v", a)
	}
	// An unfiltered stream is read as it is: its names count.
	raw := "<< /Length 30 >>\nstream\n<< /S /JavaScript /JS (x) >>\nendstream"
	if a := Analyse(testPDF("", "", raw)); len(a) == 0 {
		t.Error("JavaScript in an unfiltered stream not found")
	}
	active := testPDF("/OpenAction << /S /JavaScript /JS (app.alert(1)) >>", "", image)
	d, err := Disarm("a.pdf", active)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(d.Data, []byte(img)) {
		t.Error("the image's bytes were changed")
	}
	if bytes.Contains(d.Data, []byte("/OpenAction <<")) {
		t.Error("the real OpenAction is left")
	}
}
