package attachments

import (
	"bytes"
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
// inside compressed (object) streams cannot be changed in place: when
// one of those is left, the file is refused. An encrypted PDF with object
// streams is refused as well, since what its streams hold cannot be
// seen.
func disarmPDF(data []byte) (*Disarmed, error) {
	out := append([]byte(nil), data...)
	d := &Disarmed{}
	encrypted := false
	for _, loc := range pdfName.FindAllIndex(out, -1) {
		tok := out[loc[0]:loc[1]]
		name := pdfUnescape(tok)
		if name == "/Encrypt" {
			encrypted = true
		}
		if !pdfNeutralise[name] {
			continue
		}
		repl := []byte(strings.ToLower(name))
		for len(repl) < len(tok) {
			repl = append(repl, 'x')
		}
		copy(tok, repl)
		d.Removed = append(d.Removed, "PDF "+name)
	}
	if encrypted && bytes.Contains(data, []byte("/ObjStm")) {
		return nil, cannot("encrypted PDF with object streams: their content cannot be checked")
	}
	if left, _ := pdfActive(out, analyseBudget); len(left) > 0 {
		for _, a := range left {
			if a.Category == CategorySuspicious {
				return nil, cannot("%s inside a compressed stream", a.Detail)
			}
		}
	}
	d.Data = out
	d.Removed = dedupStrings(d.Removed)
	return d, nil
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
