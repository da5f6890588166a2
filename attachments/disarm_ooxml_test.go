package attachments

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"chainmail/checks/checktest"
)

// ooxmlEntries reads every entry of a zip, decompressed.
func ooxmlEntries(t testing.TB, data []byte) (map[string][]byte, []*zip.File) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("output is not a readable zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("entry %s: %v", f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("entry %s: %v", f.Name, err)
		}
		out[f.Name] = b
	}
	return out, zr.File
}

var relIDAttr = regexp.MustCompile(`\br:(?:id|embed|link|pict)="([^"]*)"`)

// danglingRefs lists the r:id references of the XML parts that name no
// relationship of their part, and the internal relationships whose
// target is not in the package.
func danglingRefs(parts map[string][]byte) []string {
	lower := map[string]bool{}
	for n := range parts {
		lower[strings.ToLower(n)] = true
	}
	var out []string
	for n, b := range parts {
		if strings.HasSuffix(n, ".rels") {
			src := sourceOf(n)
			for _, r := range parseRels(b) {
				if !r.external && !lower[strings.ToLower(resolve(src, r.target))] {
					out = append(out, n+": target "+r.target)
				}
			}
			continue
		}
		if !strings.HasSuffix(n, ".xml") {
			continue
		}
		ids := map[string]bool{}
		for _, r := range parseRels(parts[relsOf(n)]) {
			ids[r.id] = true
		}
		for _, m := range relIDAttr.FindAllSubmatch(b, -1) {
			if !ids[string(m[1])] {
				out = append(out, n+": r:id "+string(m[1]))
			}
		}
	}
	return out
}

// checkDisarmedOOXML verifies a disarmed package against its original:
// no active content, every entry it did not need to change identical
// (content and stored compression), only active parts removed, no
// reference left dangling, no macro-enabled type left.
func checkDisarmedOOXML(t *testing.T, name string, orig []byte, d *Disarmed) {
	t.Helper()
	if left := Analyse(d.Data); len(left) > 0 {
		t.Errorf("%s: active content left: %v", name, left)
	}
	before, beforeFiles := ooxmlEntries(t, orig)
	after, afterFiles := ooxmlEntries(t, d.Data)
	origFile := map[string]*zip.File{}
	for _, f := range beforeFiles {
		origFile[f.Name] = f
	}
	// Order kept.
	var kept []string
	for _, f := range beforeFiles {
		if _, ok := after[f.Name]; ok {
			kept = append(kept, f.Name)
		}
	}
	var got []string
	for _, f := range afterFiles {
		got = append(got, f.Name)
	}
	if strings.Join(kept, "\n") != strings.Join(got, "\n") {
		t.Errorf("%s: entries reordered or added:\n%q\nwant\n%q", name, got, kept)
	}
	// What may be removed: VBA, macro sheets, external links, the
	// calculation chain, and their relationships.
	removable := regexp.MustCompile(`(?i)(vbaproject\.bin|vbadata\.xml|vbaprojectsignature[^/]*\.bin|^xl/macrosheets/[^/]+|^xl/externallinks/[^/]+|^xl/calcchain\.xml)(\.rels)?$`)
	extLinkRemoved := false
	for n := range before {
		if _, ok := after[n]; !ok {
			if !removablePart(removable, n) {
				t.Errorf("%s: part %s removed", name, n)
			}
			if strings.HasPrefix(strings.ToLower(n), "xl/externallinks/") {
				extLinkRemoved = true
			}
		}
	}
	// What may change: content types, relationships, parts whose
	// relationships changed, parts with DDE, active embeddings,
	// worksheets whose external link went.
	for _, f := range afterFiles {
		n := f.Name
		a, b := after[n], before[n]
		of := origFile[n]
		if bytes.Equal(a, b) {
			if of.Method != f.Method || of.CRC32 != f.CRC32 || of.CompressedSize64 != f.CompressedSize64 {
				t.Errorf("%s: unchanged %s not copied raw", name, n)
			}
			continue
		}
		ln := strings.ToLower(n)
		relsChanged := !bytes.Equal(before[relsOf(n)], after[relsOf(n)])
		switch {
		case n == "[Content_Types].xml", strings.HasSuffix(ln, ".rels"), relsChanged:
		case strings.HasPrefix(ln, "word/") && bytes.Contains(bytes.ToUpper(b), []byte("DDE")):
		case len(analyseSuspicious(b, 1)) > 0:
		case extLinkRemoved && strings.HasPrefix(ln, "xl/worksheets/"):
		default:
			t.Errorf("%s: part %s changed without need", name, n)
		}
	}
	if dl := danglingRefs(after); len(dl) > len(danglingRefs(before)) {
		t.Errorf("%s: dangling references: %q", name, dl)
	}
	ct := string(after["[Content_Types].xml"])
	for _, m := range ctOverride.FindAllString(ct, -1) {
		part := strings.TrimPrefix(attrs([]byte(m))["PartName"], "/")
		if _, ok := after[part]; !ok {
			t.Errorf("%s: content type for missing part %s", name, part)
		}
	}
	// Every part has a type.
	defaults := map[string]bool{}
	for _, m := range ctDefault.FindAllString(ct, -1) {
		defaults[strings.ToLower(attrs([]byte(m))["Extension"])] = true
	}
	for n := range after {
		ext := strings.ToLower(strings.TrimPrefix(path.Ext(n), "."))
		if n != "[Content_Types].xml" && !strings.HasSuffix(n, "/") && !defaults[ext] && !strings.Contains(ct, `PartName="/`+n+`"`) {
			t.Errorf("%s: part %s has no content type", name, n)
		}
	}
	if strings.Contains(strings.ToLower(ct), "macroenabled") && !strings.Contains(ct, "sheet.binary.macroEnabled.main") {
		t.Errorf("%s: macro-enabled content type left: %s", name, ct)
	}
	if strings.Contains(strings.ToLower(ct), "vbaproject") {
		t.Errorf("%s: VBA content type left", name)
	}
	ext := strings.ToLower(path.Ext(name))
	if to, ok := ooxmlMacroExt[ext]; ok {
		if d.Name != strings.TrimSuffix(name, path.Ext(name))+to || d.MIME != ooxmlExtMIME[to] {
			t.Errorf("%s: name %q, MIME %q", name, d.Name, d.MIME)
		}
	} else if d.Name != "" {
		t.Errorf("%s: renamed to %q", name, d.Name)
	}
	if len(d.Removed) == 0 {
		t.Errorf("%s: nothing said removed", name)
	}
}

