package attachments

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"html"
	"io"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Disarming Office Open XML. A package is a zip of parts tied together by
// relationships (the .rels parts) and typed by [Content_Types].xml. What
// runs by itself lives in parts (the VBA project, Excel 4 macro sheets,
// DDE external links, OLE package objects) or in relationships (remote
// templates and linked objects), or in the text of a field (DDE). We
// remove the parts and every relationship to them, drop the references
// that would leave the package broken, rewrite the few XML parts that
// name what was removed, and leave every other entry byte for byte as it
// was (copied raw, with its own compression).
//
// The edits are textual, never a parse and re-serialisation of the XML:
// an encoder would change namespaces, quoting and whitespace of the whole
// part, and so what the recipient sees.
//
// Choices:
//   - The macro-enabled main content types become their macro-free
//     equivalents and the extension follows (docm → docx, dotm → dotx,
//     xlsm → xlsx, xltm → xltx, pptm → pptx, potm → potx, ppsm → ppsx).
//     Add-ins (xlam, ppam) have no macro-free kind: an add-in without its
//     code does nothing, so they become a plain workbook or presentation
//     (xlsx, pptx) whose sheets and slides the recipient can still read.
//   - The binary workbook (xlsb) keeps its name and its content type: the
//     format has only the one type, "macroEnabled" in name, and without
//     its VBA project it carries no macros. What would need the binary
//     workbook part edited (Excel 4 macro sheets, external links) is
//     refused.
//   - A file named .docx (or any macro-free name) keeps its name even
//     when it carried a VBA project: the name was already right.
//   - Embedded OLE objects with active content (package objects, documents
//     with macros) are replaced by an empty compound file: the document
//     still opens and shows the object's picture; the object itself
//     opens to nothing.

// ooxmlBudget bounds the bytes inflated from one package.
const ooxmlBudget = 64 << 20

