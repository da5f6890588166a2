package attachments

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"regexp"
	"strings"
	"unicode/utf16"
)

// Active is one piece of active content found in a document, in the
// spirit of QuickSand and oletools: what it is (Kind), how policy should
// see it (Category), and a short Detail.
type Active struct {
	Kind     FindingKind
	Category Category
	Detail   string
}

var autoExec = regexp.MustCompile(`(?i)\b(Auto_?Open|Auto_?Close|Auto_?Exec|Auto_?New|Auto_?Exit|Document_(Open|Close|New|BeforeClose)|Workbook_(Open|Activate|BeforeClose)|DocumentOpen|DocumentBeforeClose)\b`)

// OLEActive inspects a compound file: VBA projects (and whether a macro
// runs by itself), Excel 4 macro sheets, encryption, DDE fields in Word
// documents.
func OLEActive(o *OLE) []Active {
	var out []Active
	if o.Kind() == "encrypted-ooxml" {
		out = append(out, Active{KindEncryptedDoc, CategoryEncrypted, "encrypted Office document (EncryptedPackage)"})
	}
	if hasVBA(o) {
		out = append(out, vbaFindings(o)...)
	}
	if i := o.Find("PowerPoint Document"); i >= 0 {
		if doc, err := o.Stream(i, 32<<20); err == nil {
			out = append(out, pptVBA(doc)...)
		}
	}
	if i := o.Find("WordDocument"); i >= 0 {
		if fib, err := o.Stream(i, 4<<20); err == nil {
			if len(fib) >= 12 && binary.LittleEndian.Uint16(fib)&0xffff == 0xa5ec && binary.LittleEndian.Uint16(fib[10:])&0x0100 != 0 {
				out = append(out, Active{KindEncryptedDoc, CategoryEncrypted, "encrypted Word document"})
			}
			if ddeField(fib) {
				out = append(out, Active{KindDDE, CategorySuspicious, "DDE field in a Word document"})
			}
		}
	}
	for _, name := range []string{"Workbook", "Book"} {
		if i := o.Find(name); i >= 0 {
			if wb, err := o.Stream(i, 8<<20); err == nil {
				out = append(out, biffFindings(wb)...)
			}
			break
		}
	}
	if o.Has("EncryptedSummary") {
		out = append(out, Active{KindEncryptedDoc, CategoryEncrypted, "encrypted PowerPoint document"})
	}
	return dedupActive(out)
}

func hasVBA(o *OLE) bool {
	for _, e := range o.Entries {
		switch strings.ToLower(e.Name) {
		case "_vba_project", "vba", "_vba_project_cur", "macros":
			return true
		}
	}
	return false
}

// pptVBA finds the VBA project of a PowerPoint 97 presentation: it is an
// OLE storage kept zlib-compressed in an ExOleObjStg record (type
// 0x1011, instance 1: a 4-byte size, then the zlib stream).
func pptVBA(doc []byte) []Active {
	_, acts := pptVBAAt(doc)
	return acts
}

// pptVBAAt is pptVBA that also says where the ExOleObjStg record holding
// the VBA project starts (its header), -1 when there is none.
func pptVBAAt(doc []byte) (int, []Active) {
	left := int64(16 << 20) // inflated bytes for the whole document
	for p := 0; p+14 <= len(doc) && left > 0; {
		i := bytes.Index(doc[p:], []byte{0x11, 0x10})
		if i < 0 {
			break
		}
		h := p + i - 2
		p += i + 2
		if h < 0 || binary.LittleEndian.Uint16(doc[h:])>>4 != 1 || h+14 > len(doc) || doc[h+12] != 0x78 {
			continue
		}
		n := int(binary.LittleEndian.Uint32(doc[h+4:]))
		end := min(h+8+n, len(doc))
		if end < h+12 {
			continue
		}
		r, err := zlib.NewReader(bytes.NewReader(doc[h+12 : end]))
		if err != nil {
			continue
		}
		stg, _ := io.ReadAll(io.LimitReader(r, left))
		left -= int64(len(stg))
		if o, err := ParseOLE(stg); err == nil && hasVBA(o) {
			return h, vbaFindings(o)
		}
	}
	return -1, nil
}