func removablePart(re *regexp.Regexp, n string) bool {
	return re.MatchString(strings.Replace(n, "/_rels/", "/", 1))
}

// TestDisarmOOXMLCorpus disarms every Office Open XML file of the
// oletools test data in which Analyse finds active content.
func TestDisarmOOXMLCorpus(t *testing.T) {
	dir := checktest.Corpus(t, "oletools-test-data")
	// The binary workbook would need editing: refused.
	refused := map[string]string{
		"excel4_sample_macro.xlsb":              "macro sheet in a binary workbook",
		"dde-test.xlsb":                         "link in a binary workbook",
		"sample_with_external_link_to_doc.xlsb": "link in a binary workbook",
	}
	var disarmed, refusedN int
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(data, []byte("PK\x03\x04")) || !bytes.Contains(data, []byte("[Content_Types].xml")) || len(Analyse(data)) == 0 {
			return nil
		}
		name := filepath.Base(p)
		d, err := Disarm(name, data)
		if want, ok := refused[name]; ok {
			refusedN++
			if err == nil || !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %v, want refusal %q", name, err, want)
			}
			return nil
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return nil
		}
		disarmed++
		checkDisarmedOOXML(t, name, data, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disarmed %d, refused %d", disarmed, refusedN)
	if disarmed < 35 || refusedN != len(refused) {
		t.Errorf("disarmed %d, refused %d: corpus not covered", disarmed, refusedN)
	}
}

