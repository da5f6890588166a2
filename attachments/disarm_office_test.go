package attachments

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"chainmail/checks/checktest"
)

// "Still opens", proven with a real application: every corpus document
// with active content that Disarm accepts is converted, before and after,
// by headless LibreOffice, and the two results are compared. LibreOffice
// opens almost anything (garbage becomes a plain-text document), so
// "opens" means: the conversion wrote its output, and what the document
// says (its text, its sheets) is what the original said, apart from the
// places where active content stood.

// disarmSample is one file of the disarming corpus.
type disarmSample struct {
	Label string // where it comes from, for the log
	Name  string // its file name
	Data  []byte
}

// disarmSamples returns every file of oletools' test data and every
// attachment of SpamAssassin's olevbmacro messages.
func disarmSamples(tb testing.TB) []disarmSample {
	tb.Helper()
	var out []disarmSample
	root := checktest.Corpus(tb, "oletools-test-data")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, disarmSample{Label: "oletools-test-data/" + filepath.ToSlash(rel), Name: d.Name(), Data: data})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	emls, _ := filepath.Glob(filepath.Join(checktest.Corpus(tb, "apache-spamassassin-t-data"), "spam", "olevbmacro", "*.eml"))
	if len(emls) == 0 {
		tb.Fatal("no olevbmacro messages in the SpamAssassin corpus")
	}
	for _, p := range emls {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		tree := Walk(bytes.NewReader(raw), int64(len(raw)), WalkOptions{})
		for _, e := range tree.Root.Leaves() {
			if !e.IsAttachment() {
				continue
			}
			data, err := io.ReadAll(e.Open())
			if err != nil {
				tb.Fatalf("%s: %s: %v", p, e.Path, err)
			}
			out = append(out, disarmSample{Label: filepath.Base(p) + ": " + e.Filename(), Name: e.Filename(), Data: data})
		}
	}
	return out
}

// The LibreOffice application that opens a file, by its extension.
const (
	appWriter  = "writer"
	appCalc    = "calc"
	appImpress = "impress"
)

var officeApps = map[string]string{
	"doc": appWriter, "docx": appWriter, "docm": appWriter, "dot": appWriter, "dotx": appWriter, "dotm": appWriter, "rtf": appWriter, "odt": appWriter,
	"xls": appCalc, "xlsx": appCalc, "xlsm": appCalc, "xlsb": appCalc, "xlt": appCalc, "xltx": appCalc, "xltm": appCalc, "xla": appCalc, "xlam": appCalc, "slk": appCalc, "csv": appCalc, "ods": appCalc,
	"ppt": appImpress, "pptx": appImpress, "pptm": appImpress, "pot": appImpress, "potx": appImpress, "potm": appImpress, "pps": appImpress, "ppsx": appImpress, "ppsm": appImpress, "odp": appImpress,
}

// officeExt is the extension a file is given for LibreOffice: its own
// when LibreOffice knows it, else the one its content says (a workbook
// named renamed.jpg is a workbook). Office 2003 XML keeps "xml".
func officeExt(name string, data []byte) (ext, app string) {
	ext = strings.ToLower(strings.TrimPrefix(filepath.Ext(name), "."))
	if a, ok := officeApps[ext]; ok {
		return ext, a
	}
	head := data[:min(len(data), 4096)]
	switch {
	case bytes.Contains(head, []byte("urn:schemas-microsoft-com:office:spreadsheet")):
		return "xml", appCalc
	case bytes.Contains(head, []byte("schemas.microsoft.com/office/word/2003/wordml")):
		return "xml", appWriter
	}
	t := Sniff(data[:min(len(data), SniffSize)])
	if a, ok := officeApps[t.Ext]; ok {
		return t.Ext, a
	}
	return ext, ""
}

// loOutput is what LibreOffice made of one input: Writer documents as
// UTF-8 text, Calc workbooks as one CSV per sheet, Impress presentations
// as PDF. Converted is false when it wrote nothing.
type loOutput struct {
	Converted bool
	Text      string
	Sheets    map[string]string
	PDF       []byte
}

