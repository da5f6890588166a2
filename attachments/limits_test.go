package attachments

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Containers that are not sniffed as archives (OOXML, JAR) are bound by
// MaxDepth too.
func TestDepthLimitOfficeZip(t *testing.T) {
	ct := []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"></Types>`)
	nested := zipOf(t, "[Content_Types].xml", ct, "word/document.xml", []byte("<w:document/>"))
	for i := 0; i < 12; i++ {
		nested = zipOf(t, "[Content_Types].xml", ct, "word/document.xml", []byte("<w:document/>"), fmt.Sprintf("word/embeddings/l%d.docx", i), nested)
	}
	t.Logf("%s", Sniff(nested).Description)
	r := scanBytes(message("a.docx", nested), Options{})
	maxDepth := 0
	for _, f := range r.Files {
		maxDepth = max(maxDepth, f.Depth)
	}
	if !hasKind(r, "limit-depth") || maxDepth > 6 {
		t.Errorf("depth %d, findings %v", maxDepth, kinds(r))
	}
}

// The size a compressed RTF header declares is not allocated up front.
func TestDecompressRTFDeclaredSizeNotAllocated(t *testing.T) {
	b := []byte("\x20\x00\x00\x00\x00\x00\x00\x04LZFu\x00\x00\x00\x00\x00abc")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, _ := DecompressRTF(b)
	runtime.ReadMemStats(&after)
	if string(out) != "abc" {
		t.Errorf("out %q", out)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("%d bytes allocated for a 19-byte input", a)
	}
}

// A container that the zip reader cannot list is a finding, not a pass.
func TestSelfExtractorUnlistableZip(t *testing.T) {
	b := append([]byte("MZ"), make([]byte, 0x400)...)
	putU32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	b = append(b, "NullsoftInst"...)
	b = append(b, make([]byte, 2<<20)...)
	b = append(b, "PK\x03\x04"...)
	b = append(b, make([]byte, 100)...)
	t.Logf("%+v", Sniff(b))
	r := scanBytes(message("setup.exe", b), Options{})
	if !r.Has(CategoryUnscannable) {
		t.Errorf("findings %v", kinds(r))
	}
}

// A 7z member the library cannot open (an unsupported filter) is a
// finding, not a silently empty member.
func TestSevenZipMemberNotOpened(t *testing.T) {
	// 7z a -mf=IA64 x.7z a.txt: a filter the library does not decode
	b := []byte("\x37\x7a\xbc\xaf\x27\x1c\x00\x04\xa3\x71\x08\xd1\x10\x00\x00\x00\x00\x00\x00\x00\x52\x00\x00\x00\x00\x00\x00\x00\xc4\xe2\xa9\xbc\x01\x00\x0b\x68\x65\x6c\x6c\x6f\x20\x77\x6f\x72\x6c\x64\x0a\x00\x01\x04\x06\x00\x01\x09\x10\x00\x07\x0b\x01\x00\x02\x21\x21\x01\x00\x04\x03\x03\x04\x01\x01\x00\x0c\x0c\x0c\x00\x08\x0a\x01\x2d\x3b\x08\xaf\x00\x00\x05\x01\x19\x04\x00\x00\x00\x00\x11\x0d\x00\x61\x00\x2e\x00\x74\x00\x78\x00\x74\x00\x00\x00\x14\x0a\x01\x00\x1d\x2f\xaf\xc8\x09\x7c\xdd\x01\x15\x06\x01\x00\x20\x80\xa4\x81\x00\x00")
	r := scanBytes(message("a.7z", b), Options{})
	if !r.Has(CategoryUnscannable) {
		t.Errorf("findings %v", kinds(r))
	}
}