// TestDisarmOOXMLSpamAssassin disarms the .xlsm attachments of the
// SpamAssassin olevbmacro samples.
func TestDisarmOOXMLSpamAssassin(t *testing.T) {
	dir := filepath.Join(checktest.Corpus(t, "apache-spamassassin-t-data"), "spam", "olevbmacro")
	emls, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	n := 0
	for _, e := range emls {
		for name, data := range emlAttachments(t, e) {
			if !bytes.HasPrefix(data, []byte("PK\x03\x04")) || !bytes.Contains(data, []byte("[Content_Types].xml")) || len(Analyse(data)) == 0 {
				continue
			}
			d, err := Disarm(name, data)
			if err != nil {
				t.Errorf("%s %s: %v", filepath.Base(e), name, err)
				continue
			}
			n++
			t.Logf("%s: %s disarmed (%s)", filepath.Base(e), name, strings.Join(d.Removed, "; "))
			checkDisarmedOOXML(t, name, data, d)
		}
	}
	if n < 2 {
		t.Errorf("disarmed %d attachments, want the macro.xlsm and automacro.xlsm ones", n)
	}
}

// emlAttachments decodes the attachments of a multipart message.
func emlAttachments(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string][]byte{}
	var walk func(ct string, body io.Reader)
	walk = func(ct string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !strings.HasPrefix(mt, "multipart/") {
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				return
			}
			pct := part.Header.Get("Content-Type")
			if strings.HasPrefix(pct, "multipart/") {
				walk(pct, part)
				continue
			}
			name := part.FileName()
			if name == "" {
				continue
			}
			raw, _ := io.ReadAll(part)
			if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "base64") {
				raw = decodeB64(raw)
			}
			out[name] = raw
		}
	}
	walk(msg.Header.Get("Content-Type"), msg.Body)
	return out
}

func decodeB64(b []byte) []byte {
	var clean []byte
	for _, c := range b {
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			clean = append(clean, c)
		}
	}
	out := make([]byte, len(clean))
	n, _ := base64.StdEncoding.Decode(out, clean)
	return out[:n]
}

