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
		case strings.HasPrefix(ln, "word/") && ddeXML(b):
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