// vbaFindings reports the VBA project and looks for auto-executing
// procedures in the decompressed module sources.
func vbaFindings(o *OLE) []Active {
	out := []Active{{KindVBA, CategorySuspicious, "VBA macros"}}
	for i, e := range o.Entries {
		if e.Type != 2 || !strings.Contains(strings.ToLower(e.Path), "vba/") {
			continue
		}
		switch strings.ToLower(e.Name) {
		case "dir", "_vba_project", "project", "projectwm":
			continue
		}
		if strings.HasPrefix(e.Name, "__SRP_") {
			continue
		}
		data, err := o.Stream(i, 4<<20)
		if err != nil {
			continue
		}
		if src := vbaSource(data); src != nil {
			if m := autoExec.Find(src); m != nil {
				out = append(out, Active{KindVBAAutoExec, CategorySuspicious, "VBA macro runs by itself (" + string(m) + ")"})
				break
			}
		}
	}
	return out
}

// vbaSource finds and decompresses the source code of a VBA module
// stream: the compressed container starts after the performance cache, at
// an offset given in the dir stream; we try the places where a container
// can start and keep the first that decompresses to VBA source.
func vbaSource(data []byte) []byte {
	tries := 0
	for i := 0; i+3 <= len(data) && tries < 256; i++ {
		if data[i] != 1 {
			continue
		}
		h := binary.LittleEndian.Uint16(data[i+1:])
		if h&0x7000 != 0x3000 {
			continue
		}
		tries++
		out := DecompressVBA(data[i:], 1<<20)
		if bytes.Contains(out, []byte("Attribute VB_")) || bytes.Contains(out, []byte("Sub ")) {
			return out
		}
	}
	return nil
}

// DecompressVBA undoes the [MS-OVBA] §2.4.1 compression of a
// CompressedContainer (signature byte 1, then chunks), up to limit bytes.
func DecompressVBA(b []byte, limit int) []byte {
	if len(b) == 0 || b[0] != 1 {
		return nil
	}
	var out []byte
	p := 1
	for p+2 <= len(b) && len(out) < limit {
		h := binary.LittleEndian.Uint16(b[p:])
		size := int(h&0x0fff) + 3
		compressed := h&0x8000 != 0
		end := min(p+size, len(b))
		p += 2
		start := len(out)
		if !compressed {
			n := min(4096, end-p)
			out = append(out, b[p:p+n]...)
			p = end
			continue
		}
		for p < end && len(out) < limit {
			flags := b[p]
			p++
			for bit := 0; bit < 8 && p < end; bit++ {
				if flags&(1<<bit) == 0 {
					out = append(out, b[p])
					p++
					continue
				}
				if p+2 > end {
					p = end
					break
				}
				tok := int(binary.LittleEndian.Uint16(b[p:]))
				p += 2
				pos := len(out) - start
				bits := 4
				for (1 << bits) < pos {
					bits++
				}
				if bits > 12 {
					bits = 12
				}
				lenMask := 0xffff >> bits
				n := tok&lenMask + 3
				off := (tok >> (16 - bits)) + 1
				if off > pos {
					return out // corrupt
				}
				src := len(out) - off
				for k := 0; k < n; k++ {
					out = append(out, out[src+k])
				}
			}
		}
		p = end
	}
	return out
}

// biffFindings walks the globals substream of an Excel BIFF workbook:
// FILEPASS means encrypted, a BOUNDSHEET of type 1 is an Excel 4 macro
// sheet.
func biffFindings(b []byte) []Active {
	var out []Active
	for p := 0; p+4 <= len(b); {
		typ := binary.LittleEndian.Uint16(b[p:])
		n := int(binary.LittleEndian.Uint16(b[p+2:]))
		if p+4+n > len(b) {
			break
		}
		rec := b[p+4 : p+4+n]
		switch typ {
		case 0x002f:
			out = append(out, Active{KindEncryptedDoc, CategoryEncrypted, "encrypted Excel workbook"})
		case 0x0085:
			if len(rec) >= 6 && rec[5] == 1 {
				out = append(out, Active{KindXLM, CategorySuspicious, "Excel 4 macro sheet"})
			}
		case 0x000a:
			return out // end of the globals
		}
		p += 4 + n
	}
	return out
}

// ddeField reports a Word field whose instruction is DDE or DDEAUTO: the
// field-begin mark 0x13 then the instruction, in 8-bit or UTF-16 text.
func ddeField(b []byte) bool {
	for _, pat := range []*regexp.Regexp{ddeField8, ddeField16} {
		if pat.Match(b) {
			return true
		}
	}
	return false
}