// buildZip makes a zip of the named entries, in order, deflated.
func buildZip(t testing.TB, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := 0; i+1 < len(entries); i += 2 {
		fw, err := w.Create(entries[i])
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(entries[i+1]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const (
	xmlDecl   = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"
	relsNS    = `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`
	relBase   = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
	wordNS    = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"`
	docmTypes = xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/><Override PartName="/word/vbaData.xml" ContentType="application/vnd.ms-word.vbaData+xml"/><Override PartName="/word/settings.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"/></Types>`
	pkgRels   = xmlDecl + relsNS + `<Relationship Id="rId1" Type="` + relBase + `officeDocument" Target="word/document.xml"/></Relationships>`
)

// docmWithVBA is a small macro-enabled Word document with a VBA project,
// a remote template and a DDEAUTO field split over runs.
func docmWithVBA(t testing.TB) []byte {
	return buildZip(t,
		"[Content_Types].xml", docmTypes,
		"_rels/.rels", pkgRels,
		"word/document.xml", xmlDecl+`<w:document `+wordNS+`><w:body><w:p><w:r><w:t>Hello</w:t></w:r>`+
			`<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> DDE</w:instrText></w:r><w:r><w:instrText>AUTO c:\\windows\\system32\\cmd.exe "/k calc"</w:instrText></w:r>`+
			`<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>visible result</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>`+
			`<w:fldSimple w:instr=" PAGE "><w:r><w:t>1</w:t></w:r></w:fldSimple></w:p></w:body></w:document>`,
		"word/_rels/document.xml.rels", xmlDecl+relsNS+`<Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/><Relationship Id="rId2" Type="`+relBase+`settings" Target="settings.xml"/><Relationship Id="rId3" Type="`+relBase+`hyperlink" Target="https://example.org/" TargetMode="External"/></Relationships>`,
		"word/vbaProject.bin", "not really a VBA project",
		"word/_rels/vbaProject.bin.rels", xmlDecl+relsNS+`<Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/wordVbaData" Target="vbaData.xml"/></Relationships>`,
		"word/vbaData.xml", xmlDecl+`<wne:vbaSuppData xmlns:wne="http://schemas.microsoft.com/office/word/2006/wordml"/>`,
		"word/settings.xml", xmlDecl+`<w:settings `+wordNS+`><w:zoom w:percent="100"/><w:attachedTemplate r:id="rId1"/><w:defaultTabStop w:val="720"/></w:settings>`,
		"word/_rels/settings.xml.rels", xmlDecl+relsNS+`<Relationship Id="rId1" Type="`+relBase+`attachedTemplate" Target="http://198.51.100.7/t.dotm" TargetMode="External"/></Relationships>`,
	)
}

func TestDisarmOOXMLDocm(t *testing.T) {
	orig := docmWithVBA(t)
	kinds := map[FindingKind]bool{}
	for _, a := range Analyse(orig) {
		kinds[a.Kind] = true
	}
	if !kinds[KindVBA] || !kinds[KindDDE] || !kinds[KindExternalTemplate] {
		t.Fatalf("fixture not seen as active: %v", Analyse(orig))
	}
	d, err := Disarm("Invoice.docm", orig)
	if err != nil {
		t.Fatal(err)
	}
	checkDisarmedOOXML(t, "Invoice.docm", orig, d)
	if d.Name != "Invoice.docx" || d.MIME != "application/vnd.openxmlformats-officedocument.wordprocessingml.document" {
		t.Errorf("name %q MIME %q", d.Name, d.MIME)
	}
	parts, _ := ooxmlEntries(t, d.Data)
	for _, n := range []string{"word/vbaProject.bin", "word/_rels/vbaProject.bin.rels", "word/vbaData.xml"} {
		if _, ok := parts[n]; ok {
			t.Errorf("%s left", n)
		}
	}
	ct := string(parts["[Content_Types].xml"])
	if !strings.Contains(ct, `<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>`) ||
		strings.Contains(ct, "vbaData") || strings.Contains(ct, `Extension="bin"`) {
		t.Errorf("content types: %s", ct)
	}
	rels := string(parts["word/_rels/document.xml.rels"])
	if strings.Contains(rels, "vbaProject") || !strings.Contains(rels, "https://example.org/") || !strings.Contains(rels, "settings.xml") {
		t.Errorf("document relationships: %s", rels)
	}
	if s := string(parts["word/settings.xml"]); strings.Contains(s, "attachedTemplate") || !strings.Contains(s, `<w:zoom w:percent="100"/><w:defaultTabStop w:val="720"/>`) {
		t.Errorf("settings: %s", s)
	}
	if s := string(parts["word/_rels/settings.xml.rels"]); strings.Contains(s, "198.51.100.7") {
		t.Errorf("settings relationships: %s", s)
	}
	doc := string(parts["word/document.xml"])
	if strings.Contains(doc, "cmd.exe") || strings.Contains(doc, "DDE") || !strings.Contains(doc, "visible result") ||
		!strings.Contains(doc, `w:fldCharType="begin"`) || !strings.Contains(doc, `<w:fldSimple w:instr=" PAGE ">`) {
		t.Errorf("document: %s", doc)
	}
}

// A file named .docx keeps its name; a docm without VBA still becomes a
// docx.
func TestDisarmOOXMLNames(t *testing.T) {
	d, err := Disarm("report.docx", docmWithVBA(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "" || d.MIME != "application/vnd.openxmlformats-officedocument.wordprocessingml.document" {
		t.Errorf(".docx with VBA: name %q MIME %q", d.Name, d.MIME)
	}
	noVBA := buildZip(t,
		"[Content_Types].xml", xmlDecl+`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>`,
		"_rels/.rels", pkgRels,
		"word/document.xml", xmlDecl+`<w:document `+wordNS+`><w:body><w:p><w:fldSimple w:instr="DDEAUTO cmd /c calc"><w:r><w:t>x</w:t></w:r></w:fldSimple></w:p></w:body></w:document>`,
	)
	d, err = Disarm("clean.docm", noVBA)
	if err != nil {
		t.Fatal(err)
	}
	checkDisarmedOOXML(t, "clean.docm", noVBA, d)
	for ext, want := range map[string]string{"a.dotm": "a.dotx", "a.xlam": "a.xlsx", "a.ppsm": "a.ppsx", "a.potm": "a.potx", "a.XLSM": "a.xlsx"} {
		d, err := disarmOOXML(ext, noVBA)
		if err != nil || d.Name != want {
			t.Errorf("%s: %v %+v", ext, err, d)
		}
	}
}

const xlsmTypes = xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/><Override PartName="/xl/macrosheets/sheet1.xml" ContentType="application/vnd.ms-excel.macrosheet+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/worksheets/sheet2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"/></Types>`

func xlsmWithMacroSheet(t testing.TB, sheets string) []byte {
	return buildZip(t,
		"[Content_Types].xml", xlsmTypes,
		"_rels/.rels", xmlDecl+relsNS+`<Relationship Id="rId1" Type="`+relBase+`officeDocument" Target="xl/workbook.xml"/></Relationships>`,
		"xl/workbook.xml", xmlDecl+`<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><bookViews><workbookView activeTab="2"/></bookViews>`+sheets+
			`<definedNames><definedName name="_xlnm.Auto_Open">Macro1!$A$1</definedName><definedName name="_xlnm.Print_Area" localSheetId="2">Data!$A$1:$B$2</definedName><definedName name="local" localSheetId="1">'Macro1'!$A$2</definedName></definedNames></workbook>`,
		"xl/_rels/workbook.xml.rels", xmlDecl+relsNS+`<Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/xlMacrosheet" Target="macrosheets/sheet1.xml"/><Relationship Id="rId2" Type="`+relBase+`worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId3" Type="`+relBase+`worksheet" Target="/xl/worksheets/sheet2.xml"/><Relationship Id="rId4" Type="`+relBase+`calcChain" Target="calcChain.xml"/></Relationships>`,
		"xl/macrosheets/sheet1.xml", `<xm:macrosheet xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData><row r="1"><c r="A1"><f>EXEC("calc")</f></c></row></sheetData></xm:macrosheet>`,
		"xl/worksheets/sheet1.xml", `<worksheet><sheetData/></worksheet>`,
		"xl/worksheets/sheet2.xml", `<worksheet><sheetData/></worksheet>`,
		"xl/calcChain.xml", `<calcChain><c r="A1" i="2"/></calcChain>`,
	)
}

func TestDisarmOOXMLMacroSheet(t *testing.T) {
	orig := xlsmWithMacroSheet(t, `<sheets><sheet name="First" sheetId="1" r:id="rId2"/><sheet name="Macro1" sheetId="2" r:id="rId1"/><sheet name="Data" sheetId="3" r:id="rId3"/></sheets>`)
	d, err := Disarm("book.xlsm", orig)
	if err != nil {
		t.Fatal(err)
	}
	checkDisarmedOOXML(t, "book.xlsm", orig, d)
	parts, _ := ooxmlEntries(t, d.Data)
	wb := string(parts["xl/workbook.xml"])
	for _, want := range []string{`activeTab="1"`, `<sheets><sheet name="First" sheetId="1" r:id="rId2"/><sheet name="Data" sheetId="3" r:id="rId3"/></sheets>`,
		`<definedNames><definedName name="_xlnm.Print_Area" localSheetId="1">Data!$A$1:$B$2</definedName></definedNames>`} {
		if !strings.Contains(wb, want) {
			t.Errorf("workbook lacks %s:\n%s", want, wb)
		}
	}
	if strings.Contains(wb, "Macro1") || strings.Contains(wb, "Auto_Open") {
		t.Errorf("workbook: %s", wb)
	}
	if _, ok := parts["xl/calcChain.xml"]; ok {
		t.Error("calculation chain kept")
	}
	// Only macro sheets: nothing would be left to open.
	only := xlsmWithMacroSheet(t, `<sheets><sheet name="Macro1" sheetId="2" r:id="rId1"/></sheets>`)
	if _, err := Disarm("only.xlsm", only); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), "only macro sheets") {
		t.Errorf("workbook of macro sheets only: %v", err)
	}
}

