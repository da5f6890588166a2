package attachments

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Disarming: QuickSand's "sanitise and deliver". Disarm takes one whole
// file (a document, never an archive of several) and returns it with its
// active content removed or neutralised, so that what the recipient opens
// is the document without what would run by itself:
//
//   - Office Open XML (disarm_ooxml.go): the VBA project, its
//     relationships and content types removed and the macro-free type
//     and extension given (invoice.docm → invoice.docx); remote templates
//     and external links removed; DDE fields neutralised; embedded
//     package objects removed.
//   - OLE2 .doc/.xls/.ppt (disarm_ole.go): VBA projects neutralised in
//     place; what cannot be neutralised safely is refused.
//   - PDF (disarm_pdf.go): JavaScript, OpenAction, additional actions,
//     Launch and embedded files neutralised in place.
//   - RTF (disarm_rtf.go): embedded objects and remote templates removed.
//
// Every result is analysed again before it is returned: a file in which
// Analyse still finds active content is an error, never a disarmed file.

// ErrCannotDisarm is wrapped by every Disarm error: the file's active
// content could not be removed safely (unknown format, damage, content
// hidden where it cannot be rewritten in place). The caller's fallback
// decides (remove the file, hold the message).
var ErrCannotDisarm = errors.New("cannot be disarmed")

// Disarmed is a file with its active content removed.
type Disarmed struct {
	Data []byte
	// Name is the file's new name when its type changes
	// ("invoice.docm" → "invoice.docx"), "" when it keeps its name.
	Name string
	// MIME is the new media type when it changes, "" otherwise.
	MIME string
	// Removed says what was taken out, one short phrase each ("VBA
	// project word/vbaProject.bin", "PDF /OpenAction").
	Removed []string
}

// cannot returns an error wrapping ErrCannotDisarm.
func cannot(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCannotDisarm, fmt.Sprintf(format, a...))
}

// Disarm removes the active content of one file. name is the file's name
// (it gives the new one when the type changes). The result has been
// analysed again and found free of active content.
func Disarm(name string, data []byte) (*Disarmed, error) {
	var d *Disarmed
	var err error
	switch {
	case IsOLE(data):
		d, err = disarmOLE(name, data)
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		d, err = disarmOOXML(name, data)
	case isPDF(data):
		d, err = disarmPDF(data)
	case bytes.HasPrefix(data, []byte(`{\rt`)):
		d, err = disarmRTF(data)
	default:
		return nil, cannot("no disarming for this file type")
	}
	if err != nil {
		if !errors.Is(err, ErrCannotDisarm) {
			err = fmt.Errorf("%w: %v", ErrCannotDisarm, err)
		}
		return nil, err
	}
	if left := Analyse(d.Data); len(left) > 0 {
		return nil, cannot("active content left after disarming: %s", left[0].Detail)
	}
	return d, nil
}

// isPDF: the PDF header within the first KiB, where readers look for it.
func isPDF(b []byte) bool {
	return bytes.Contains(b[:min(len(b), 1024)], []byte("%PDF-"))
}

// analyseBudget bounds the bytes inflated while analysing one file.
const analyseBudget = 64 << 20

// Analyse returns the active content of one whole file, as a scan would
// find it: VBA, Excel 4 macros, DDE, remote templates, embedded package
// objects (in OLE2 files and in the embeddings of OOXML packages), RTF
// objects, PDF actions and JavaScript. Encryption is not active content
// and is not reported here. It is what Disarm verifies its results with,
// and what tests verify Disarm with.
func Analyse(data []byte) []Active {
	var out []Active
	for _, a := range analyse(data, 0) {
		if a.Category == CategorySuspicious {
			out = append(out, a)
		}
	}
	return out
}

func analyse(data []byte, depth int) []Active {
	switch {
	case IsOLE(data):
		o, err := ParseOLE(data)
		if err != nil {
			return []Active{{KindOLECorrupt, CategorySuspicious, "unreadable OLE2 file: " + err.Error()}}
		}
		out := OLEActive(o)
		for i, e := range o.Entries {
			if e.Type == 2 && e.Name == "\x01Ole10Native" {
				if b, err := o.Stream(i, analyseBudget); err == nil {
					if name, _, ok := OLEPackage(b); ok {
						out = append(out, Active{KindOLEPackage, CategorySuspicious, "embedded package " + truncateString(name, 80)})
					}
				}
			}
		}
		return out
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return []Active{{KindArchiveCorrupt, CategorySuspicious, "unreadable zip: " + err.Error()}}
		}
		files := map[string]*zip.File{}
		var names []string
		for _, f := range zr.File {
			files[f.Name] = f
			names = append(names, f.Name)
		}
		read := func(name string) []byte {
			f := files[name]
			if f == nil {
				return nil
			}
			rc, err := f.Open()
			if err != nil {
				return nil
			}
			defer rc.Close()
			b, _ := io.ReadAll(io.LimitReader(rc, analyseBudget))
			return b
		}
		var out []Active
		if files["[Content_Types].xml"] != nil {
			out = OOXMLActive(names, read)
		}
		if depth < 2 {
			// Embedded objects are files of their own: OLE packages,
			// documents inside documents.
			for _, n := range names {
				ln := strings.ToLower(n)
				if strings.Contains(ln, "/embeddings/") || strings.HasSuffix(ln, ".bin") && !strings.HasSuffix(ln, "vbaproject.bin") {
					out = append(out, analyse(read(n), depth+1)...)
				}
			}
		}
		return dedupActive(out)
	case isPDF(data):
		return PDFActive(data, analyseBudget)
	case bytes.HasPrefix(data, []byte(`{\rt`)):
		return RTFActive(data)
	}
	return TextActive(data[:min(len(data), textScan)])
}