var (
	ddeField8  = regexp.MustCompile(`(?i)\x13\s*DDE(AUTO)?\s`)
	ddeField16 = regexp.MustCompile(`(?i)\x13\x00(\x20\x00)*D\x00D\x00E\x00(A\x00U\x00T\x00O\x00)?\x20\x00`)
)

// OOXMLActive inspects an Office Open XML package from its zip entries:
// read returns an entry's content (bounded) by name.
func OOXMLActive(names []string, read func(name string) []byte) []Active {
	var out []Active
	for _, n := range names {
		ln := strings.ToLower(n)
		switch {
		case strings.HasSuffix(ln, "vbaproject.bin"):
			act := []Active{{KindVBA, CategorySuspicious, "VBA macros (" + n + ")"}}
			if data := read(n); data != nil {
				if o, err := ParseOLE(data); err == nil {
					act = vbaFindings(o)
					act[0].Detail = "VBA macros (" + n + ")"
				}
			}
			out = append(out, act...)
		case strings.HasPrefix(ln, "xl/macrosheets/"):
			out = append(out, Active{KindXLM, CategorySuspicious, "Excel 4 macro sheet (" + n + ")"})
		case strings.HasPrefix(ln, "xl/externallinks/") && strings.HasSuffix(ln, ".xml"):
			if bytes.Contains(read(n), []byte("<ddeLink")) {
				out = append(out, Active{KindDDE, CategorySuspicious, "DDE link (" + n + ")"})
			}
		case strings.HasPrefix(ln, "xl/externallinks/") && strings.HasSuffix(ln, ".bin"):
			if data := read(n); data != nil && ddeBinary(data) {
				out = append(out, Active{KindDDE, CategorySuspicious, "DDE link (" + n + ")"})
			}
		case strings.HasPrefix(ln, "word/") && strings.HasSuffix(ln, ".xml") && !strings.Contains(ln, "/_rels/"):
			if ddeXML(read(n)) {
				out = append(out, Active{KindDDE, CategorySuspicious, "DDE field (" + n + ")"})
			}
		case strings.HasSuffix(ln, ".rels"):
			if t := externalTemplate(read(n)); t != "" {
				out = append(out, Active{KindExternalTemplate, CategorySuspicious, "external " + t + " (" + n + ")"})
			}
		}
	}
	return dedupActive(out)
}

var (
	instrText  = regexp.MustCompile(`(?s)<w:instrText[^>]*>(.*?)</w:instrText>`)
	fldSimple  = regexp.MustCompile(`(?i)<w:fldSimple[^>]*w:instr="\s*DDE(AUTO)?\b`)
	ddeInstr   = regexp.MustCompile(`(?i)^\s*DDE(AUTO)?\b`)
	relTarget  = regexp.MustCompile(`(?s)<Relationship\b[^>]*>`)
	relType    = regexp.MustCompile(`Type="[^"]*/(attachedTemplate|oleObject|frame|subDocument)"`)
	relExtMode = regexp.MustCompile(`TargetMode="External"`)
)

// ddeXML reports a DDE field in WordprocessingML: the instruction text of
// a complex field (split over runs, so joined first) or a simple field.
func ddeXML(b []byte) bool {
	if len(b) == 0 || !bytes.Contains(b, []byte("DDE")) && !bytes.Contains(b, []byte("dde")) {
		return false
	}
	if fldSimple.Match(b) {
		return true
	}
	var joined strings.Builder
	for _, m := range instrText.FindAllSubmatch(b, -1) {
		joined.Write(m[1])
	}
	// Each field's instruction starts after a begin mark; checking every
	// suffix that starts at a word is enough for the joined text.
	s := joined.String()
	for i := 0; i < len(s); i++ {
		if (i == 0 || strings.IndexByte(" \t\"{", s[i-1]) >= 0) && ddeInstr.MatchString(s[i:]) {
			return true
		}
	}
	return false
}