func TestDisarmOOXMLRefuses(t *testing.T) {
	good := docmWithVBA(t)
	// A duplicate entry name.
	dup := buildZip(t, "[Content_Types].xml", docmTypes, "word/vbaProject.bin", "x", "WORD/vbaProject.bin", "y")
	// An entry flagged encrypted.
	enc := bytes.Clone(good)
	for _, sig := range [][]byte{[]byte("PK\x03\x04"), []byte("PK\x01\x02")} {
		off := 6
		if sig[2] == 1 {
			off = 8
		}
		for i := bytes.Index(enc, sig); i >= 0; {
			enc[i+off] |= 1
			j := bytes.Index(enc[i+4:], sig)
			if j < 0 {
				break
			}
			i += 4 + j
		}
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"duplicate": {dup, "duplicate zip entry"},
		"encrypted": {enc, "encrypted zip entry"},
		"truncated": {good[:len(good)-30], "unreadable zip"},
		"no types":  {buildZip(t, "word/vbaProject.bin", "x"), "without [Content_Types].xml"},
	} {
		_, err := Disarm(name+".docm", c.data)
		if !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestDisarmOOXMLEmptyCompoundFile(t *testing.T) {
	b := emptyCompoundFile()
	o, err := ParseOLE(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Entries) == 0 || o.Entries[0].Type != 5 {
		t.Errorf("entries %+v", o.Entries)
	}
	if a := Analyse(b); len(a) != 0 {
		t.Errorf("active: %v", a)
	}
}

func FuzzDisarmOOXML(f *testing.F) {
	f.Add(docmWithVBA(f))
	f.Add(xlsmWithMacroSheet(f, `<sheets><sheet name="Macro1" sheetId="2" r:id="rId1"/><sheet name="x" sheetId="1" r:id="rId2"/></sheets>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Disarm("f.docm", data)
		if err != nil {
			if !errors.Is(err, ErrCannotDisarm) {
				t.Fatalf("error not wrapping ErrCannotDisarm: %v", err)
			}
			return
		}
		if _, err := zip.NewReader(bytes.NewReader(d.Data), int64(len(d.Data))); err != nil && bytes.HasPrefix(data, []byte("PK\x03\x04")) {
			t.Fatalf("output unreadable: %v", err)
		}
	})
}

// The binary workbook keeps its name and type; its VBA project goes
// without the binary part being touched.
func TestDisarmOOXMLXlsbVBA(t *testing.T) {
	orig := buildZip(t,
		"[Content_Types].xml", xmlDecl+`<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName="/xl/vbaProject.bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>`,
		"_rels/.rels", xmlDecl+relsNS+`<Relationship Id="rId1" Type="`+relBase+`officeDocument" Target="xl/workbook.bin"/></Relationships>`,
		"xl/workbook.bin", "\x83\x01\x00binary records",
		"xl/_rels/workbook.bin.rels", xmlDecl+relsNS+`<Relationship Id="rId7" Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" Target="vbaProject.bin"/></Relationships>`,
		"xl/vbaProject.bin", "VBA",
	)
	d, err := Disarm("book.xlsb", orig)
	if err != nil {
		t.Fatal(err)
	}
	checkDisarmedOOXML(t, "book.xlsb", orig, d)
	if d.Name != "" || d.MIME != "" {
		t.Errorf("name %q MIME %q", d.Name, d.MIME)
	}
	parts, _ := ooxmlEntries(t, d.Data)
	if _, ok := parts["xl/vbaProject.bin"]; ok || strings.Contains(string(parts["xl/_rels/workbook.bin.rels"]), "vbaProject") {
		t.Error("VBA project kept")
	}
	// A binary part that names the relationship removed: refused.
	named := buildZip(t,
		"[Content_Types].xml", `<Types><Default Extension="bin" ContentType="x"/><Default Extension="rels" ContentType="y"/></Types>`,
		"xl/workbook.bin", "r\x00I\x00d\x007\x00",
		"xl/_rels/workbook.bin.rels", relsNS+`<Relationship Id="rId7" Type="`+relBase+`oleObject" Target="http://192.0.2.1/x" TargetMode="External"/></Relationships>`,
	)
	if _, err := Disarm("n.xlsb", named); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), "binary part") {
		t.Errorf("binary part naming a removed relationship: %v", err)
	}
}

func xlsxWithLinks(t testing.TB, ddeFirst bool) []byte {
	dde := `<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><ddeLink ddeService="cmd" ddeTopic="/c calc"/></externalLink>`
	book := `<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><externalBook r:id="rId1"/></externalLink>`
	first, second := book, dde
	if ddeFirst {
		first, second = dde, book
	}
	return buildZip(t,
		"[Content_Types].xml", `<Types><Default Extension="xml" ContentType="application/xml"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/><Override PartName="/xl/externalLinks/externalLink2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/></Types>`,
		"xl/workbook.xml", `<workbook xmlns:r="r"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets><externalReferences><externalReference r:id="rId2"/><externalReference r:id="rId3"/></externalReferences><definedNames><definedName name="a">[2]!x</definedName><definedName name="b">[1]Sheet!A1</definedName></definedNames></workbook>`,
		"xl/_rels/workbook.xml.rels", relsNS+`<Relationship Id="rId1" Type="`+relBase+`worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="`+relBase+`externalLink" Target="externalLinks/externalLink1.xml"/><Relationship Id="rId3" Type="`+relBase+`externalLink" Target="externalLinks/externalLink2.xml"/></Relationships>`,
		"xl/worksheets/sheet1.xml", `<worksheet><sheetData><row r="1"><c r="A1"><f>[2]!x</f><v>7</v></c><c r="B1"><f>[1]Sheet!A1</f><v>8</v></c></row></sheetData></worksheet>`,
		"xl/externalLinks/externalLink1.xml", first,
		"xl/externalLinks/externalLink2.xml", second,
	)
}

func TestDisarmOOXMLExternalLinks(t *testing.T) {
	orig := xlsxWithLinks(t, false)
	d, err := Disarm("links.xlsx", orig)
	if err != nil {
		t.Fatal(err)
	}
	checkDisarmedOOXML(t, "links.xlsx", orig, d)
	parts, _ := ooxmlEntries(t, d.Data)
	if wb := string(parts["xl/workbook.xml"]); !strings.Contains(wb, `<externalReferences><externalReference r:id="rId2"/></externalReferences><definedNames><definedName name="b">[1]Sheet!A1</definedName></definedNames>`) {
		t.Errorf("workbook: %s", wb)
	}
	if s := string(parts["xl/worksheets/sheet1.xml"]); !strings.Contains(s, `<c r="A1"><v>7</v></c><c r="B1"><f>[1]Sheet!A1</f><v>8</v></c>`) {
		t.Errorf("sheet: %s", s)
	}
	// The DDE link first: the other would need renumbering.
	if _, err := Disarm("links.xlsx", xlsxWithLinks(t, true)); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), "renumber") {
		t.Errorf("DDE link before another: %v", err)
	}
}