// ooxmlMainTypes maps the macro-enabled main part types to the macro-free
// ones, with the macro-free extension and media type.
var ooxmlMainTypes = map[string]struct{ main, mime string }{
	"application/vnd.ms-word.document.macroenabled.main+xml":           {"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml", ooxmlExtMIME[".docx"]},
	"application/vnd.ms-word.template.macroenabledtemplate.main+xml":   {"application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml", ooxmlExtMIME[".dotx"]},
	"application/vnd.ms-excel.sheet.macroenabled.main+xml":             {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", ooxmlExtMIME[".xlsx"]},
	"application/vnd.ms-excel.template.macroenabled.main+xml":          {"application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml", ooxmlExtMIME[".xltx"]},
	"application/vnd.ms-excel.addin.macroenabled.main+xml":             {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", ooxmlExtMIME[".xlsx"]},
	"application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": {"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml", ooxmlExtMIME[".pptx"]},
	"application/vnd.ms-powerpoint.template.macroenabled.main+xml":     {"application/vnd.openxmlformats-officedocument.presentationml.template.main+xml", ooxmlExtMIME[".potx"]},
	"application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml":    {"application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml", ooxmlExtMIME[".ppsx"]},
	"application/vnd.ms-powerpoint.addin.macroenabled.main+xml":        {"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml", ooxmlExtMIME[".pptx"]},
	"application/vnd.ms-powerpoint.slide.macroenabled+xml":             {"application/vnd.openxmlformats-officedocument.presentationml.slide+xml", ooxmlExtMIME[".sldx"]},
}

// ooxmlMacroExt maps the macro-enabled extensions to the macro-free ones.
var ooxmlMacroExt = map[string]string{
	".docm": ".docx", ".dotm": ".dotx", ".xlsm": ".xlsx", ".xltm": ".xltx", ".xlam": ".xlsx",
	".pptm": ".pptx", ".potm": ".potx", ".ppsm": ".ppsx", ".ppam": ".pptx", ".sldm": ".sldx",
}

// ooxmlExtMIME gives the media type of a macro-free extension.
var ooxmlExtMIME = map[string]string{
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".potx": "application/vnd.openxmlformats-officedocument.presentationml.template",
	".ppsx": "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
	".sldx": "application/vnd.openxmlformats-officedocument.presentationml.slide",
}

// opc is one package being disarmed.
type opc struct {
	zr      *zip.Reader
	byName  map[string]*zip.File // lower-case part name (no leading '/')
	data    map[string][]byte    // read contents, by zip name
	changed map[string][]byte    // new contents, by zip name
	removed map[string]bool      // lower-case part names taken out
	budget  *int64               // inflated bytes left, shared with embedded packages
	notes   []string
}

func (p *opc) file(name string) *zip.File { return p.byName[strings.ToLower(name)] }

// read returns a part's current content (nil when absent), within the
// package budget.
func (p *opc) read(name string) ([]byte, error) {
	f := p.file(name)
	if f == nil || p.removed[strings.ToLower(f.Name)] {
		return nil, nil
	}
	if b, ok := p.changed[f.Name]; ok {
		return b, nil
	}
	if b, ok := p.data[f.Name]; ok {
		return b, nil
	}
	if *p.budget-int64(f.UncompressedSize64) < 0 && f.UncompressedSize64 > 0 {
		return nil, cannot("package inflates beyond %d bytes", ooxmlBudget)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, cannot("unreadable entry %s: %v", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, *p.budget+1))
	if err != nil {
		return nil, cannot("unreadable entry %s: %v", f.Name, err)
	}
	if int64(len(b)) > *p.budget {
		return nil, cannot("package inflates beyond %d bytes", ooxmlBudget)
	}
	*p.budget -= int64(len(b))
	p.data[f.Name] = b
	return b, nil
}

func (p *opc) set(name string, b []byte) {
	f := p.file(name)
	if f == nil {
		return
	}
	if old, err := p.read(f.Name); err == nil && bytes.Equal(old, b) {
		return
	}
	p.changed[f.Name] = b
}

// remove takes a part out, with its own relationships part.
func (p *opc) remove(name, why string) {
	f := p.file(name)
	if f == nil || p.removed[strings.ToLower(f.Name)] {
		return
	}
	p.removed[strings.ToLower(f.Name)] = true
	if why != "" {
		p.notes = append(p.notes, why+" "+f.Name)
	}
	if r := relsOf(f.Name); p.file(r) != nil {
		p.removed[strings.ToLower(r)] = true
	}
}

// relsOf is the relationships part of a part ("" for the package).
func relsOf(part string) string {
	dir, base := path.Split(part)
	return dir + "_rels/" + base + ".rels"
}

// sourceOf is the part whose relationships a .rels part holds ("" for
// the package relationships _rels/.rels).
func sourceOf(rels string) string {
	dir, base := path.Split(rels)
	dir = strings.TrimSuffix(dir, "_rels/")
	return dir + strings.TrimSuffix(base, ".rels")
}

// resolve gives the part name a relationship target points at, from the
// part that holds the relationship.
func resolve(source, target string) string {
	target = html.UnescapeString(target)
	if i := strings.IndexAny(target, "#?"); i >= 0 {
		target = target[:i]
	}
	var p string
	if strings.HasPrefix(target, "/") {
		p = path.Clean(target)
	} else {
		p = path.Join("/", path.Dir("/"+source), target)
	}
	return strings.TrimPrefix(p, "/")
}

var (
	relElem  = regexp.MustCompile(`(?s)<Relationship\b[^>]*?(?:/>|>\s*</Relationship\s*>)`)
	xmlAttr  = regexp.MustCompile(`([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')`)
	xmlStart = regexp.MustCompile(`<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(/?)>`)
)

func attrs(tag []byte) map[string]string {
	out := map[string]string{}
	for _, m := range xmlAttr.FindAllSubmatch(tag, -1) {
		v := m[2]
		if v == nil {
			v = m[3]
		}
		out[string(m[1])] = string(v)
	}
	return out
}

// rel is one relationship of a .rels part.
type rel struct {
	id, typ, target string
	external        bool
}

func (r rel) kind() string { return r.typ[strings.LastIndexByte(r.typ, '/')+1:] }

// relFlagged: a relationship Analyse reports (externalTemplate).
func (r rel) flagged() bool {
	if !r.external {
		return false
	}
	switch r.kind() {
	case "attachedTemplate", "oleObject", "frame", "subDocument":
		return true
	}
	return false
}

func parseRels(b []byte) []rel {
	var out []rel
	for _, m := range relElem.FindAll(b, -1) {
		a := attrs(m)
		out = append(out, rel{a["Id"], a["Type"], a["Target"], a["TargetMode"] == "External"})
	}
	return out
}

// dropRels removes the relationships for which drop is true, returning
// the new part and the ids removed.
func dropRels(b []byte, drop func(rel) bool) ([]byte, []string) {
	var ids []string
	out := relElem.ReplaceAllFunc(b, func(m []byte) []byte {
		a := attrs(m)
		r := rel{a["Id"], a["Type"], a["Target"], a["TargetMode"] == "External"}
		if drop(r) {
			ids = append(ids, r.id)
			return nil
		}
		return m
	})
	return out, ids
}

// dropRefs takes the references to removed relationship ids out of an XML
// part: elements that cannot be without theirs (named in whole) go,
// elsewhere the attribute goes.
func dropRefs(b []byte, ids map[string]bool, whole map[string]bool) []byte {
	if len(ids) == 0 {
		return b
	}
	var out bytes.Buffer
	last := 0
	locs := xmlStart.FindAllSubmatchIndex(b, -1)
	for _, loc := range locs {
		if loc[0] < last {
			continue
		}
		tag := b[loc[0]:loc[1]]
		qname := string(b[loc[2]:loc[3]])
		var hits [][]int
		for _, a := range xmlAttr.FindAllSubmatchIndex(tag, -1) {
			an := string(tag[a[2]:a[3]])
			i := strings.IndexByte(an, ':')
			if i < 0 {
				continue
			}
			switch an[i+1:] {
			case "id", "embed", "link", "pict", "href":
			default:
				continue
			}
			v := ""
			if a[4] >= 0 {
				v = string(tag[a[4]:a[5]])
			} else {
				v = string(tag[a[6]:a[7]])
			}
			if ids[v] {
				hits = append(hits, a)
			}
		}
		if len(hits) == 0 {
			continue
		}
		local := qname[strings.IndexByte(qname, ':')+1:]
		out.Write(b[last:loc[0]])
		if whole[local] {
			end := loc[1]
			if loc[6] == loc[7] { // not self-closing
				end = -1
				closing := []byte("</" + qname)
				if i := bytes.Index(b[loc[1]:], closing); i >= 0 {
					if j := bytes.IndexByte(b[loc[1]+i:], '>'); j >= 0 {
						end = loc[1] + i + j + 1
					}
				}
			}
			if end >= 0 {
				last = end
				continue
			}
			// no end to the element: only the attribute goes
		}
		// strip the attributes, preceding whitespace included
		p := 0
		for _, a := range hits {
			s := a[0]
			for s > 0 && (tag[s-1] == ' ' || tag[s-1] == '\t' || tag[s-1] == '\n' || tag[s-1] == '\r') {
				s--
			}
			out.Write(tag[p:s])
			p = a[1]
		}
		out.Write(tag[p:])
		last = loc[1]
	}
	out.Write(b[last:])
	return out.Bytes()
}

// refWhole: elements removed in whole with the relationship they name.
var refWhole = map[string]bool{
	"attachedTemplate": true, "subDoc": true, "sourceFileName": true,
	"externalReference": true, "sheet": true,
}

func disarmOOXML(name string, data []byte) (*Disarmed, error) {
	budget := int64(ooxmlBudget)
	return disarmPackage(name, data, 0, &budget)
}

func disarmPackage(name string, data []byte, depth int, budget *int64) (*Disarmed, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, cannot("unreadable zip: %v", err)
	}
	p := &opc{zr: zr, byName: map[string]*zip.File{}, data: map[string][]byte{},
		changed: map[string][]byte{}, removed: map[string]bool{}, budget: budget}
	for _, f := range zr.File {
		if f.Flags&1 != 0 {
			return nil, cannot("encrypted zip entry %s", f.Name)
		}
		ln := strings.ToLower(f.Name)
		if p.byName[ln] != nil {
			return nil, cannot("duplicate zip entry %s", f.Name)
		}
		p.byName[ln] = f
	}
	if p.file("[Content_Types].xml") == nil {
		return nil, cannot("zip without [Content_Types].xml: not an Office document")
	}
	binaryWorkbook := p.file("xl/workbook.bin") != nil

	// 1. The parts that go.
	for _, f := range zr.File {
		ln := strings.ToLower(f.Name)
		base := path.Base(ln)
		switch {
		case base == "vbaproject.bin" || base == "vbadata.xml" ||
			strings.HasPrefix(base, "vbaprojectsignature") && strings.HasSuffix(base, ".bin"):
			p.remove(f.Name, "VBA project part")
		case strings.HasPrefix(ln, "xl/macrosheets/") && !strings.Contains(ln, "/_rels/"):
			if binaryWorkbook {
				return nil, cannot("Excel 4 macro sheet in a binary workbook (%s)", f.Name)
			}
			p.remove(f.Name, "Excel 4 macro sheet")
		case strings.HasPrefix(ln, "xl/externallinks/") && !strings.Contains(ln, "/_rels/"):
			b, err := p.read(f.Name)
			if err != nil {
				return nil, err
			}
			rb, err := p.read(relsOf(f.Name))
			if err != nil {
				return nil, err
			}
			active := externalTemplate(rb) != ""
			if strings.HasSuffix(ln, ".bin") {
				active = active || ddeBinary(b)
			} else {
				active = active || bytes.Contains(b, []byte("<ddeLink"))
			}
			if active {
				if binaryWorkbook {
					return nil, cannot("DDE or OLE link in a binary workbook (%s)", f.Name)
				}
				p.remove(f.Name, "external link")
			}
		}
	}

	// 2. Relationships to removed parts, and external ones that Office
	// fetches by itself.
	refs := map[string]map[string]bool{} // source part → ids removed
	for _, f := range zr.File {
		ln := strings.ToLower(f.Name)
		if !strings.HasSuffix(ln, ".rels") || p.removed[ln] {
			continue
		}
		b, err := p.read(f.Name)
		if err != nil {
			return nil, err
		}
		src := sourceOf(f.Name)
		nb, ids := dropRels(b, func(r rel) bool {
			if r.flagged() {
				p.notes = append(p.notes, "external "+r.kind()+" "+truncateString(html.UnescapeString(r.target), 120))
				return true
			}
			return !r.external && p.removed[strings.ToLower(resolve(src, r.target))]
		})
		if len(ids) > 0 {
			p.set(f.Name, nb)
			m := map[string]bool{}
			for _, id := range ids {
				m[id] = true
			}
			refs[src] = m
		}
	}

	// 3. The references to removed relationships, in their source parts.
	for src, ids := range refs {
		if src == "" || p.file(src) == nil || p.removed[strings.ToLower(src)] {
			continue
		}
		b, err := p.read(src)
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(bytes.TrimLeft(b, "\xef\xbb\xbf \r\n\t"), []byte("<")) {
			// A binary part (xlsb) names its relationships in UTF-16:
			// one that names a removed one would need rewriting.
			for id := range ids {
				if bytes.Contains(b, utf16le(id)) {
					return nil, cannot("relationship %s removed from the binary part %s", id, src)
				}
			}
			continue
		}
		nb := b
		if strings.EqualFold(src, "xl/workbook.xml") {
			if nb, err = p.workbook(nb, ids); err != nil {
				return nil, err
			}
		}
		nb = dropRefs(nb, ids, refWhole)
		if strings.EqualFold(src, "xl/workbook.xml") {
			nb = emptyExtRef.ReplaceAll(nb, nil)
		}
		p.set(src, nb)
	}

	// 4. DDE fields in WordprocessingML.
	for _, f := range zr.File {
		ln := strings.ToLower(f.Name)
		if !strings.HasPrefix(ln, "word/") || !strings.HasSuffix(ln, ".xml") || strings.Contains(ln, "/_rels/") || p.removed[ln] {
			continue
		}
		b, err := p.read(f.Name)
		if err != nil {
			return nil, err
		}
		// Every field is looked at, not only what ddeXML sees: a DDE
		// field nested in another one goes too.
		if !bytes.Contains(bytes.ToUpper(b), []byte("DDE")) {
			continue
		}
		nb := neutraliseDDE(b)
		if ddeXML(nb) {
			return nil, cannot("DDE field in %s that cannot be neutralised", f.Name)
		}
		if !bytes.Equal(nb, b) {
			p.set(f.Name, nb)
			p.notes = append(p.notes, "DDE field in "+f.Name)
		}
	}

	// 5. Embedded objects with active content.
	for _, f := range zr.File {
		ln := strings.ToLower(f.Name)
		if p.removed[ln] || !(strings.Contains(ln, "/embeddings/") || strings.HasSuffix(ln, ".bin") && !strings.HasSuffix(ln, "vbaproject.bin")) {
			continue
		}
		b, err := p.read(f.Name)
		if err != nil {
			return nil, err
		}
		if len(analyseSuspicious(b, depth+1)) == 0 {
			continue
		}
		switch {
		case IsOLE(b):
			p.set(f.Name, emptyCompoundFile())
			p.notes = append(p.notes, "embedded object "+f.Name)
		case bytes.HasPrefix(b, []byte("PK\x03\x04")) && depth < 2:
			d, err := disarmPackage(f.Name, b, depth+1, p.budget)
			if err != nil {
				return nil, cannot("embedded document %s: %v", f.Name, err)
			}
			p.set(f.Name, d.Data)
			p.notes = append(p.notes, "active content of the embedded document "+f.Name)
		default:
			return nil, cannot("active content in %s", f.Name)
		}
	}

	// 6. Content types.
	ct, err := p.read("[Content_Types].xml")
	if err != nil {
		return nil, err
	}
	nct, newType := p.contentTypes(ct)
	p.set("[Content_Types].xml", nct)

	out, err := p.write()
	if err != nil {
		return nil, err
	}
	d := &Disarmed{Data: out, Removed: p.notes}
	ext := strings.ToLower(path.Ext(name))
	if to, ok := ooxmlMacroExt[ext]; ok {
		d.Name = name[:len(name)-len(ext)] + to
		d.MIME = ooxmlExtMIME[to]
	} else if newType != "" {
		d.MIME = newType
	}
	return d, nil
}

func analyseSuspicious(b []byte, depth int) []Active {
	var out []Active
	for _, a := range analyse(b, depth) {
		if a.Category == CategorySuspicious {
			out = append(out, a)
		}
	}
	return out
}

var (
	ctOverride = regexp.MustCompile(`(?s)<Override\b[^>]*?(?:/>|>\s*</Override\s*>)`)
	ctDefault  = regexp.MustCompile(`(?s)<Default\b[^>]*?(?:/>|>\s*</Default\s*>)`)
)

// contentTypes drops the entries of removed parts and gives the main part
// its macro-free type; it returns the new media type of the document when
// that changed.
func (p *opc) contentTypes(b []byte) ([]byte, string) {
	mime := ""
	b = ctOverride.ReplaceAllFunc(b, func(m []byte) []byte {
		a := attrs(m)
		part := strings.TrimPrefix(html.UnescapeString(a["PartName"]), "/")
		if u, err := url.PathUnescape(part); err == nil {
			part = u
		}
		if p.removed[strings.ToLower(part)] {
			return nil
		}
		if to, ok := ooxmlMainTypes[strings.ToLower(a["ContentType"])]; ok {
			mime = to.mime
			return bytes.Replace(m, []byte(a["ContentType"]), []byte(to.main), 1)
		}
		return macroFreePackage(m, a["ContentType"])
	})
	b = ctDefault.ReplaceAllFunc(b, func(m []byte) []byte {
		a := attrs(m)
		if strings.EqualFold(a["ContentType"], "application/vnd.ms-office.vbaProject") {
			return nil
		}
		return macroFreePackage(m, a["ContentType"])
	})
	return b, mime
}

// ooxmlPackageTypes: the media types of macro-enabled documents, which
// [Content_Types].xml gives to embedded documents. What is embedded has
// no VBA left (the embedded objects with active content were disarmed),
// so the macro-free type is the right one.
var ooxmlPackageTypes = map[string]string{
	"application/vnd.ms-word.document.macroenabled.12":           ooxmlExtMIME[".docx"],
	"application/vnd.ms-word.template.macroenabled.12":           ooxmlExtMIME[".dotx"],
	"application/vnd.ms-excel.sheet.macroenabled.12":             ooxmlExtMIME[".xlsx"],
	"application/vnd.ms-excel.template.macroenabled.12":          ooxmlExtMIME[".xltx"],
	"application/vnd.ms-excel.addin.macroenabled.12":             ooxmlExtMIME[".xlsx"],
	"application/vnd.ms-powerpoint.presentation.macroenabled.12": ooxmlExtMIME[".pptx"],
	"application/vnd.ms-powerpoint.slideshow.macroenabled.12":    ooxmlExtMIME[".ppsx"],
	"application/vnd.ms-powerpoint.template.macroenabled.12":     ooxmlExtMIME[".potx"],
	"application/vnd.ms-powerpoint.addin.macroenabled.12":        ooxmlExtMIME[".pptx"],
}

func macroFreePackage(m []byte, ct string) []byte {
	if to, ok := ooxmlPackageTypes[strings.ToLower(ct)]; ok {
		return bytes.Replace(m, []byte(ct), []byte(to), 1)
	}
	return m
}

var (
	definedName = regexp.MustCompile(`(?s)<definedName\b([^>]*)>(.*?)</definedName\s*>`)
	emptyDNames = regexp.MustCompile(`<definedNames>\s*</definedNames>`)
	emptyExtRef = regexp.MustCompile(`<externalReferences>\s*</externalReferences>`)
	sheetElem   = regexp.MustCompile(`<sheet\b[^>]*>`)
	extRefElem  = regexp.MustCompile(`<externalReference\b[^>]*>`)
)

// workbook edits xl/workbook.xml for the relationships removed from it:
// the macro sheets go with the names defined on them, the DDE links with
// the formulas that use them (cells keep their last values).
func (p *opc) workbook(b []byte, ids map[string]bool) ([]byte, error) {
	idOf := func(tag []byte) string {
		for k, v := range attrs(tag) {
			if strings.HasSuffix(k, ":id") {
				return v
			}
		}
		return ""
	}
	// Sheets: index, name, removed?
	sheets := sheetElem.FindAll(b, -1)
	var removedIdx []int
	var removedNames []string
	for i, s := range sheets {
		if ids[idOf(s)] {
			removedIdx = append(removedIdx, i)
			removedNames = append(removedNames, html.UnescapeString(attrs(s)["name"]))
		}
	}
	if len(removedIdx) > 0 && len(removedIdx) == len(sheets) {
		return nil, cannot("the workbook has only macro sheets")
	}
	if len(removedIdx) > 0 {
		newIdx := func(i int) int {
			n := i
			for _, r := range removedIdx {
				if r < i {
					n--
				}
			}
			return n
		}
		isRemoved := func(i int) bool {
			for _, r := range removedIdx {
				if r == i {
					return true
				}
			}
			return false
		}
		b = definedName.ReplaceAllFunc(b, func(m []byte) []byte {
			sm := definedName.FindSubmatch(m)
			a := attrs(sm[1])
			if v, ok := a["localSheetId"]; ok {
				i, err := strconv.Atoi(v)
				if err == nil && isRemoved(i) {
					return nil
				}
				if err == nil && newIdx(i) != i {
					m = bytes.Replace(m, []byte(`localSheetId="`+v+`"`), []byte(`localSheetId="`+strconv.Itoa(newIdx(i))+`"`), 1)
				}
			}
			body := html.UnescapeString(string(sm[2]))
			for _, n := range removedNames {
				if refersToSheet(body, n) {
					return nil
				}
			}
			return m
		})
		b = emptyDNames.ReplaceAll(b, nil)
		// The views name sheets by index.
		for _, an := range []string{"activeTab", "firstSheet"} {
			re := regexp.MustCompile(`\b` + an + `="(\d+)"`)
			b = re.ReplaceAllFunc(b, func(m []byte) []byte {
				i, _ := strconv.Atoi(string(re.FindSubmatch(m)[1]))
				n := newIdx(i)
				if isRemoved(i) && n >= len(sheets)-len(removedIdx) {
					n = 0
				}
				return []byte(an + `="` + strconv.Itoa(n) + `"`)
			})
		}
		p.dropCalcChain()
	}
	// External references: [n] in formulas counts them from 1.
	refsEl := extRefElem.FindAll(b, -1)
	var gone []int
	for i, r := range refsEl {
		if ids[idOf(r)] {
			gone = append(gone, i+1)
		}
	}
	if len(gone) > 0 {
		if gone[0] != len(refsEl)-len(gone)+1 || gone[len(gone)-1] != len(refsEl) {
			// the links after them would need renumbering in formulas
			return nil, cannot("external links to renumber in formulas")
		}
		b = p.dropFormulas(b, gone)
		p.dropCalcChain()
	}
	return b, nil
}

// dropCalcChain removes the calculation chain, which names the cells
// with formulas by sheet: Excel rebuilds it when it is absent.
func (p *opc) dropCalcChain() {
	cc := p.file("xl/calcChain.xml")
	if cc == nil || p.removed[strings.ToLower(cc.Name)] {
		return
	}
	p.remove(cc.Name, "")
	if rb, err := p.read("xl/_rels/workbook.xml.rels"); err == nil && rb != nil {
		nb, _ := dropRels(rb, func(r rel) bool {
			return strings.EqualFold(resolve("xl/workbook.xml", r.target), "xl/calcChain.xml")
		})
		p.set("xl/_rels/workbook.xml.rels", nb)
	}
}

// refersToSheet: a formula naming a sheet (Macro1!A1, 'My sheet'!A1).
func refersToSheet(formula, sheet string) bool {
	f := strings.ToLower(formula)
	s := strings.ToLower(sheet)
	quoted := "'" + strings.ReplaceAll(s, "'", "''") + "'!"
	return strings.Contains(f, quoted) || strings.Contains(f, s+"!")
}

var (
	cellFormula = regexp.MustCompile(`(?s)<f\b[^>]*?(?:/>|>.*?</f>)`)
	extIndex    = regexp.MustCompile(`\[(\d+)\]`)
)

// dropFormulas removes the formulas (in the worksheets and the defined
// names of the workbook b) that use the external links numbered gone.
func (p *opc) dropFormulas(b []byte, gone []int) []byte {
	uses := func(m []byte) bool {
		for _, g := range extIndex.FindAllSubmatch(m, -1) {
			n, _ := strconv.Atoi(string(g[1]))
			for _, x := range gone {
				if n == x {
					return true
				}
			}
		}
		return false
	}
	b = definedName.ReplaceAllFunc(b, func(m []byte) []byte {
		if uses(definedName.FindSubmatch(m)[2]) {
			return nil
		}
		return m
	})
	b = emptyDNames.ReplaceAll(b, nil)
	for _, f := range p.zr.File {
		ln := strings.ToLower(f.Name)
		if !strings.HasPrefix(ln, "xl/worksheets/") || !strings.HasSuffix(ln, ".xml") || strings.Contains(ln, "/_rels/") {
			continue
		}
		s, err := p.read(f.Name)
		if err != nil || !bytes.Contains(s, []byte("[")) {
			continue
		}
		p.set(f.Name, cellFormula.ReplaceAllFunc(s, func(m []byte) []byte {
			if uses(m) {
				return nil
			}
			return m
		}))
	}
	return b
}

var (
	fieldTok     = regexp.MustCompile(`(?s)<w:fldChar\b[^>]*?w:fldCharType="(begin|separate|end)"[^>]*>|<w:instrText\b[^>]*>(.*?)</w:instrText>|<w:instrText\b[^>]*/>`)
	fldSimpleDDE = regexp.MustCompile(`(?i)(<w:fldSimple\b[^>]*?w:instr=")(\s*DDE(?:AUTO)?\b[^"]*)(")`)
	fldSimpleAny = regexp.MustCompile(`(?i)(<w:fldSimple\b[^>]*?w:instr=")([^"]*)(")`)
)

// neutraliseDDE empties the instruction of every DDE and DDEAUTO field:
// the field stays, with its last result as the visible text, but asks
// for nothing.
func neutraliseDDE(b []byte) []byte {
	b = fldSimpleDDE.ReplaceAll(b, []byte("$1$3"))
	type field struct {
		text  strings.Builder
		spans [][2]int // instrText content
		done  bool     // past separate
	}
	var stack []*field
	var empty [][2]int
	check := func(f *field) {
		if ddeInstr.MatchString(html.UnescapeString(f.text.String())) {
			empty = append(empty, f.spans...)
		}
	}
	for _, m := range fieldTok.FindAllSubmatchIndex(b, -1) {
		switch {
		case m[2] >= 0:
			switch string(b[m[2]:m[3]]) {
			case "begin":
				stack = append(stack, &field{})
			case "separate":
				if n := len(stack); n > 0 && !stack[n-1].done {
					stack[n-1].done = true
					check(stack[n-1])
				}
			case "end":
				if n := len(stack); n > 0 {
					if !stack[n-1].done {
						check(stack[n-1])
					}
					stack = stack[:n-1]
				}
			}
		case m[4] >= 0:
			if n := len(stack); n > 0 && !stack[n-1].done {
				stack[n-1].text.Write(b[m[4]:m[5]])
				stack[n-1].spans = append(stack[n-1].spans, [2]int{m[4], m[5]})
			} else {
				// instruction text outside a field: Analyse joins it all
				if ddeInstr.Match(bytes.TrimSpace(b[m[4]:m[5]])) {
					empty = append(empty, [2]int{m[4], m[5]})
				}
			}
		}
	}
	for _, f := range stack {
		if !f.done {
			check(f)
		}
	}
	if len(empty) > 0 {
		var out bytes.Buffer
		last := 0
		for _, s := range sortedSpans(empty) {
			if s[0] < last {
				continue
			}
			out.Write(b[last:s[0]])
			last = s[1]
		}
		out.Write(b[last:])
		b = out.Bytes()
	}
	if ddeXML(b) {
		// What is left is DDE only to the joined text of all fields: a
		// word DDE in some instruction. Empty the instructions that say
		// DDE.
		b = instrText.ReplaceAllFunc(b, func(m []byte) []byte {
			if bytes.Contains(bytes.ToUpper(m), []byte("DDE")) {
				i := bytes.IndexByte(m, '>')
				return append(append([]byte{}, m[:i+1]...), "</w:instrText>"...)
			}
			return m
		})
		b = fldSimpleAny.ReplaceAllFunc(b, func(m []byte) []byte {
			if bytes.Contains(bytes.ToUpper(m), []byte("DDE")) {
				return fldSimpleAny.ReplaceAll(m, []byte("$1$3"))
			}
			return m
		})
	}
	return b
}

func sortedSpans(s [][2]int) [][2]int {
	out := append([][2]int(nil), s...)
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// emptyCompoundFile is an OLE2 compound file holding nothing but its root
// storage: the inert stand-in for an embedded object.
func emptyCompoundFile() []byte {
	const sec = 512
	b := make([]byte, 3*sec)
	le := binary.LittleEndian
	copy(b, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	le.PutUint16(b[0x18:], 0x3e)       // minor version
	le.PutUint16(b[0x1a:], 3)          // major version
	le.PutUint16(b[0x1c:], 0xfffe)     // byte order
	le.PutUint16(b[0x1e:], 9)          // sector shift
	le.PutUint16(b[0x20:], 6)          // mini sector shift
	le.PutUint32(b[0x2c:], 1)          // FAT sectors
	le.PutUint32(b[0x30:], 1)          // first directory sector
	le.PutUint32(b[0x38:], 4096)       // mini stream cutoff
	le.PutUint32(b[0x3c:], 0xfffffffe) // first mini FAT sector
	le.PutUint32(b[0x44:], 0xfffffffe) // first DIFAT sector
	le.PutUint32(b[0x4c:], 0)          // DIFAT[0]: the FAT is sector 0
	for i := 1; i < 109; i++ {
		le.PutUint32(b[0x4c+4*i:], 0xffffffff)
	}
	fat := b[sec : 2*sec]
	for i := 0; i < sec/4; i++ {
		le.PutUint32(fat[4*i:], 0xffffffff)
	}
	le.PutUint32(fat[0:], 0xfffffffd) // sector 0: FAT
	le.PutUint32(fat[4:], 0xfffffffe) // sector 1: directory, one sector
	dir := b[2*sec:]
	root := utf16le("Root Entry")
	copy(dir, root)
	le.PutUint16(dir[0x40:], uint16(len(root)+2))
	dir[0x42] = 5 // root storage
	dir[0x43] = 1 // black
	le.PutUint32(dir[0x44:], 0xffffffff)
	le.PutUint32(dir[0x48:], 0xffffffff)
	le.PutUint32(dir[0x4c:], 0xffffffff)
	le.PutUint32(dir[0x74:], 0xfffffffe) // no mini stream
	for e := 1; e < 4; e++ {
		d := dir[128*e:]
		le.PutUint32(d[0x44:], 0xffffffff)
		le.PutUint32(d[0x48:], 0xffffffff)
		le.PutUint32(d[0x4c:], 0xffffffff)
	}
	return b
}

// write makes the new zip: entries in their order, the untouched ones
// copied raw, the changed ones deflated, the removed ones left out.
func (p *opc) write() ([]byte, error) {
	changes := map[string]*ZipChange{}
	for _, f := range p.zr.File {
		if p.removed[strings.ToLower(f.Name)] {
			changes[f.Name] = &ZipChange{Remove: true}
		} else if nb, ok := p.changed[f.Name]; ok {
			changes[f.Name] = &ZipChange{Data: nb}
		}
	}
	out, err := rewriteZip(p.zr, changes)
	if err != nil {
		return nil, cannot("writing the package: %v", err)
	}
	return out, nil
}
