package attachments

import (
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf16"
)

// disarmOLE neutralises the VBA project of a compound file (.doc .xls
// .dot .xlt ...) in place: every stream of the VBA storages (Macros,
// _VBA_PROJECT_CUR, VBA and what they hold: PROJECT, PROJECTwm, dir,
// _VBA_PROJECT, the modules) is overwritten with zeros, sector by sector,
// and the directory entries that name a VBA project are renamed at the
// same length, keeping their order among their siblings in the
// directory's red-black tree. No other byte changes; the file keeps its
// name and type.
//
// Excel 4 macro sheets of BIFF5/BIFF8 workbooks become worksheets and
// their auto-run names lose their meaning (neutraliseXLM), in place too.
//
// The VBA project of a PowerPoint 97-2003 presentation, kept compressed
// inside the PowerPoint Document stream, is zeroed there and the
// presentation told it has none (neutralisePPTVBA).
//
// Refused: DDE fields and OLE package objects cannot be taken out in
// place; and an encrypted document with active content is refused, since
// what its encrypted part holds (Excel 4 macros, DDE) cannot be checked.
func disarmOLE(_ string, data []byte) (*Disarmed, error) {
	o, err := ParseOLE(data)
	if err != nil {
		return nil, cannot("unreadable OLE2 file: %v", err)
	}
	acts := analyse(data, 0)
	suspicious, encrypted, xlm := false, false, false
	for _, a := range acts {
		switch a.Kind {
		case KindXLM:
			xlm = true
		case KindDDE:
			return nil, cannot("DDE field")
		case KindOLEPackage:
			return nil, cannot("embedded OLE package object")
		case KindEncryptedDoc:
			encrypted = true
		}
		if a.Category == CategorySuspicious {
			suspicious = true
		}
	}
	if !suspicious {
		return &Disarmed{Data: data}, nil
	}
	if encrypted {
		return nil, cannot("encrypted document with active content")
	}
	var removed []string
	for _, step := range []struct {
		run  func(*OLE, []byte) ([]byte, []string, error)
		what string
	}{{neutraliseXLM, "macro sheets"}, {neutralisePPTVBA, "PowerPoint VBA project"}} {
		if step.what == "macro sheets" && !xlm {
			continue
		}
		out, r, err := step.run(o, data)
		if err != nil {
			return nil, err
		}
		if len(r) == 0 {
			continue
		}
		if o, err = ParseOLE(out); err != nil {
			return nil, cannot("OLE2 file unreadable after its %s changed: %v", step.what, err)
		}
		data, removed = out, append(removed, r...)
	}
	if !hasVBA(o) {
		return &Disarmed{Data: data, Removed: removed}, nil
	}
	d, err := neutraliseVBA(o, data)
	if err != nil {
		return nil, err
	}
	d.Removed = append(removed, d.Removed...)
	return d, nil
}

// neutraliseVBA zeroes the VBA streams of a compound file and renames
// its VBA entries, in a copy of data.
func neutraliseVBA(o *OLE, data []byte) (*Disarmed, error) {
	w, err := newOLEWriter(o, data)
	if err != nil {
		return nil, err
	}
	d := &Disarmed{}
	// The streams of the VBA storages, found by path.
	var storages []string
	for _, e := range o.Entries {
		if e.Path != "" && (e.Type == 1) && isVBAName(e.Name) {
			storages = append(storages, strings.ToLower(e.Path)+"/")
		}
	}
	var targets []int
	for i, e := range o.Entries {
		if e.Type != 2 || e.Path == "" {
			continue
		}
		lp := strings.ToLower(e.Path)
		in := isVBAName(e.Name)
		for _, s := range storages {
			if strings.HasPrefix(lp, s) {
				in = true
			}
		}
		if in {
			targets = append(targets, i)
		}
	}
	if err := w.zeroStreams(targets); err != nil {
		return nil, err
	}
	n := 0
	for _, e := range o.Entries {
		if isVBAName(e.Name) {
			n++
		}
	}
	if n > 64 {
		return nil, cannot("%d VBA directory entries", n)
	}
	for i, e := range o.Entries {
		if !isVBAName(e.Name) {
			continue
		}
		if err := w.rename(i); err != nil {
			return nil, err
		}
		if e.Path != "" && !under(e.Path, d.Removed) {
			d.Removed = append(d.Removed, "VBA project "+e.Path)
		}
	}
	d.Data = w.out
	return d, nil
}