// ddeBinary reports a DDE link in an XLSB external link part (the server
// name is stored as UTF-16 text).
func ddeBinary(b []byte) bool {
	for _, s := range []string{"cmd", "powershell", "mshta", "msexcel", "rundll32"} {
		if bytes.Contains(bytes.ToLower(b), utf16le(s)) {
			return true
		}
	}
	return false
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// externalTemplate returns the relationship type of an external target
// that Office fetches by itself (template injection), "" when none.
func externalTemplate(b []byte) string {
	for _, r := range relTarget.FindAll(b, -1) {
		if relExtMode.Match(r) {
			if m := relType.FindSubmatch(r); m != nil {
				return string(m[1])
			}
		}
	}
	return ""
}

var ddeFormula = regexp.MustCompile(`(?i)[=+@\-]\s*["']?[a-z][a-z0-9_.\\]{0,40}\s*\|\s*(['"]|&apos;|&quot;|&#39;)`)

// TextActive looks at text formats Office opens: CSV and SpreadsheetML
// cells with DDE formulas, SYLK files with Excel 4 macros.
func TextActive(b []byte) []Active {
	var out []Active
	if bytes.HasPrefix(b, []byte("ID;P")) {
		if sylkMacro.Match(b) {
			out = append(out, Active{KindXLM, CategorySuspicious, "Excel 4 macro in a SYLK file"})
		}
	}
	if ddeIn(b) {
		out = append(out, Active{KindDDE, CategorySuspicious, "DDE formula"})
	}
	return out
}

// ddeIn looks for a DDE formula around each '|' only: running the
// pattern over all of a large text would be slow.
func ddeIn(b []byte) bool {
	for p := 0; p < len(b); {
		i := bytes.IndexByte(b[p:], '|')
		if i < 0 {
			return false
		}
		i += p
		if ddeFormula.Match(b[max(0, i-48):min(len(b), i+12)]) {
			return true
		}
		p = i + 1
	}
	return false
}

var sylkMacro = regexp.MustCompile(`(?im)^(NN;N(Auto_Open|Auto_Close)|C;[^\n]*;E[^\n]*\b(EXEC|CALL|REGISTER|RUN|ALERT|HALT|FORMULA|FOPEN|URLDownloadToFile)\s*\()`)

// RTFActive reports embedded objects and remote templates in RTF.
func RTFActive(b []byte) []Active {
	var out []Active
	if rtfObject.Match(b) {
		out = append(out, Active{KindRTFObject, CategorySuspicious, "embedded OLE object in RTF"})
	}
	if rtfTemplate.Match(b) {
		out = append(out, Active{KindExternalTemplate, CategorySuspicious, "remote template in RTF"})
	}
	return out
}

var (
	rtfObject   = regexp.MustCompile(`\\obj(data|emb|ocx|link|autlink|update)\b`)
	rtfTemplate = regexp.MustCompile(`(?i)\{\\\*\\template\s+(https?|\\\\)`)
)

// PDFActive looks for the PDF names that make a reader act on its own.
// Names are compared after #xx escapes are undone (/J#61vaScript), and the
// FlateDecode streams (object streams hide dictionaries) are inflated
// within budget bytes.
func PDFActive(b []byte, budget int64) []Active {
	out, _ := pdfActive(b, budget)
	return out
}

// pdfActive is PDFActive, also returning the bytes inflated.
func pdfActive(b []byte, budget int64) ([]Active, int64) {
	names := pdfNames(pdfMaskFiltered(b))
	var used int64
	if budget > 0 {
		for _, s := range pdfStreams(b, budget) {
			used += int64(len(s))
			for k := range pdfNames(s) {
				names[k] = true
			}
		}
	}
	var out []Active
	if names["/JavaScript"] || names["/JS"] {
		out = append(out, Active{KindPDFJavaScript, CategorySuspicious, "PDF with JavaScript"})
	}
	if names["/Launch"] {
		out = append(out, Active{KindPDFLaunch, CategorySuspicious, "PDF /Launch action"})
	}
	if names["/EmbeddedFile"] || names["/EmbeddedFiles"] {
		out = append(out, Active{KindPDFEmbeddedFile, CategorySuspicious, "PDF with an embedded file"})
	}
	if (names["/OpenAction"] || names["/AA"]) && (names["/JavaScript"] || names["/JS"] || names["/Launch"]) {
		out = append(out, Active{KindPDFAutoAction, CategorySuspicious, "PDF runs an action when opened"})
	}
	if names["/Encrypt"] {
		out = append(out, Active{KindEncryptedDoc, CategoryEncrypted, "encrypted PDF"})
	}
	return out, used
}

var pdfName = regexp.MustCompile(`/[A-Za-z#0-9]{2,20}`)

// nextPDFStream finds the first "stream" keyword at or after p that
// starts a stream's data (not "endstream", followed by a line end): kw is
// where the keyword is, body where the data starts. ok is false when
// there is none.
func nextPDFStream(b []byte, p int) (kw, body int, ok bool) {
	for {
		i := bytes.Index(b[p:], []byte("stream"))
		if i < 0 {
			return 0, 0, false
		}
		kw = p + i
		p = kw + len("stream")
		if kw >= 3 && string(b[kw-3:kw]) == "end" {
			continue
		}
		switch {
		case bytes.HasPrefix(b[p:], []byte("\r\n")):
			return kw, p + 2, true
		case bytes.HasPrefix(b[p:], []byte("\n")):
			return kw, p + 1, true
		}
	}
}

// pdfMaskFiltered returns b with the bodies of filtered streams (images,
// fonts, compressed object streams: a /Filter in the stream's dictionary)
// blanked, at the same length. Their bytes are binary, where "/JS" or "/AA"
// turn up by chance about once per MB; what a compressed object stream
// holds is read by inflating it (pdfStreams), not from its raw bytes.
func pdfMaskFiltered(b []byte) []byte {
	var out []byte
	for p := 0; ; {
		s, body, ok := nextPDFStream(b, p)
		if !ok {
			break
		}
		p = body
		// The stream's dictionary: back to its object's "obj".
		from := max(0, s-4096)
		d := bytes.LastIndex(b[from:s], []byte("obj"))
		if d < 0 || !bytes.Contains(b[from+d:s], []byte("/Filter")) {
			continue
		}
		end := bytes.Index(b[body:], []byte("endstream"))
		if end < 0 {
			end = len(b) - body
		}
		if out == nil {
			out = append([]byte(nil), b...)
		}
		for k := body; k < body+end; k++ {
			out[k] = ' '
		}
		p = body + end
	}
	if out == nil {
		return b
	}
	return out
}

func pdfNames(b []byte) map[string]bool {
	out := map[string]bool{}
	for _, m := range pdfName.FindAll(b, -1) {
		s := string(m)
		if strings.IndexByte(s, '#') >= 0 {
			var d strings.Builder
			for i := 0; i < len(s); i++ {
				if s[i] == '#' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
					d.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
					i += 2
					continue
				}
				d.WriteByte(s[i])
			}
			s = d.String()
		}
		switch s {
		case "/JavaScript", "/JS", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/OpenAction", "/AA", "/Encrypt":
			out[s] = true
		}
	}
	return out
}