// A DDE field nested in another field: only its instruction goes.
func TestDisarmOOXMLNestedDDE(t *testing.T) {
	doc := `<w:document ` + wordNS + `><w:body><w:p>` +
		`<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> IF 1 = 1 "</w:instrText></w:r>` +
		`<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>DDEAUTO cmd "/c calc"</w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>` +
		`<w:r><w:instrText>" "no"</w:instrText></w:r><w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>shown</w:t></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>` +
		`</w:p></w:body></w:document>`
	orig := buildZip(t, "[Content_Types].xml", `<Types><Default Extension="xml" ContentType="application/xml"/></Types>`, "word/document.xml", doc)
	if a := Analyse(orig); len(a) != 1 || a[0].Kind != KindDDE {
		t.Errorf("the nested DDE field is not found: %v", a)
	}
	d, err := Disarm("n.docx", orig)
	if err != nil {
		t.Fatal(err)
	}
	parts, _ := ooxmlEntries(t, d.Data)
	want := strings.Replace(doc, `DDEAUTO cmd "/c calc"`, "", 1)
	if got := string(parts["word/document.xml"]); got != want {
		t.Errorf("document:\n%s\nwant\n%s", got, want)
	}
}

// A macro-enabled document embedded in a document is disarmed in its
// turn, and typed as the macro-free document it has become.
func TestDisarmOOXMLEmbeddedDocument(t *testing.T) {
	inner := docmWithVBA(t)
	orig := buildZip(t,
		"[Content_Types].xml", `<Types><Default Extension="xml" ContentType="application/xml"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="docm" ContentType="application/vnd.ms-word.document.macroEnabled.12"/></Types>`,
		"word/document.xml", `<w:document `+wordNS+`><o:OLEObject r:id="rId1"/></w:document>`,
		"word/_rels/document.xml.rels", relsNS+`<Relationship Id="rId1" Type="`+relBase+`package" Target="embeddings/Microsoft_Word_Document1.docm"/></Relationships>`,
		"word/embeddings/Microsoft_Word_Document1.docm", string(inner),
	)
	if len(Analyse(orig)) == 0 {
		t.Fatal("fixture not active")
	}
	d, err := Disarm("outer.docx", orig)
	if err != nil {
		t.Fatal(err)
	}
	checkDisarmedOOXML(t, "outer.docx", orig, d)
	parts, _ := ooxmlEntries(t, d.Data)
	if !strings.Contains(string(parts["[Content_Types].xml"]), `<Default Extension="docm" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document"/>`) {
		t.Errorf("content types: %s", parts["[Content_Types].xml"])
	}
	// Two levels down, as far as Analyse looks.
	deeper := buildZip(t,
		"[Content_Types].xml", `<Types><Default Extension="xml" ContentType="application/xml"/><Default Extension="docx" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document"/></Types>`,
		"word/embeddings/outer.docx", string(orig),
	)
	if len(Analyse(deeper)) == 0 {
		t.Fatal("deeper fixture not active")
	}
	if d, err := Disarm("deeper.docx", deeper); err != nil {
		t.Errorf("two levels down: %v", err)
	} else {
		checkDisarmedOOXML(t, "deeper.docx", deeper, d)
	}
	// An embedded file that is neither OLE2 nor a package: refused.
	odd := buildZip(t,
		"[Content_Types].xml", `<Types><Default Extension="xml" ContentType="application/xml"/></Types>`,
		"word/embeddings/x.bin", "ID;P\r\nNN;NAuto_Open;ER1C1\r\n",
	)
	if _, err := Disarm("odd.docx", odd); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), "active content in word/embeddings/x.bin") {
		t.Errorf("embedded SYLK macro: %v", err)
	}
}

