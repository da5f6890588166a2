package attachments

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"chainmail/checks/checktest"
)

// message builds a multipart/mixed message with a text part and one
// base64 attachment per file.
func message(files ...any) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nHello.\r\n")
	for i := 0; i+1 < len(files); i += 2 {
		name := files[i].(string)
		data := files[i+1].([]byte)
		fmt.Fprintf(&b, "--BOUNDARY\r\nContent-Type: application/octet-stream; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", name, name)
		b.Grow(len(data)*138/100 + 4096)
		line := make([]byte, 76)
		for len(data) > 57 {
			base64.StdEncoding.Encode(line, data[:57])
			b.Write(line)
			b.WriteString("\r\n")
			data = data[57:]
		}
		b.WriteString(base64.StdEncoding.EncodeToString(data) + "\r\n")
	}
	b.WriteString("--BOUNDARY--\r\n")
	return b.Bytes()
}

func scanBytes(b []byte, opts Options) *Report {
	return Scan(bytes.NewReader(b), int64(len(b)), opts)
}

func kinds(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, string(f.Category)+":"+f.Kind.String())
	}
	sort.Strings(out)
	return out
}

// hasKind takes a FindingKind or its name; a name that is no kind is a
// mistake in the test.
func hasKind(r *Report, kind any) bool {
	name := fmt.Sprint(kind)
	if _, ok := ParseFindingKind(name); !ok {
		panic("no finding kind " + name)
	}
	for _, f := range r.Findings {
		if f.Kind.String() == name {
			return true
		}
	}
	return false
}

func zipOf(t testing.TB, files ...any) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		f, err := w.Create(files[i].(string))
		if err != nil {
			t.Fatal(err)
		}
		f.Write(files[i+1].([]byte))
	}
	w.Close()
	return b.Bytes()
}

// SpamAssassin's olevbmacro messages, with what its OLEVBMacro plugin
// expects of each.
func TestSpamAssassinOfficeMacros(t *testing.T) {
	dir := filepath.Join(checktest.Corpus(t, "apache-spamassassin-t-data"), "spam", "olevbmacro")
	cases := []struct {
		file     string
		want     []FindingKind
		wantNone []FindingKind
	}{
		{"macro.eml", []FindingKind{KindVBA}, []FindingKind{KindVBAAutoExec}},
		{"malicemacro.eml", []FindingKind{KindVBA, KindVBAAutoExec}, nil},
		{"renamedmacro.eml", []FindingKind{KindVBA, KindNameTypeMismatch}, nil},
		{"encrypted.eml", []FindingKind{KindEncryptedDoc}, nil},
		{"zippwmacro.eml", []FindingKind{KindEncryptedArchive}, nil},
		{"nomacro.eml", nil, []FindingKind{KindVBA, KindEncryptedDoc, KindNameTypeMismatch}},
		{"goodcsv.eml", nil, []FindingKind{KindDDE, KindVBA}},
		{"target_uri.eml", nil, []FindingKind{KindVBA}},
	}
	for _, c := range cases {
		raw, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		r := scanBytes(raw, Options{})
		for _, k := range c.want {
			if !hasKind(r, k) {
				t.Errorf("%s: no %s finding: %v", c.file, k, kinds(r))
			}
		}
		for _, k := range c.wantNone {
			if hasKind(r, k) {
				t.Errorf("%s: unexpected %s finding: %v", c.file, k, kinds(r))
			}
		}
	}
}

