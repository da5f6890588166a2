package attachments

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// pdfNeutralise: the names that make a reader act by itself or carry a
// file, neutralised by disarmPDF. The first group is what PDFActive
// reports; the second is cheap to add (rich media, XFA forms, form
// submission and data import).
var pdfNeutralise = map[string]bool{
	"/JavaScript": true, "/JS": true, "/Launch": true, "/EmbeddedFile": true,
	"/EmbeddedFiles": true, "/OpenAction": true, "/AA": true,
	"/RichMedia": true, "/XFA": true, "/SubmitForm": true, "/ImportData": true,
}

// disarmPDF neutralises a PDF's actions, JavaScript and embedded files in
// place: each name token (found as PDFActive finds it, #xx escapes
// undone) is rewritten at the same length in lower case ("/JavaScript" →
// "/javascript", "/J#61vaScript" → "/javascriptxx"). PDF names are
// case-sensitive, so no reader takes the new names for the old ones; no
// byte moves, so the cross-reference table stays right. Names that live
// inside compressed (object) streams cannot be changed in place: those
// streams are written again as an incremental update at the end (see
// pdfUpdateStreams), or the file is refused. An encrypted PDF with object
// streams is refused, since what its streams hold cannot be seen.
func disarmPDF(data []byte) (*Disarmed, error) {
	out := append([]byte(nil), data...)
	d := &Disarmed{}
	encrypted := false
	for _, name := range neutralisePDFNames(out) {
		if name == "/Encrypt" {
			encrypted = true
			continue
		}
		d.Removed = append(d.Removed, "PDF "+name)
	}
	if encrypted && bytes.Contains(data, []byte("/ObjStm")) {
		return nil, cannot("encrypted PDF with object streams: their content cannot be checked")
	}
	if pdfSuspicious(out) {
		// Names inside compressed streams: each such stream is written
		// again, neutralised, as an incremental update.
		var removed []string
		var err error
		if out, removed, err = pdfUpdateStreams(out); err != nil {
			return nil, err
		}
		d.Removed = append(d.Removed, removed...)
		if pdfSuspicious(out) {
			return nil, cannot("PDF active content left inside a compressed stream")
		}
	}
	d.Data = out
	d.Removed = dedupStrings(d.Removed)
	return d, nil
}

// neutralisePDFNames rewrites in b, at the same length, every name token
// pdfNeutralise holds, and returns the names rewritten (and /Encrypt
// when it is seen, not rewritten).
func neutralisePDFNames(b []byte) []string {
	var names []string
	// Names in the bodies of filtered streams are binary data, not names
	// (pdfMaskFiltered): they are left as they are.
	for _, loc := range pdfName.FindAllIndex(pdfMaskFiltered(b), -1) {
		tok := b[loc[0]:loc[1]]
		name := pdfUnescape(tok)
		if name == "/Encrypt" {
			names = append(names, name)
		}
		if !pdfNeutralise[name] {
			continue
		}
		repl := []byte(strings.ToLower(name))
		for len(repl) < len(tok) {
			repl = append(repl, 'x')
		}
		copy(tok, repl)
		names = append(names, name)
	}
	return names
}

func pdfSuspicious(b []byte) bool {
	left, _ := pdfActive(b, analyseBudget)
	for _, a := range left {
		if a.Category == CategorySuspicious {
			return true
		}
	}
	return false
}

var (
	pdfObjHeader = regexp.MustCompile(`(\d+)\s+(\d+)\s+obj\b`)
	pdfLength    = regexp.MustCompile(`/Length\s+\d+(\s+\d+\s+R)?`)
	pdfFlateOnly = regexp.MustCompile(`/Filter\s*(/FlateDecode|\[\s*/FlateDecode\s*\])`)
	pdfStartXref = regexp.MustCompile(`startxref\s+(\d+)`)
	pdfTrailerKV = []*regexp.Regexp{
		regexp.MustCompile(`/Size\s+\d+`),
		regexp.MustCompile(`/Root\s+\d+\s+\d+\s+R`),
		regexp.MustCompile(`/Info\s+\d+\s+\d+\s+R`),
		regexp.MustCompile(`/ID\s*\[[^\]]*\]`),
	}
)