// The output filter of each application; Calc writes every sheet
// (token 12 = -1) as <name>-<sheet>.csv.
var loFilters = map[string]struct{ filter, ext string }{
	appWriter:  {"txt:Text (encoded):UTF8", "txt"},
	appCalc:    {"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1", "csv"},
	appImpress: {"pdf:impress_pdf_Export", "pdf"},
}

// loConvert converts the files (input name → content; names must be
// unique without their extension, since LibreOffice names each output
// after its input) with one soffice run per application, the runs in
// parallel, each with a private profile and a timeout.
func loConvert(t *testing.T, soffice string, files map[string][]byte) map[string]*loOutput {
	t.Helper()
	dir := t.TempDir()
	groups := map[string][]string{}
	out := map[string]*loOutput{}
	for name, data := range files {
		_, app := officeExt(name, data)
		if app == "" {
			t.Fatalf("loConvert: %s: no LibreOffice application for it", name)
		}
		in := filepath.Join(dir, "in", app, name)
		if err := os.MkdirAll(filepath.Dir(in), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		groups[app] = append(groups[app], in)
		out[name] = &loOutput{}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for app, inputs := range groups {
		sort.Strings(inputs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			outDir := filepath.Join(dir, "out", app)
			t0 := time.Now()
			err := checktest.SofficeConvert(t, soffice, loFilters[app].filter, outDir, inputs...)
			mu.Lock()
			defer mu.Unlock()
			t.Logf("soffice %s: %d files in %v", app, len(inputs), time.Since(t0).Round(time.Millisecond))
			if err != nil {
				errs = append(errs, app+": "+err.Error())
				return
			}
			for _, in := range inputs {
				name := filepath.Base(in)
				base := strings.TrimSuffix(name, filepath.Ext(name))
				o := out[name]
				switch app {
				case appCalc:
					matches, _ := filepath.Glob(filepath.Join(outDir, globEscape(base)+"-*.csv"))
					for _, m := range matches {
						b, err := os.ReadFile(m)
						if err != nil {
							continue
						}
						if o.Sheets == nil {
							o.Sheets = map[string]string{}
						}
						o.Sheets[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), base+"-"), ".csv")] = string(b)
					}
					o.Converted = len(o.Sheets) > 0
				default:
					b, err := os.ReadFile(filepath.Join(outDir, base+"."+loFilters[app].ext))
					if err == nil && len(b) > 0 {
						o.Converted = true
						if app == appWriter {
							o.Text = string(b)
						} else {
							o.PDF = b
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	return out
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// normText is a Writer text export without what differs between two
// exports of the same text: the byte order mark, CR, trailing white space
// on lines and at the end.
func normText(s string) string {
	s = strings.TrimPrefix(s, "\ufeff")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\u00a0")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// sameDocument compares what LibreOffice made of the original and of the
// disarmed file. Legitimate differences, and only these:
//   - Writer: the results of the original's DDE fields (the text Word
//     cached for them, or what LibreOffice shows in their place) may be
//     kept or dropped; fieldResults lists them.
//   - Calc: a cell that shows an error value in the original (LibreOffice
//     does not run DDE links or Excel 4 macro formulas, so their cells
//     show #NAME?, Err:509...) may hold anything in the disarmed file (its
//     cached value, nothing); a sheet that shows nothing but error values
//     (an Excel 4 macro sheet) may be gone.
//   - Impress: no text export; the PDF must exist.
func sameDocument(app string, orig, dis *loOutput, fieldResults []string) error {
	if !dis.Converted {
		return errors.New("LibreOffice could not open the disarmed file (no output)")
	}
	switch app {
	case appWriter:
		a, b := normText(orig.Text), normText(dis.Text)
		if a == b {
			return nil
		}
		for _, r := range fieldResults {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			a = strings.Replace(a, r, "", 1)
			b = strings.Replace(b, r, "", 1)
		}
		if normText(a) != normText(b) {
			return fmt.Errorf("text differs:\n--- original\n%s\n--- disarmed\n%s", normText(orig.Text), normText(dis.Text))
		}
	case appCalc:
		for name, d := range dis.Sheets {
			o, ok := orig.Sheets[name]
			if !ok {
				return fmt.Errorf("sheet %q is not in the original (sheets %v)", name, sheetNames(orig.Sheets))
			}
			if err := sameSheet(o, d); err != nil {
				return fmt.Errorf("sheet %q: %v", name, err)
			}
		}
		for name, o := range orig.Sheets {
			if _, ok := dis.Sheets[name]; !ok && !onlyErrors(o) {
				return fmt.Errorf("sheet %q is gone (it is not a macro sheet:\n%s)", name, o)
			}
		}
	case appImpress:
		if !bytes.HasPrefix(dis.PDF, []byte("%PDF-")) {
			return fmt.Errorf("the PDF of the disarmed presentation is no PDF: %q", dis.PDF[:min(len(dis.PDF), 16)])
		}
	}
	return nil
}

func sheetNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// csvCells splits LibreOffice's CSV export (no quotes inside cells in the
// corpus; quoting is compared as written) into trimmed rows, without
// trailing empty cells and rows.
func csvCells(s string) [][]string {
	s = strings.ReplaceAll(strings.TrimPrefix(s, "\ufeff"), "\r\n", "\n")
	var rows [][]string
	for _, l := range strings.Split(s, "\n") {
		cells := strings.Split(l, ",")
		for len(cells) > 0 && strings.Trim(cells[len(cells)-1], `"`) == "" {
			cells = cells[:len(cells)-1]
		}
		rows = append(rows, cells)
	}
	for len(rows) > 0 && len(rows[len(rows)-1]) == 0 {
		rows = rows[:len(rows)-1]
	}
	return rows
}

// isErrorCell: a value LibreOffice shows for a formula it could not
// compute.
func isErrorCell(c string) bool {
	c = strings.Trim(c, `"`)
	if strings.HasPrefix(c, "Err:") {
		return true
	}
	switch c {
	case "#NAME?", "#REF!", "#N/A", "#VALUE!", "#DIV/0!", "#NULL!", "#NUM!":
		return true
	}
	return false
}

func onlyErrors(sheet string) bool {
	for _, row := range csvCells(sheet) {
		for _, c := range row {
			if strings.Trim(c, `"`) != "" && !isErrorCell(c) {
				return false
			}
		}
	}
	return true
}

func sameSheet(orig, dis string) error {
	o, d := csvCells(orig), csvCells(dis)
	cell := func(rows [][]string, r, c int) string {
		if r < len(rows) && c < len(rows[r]) {
			return rows[r][c]
		}
		return ""
	}
	for r := 0; r < max(len(o), len(d)); r++ {
		width := 0
		if r < len(o) {
			width = len(o[r])
		}
		if r < len(d) {
			width = max(width, len(d[r]))
		}
		for c := 0; c < width; c++ {
			oc, dc := cell(o, r, c), cell(d, r, c)
			if oc != dc && !isErrorCell(oc) {
				return fmt.Errorf("row %d column %d: %q became %q\n--- original\n%s\n--- disarmed\n%s", r+1, c+1, oc, dc, orig, dis)
			}
		}
	}
	return nil
}

// ddeFieldResults returns the result text of every DDE field of a Word
// document (OOXML: simple and complex fields in the parts under word/),
// one string per text run.
func ddeFieldResults(data []byte) []string {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "word/") || !strings.HasSuffix(f.Name, ".xml") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			continue
		}
		out = append(out, wordDDEResults(io.LimitReader(rc, 16<<20))...)
		rc.Close()
	}
	return out
}

func wordDDEResults(r io.Reader) []string {
	type field struct {
		instr  strings.Builder
		result bool
		runs   []string
	}
	isDDE := func(instr string) bool {
		w := strings.Fields(instr)
		return len(w) > 0 && (strings.EqualFold(w[0], "DDE") || strings.EqualFold(w[0], "DDEAUTO"))
	}
	var stack []*field
	var out []string
	pop := func() {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if isDDE(f.instr.String()) {
			out = append(out, f.runs...)
		}
	}
	dec := xml.NewDecoder(r)
	inInstr, inText := false, false
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "fldChar":
				for _, a := range e.Attr {
					if a.Name.Local != "fldCharType" {
						continue
					}
					switch a.Value {
					case "begin":
						stack = append(stack, &field{})
					case "separate":
						if len(stack) > 0 {
							stack[len(stack)-1].result = true
						}
					case "end":
						if len(stack) > 0 {
							pop()
						}
					}
				}
			case "fldSimple":
				f := &field{result: true}
				for _, a := range e.Attr {
					if a.Name.Local == "instr" {
						f.instr.WriteString(a.Value)
					}
				}
				stack = append(stack, f)
			case "instrText":
				inInstr = true
			case "t":
				inText = true
			}
		case xml.EndElement:
			switch e.Name.Local {
			case "fldSimple":
				if len(stack) > 0 {
					pop()
				}
			case "instrText":
				inInstr = false
			case "t":
				inText = false
			}
		case xml.CharData:
			if inInstr && len(stack) > 0 && !stack[len(stack)-1].result {
				stack[len(stack)-1].instr.Write(e)
			}
			if inText {
				for _, f := range stack {
					if f.result {
						f.runs = append(f.runs, string(e))
					}
				}
			}
		}
	}
}

func TestDisarmedStillOpens(t *testing.T) {
	samples := disarmSamples(t)
	soffice := checktest.Soffice(t)
	type pair struct {
		s         disarmSample
		d         *Disarmed
		app       string
		orig, dis string // LibreOffice input names
	}
	var pairs []pair
	files := map[string][]byte{}
	active, refused := 0, 0
	for _, s := range samples {
		if len(Analyse(s.Data)) == 0 {
			continue
		}
		active++
		d, err := Disarm(s.Name, s.Data)
		if err != nil {
			if !errors.Is(err, ErrCannotDisarm) {
				t.Errorf("%s: Disarm error does not wrap ErrCannotDisarm: %v", s.Label, err)
			}
			refused++
			t.Logf("%-70s refused: %v", s.Label, err)
			continue
		}
		if left := Analyse(d.Data); len(left) > 0 {
			t.Errorf("%s: disarmed, yet Analyse finds %v", s.Label, left)
		}
		ext, app := officeExt(s.Name, s.Data)
		newName := s.Name
		if d.Name != "" {
			newName = d.Name
		}
		dext, dapp := officeExt(newName, d.Data)
		if app == "" || dapp != app {
			t.Logf("%-70s disarmed (%s), not an office document LibreOffice converts here (%q → %q)", s.Label, strings.Join(d.Removed, "; "), s.Name, newName)
			continue
		}
		p := pair{s: s, d: d, app: app, orig: fmt.Sprintf("%03d-original.%s", len(pairs), ext), dis: fmt.Sprintf("%03d-disarmed.%s", len(pairs), dext)}
		files[p.orig], files[p.dis] = s.Data, d.Data
		pairs = append(pairs, p)
	}
	t.Logf("%d files with active content: %d disarmed and converted by LibreOffice, %d refused", active, len(pairs), refused)
	if active == 0 {
		t.Fatal("no file with active content in the corpus")
	}
	if len(pairs) == 0 {
		return
	}
	out := loConvert(t, soffice, files)
	for _, p := range pairs {
		o, d := out[p.orig], out[p.dis]
		if !o.Converted {
			// Nothing to compare with: LibreOffice cannot open the
			// original either (the corpus has such files).
			t.Logf("%-70s disarmed; LibreOffice cannot open the original, not compared (disarmed file converted: %v)", p.s.Label, d.Converted)
			continue
		}
		var fields []string
		if p.app == appWriter {
			fields = ddeFieldResults(p.s.Data)
		}
		if err := sameDocument(p.app, o, d, fields); err != nil {
			t.Errorf("%s (disarmed as %s; removed: %s): %v", p.s.Label, p.dis, strings.Join(p.d.Removed, "; "), err)
			continue
		}
		t.Logf("%-70s disarmed and still opens in %s (removed: %s)", p.s.Label, p.app, strings.Join(p.d.Removed, "; "))
	}
}

// The harness itself: a clean document compared with itself and with an
// equivalent re-packed copy passes; broken copies are caught, whether
// LibreOffice refuses them (truncated zip, broken XML, no main part) or
// opens them as something else (random bytes become a plain-text
// document: the text differs).
func TestOfficeHarnessDetectsBrokenFiles(t *testing.T) {
	root := checktest.Corpus(t, "oletools-test-data")
	clean, err := os.ReadFile(filepath.Join(root, "msodde", "harmless-clean.docx"))
	if err != nil {
		t.Fatal(err)
	}
	ddeDoc, err := os.ReadFile(filepath.Join(root, "msodde", "dde-test.docx"))
	if err != nil {
		t.Fatal(err)
	}
	soffice := checktest.Soffice(t)

	repack := func(edit func(name string, b []byte) ([]byte, bool)) []byte { return zipEdit(t, clean, edit) }
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i/13)
	}
	good := map[string][]byte{
		"same.docx":     clean,
		"repacked.docx": repack(func(_ string, b []byte) ([]byte, bool) { return b, true }),
	}
	bad := map[string][]byte{
		"truncated.docx": clean[:len(clean)/2],
		"brokenxml.docx": repack(func(n string, b []byte) ([]byte, bool) {
			if n == "word/document.xml" {
				return b[:len(b)/2], true
			}
			return b, true
		}),
		"nodocument.docx": repack(func(n string, b []byte) ([]byte, bool) { return b, n != "word/document.xml" }),
		"garbage.docx":    random,
		"othertext.docx": repack(func(n string, b []byte) ([]byte, bool) {
			if n == "word/document.xml" {
				return bytes.Replace(b, []byte("harmless"), []byte("harmful"), 1), true
			}
			return b, true
		}),
	}
	files := map[string][]byte{"clean.docx": clean, "dde.docx": ddeDoc}
	for n, b := range good {
		files[n] = b
	}
	for n, b := range bad {
		files[n] = b
	}
	// A DDE document whose fields lost their results is the DDE
	// document, as far as the comparison goes; one that lost other text
	// is not.
	fields := ddeFieldResults(ddeDoc)
	if len(fields) == 0 {
		t.Fatal("no DDE field results found in dde-test.docx")
	}
	t.Logf("dde-test.docx: DDE field results %q", fields)
	files["ddenoresult.docx"] = zipEdit(t, ddeDoc, func(n string, b []byte) ([]byte, bool) {
		if n == "word/document.xml" {
			for _, f := range fields {
				b = bytes.Replace(b, []byte(">"+f+"<"), []byte("><"), 1)
			}
		}
		return b, true
	})
	files["ddelosttext.docx"] = zipEdit(t, ddeDoc, func(n string, b []byte) ([]byte, bool) {
		if n == "word/document.xml" {
			b = bytes.Replace(b, []byte(">Hope this works<"), []byte(">Hope<"), 1)
		}
		return b, true
	})

	// Calc and Impress go through the same harness.
	xlsx, err := os.ReadFile(filepath.Join(root, "msodde", "dde-test.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	pptx, err := os.ReadFile(filepath.Join(root, "oleobj", "embedded-simple-2007.pptx"))
	if err != nil {
		t.Fatal(err)
	}
	files["sheet.xlsx"] = xlsx
	files["sheetcopy.xlsx"] = zipEdit(t, xlsx, func(_ string, b []byte) ([]byte, bool) { return b, true })
	files["sheetedited.xlsx"] = zipEdit(t, xlsx, func(n string, b []byte) ([]byte, bool) {
		return bytes.Replace(b, []byte("Long live open source!"), []byte("Long live closed source!"), 1), true
	})
	files["slides.pptx"] = pptx
	files["slidestruncated.pptx"] = pptx[:len(pptx)/2]

	out := loConvert(t, soffice, files)
	sheet := out["sheet.xlsx"]
	if !sheet.Converted || !strings.Contains(sheet.Sheets["Tabelle1"], "Long live open source!") {
		t.Errorf("dde-test.xlsx: LibreOffice output %+v", sheet)
	}
	if err := sameDocument(appCalc, sheet, out["sheetcopy.xlsx"], nil); err != nil {
		t.Errorf("sheetcopy.xlsx: the harness rejects an intact workbook: %v", err)
	}
	if err := sameDocument(appCalc, sheet, out["sheetedited.xlsx"], nil); err == nil {
		t.Errorf("sheetedited.xlsx: the harness accepts a workbook with a changed cell")
	}
	slides := out["slides.pptx"]
	if err := sameDocument(appImpress, slides, slides, nil); err != nil {
		t.Errorf("embedded-simple-2007.pptx: %v", err)
	}
	if err := sameDocument(appImpress, slides, out["slidestruncated.pptx"], nil); err == nil {
		t.Errorf("slidestruncated.pptx: the harness accepts a truncated presentation")
	}

	ref := out["clean.docx"]
	if !ref.Converted || !strings.Contains(ref.Text, "This is a harmless test document.") {
		t.Fatalf("harmless-clean.docx: LibreOffice output %+v", ref)
	}
	for n := range good {
		if err := sameDocument(appWriter, ref, out[n], nil); err != nil {
			t.Errorf("%s: the harness rejects an intact document: %v", n, err)
		}
	}
	for n := range bad {
		err := sameDocument(appWriter, ref, out[n], nil)
		if err == nil {
			t.Errorf("%s: the harness accepts a broken document (LibreOffice output %q)", n, out[n].Text)
			continue
		}
		t.Logf("%s: caught: %.100s", n, err)
	}
	if !out["garbage.docx"].Converted {
		t.Logf("note: LibreOffice no longer opens random bytes as text")
	}
	dde := out["dde.docx"]
	if err := sameDocument(appWriter, dde, out["ddenoresult.docx"], fields); err != nil {
		t.Errorf("a DDE document without its field results: %v", err)
	}
	if err := sameDocument(appWriter, dde, out["ddenoresult.docx"], nil); err == nil {
		t.Errorf("DDE field results dropped, yet the texts compare equal without allowing for them")
	}
	if err := sameDocument(appWriter, dde, out["ddelosttext.docx"], fields); err == nil {
		t.Errorf("a DDE document that lost ordinary text compares equal")
	}
}

// The Calc rules of sameDocument: a cell that shows an error in the
// original may change, any other may not; a sheet of nothing but errors
// (an Excel 4 macro sheet) may go, any other may not; no sheet may appear.
func TestOfficeSheetComparison(t *testing.T) {
	orig := &loOutput{Converted: true, Sheets: map[string]string{
		"Macro1": "#NAME?\n#NAME?\n",
		"Sheet1": "Test,\n,Long live open source!\nDDE-Link:,#NAME?\n",
	}}
	cases := []struct {
		name   string
		sheets map[string]string
		ok     bool
	}{
		{"same", orig.Sheets, true},
		{"DDE cell now its cached value", map[string]string{"Macro1": "#NAME?\n#NAME?\n", "Sheet1": "Test,\n,Long live open source!\nDDE-Link:,3\n"}, true},
		{"DDE cell emptied (trailing cells trimmed)", map[string]string{"Macro1": "#NAME?\n#NAME?\n", "Sheet1": "Test\n,Long live open source!\nDDE-Link:\n"}, true},
		{"macro sheet removed", map[string]string{"Sheet1": orig.Sheets["Sheet1"]}, true},
		{"text cell changed", map[string]string{"Macro1": "#NAME?\n#NAME?\n", "Sheet1": "Test,\n,Long live!\nDDE-Link:,#NAME?\n"}, false},
		{"row lost", map[string]string{"Macro1": "#NAME?\n#NAME?\n", "Sheet1": "Test,\nDDE-Link:,#NAME?\n"}, false},
		{"data sheet removed", map[string]string{"Macro1": "#NAME?\n#NAME?\n"}, false},
		{"sheet added", map[string]string{"Macro1": "#NAME?\n#NAME?\n", "Sheet1": orig.Sheets["Sheet1"], "Sheet2": "x\n"}, false},
		{"nothing converted", nil, false},
	}
	for _, c := range cases {
		dis := &loOutput{Converted: len(c.sheets) > 0, Sheets: c.sheets}
		err := sameDocument(appCalc, orig, dis, nil)
		if (err == nil) != c.ok {
			t.Errorf("%s: accepted %v, want %v (%v)", c.name, err == nil, c.ok, err)
		}
	}
}

// zipEdit rewrites a zip: edit returns each member's new content and
// whether to keep it.
func zipEdit(t *testing.T, data []byte, edit func(name string, b []byte) ([]byte, bool)) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		b, keep := edit(f.Name, b)
		if !keep {
			continue
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