// under: path is inside a storage already reported.
func under(path string, removed []string) bool {
	for _, r := range removed {
		if strings.HasPrefix(path, strings.TrimPrefix(r, "VBA project ")+"/") {
			return true
		}
	}
	return false
}

func isVBAName(name string) bool {
	switch strings.ToLower(name) {
	case "_vba_project", "vba", "_vba_project_cur", "macros":
		return true
	}
	return false
}

// oleWriter changes a copy of a compound file in place.
type oleWriter struct {
	o       *OLE
	out     []byte
	dirSecs []uint32 // the directory's sectors
	rootSec []uint32 // the mini stream's sectors
	// Sectors and mini sectors in use by what must not change.
	keep, keepMini map[uint32]bool
	// The directory trees: members by storage, storage by member.
	tree   map[int][]int
	treeOf map[int]int
}

func newOLEWriter(o *OLE, data []byte) (*oleWriter, error) {
	w := &oleWriter{o: o, out: append([]byte(nil), data...), keep: map[uint32]bool{}, keepMini: map[uint32]bool{}}
	var ok bool
	if w.dirSecs, ok = w.chain(binary.LittleEndian.Uint32(data[0x30:])); !ok {
		return nil, cannot("OLE2 directory chain broken")
	}
	if w.rootSec, ok = w.chain(o.Entries[0].start); !ok {
		return nil, cannot("OLE2 mini stream chain broken")
	}
	miniFAT, ok := w.chain(binary.LittleEndian.Uint32(data[0x3c:]))
	if !ok {
		return nil, cannot("OLE2 mini FAT chain broken")
	}
	for _, l := range [][]uint32{w.dirSecs, w.rootSec, miniFAT} {
		for _, s := range l {
			w.keep[s] = true
		}
	}
	return w, nil
}

// chain lists the sectors of a FAT chain; false when it loops or leaves
// the FAT.
func (w *oleWriter) chain(start uint32) ([]uint32, bool) { return sectorChain(w.o.fat, start) }

// miniChain lists the mini sectors of a stream kept in the mini stream.
func (w *oleWriter) miniChain(start uint32) ([]uint32, bool) {
	return sectorChain(w.o.miniFAT, start)
}

// sectorChain follows a chain from start through fat (the FAT or the
// mini FAT); false when it loops or leaves the table.
func sectorChain(fat []uint32, start uint32) ([]uint32, bool) {
	var out []uint32
	seen := map[uint32]bool{}
	for s := start; s != oleEnd && s != oleFree; {
		if seen[s] || int(s) >= len(fat) {
			return out, false
		}
		seen[s] = true
		out = append(out, s)
		s = fat[s]
	}
	return out, true
}

func (w *oleWriter) isMini(e OLEEntry) bool { return e.Size < uint64(w.o.miniCutoff) }

// sectors returns the sectors (or mini sectors) holding entry i.
func (w *oleWriter) sectors(i int) ([]uint32, bool) {
	e := w.o.Entries[i]
	if e.Size == 0 {
		return nil, true
	}
	var secs []uint32
	var ok bool
	unit := uint64(w.o.sectorSize)
	if w.isMini(e) {
		secs, ok = w.miniChain(e.start)
		unit = uint64(w.o.miniSize)
	} else {
		secs, ok = w.chain(e.start)
	}
	return secs, ok && uint64(len(secs))*unit >= e.Size
}

// zeroStreams overwrites the streams targets with zeros, refusing when a
// chain is broken or shares a sector with anything else.
func (w *oleWriter) zeroStreams(targets []int) error {
	isTarget := map[int]bool{}
	for _, i := range targets {
		isTarget[i] = true
	}
	for i, e := range w.o.Entries {
		if e.Type != 2 || isTarget[i] {
			continue
		}
		secs, _ := w.sectors(i)
		for _, s := range secs {
			if w.isMini(e) {
				w.keepMini[s] = true
			} else {
				w.keep[s] = true
			}
		}
	}
	for _, i := range targets {
		e := w.o.Entries[i]
		secs, ok := w.sectors(i)
		if !ok {
			return cannot("OLE2 stream %s: sector chain broken", e.Path)
		}
		for _, s := range secs {
			if w.isMini(e) {
				if w.keepMini[s] {
					return cannot("OLE2 stream %s shares its sectors", e.Path)
				}
				off := uint64(s) * uint64(w.o.miniSize)
				k := off / uint64(w.o.sectorSize)
				if k >= uint64(len(w.rootSec)) {
					return cannot("OLE2 stream %s outside the mini stream", e.Path)
				}
				w.zero(w.rootSec[k], int(off%uint64(w.o.sectorSize)), w.o.miniSize)
				continue
			}
			if w.keep[s] {
				return cannot("OLE2 stream %s shares its sectors", e.Path)
			}
			w.zero(s, 0, w.o.sectorSize)
		}
	}
	return nil
}