// pdfUpdateStreams neutralises the names hidden in FlateDecode streams
// (object streams, mostly): each such stream is inflated, its names
// rewritten, deflated again and appended as a new version of its object
// in an incremental update with its own cross-reference section; the old
// stream's bytes are zeroed in place, so that what is superseded holds
// nothing either. Streams with predictors or other filters, and files
// whose last cross-reference section cannot be read, are refused.
func pdfUpdateStreams(b []byte) ([]byte, []string, error) {
	out := append([]byte(nil), b...)
	type update struct {
		num, gen int
		text     []byte
	}
	var ups []update
	var removed []string
	budget := int64(analyseBudget)
	for p := 0; budget > 0; {
		kw, s, ok := nextPDFStream(b, p)
		if !ok {
			break
		}
		p = s
		if s+2 > len(b) || b[s]&0x0f != 8 {
			continue
		}
		src := bytes.NewReader(b[s:])
		r, err := zlib.NewReader(src)
		if err != nil {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(r, min(budget, 4<<20)+1))
		budget -= int64(len(data))
		names := pdfNames(data)
		active := false
		for n := range names {
			active = active || pdfNeutralise[n]
		}
		if !active {
			continue
		}
		if err != nil || int64(len(data)) > min(budget+int64(len(data)), 4<<20) {
			return nil, nil, cannot("PDF compressed stream with active names cannot be read whole")
		}
		consumed := len(b) - s - src.Len()
		// The object the stream belongs to.
		from := max(0, kw-4096)
		hs := pdfObjHeader.FindAllSubmatchIndex(b[from:kw], -1)
		if len(hs) == 0 {
			return nil, nil, cannot("PDF stream with active names outside an object")
		}
		h := hs[len(hs)-1]
		num, _ := strconv.Atoi(string(b[from+h[2] : from+h[3]]))
		gen, _ := strconv.Atoi(string(b[from+h[4] : from+h[5]]))
		dict := b[from+h[1] : kw]
		if bytes.Contains(dict, []byte("endobj")) || !pdfFlateOnly.Match(dict) || bytes.Contains(dict, []byte("/DecodeParms")) ||
			len(pdfLength.FindAllIndex(dict, -1)) != 1 {
			return nil, nil, cannot("PDF object %d: a stream that cannot be written again", num)
		}
		for _, n := range neutralisePDFNames(data) {
			if n != "/Encrypt" {
				removed = append(removed, fmt.Sprintf("PDF %s (compressed object %d)", n, num))
			}
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		var t bytes.Buffer
		fmt.Fprintf(&t, "%d %d obj", num, gen)
		t.Write(pdfLength.ReplaceAll(bytes.TrimRight(dict, " \t\r\n"), []byte(fmt.Sprintf("/Length %d", z.Len()))))
		t.WriteString("\nstream\n")
		t.Write(z.Bytes())
		t.WriteString("\nendstream\nendobj\n")
		ups = append(ups, update{num, gen, t.Bytes()})
		clear(out[s : s+consumed])
		p = s + consumed
	}
	if len(ups) == 0 {
		return b, nil, nil
	}
	grow := 0
	for _, u := range ups {
		grow += len(u.text)
	}
	if grow > len(b)+64<<10 {
		return nil, nil, cannot("PDF streams written again would more than double the file")
	}
	// The trailer entries carried over from the last section.
	m := pdfStartXref.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return nil, nil, cannot("PDF without startxref")
	}
	prev, err := strconv.Atoi(string(m[len(m)-1][1]))
	if err != nil || prev <= 0 || prev >= len(b) {
		return nil, nil, cannot("PDF startxref outside the file")
	}
	sec := b[prev:min(len(b), prev+1<<20)]
	var tdict []byte
	end := "stream" // a cross-reference stream's dictionary
	if bytes.HasPrefix(sec, []byte("xref")) {
		if k := bytes.Index(sec, []byte("trailer")); k >= 0 {
			tdict = sec[k:]
		}
		end = "startxref"
	} else if pdfObjHeader.Match(sec[:min(len(sec), 32)]) {
		tdict = sec
	}
	if k := bytes.Index(tdict, []byte(end)); k >= 0 {
		tdict = tdict[:k]
	}
	var trailer []string
	for _, re := range pdfTrailerKV {
		if v := re.Find(tdict); v != nil {
			trailer = append(trailer, string(v))
		}
	}
	if len(trailer) < 2 || !strings.HasPrefix(trailer[0], "/Size") || !strings.HasPrefix(trailer[1], "/Root") {
		return nil, nil, cannot("PDF trailer without /Size and /Root")
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	var x bytes.Buffer
	x.WriteString("xref\n")
	var offs []int
	for _, u := range ups {
		offs = append(offs, len(out))
		out = append(out, u.text...)
	}
	xat := len(out)
	for k, u := range ups {
		fmt.Fprintf(&x, "%d 1\n%010d %05d n \n", u.num, offs[k], u.gen)
	}
	fmt.Fprintf(&x, "trailer\n<< %s /Prev %d >>\nstartxref\n%d\n%%%%EOF\n", strings.Join(trailer, " "), prev, xat)
	out = append(out, x.Bytes()...)
	return out, removed, nil
}

// pdfUnescape undoes the #xx escapes of a name token.
func pdfUnescape(tok []byte) string {
	if bytes.IndexByte(tok, '#') < 0 {
		return string(tok)
	}
	var d strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] == '#' && i+2 < len(tok) && isHex(tok[i+1]) && isHex(tok[i+2]) {
			d.WriteByte(unhex(tok[i+1])<<4 | unhex(tok[i+2]))
			i += 2
			continue
		}
		d.WriteByte(tok[i])
	}
	return d.String()
}