// cfbLoopingPackage builds a compound file whose \x01Ole10Native stream
// (5000 bytes, in the FAT) has a sector chain that loops.
func cfbLoopingPackage() []byte {
	b := make([]byte, 512*4)
	copy(b, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
	putU16(b[0x18:], 0x3e)
	putU16(b[0x1a:], 3)
	putU16(b[0x1c:], 0xfffe)
	putU16(b[0x1e:], 9)
	putU16(b[0x20:], 6)
	putU32(b[0x2c:], 1)          // one FAT sector
	putU32(b[0x30:], 1)          // directory at sector 1
	putU32(b[0x38:], 4096)       // mini stream cutoff
	putU32(b[0x3c:], 0xfffffffe) // no mini FAT
	putU32(b[0x44:], 0xfffffffe) // no DIFAT sectors
	for i := 0; i < 109; i++ {
		putU32(b[0x4c+4*i:], 0xffffffff)
	}
	putU32(b[0x4c:], 0) // FAT in sector 0
	fat := b[512:1024]
	for i := 0; i < 128; i++ {
		putU32(fat[4*i:], 0xffffffff)
	}
	putU32(fat[0:], 0xfffffffd)
	putU32(fat[4:], 0xfffffffe)
	putU32(fat[8:], 2) // sector 2 is followed by itself
	dir := b[1024:1536]
	entry := func(e []byte, name string, typ byte, child, start, size uint32) {
		for i, c := range name {
			putU16(e[2*i:], uint16(c))
		}
		putU16(e[0x40:], uint16(2*len(name)+2))
		e[0x42] = typ
		putU32(e[0x44:], 0xffffffff)
		putU32(e[0x48:], 0xffffffff)
		putU32(e[0x4c:], child)
		putU32(e[0x74:], start)
		putU32(e[0x78:], size)
	}
	entry(dir[0:128], "Root Entry", 5, 1, 0xfffffffe, 0)
	entry(dir[128:256], "\x01Ole10Native", 2, 0xffffffff, 2, 5000)
	entry(dir[256:384], "", 0, 0xffffffff, 0, 0)
	entry(dir[384:512], "", 0, 0xffffffff, 0, 0)
	return b
}

// An embedded package whose stream cannot be read is a finding.
func TestOLEPackageUnreadable(t *testing.T) {
	b := cfbLoopingPackage()
	o, err := ParseOLE(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Stream(1, -1); err == nil {
		t.Fatal("looping chain read without error")
	}
	r := scanBytes(message("a.doc", b), Options{})
	if !r.Has(CategoryUnscannable) {
		t.Errorf("findings %v", kinds(r))
	}
}

// The embedded storages of a PowerPoint document are inflated within one
// bound for the whole document, not 16 MiB each.
func TestPPTVBAInflateBounded(t *testing.T) {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(make([]byte, 16<<20))
	w.Close()
	rec := make([]byte, 12)
	putU16(rec, 0x10) // recVer 0, instance 1
	putU16(rec[2:], 0x1011)
	putU32(rec[4:], uint32(4+z.Len()))
	putU32(rec[8:], 16<<20)
	var doc []byte
	for i := 0; i < 64; i++ {
		doc = append(doc, rec...)
		doc = append(doc, z.Bytes()...)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pptVBA(doc)
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 256<<20 {
		t.Errorf("%d MiB allocated for a %d KiB document", a>>20, len(doc)>>10)
	}
}

// The streams PDFs inflate come out of the per-message budget.
func TestPDFStreamsChargeBudget(t *testing.T) {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(make([]byte, 16<<20))
	w.Close()
	pdf := append([]byte("%PDF-1.4\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n"), z.Bytes()...)
	pdf = append(pdf, "\nendstream\nendobj\n%%EOF\n"...)
	var files []any
	for i := 0; i < 20; i++ {
		files = append(files, fmt.Sprintf("d%d.pdf", i), pdf)
	}
	r := scanBytes(message("docs.zip", zipOf(t, files...)), Options{MaxTotal: 64 << 20})
	if !hasKind(r, "limit-total") {
		t.Errorf("20 PDFs of 4 MiB inflated streams within a 64 MiB budget: %v, %d bytes inspected", kinds(r), r.Inspected)
	}
}

// A member whose compressed data ends early is reported, not taken for
// the whole file.
func TestZipMemberTruncated(t *testing.T) {
	text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog 0123456789.\n"), 400)
	for i := range text {
		text[i] ^= byte(i * 7 % 13) // less compressible
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("a.txt")
	w.Write(text)
	zw.Close()
	z := b.Bytes()
	l, err := ListZip(z, 10)
	if err != nil || len(l.Entries) != 1 {
		t.Fatal(err)
	}
	e := l.Entries[0]
	// Halve the compressed size in the central directory.
	cd := bytes.Index(z, []byte("PK\x01\x02"))
	putU32(z[cd+20:], uint32(e.CompressedSize/2))
	r := scanBytes(message("a.zip", z), Options{})
	if !r.Has(CategoryUnscannable) {
		t.Errorf("findings %v", kinds(r))
	}
}

// rar5 builds a one-file RAR5 archive whose header declares size bytes
// unpacked with a dictionary of 128 KiB << dict; the data is 16 zeros.
func rar5(size uint64, dict uint64) []byte {
	hdr := func(fields []byte) []byte {
		data := binary.AppendUvarint(nil, uint64(len(fields)))
		data = append(data, fields...)
		out := binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))
		return append(out, data...)
	}
	b := []byte("Rar!\x1a\x07\x01\x00")
	b = append(b, hdr([]byte{1, 0, 0})...) // main header
	f := []byte{2, 2}                      // file header with data
	f = binary.AppendUvarint(f, 16)        // data size
	f = append(f, 0)                       // file flags
	f = binary.AppendUvarint(f, size)      // unpacked size
	f = append(f, 0)                       // attributes
	f = binary.AppendUvarint(f, 1<<7|dict<<10)
	f = append(f, 0, 5)
	f = append(f, "a.bin"...)
	b = append(b, hdr(f)...)
	b = append(b, make([]byte, 16)...)
	return append(b, hdr([]byte{5, 0, 0})...) // end of archive
}

// The dictionary a RAR header declares is not allocated whatever its size.
func TestRarDictionaryBounded(t *testing.T) {
	b := rar5(1<<30, 13) // 1 GiB file, 1 GiB dictionary, in 100 bytes
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := scanBytes(message("a.rar", b), Options{})
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 200<<20 {
		t.Errorf("%d MiB allocated for a %d-byte rar", a>>20, len(b))
	}
	if !r.Has(CategoryUnscannable) {
		t.Errorf("findings %v", kinds(r))
	}
}

// The dictionary an xz block header declares is not allocated whatever its
// size.
func TestXZDictionaryBounded(t *testing.T) {
	// "hello world\n" x 10, its LZMA2 dictionary size patched to 2 GiB.
	b, _ := hex.DecodeString("fd377a585a0000016922de360200210126000000d5d7ce53e0007700135d00341949ee8de917893a335ffcb3ad704b200000000004cb17bf00012b784cb128089042990d010000000001595a")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	scanBytes(message("a.xz", b), Options{})
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 200<<20 {
		t.Errorf("%d MiB allocated for a %d-byte xz", a>>20, len(b))
	}
	// Two streams (CRC64, SHA-256) with stream padding between them
	// still unpack.
	b, _ = hex.DecodeString("fd377a585a000004e6d6b4460200210116000000742fe5a301000b68656c6c6f20776f726c640a00a1f2ffc46a7fbfcf0001240ca618d8d81fb6f37d010000000004595a00000000fd377a585a00000ae1fb0ca10200210116000000742fe5a301000b68656c6c6f20776f726c640a00a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a44700013c0cff80c35a189b4b9a01000000000a595a")
	r := scanBytes(message("a.txt.xz", b), Options{})
	if r.Has(CategoryUnscannable) || len(r.Files) != 2 || r.Files[1].Name != "a.txt" {
		t.Errorf("two-stream xz: %v", kinds(r))
	}
}

// uuencoded files past the 50th are not dropped silently.
func TestUuencodeBlockLimit(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: test\r\nContent-Type: text/plain\r\n\r\nHello.\r\n")
	for i := 0; i < 51; i++ {
		name := fmt.Sprintf("f%d.txt", i)
		if i == 50 {
			name = "evil.exe"
		}
		fmt.Fprintf(&b, "begin 644 %s\r\n#86)C\r\n`\r\nend\r\n", name)
	}
	r := scanBytes(b.Bytes(), Options{})
	seen := false
	for _, f := range r.Files {
		if f.Name == "evil.exe" {
			seen = true
		}
	}
	if !seen && !r.Has(CategoryUnscannable) {
		t.Errorf("51st uuencoded file neither listed nor reported: %d files, %v", len(r.Files), kinds(r))
	}
}

// A zip64 local header offset near the top of int64 does not overflow the
// bounds checks.
func TestZip64HugeOffset(t *testing.T) {
	local := make([]byte, 30)
	copy(local, "PK\x03\x04")
	putU16(local[26:], 1)
	local = append(local, "ax"...)
	putU32(local[18:], 1)
	putU32(local[22:], 1)
	cd := make([]byte, 46)
	copy(cd, "PK\x01\x02")
	putU32(cd[20:], 1)
	putU32(cd[24:], 1)
	putU16(cd[28:], 1)  // name length
	putU16(cd[30:], 12) // extra length
	putU32(cd[42:], 0xffffffff)
	cd = append(cd, 'a', 1, 0, 8, 0)
	cd = binary.LittleEndian.AppendUint64(cd, 0x7ffffffffffffff0)
	eocd := make([]byte, 22)
	copy(eocd, "PK\x05\x06")
	putU16(eocd[8:], 1)
	putU16(eocd[10:], 1)
	putU32(eocd[12:], uint32(len(cd)))
	putU32(eocd[16:], uint32(len(local)))
	z := append(append(local, cd...), eocd...)
	l, err := ListZip(z, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Problems) == 0 {
		t.Errorf("no problem reported: %+v", l.Entries[0])
	}
	// The same in a zip64 end-of-central-directory locator.
	loc := []byte("PK\x06\x07\x00\x00\x00\x00")
	loc = binary.LittleEndian.AppendUint64(loc, 0x7ffffffffffffff0)
	loc = append(loc, 1, 0, 0, 0)
	z = append(append(append(local[:len(local):len(local)], cd...), loc...), eocd...)
	if _, err := ListZip(z, 10); err != nil {
		t.Fatal(err)
	}
}

// Reaching a member of a solid 7z unpacks every member before it, read or
// not: what the archive declares comes out of the budget.
func TestSevenZipSolidChargesBudget(t *testing.T) {
	// 7z a -ms=on: 20 files of 4,000,000 zero bytes in one solid block.
	b, err := os.ReadFile(filepath.Join("testdata", "solid-zeros.7z"))
	if err != nil {
		t.Fatal(err)
	}
	r := scanBytes(message("a.7z", b), Options{MaxTotal: 32 << 20})
	if !hasKind(r, "limit-total") {
		t.Errorf("80 MB unpacked within a 32 MiB budget: %v, %d bytes inspected", kinds(r), r.Inspected)
	}
	n := 0
	for _, f := range r.Files {
		if f.Member {
			n++
		}
	}
	if n != 20 {
		t.Errorf("%d members listed, want 20 (names are still checked)", n)
	}
	// Two archives, each within the budget, not both.
	r = scanBytes(message("a.7z", b, "b.7z", b), Options{MaxTotal: 100 << 20})
	if !hasKind(r, "limit-total") {
		t.Errorf("2 x 80 MB unpacked within a 100 MiB budget: %v, %d bytes inspected", kinds(r), r.Inspected)
	}
}

// failingReaderAt fails every read that reaches past n.
type failingReaderAt struct {
	b []byte
	n int64
}

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		k := max(0, min(int(f.n-off), len(p)))
		copy(p, f.b[off:off+int64(k)])
		return k, errors.New("disk error")
	}
	return copy(p, f.b[off:]), nil
}

// A message that cannot be read is not scanned as clean.
func TestReadErrorIsUnscannable(t *testing.T) {
	msg := message("a.dat", bytes.Repeat([]byte("MZ"), 50000))
	// The walk sees a message cut short; the part's content cannot be
	// read at all.
	at := bytes.Index(msg, []byte("TVpN"))
	r := Scan(failingReaderAt{msg, int64(at + 10)}, int64(len(msg)), Options{})
	if !r.Has(CategoryUnscannable) {
		t.Errorf("read error: %v %v", kinds(r), r.Findings)
	}
}