// pdfStreams inflates the FlateDecode streams of a PDF, budget bytes in
// all.
func pdfStreams(b []byte, budget int64) [][]byte {
	var out [][]byte
	for p := 0; budget > 0; {
		_, s, ok := nextPDFStream(b, p)
		if !ok {
			break
		}
		p = s
		if s+2 > len(b) || b[s]&0x0f != 8 {
			continue // not a zlib header
		}
		r, err := zlib.NewReader(bytes.NewReader(b[s:]))
		if err != nil {
			continue
		}
		data, _ := io.ReadAll(io.LimitReader(r, min(budget, 4<<20)))
		budget -= int64(len(data))
		out = append(out, data)
	}
	return out
}

func dedupActive(in []Active) []Active {
	var out []Active
	seen := map[FindingKind]bool{}
	for _, a := range in {
		if seen[a.Kind] {
			continue
		}
		seen[a.Kind] = true
		out = append(out, a)
	}
	return out
}

// OLEPackage reads an "\x01Ole10Native" stream: the file an OLE Package
// object carries, with its name.
func OLEPackage(b []byte) (name string, data []byte, ok bool) {
	if len(b) < 10 {
		return "", nil, false
	}
	p := 4 + 2 // total size, type
	cstr := func() (string, bool) {
		i := bytes.IndexByte(b[p:], 0)
		if i < 0 {
			return "", false
		}
		s := string(b[p : p+i])
		p += i + 1
		return s, true
	}
	label, ok1 := cstr()
	file, ok2 := cstr()
	if !ok1 || !ok2 || p+8 > len(b) {
		return "", nil, false
	}
	p += 4 // unknown
	n := int(binary.LittleEndian.Uint32(b[p:]))
	p += 4
	if n < 0 || p+n > len(b) {
		return "", nil, false
	}
	p += n // command / temp path
	if p+4 > len(b) {
		return "", nil, false
	}
	size := int(binary.LittleEndian.Uint32(b[p:]))
	p += 4
	if size < 0 || p+size > len(b) {
		size = len(b) - p
	}
	name = label
	if name == "" {
		name = file
	}
	return decodeCharset("", []byte(name)), b[p : p+size], true
}