// oletools' fixtures: encrypted documents are encrypted exactly when the
// name says so, Excel 4 macros and DDE are found, the clean controls are
// clean.
func TestOletoolsActiveContent(t *testing.T) {
	root := checktest.Corpus(t, "oletools-test-data")
	scanFile := func(p string) *Report {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return scanBytes(message(filepath.Base(p), data), Options{})
	}
	files, _ := filepath.Glob(filepath.Join(root, "encrypted", "*"))
	files = append(files, filepath.Join(root, "basic", "encrypted.docx"))
	enc, encTotal := 0, 0
	for _, p := range files {
		r := scanFile(p)
		encTotal++
		if hasKind(r, KindEncryptedDoc) {
			enc++
		} else {
			t.Errorf("%s: not seen as encrypted: %v", filepath.Base(p), kinds(r))
		}
	}
	xlm, xlmTotal := 0, 0
	x4, _ := filepath.Glob(filepath.Join(root, "excel4-macros", "*"))
	for _, p := range x4 {
		r := scanFile(p)
		xlmTotal++
		if hasKind(r, KindXLM) {
			xlm++
		} else {
			t.Logf("%s: Excel 4 macro not found: %v", filepath.Base(p), kinds(r))
		}
	}
	dde, ddeTotal := 0, 0
	for _, n := range []string{"dde-in-csv.csv", "dde-in-excel2003.xml", "dde-test.docx", "dde-test.docm", "dde-test.xlsx", "dde-test.xlsm", "dde-test.xlsb"} {
		r := scanFile(filepath.Join(root, "msodde", n))
		ddeTotal++
		if hasKind(r, KindDDE) {
			dde++
		} else {
			t.Errorf("%s: no DDE: %v", n, kinds(r))
		}
	}
	for _, n := range []string{"harmless-clean.doc", "harmless-clean.docx", "harmless-clean.docm", "harmless-clean.xml", "harmless-clean-2003.xml"} {
		r := scanFile(filepath.Join(root, "msodde", n))
		if hasKind(r, KindDDE) || hasKind(r, KindEncryptedDoc) {
			t.Errorf("%s: %v", n, kinds(r))
		}
	}
	vba := scanFile(filepath.Join(root, "olevba", "sample_with_vba.ppt"))
	if !hasKind(vba, KindVBA) {
		t.Errorf("sample_with_vba.ppt: %v", kinds(vba))
	}
	// Password-protected zips (password "infected-test").
	zips, _ := filepath.Glob(filepath.Join(root, "*", "*.zip"))
	pw := 0
	for _, p := range zips {
		if hasKind(scanFile(p), "encrypted-archive") {
			pw++
		} else {
			t.Errorf("%s: not an encrypted archive", p)
		}
	}
	t.Logf("oletools: encrypted %d/%d, Excel 4 macros %d/%d, DDE %d/%d, password zips %d/%d", enc, encTotal, xlm, xlmTotal, dde, ddeTotal, pw, len(zips))
	if xlm < xlmTotal-2 {
		t.Errorf("Excel 4 macros found in only %d of %d", xlm, xlmTotal)
	}
}