// A part that inflates beyond the budget is refused, not read whole.
func TestDisarmOOXMLBudget(t *testing.T) {
	big := "DDE" + strings.Repeat(" ", ooxmlBudget)
	bomb := buildZip(t,
		"[Content_Types].xml", `<Types><Default Extension="xml" ContentType="application/xml"/></Types>`,
		"word/vbaProject.bin", "x",
		"word/document.xml", big,
	)
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	if _, err := disarmOOXML("bomb.docm", bomb); !errors.Is(err, ErrCannotDisarm) || !strings.Contains(err.Error(), "inflates beyond") {
		t.Errorf("bomb: %v", err)
	}
}

func TestDisarmOOXMLDropRefs(t *testing.T) {
	ids := map[string]bool{"rId1": true}
	for in, want := range map[string]string{
		`<a><w:attachedTemplate r:id="rId1"/><b/></a>`:                      `<a><b/></a>`,
		`<a><w:subDoc r:id="rId1"><x/></w:subDoc><b/></a>`:                  `<a><b/></a>`,
		`<a><o:OLEObject Type="Link" r:id="rId1" UpdateMode="Always"/></a>`: `<a><o:OLEObject Type="Link" UpdateMode="Always"/></a>`,
		`<a><o:OLEObject r:id="rId2"/></a>`:                                 `<a><o:OLEObject r:id="rId2"/></a>`,
		`<a><w:subDoc r:id="rId1"><x/>`:                                     `<a><w:subDoc><x/>`,
		`<p:oleObj name="D" r:id='rId1' progId="Word.Document.8"><p:link/>`: `<p:oleObj name="D" progId="Word.Document.8"><p:link/>`,
	} {
		if got := string(dropRefs([]byte(in), ids, refWhole)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
}