// zero clears n bytes at off in sector s (what of them is in the file).
func (w *oleWriter) zero(s uint32, off, n int) {
	start := (int64(s)+1)*int64(w.o.sectorSize) + int64(off)
	end := min(start+int64(n), int64(len(w.out)))
	for p := start; p < end; p++ {
		w.out[p] = 0
	}
}

// entryOffset is where directory entry i is in the file, -1 if nowhere.
func (w *oleWriter) entryOffset(i int) int64 {
	per := w.o.sectorSize / 128
	if i/per >= len(w.dirSecs) {
		return -1
	}
	off := (int64(w.dirSecs[i/per])+1)*int64(w.o.sectorSize) + int64(i%per)*128
	if off+128 > int64(len(w.out)) {
		return -1
	}
	return off
}

// rename gives entry i a name of the same length that is no VBA name
// and keeps its order against every sibling of its directory tree: the
// new name must lie strictly between the nearest siblings of the same
// length below and above the old one (siblings of another length are
// ordered by length alone).
func (w *oleWriter) rename(i int) error {
	e := w.o.Entries[i]
	off := w.entryOffset(i)
	if off < 0 {
		return cannot("OLE2 directory entry %d outside the file", i)
	}
	old := utf16.Encode([]rune(e.Name))
	if len(old) == 0 {
		return cannot("OLE2 entry with an empty name")
	}
	var lo, hi []uint16
	if e.Path != "" {
		if w.tree == nil {
			w.trees()
		}
		for _, j := range w.tree[w.treeOf[i]] {
			s := utf16.Encode([]rune(w.o.Entries[j].Name))
			if j == i || len(s) != len(old) {
				continue
			}
			switch c := cfbCompare(s, old); {
			case c == 0:
				return cannot("OLE2 directory holds %s twice", e.Path)
			case c < 0 && (lo == nil || cfbCompare(s, lo) > 0):
				lo = s
			case c > 0 && (hi == nil || cfbCompare(s, hi) < 0):
				hi = s
			}
		}
	}
	const pool = "x_0123456789abcdefghijklmnopqrstuvwyz"
	for pos := len(old) - 1; pos >= 0; pos-- {
		for _, c := range pool {
			cand := append([]uint16(nil), old...)
			cand[pos] = uint16(c)
			if isVBAName(string(utf16.Decode(cand))) || cfbCompare(cand, old) == 0 ||
				lo != nil && cfbCompare(lo, cand) >= 0 || hi != nil && cfbCompare(cand, hi) >= 0 {
				continue
			}
			for k, u := range cand {
				binary.LittleEndian.PutUint16(w.out[off+int64(2*k):], u)
			}
			return nil
		}
	}
	return cannot("no name for %s that keeps the OLE2 directory in order", e.Path)
}

// trees sorts the directory entries into their red-black trees (one per
// storage, found from its child), each entry in the first tree that
// reaches it.
func (w *oleWriter) trees() {
	ents := w.o.Entries
	w.tree = map[int][]int{}
	w.treeOf = map[int]int{}
	seen := map[uint32]bool{}
	for p := range ents {
		if ents[p].Type != 1 && ents[p].Type != 5 || ents[p].child == oleNoEntry {
			continue
		}
		stack := []uint32{ents[p].child}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if int(n) >= len(ents) || seen[n] {
				continue
			}
			seen[n] = true
			w.tree[p] = append(w.tree[p], int(n))
			w.treeOf[int(n)] = p
			for _, c := range []uint32{ents[n].left, ents[n].right} {
				if c != oleNoEntry {
					stack = append(stack, c)
				}
			}
		}
	}
}

// cfbCompare orders directory names as [MS-CFB] 2.6.4 does: shorter
// first, then by upper-cased UTF-16 code units.
func cfbCompare(a, b []uint16) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	for k := range a {
		x, y := cfbUpper(a[k]), cfbUpper(b[k])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func cfbUpper(u uint16) uint16 {
	if u < 0x80 {
		if u >= 'a' && u <= 'z' {
			return u - 'a' + 'A'
		}
		return u
	}
	if r := unicode.ToUpper(rune(u)); r < 0x10000 {
		return uint16(r)
	}
	return u
}