func TestScanArchivesAndNames(t *testing.T) {
	exe := append([]byte("MZ"), make([]byte, 200)...)
	inner := zipOf(t, "invoice.pdf.exe", exe)
	outer := zipOf(t, "docs/inner.zip", inner, "readme.txt", []byte("hi"))
	r := scanBytes(message("bundle.zip", outer, "photo\u202egpj.exe", exe), Options{})
	var paths []string
	for _, f := range r.Files {
		paths = append(paths, fmt.Sprintf("%s member=%v %s", f.Path, f.Member, firstField(f.Type.Description)))
	}
	want := []string{
		"1.2 member=false Zip archive data",
		"1.2/bundle.zip/docs/inner.zip member=true Zip archive data",
		"1.2/bundle.zip/docs/inner.zip/invoice.pdf.exe member=true MS-DOS executable",
		"1.2/bundle.zip/readme.txt member=true ASCII text",
		"1.3 member=false MS-DOS executable",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	if !hasKind(r, "name-bidi") {
		t.Errorf("RTLO name: %v", kinds(r))
	}
	if n := r.Files[4].Name; n != "photogpj.exe" {
		t.Errorf("normalised RTLO name %q", n)
	}
	// Depth limit.
	z := exe
	for i := 0; i < 8; i++ {
		z = zipOf(t, fmt.Sprintf("level%d.zip", i), z)
	}
	r = scanBytes(message("deep.zip", z), Options{})
	if !hasKind(r, "limit-depth") {
		t.Errorf("depth: %v", kinds(r))
	}
	// Entries limit.
	var many []any
	for i := 0; i < 30; i++ {
		many = append(many, fmt.Sprintf("f%d.txt", i), []byte("x"))
	}
	r = scanBytes(message("many.zip", zipOf(t, many...)), Options{MaxEntries: 10})
	if !hasKind(r, "limit-entries") {
		t.Errorf("entries: %v", kinds(r))
	}
	// Attachments limit.
	var atts []any
	for i := 0; i < 5; i++ {
		atts = append(atts, fmt.Sprintf("a%d.txt", i), []byte("x"))
	}
	r = scanBytes(message(atts...), Options{MaxAttachments: 3})
	if !hasKind(r, "limit-attachments") {
		t.Errorf("attachments: %v", kinds(r))
	}
	// Truncated zip: listed from its local headers, reported.
	r = scanBytes(message("cut.zip", outer[:len(outer)/2]), Options{})
	if !hasKind(r, "archive-corrupt") {
		t.Errorf("truncated zip: %v", kinds(r))
	}
}

// A zip whose central directory names an entry differently from its
// local header: both names are checked.
func TestZipNameMismatch(t *testing.T) {
	z := zipOf(t, "report.txt", []byte("MZ\x90\x00 not really"))
	i := bytes.Index(z, []byte("report.txt")) // the local header's copy
	bad := append([]byte(nil), z...)
	copy(bad[i:], "report.exe")
	r := scanBytes(message("x.zip", bad), Options{})
	if !hasKind(r, "zip-name-mismatch") {
		t.Fatalf("%v", kinds(r))
	}
	var names []string
	for _, f := range r.Files {
		if f.Member {
			names = f.NameList()
		}
	}
	if strings.Join(names, ",") != "report.txt,report.exe" {
		t.Errorf("member names %v", names)
	}
}

// Zip bombs cost bounded time and memory: a high-ratio member, nested
// zips of zips, and overlapping entries (one compressed stream shared by
// many entries).
func TestZipBombs(t *testing.T) {
	zeros := make([]byte, 16<<20)
	big := zipOf(t, "zeros.bin", zeros)
	nested := big
	for i := 0; i < 3; i++ {
		var files []any
		for j := 0; j < 10; j++ {
			files = append(files, fmt.Sprintf("l%d-%d.zip", i, j), nested)
		}
		nested = zipOf(t, files...)
	}
	overlap := overlappingZip(t, 200)
	for name, data := range map[string][]byte{"ratio.zip": big, "nested.zip": nested, "overlap.zip": overlap} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		r := scanBytes(message(name, data), Options{})
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		if d > 5*time.Second {
			t.Errorf("%s: %v", name, d)
		}
		if !r.Has(CategoryUnscannable) {
			t.Errorf("%s: no unscannable finding: %v", name, kinds(r))
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s (%d bytes): %v, %d MiB allocated, %d bytes inspected, %v", name, len(data), d.Round(time.Millisecond), alloc>>20, r.Inspected, kinds(r))
		if r.Inspected > 300<<20 {
			t.Errorf("%s: inspected %d bytes", name, r.Inspected)
		}
	}
}

// overlappingZip builds a zip in which n central-directory entries all
// point at one deflated stream of 1 MiB of zeros.
func overlappingZip(t testing.TB, n int) []byte {
	one := zipOf(t, "a", make([]byte, 1<<20))
	l, err := ListZip(one, 10)
	if err != nil || len(l.Entries) != 1 {
		t.Fatal(err)
	}
	cd := bytes.Index(one, []byte("PK\x01\x02"))
	eocd := bytes.Index(one, []byte("PK\x05\x06"))
	entry := one[cd:eocd]
	var b bytes.Buffer
	b.Write(one[:cd])
	for i := 0; i < n; i++ {
		b.Write(entry)
	}
	cdSize := b.Len() - cd
	e := append([]byte(nil), one[eocd:]...)
	putU16(e[8:], uint16(n))
	putU16(e[10:], uint16(n))
	putU32(e[12:], uint32(cdSize))
	putU32(e[16:], uint32(cd))
	b.Write(e)
	return b.Bytes()
}

func putU16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }
func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// TNEF: winmail.dat's files are checked like any other attachment.
func TestScanTNEF(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "mimekit-testdata"), "tnef", "data-before-name.tnef"))
	if err != nil {
		t.Fatal(err)
	}
	r := scanBytes(message("winmail.dat", data), Options{})
	var names []string
	for _, f := range r.Files {
		if f.Container == "tnef" {
			names = append(names, f.Name)
			if f.Member {
				t.Errorf("TNEF attachment %s counted as an archive member", f.Name)
			}
		}
	}
	if strings.Join(names, ",") != "AUTOEXEC.BAT,CONFIG.SYS,boot.ini" {
		t.Errorf("TNEF files %v", names)
	}
	for _, m := range []string{"rich-text.eml", "ukr.eml"} {
		raw, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "mimekit-testdata"), "tnef", m))
		if err != nil {
			t.Fatal(err)
		}
		r := scanBytes(raw, Options{})
		n := 0
		for _, f := range r.Files {
			if f.Container == "tnef" {
				n++
			}
		}
		t.Logf("%s: %d files from TNEF, findings %v", m, n, kinds(r))
	}
}

