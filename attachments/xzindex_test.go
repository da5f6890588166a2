package attachments

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ulikunitz/xz"
)

// xzLyingIndex returns an xz file of two blocks whose index lists one:
// the first block (first, 4 KiB dictionary) is all the index describes,
// the second (payload) declares a dictionary of dictByte (40: 4 GiB).
// xz(1) unpacks both blocks before it finds the index wrong.
func xzLyingIndex(t testing.TB, first, payload []byte, dictByte byte) []byte {
	t.Helper()
	stream := func(data []byte) (hdr, blocks []byte) {
		var b bytes.Buffer
		w, err := xz.WriterConfig{DictCap: 4096, CheckSum: xz.None}.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
		s := b.Bytes()
		isz := int(binary.LittleEndian.Uint32(s[len(s)-8:])+1) * 4
		return s[:12], s[12 : len(s)-12-isz]
	}
	hdr, a := stream(first)
	_, bl := stream(payload)
	h := bl[:(int(bl[0])+1)*4]
	q := 2
	if h[1]&0x40 != 0 {
		_, k := binary.Uvarint(h[q:])
		q += k
	}
	if h[1]&0x80 != 0 {
		_, k := binary.Uvarint(h[q:])
		q += k
	}
	if h[q] != 0x21 || h[q+1] != 1 {
		t.Fatalf("block header % x", h)
	}
	h[q+2] = dictByte
	binary.LittleEndian.PutUint32(h[len(h)-4:], crc32.ChecksumIEEE(h[:len(h)-4]))
	blocks := append(append([]byte(nil), a...), bl...)
	idx := []byte{0}
	idx = binary.AppendUvarint(idx, 1)
	idx = binary.AppendUvarint(idx, uint64(len(blocks)))
	idx = binary.AppendUvarint(idx, 2)
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = binary.LittleEndian.AppendUint32(idx, crc32.ChecksumIEEE(idx))
	tail := binary.LittleEndian.AppendUint32(nil, uint32(len(idx)/4-1))
	tail = append(tail, hdr[6:8]...)
	footer := binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(tail))
	footer = append(append(footer, tail...), "YZ"...)
	out := append(append(append([]byte(nil), hdr...), blocks...), idx...)
	return append(out, footer...)
}

// An index that lists fewer blocks than the file has does not hide a
// block's dictionary from the memory budget: the blocks are read as the
// decoder reads them, and each dictionary is held before it is
// allocated (4 GiB for an 84-byte file before).
func TestXZDictionaryBoundedLyingIndex(t *testing.T) {
	exe := append([]byte("MZ\x90\x00"), make([]byte, 100)...)
	b := xzLyingIndex(t, []byte("hi"), exe, 40)
	if xzBin, err := exec.LookPath("xz"); err == nil {
		p := filepath.Join(t.TempDir(), "a.xz")
		os.WriteFile(p, b, 0o644)
		out, _ := exec.Command(xzBin, "-dc", p).Output()
		if !bytes.HasPrefix(out, []byte("hiMZ")) {
			t.Fatalf("xz -dc gives %q", out)
		}
	} else {
		t.Log("xz not installed: what it unpacks is not confirmed")
	}
	mem := NewMemory(64 << 20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := scanBytes(message("a.xz", b), Options{Memory: mem})
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 200<<20 {
		t.Errorf("%d MiB allocated for a %d-byte xz", a>>20, len(b))
	}
	if !r.Has(CategoryUnscannable) {
		t.Errorf("findings %v", kinds(r))
	}
	if mem.Used() != 0 {
		t.Errorf("%d bytes of the budget still held", mem.Used())
	}
	// A dictionary the budget allows: the blocks are unpacked (xz(1)
	// writes them out before it finds the index wrong), what they hold
	// is inspected, and the damage is reported.
	b = xzLyingIndex(t, exe, []byte("more"), 1)
	r = scanBytes(message("a.xz", b), Options{Memory: mem})
	if len(r.Files) != 2 || r.Files[1].Type.Family != FamilyExecutable || !r.Has(CategoryUnscannable) {
		t.Errorf("files %d findings %v", len(r.Files), kinds(r))
	}
	if mem.Used() != 0 {
		t.Errorf("%d bytes of the budget still held", mem.Used())
	}
}

// FuzzXZ: the xz reader never panics, never asks for a dictionary over
// its bound and stops.
func FuzzXZ(f *testing.F) {
	f.Add(xzLyingIndex(f, []byte("hi"), []byte("MZ"), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		x := newXZReader(b, 1<<20, func(n int64) bool {
			if n > 1<<20 {
				t.Fatalf("hold %d", n)
			}
			return true
		})
		buf := make([]byte, 1<<16)
		for i := 0; i < 256; i++ {
			if _, err := x.Read(buf); err != nil {
				return
			}
		}
	})
}