// Bad input of every kind: defined findings, bounded time.
func TestBadInput(t *testing.T) {
	t.Run("10000 parts", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
		for i := 0; i < 10000; i++ {
			fmt.Fprintf(&b, "--b\r\nContent-Type: application/octet-stream; name=f%d.bin\r\n\r\nx\r\n", i)
		}
		b.WriteString("--b--\r\n")
		start := time.Now()
		r := scanBytes(b.Bytes(), Options{})
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
		if !r.Has(CategoryUnscannable) || !hasKind(r, "limit-attachments") && !hasKind(r, "mime-structure") {
			t.Errorf("%v", kinds(r)[:min(5, len(kinds(r)))])
		}
	})
	t.Run("100 deep", func(t *testing.T) {
		var b bytes.Buffer
		for i := 0; i < 100; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\r\n\r\ndeep\r\n")
		for i := 99; i >= 0; i-- {
			fmt.Fprintf(&b, "--b%d--\r\n", i)
		}
		r := scanBytes(b.Bytes(), Options{})
		if !hasKind(r, "mime-structure") || !r.Has(CategoryUnscannable) {
			t.Errorf("%v", kinds(r))
		}
	})
	t.Run("bad base64", func(t *testing.T) {
		msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQ!!!!AAMAAAAE%%%%\r\n--b--\r\n"
		r := scanBytes([]byte(msg), Options{})
		if !hasKind(r, "bad-encoding") {
			t.Errorf("%v", kinds(r))
		}
	})
	t.Run("encoded-word and RFC 2231 names", func(t *testing.T) {
		msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: application/octet-stream; name=\"=?UTF-8?B?cmVwb3J0LmV4ZQ==?=\"\r\n\r\nx\r\n" +
			"--b\r\nContent-Disposition: attachment; filename*0*=utf-8''%E2%80%AEfdp; filename*1=.exe\r\n\r\nx\r\n" +
			"--b\r\nContent-Disposition: attachment; filename=\"safe.txt\"\r\nContent-Type: text/plain; name=\"evil.exe\"\r\n\r\nx\r\n--b--\r\n"
		r := scanBytes([]byte(msg), Options{})
		var got []string
		for _, f := range r.Files {
			got = append(got, strings.Join(f.NameList(), "+"))
		}
		if strings.Join(got, ",") != "report.exe,fdp.exe,safe.txt+evil.exe" {
			t.Errorf("names %v", got)
		}
		if !hasKind(r, "name-bidi") {
			t.Errorf("%v", kinds(r))
		}
	})
	t.Run("50 MB attachment", func(t *testing.T) {
		data := bytes.Repeat([]byte("0123456789abcdef"), 50<<20/16)
		msg := message("big.bin", data)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		r := scanBytes(msg, Options{})
		d := time.Since(start)
		runtime.ReadMemStats(&after)
		t.Logf("50 MB attachment: scanned in %v", d)
		if d > 5*time.Second {
			t.Errorf("took %v", d)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > 16<<20 {
			t.Errorf("allocated %d MiB for a 50 MB attachment", a>>20)
		}
		if len(r.Files) != 1 {
			t.Errorf("%d files", len(r.Files))
		}
	})
	t.Run("zip over max_file_size", func(t *testing.T) {
		data := make([]byte, 6<<20)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i+8 <= len(data); i += 8 {
			putU32(data[i:], rng.Uint32())
			putU32(data[i+4:], rng.Uint32())
		}
		var zb bytes.Buffer
		zw := zip.NewWriter(&zb)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "big.bin", Method: zip.Store})
		w.Write(data)
		zw.Close()
		r := scanBytes(message("big.zip", zb.Bytes()), Options{MaxFileSize: 4 << 20})
		if !hasKind(r, "limit-size") {
			t.Errorf("%v", kinds(r))
		}
	})
}

// Every malformed-MIME corpus message walks without panic in bounded time.
func TestMalformedCorpora(t *testing.T) {
	var files []string
	for _, c := range []struct{ corpus, glob string }{
		{"cpython-test-email", "*.txt"},
		{"ruby-mail-fixtures", "emails/*/*"},
		{"nodemailer-mailparser-fixtures", "*.eml"},
		{"mimekit-testdata", "messages/*"},
		{"mimekit-testdata", "partial/*"},
		{"mime4j-testmsgs", "*/*.msg"},
		{"apache-spamassassin-t-data", "spam/*"},
		{"rspamd-functional", "messages/*.eml"},
	} {
		m, _ := filepath.Glob(filepath.Join(checktest.Corpus(t, c.corpus), c.glob))
		files = append(files, m...)
	}
	n := 0
	var slowest time.Duration
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() {
			continue
		}
		raw, _ := os.ReadFile(p)
		start := time.Now()
		scanBytes(raw, Options{})
		d := time.Since(start)
		if d > slowest {
			slowest = d
		}
		if d > 2*time.Second {
			t.Errorf("%s: %v", p, d)
		}
		n++
	}
	t.Logf("%d messages scanned, slowest %v", n, slowest)
}

// 7z archives (made with p7zip for these tests): listed, members checked,
// encryption of the files or of the headers reported.
func TestSevenZip(t *testing.T) {
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r := scanBytes(message("plain.7z", read("plain.7z")), Options{})
	var names []string
	for _, f := range r.Files {
		if f.Member {
			names = append(names, f.Name+"="+firstField(f.Type.Description))
		}
	}
	if strings.Join(names, ",") != "report.txt=ASCII text,run.bat=DOS batch file" {
		t.Errorf("plain 7z members %v", names)
	}
	r = scanBytes(message("files.7z", read("enc-files.7z")), Options{})
	if !hasKind(r, "encrypted-archive") {
		t.Errorf("encrypted files: %v", kinds(r))
	}
	names = nil
	for _, f := range r.Files {
		if f.Member {
			names = append(names, f.Name)
		}
	}
	if strings.Join(names, ",") != "report.txt,run.bat" {
		t.Errorf("encrypted 7z still lists its names: %v", names)
	}
	r = scanBytes(message("headers.7z", read("enc-headers.7z")), Options{})
	if !hasKind(r, "encrypted-archive") {
		t.Errorf("encrypted headers: %v", kinds(r))
	}
}

// chainmail's own rule files load and deny what they are for.
func TestDefaultRuleFiles(t *testing.T) {
	sets := map[string]*RuleSet{}
	for _, w := range []string{FilenameRules, FiletypeRules, ArchiveFilenameRules, ArchiveFiletypeRules} {
		rs, err := DefaultRules(w)
		if err != nil {
			t.Fatal(err)
		}
		sets[w] = rs
	}
	for name, deny := range map[string]bool{
		"setup.exe": true, "Invoice.PDF.js": true, "run.ps1": true, "a.lnk": true, "disk.iso": true, "x.hta": true,
		"report.pdf": false, "photo.jpg": false, "budget.xlsx": false, "notes.txt": false, "archive.zip": false, "report.2026.pdf": false,
	} {
		r := sets[FilenameRules].MatchName(name)
		if got := r != nil && r.Action == Deny; got != deny {
			t.Errorf("%s: deny %v, want %v", name, got, deny)
		}
	}
	for desc, deny := range map[string]bool{
		"PE32 executable (GUI) Intel 80386, for MS Windows": true, "ELF 64-bit LSB executable": true, "MS Windows shortcut": true,
		"PDF document, version 1.4": false, "Zip archive data": false, "POSIX shell script, ASCII text executable": false,
	} {
		r := sets[FiletypeRules].MatchType(desc)
		if got := r != nil && r.Action == Deny; got != deny {
			t.Errorf("%s: deny %v, want %v", desc, got, deny)
		}
	}
}
