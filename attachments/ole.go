package attachments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"unicode/utf16"
)

// OLE is a parsed Compound File Binary (OLE2 / CFB, [MS-CFB]) container:
// the format of .doc, .xls, .ppt, .msi, .msg and of encrypted OOXML.
// Only what the active-content checks need is read: the directory and the
// streams asked for, with every sector chain bounded and cycle-checked.
type OLE struct {
	data        []byte
	sectorSize  int
	miniSize    int
	miniCutoff  uint32
	fat         []uint32
	miniFAT     []uint32
	miniStream  []byte
	Entries     []OLEEntry
	rootCLSID   [16]byte
	streamCache map[int][]byte
}

// OLEEntry is one directory entry.
type OLEEntry struct {
	// Name is the entry's name; Path its storage path joined with "/".
	Name, Path string
	// Type: 1 storage, 2 stream, 5 root.
	Type               byte
	start              uint32
	Size               uint64
	child, left, right uint32
}

const (
	oleFree    = 0xFFFFFFFF
	oleEnd     = 0xFFFFFFFE
	oleNoEntry = 0xFFFFFFFF
)

// ErrNotOLE is returned for data that is not a compound file.
var ErrNotOLE = errors.New("attachments: not an OLE2 compound file")

// IsOLE reports the compound file signature.
func IsOLE(b []byte) bool { return bytes.HasPrefix(b, []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")) }

// ParseOLE reads the directory of a compound file held in data.
func ParseOLE(data []byte) (*OLE, error) {
	if len(data) < 512 || !IsOLE(data) {
		return nil, ErrNotOLE
	}
	o := &OLE{data: data, streamCache: map[int][]byte{}}
	shift := binary.LittleEndian.Uint16(data[0x1e:])
	mshift := binary.LittleEndian.Uint16(data[0x20:])
	if shift != 9 && shift != 12 || mshift != 6 {
		return nil, errors.New("attachments: OLE: bad sector size")
	}
	o.sectorSize = 1 << shift
	o.miniSize = 1 << mshift
	o.miniCutoff = binary.LittleEndian.Uint32(data[0x38:])
	numFAT := binary.LittleEndian.Uint32(data[0x2c:])
	firstDir := binary.LittleEndian.Uint32(data[0x30:])
	firstMiniFAT := binary.LittleEndian.Uint32(data[0x3c:])
	firstDIFAT := binary.LittleEndian.Uint32(data[0x44:])
	maxSectors := uint32(len(data)/o.sectorSize + 1)
	if numFAT > maxSectors {
		return nil, errors.New("attachments: OLE: FAT larger than the file")
	}
	// The DIFAT: 109 entries in the header, then a chain of DIFAT sectors.
	var fatSectors []uint32
	for i := 0; i < 109 && uint32(len(fatSectors)) < numFAT; i++ {
		fatSectors = append(fatSectors, binary.LittleEndian.Uint32(data[0x4c+4*i:]))
	}
	seen := map[uint32]bool{}
	for s := firstDIFAT; s != oleEnd && s != oleFree && uint32(len(fatSectors)) < numFAT; {
		if seen[s] || s >= maxSectors {
			return nil, errors.New("attachments: OLE: bad DIFAT chain")
		}
		seen[s] = true
		sec := o.sector(s)
		if sec == nil {
			return nil, errors.New("attachments: OLE: DIFAT sector outside the file")
		}
		n := o.sectorSize/4 - 1
		for i := 0; i < n && uint32(len(fatSectors)) < numFAT; i++ {
			fatSectors = append(fatSectors, binary.LittleEndian.Uint32(sec[4*i:]))
		}
		s = binary.LittleEndian.Uint32(sec[4*n:])
	}
	for _, s := range fatSectors {
		sec := o.sector(s)
		if sec == nil {
			continue // a truncated file: read what there is
		}
		for i := 0; i+4 <= len(sec); i += 4 {
			o.fat = append(o.fat, binary.LittleEndian.Uint32(sec[i:]))
		}
	}
	dir, err := o.chain(firstDir, -1)
	if err != nil {
		return nil, err
	}
	for i := 0; i+128 <= len(dir) && i/128 < 100000; i += 128 {
		e := dir[i : i+128]
		nl := int(binary.LittleEndian.Uint16(e[0x40:]))
		if nl > 64 {
			nl = 64
		}
		u := make([]uint16, 0, 32)
		for j := 0; j+1 < nl; j += 2 {
			c := binary.LittleEndian.Uint16(e[j:])
			if c == 0 {
				break
			}
			u = append(u, c)
		}
		ent := OLEEntry{
			Name:  string(utf16.Decode(u)),
			Type:  e[0x42],
			left:  binary.LittleEndian.Uint32(e[0x44:]),
			right: binary.LittleEndian.Uint32(e[0x48:]),
			child: binary.LittleEndian.Uint32(e[0x4c:]),
			start: binary.LittleEndian.Uint32(e[0x74:]),
			Size:  binary.LittleEndian.Uint64(e[0x78:]),
		}
		if shift == 9 {
			ent.Size &= 0xFFFFFFFF
		}
		if len(o.Entries) == 0 {
			copy(o.rootCLSID[:], e[0x50:0x60])
		}
		o.Entries = append(o.Entries, ent)
	}
	if len(o.Entries) == 0 || o.Entries[0].Type != 5 {
		return nil, errors.New("attachments: OLE: no root entry")
	}
	o.setPaths()
	if mf, err := o.chain(firstMiniFAT, -1); err == nil {
		for i := 0; i+4 <= len(mf); i += 4 {
			o.miniFAT = append(o.miniFAT, binary.LittleEndian.Uint32(mf[i:]))
		}
	}
	root := o.Entries[0]
	if ms, err := o.chain(root.start, int64(root.Size)); err == nil {
		o.miniStream = ms
	}
	return o, nil
}

func (o *OLE) sector(s uint32) []byte {
	off := (int64(s) + 1) * int64(o.sectorSize)
	if s >= oleEnd-16 || off+int64(o.sectorSize) > int64(len(o.data)) {
		if off < int64(len(o.data)) && s < oleEnd-16 {
			return o.data[off:] // last, short sector of a truncated file
		}
		return nil
	}
	return o.data[off : off+int64(o.sectorSize)]
}

// chain reads a FAT sector chain (size < 0: the whole chain).
func (o *OLE) chain(start uint32, size int64) ([]byte, error) {
	var out []byte
	seen := map[uint32]bool{}
	for s := start; s != oleEnd && s != oleFree; {
		if seen[s] {
			return out, errors.New("attachments: OLE: sector chain loops")
		}
		seen[s] = true
		sec := o.sector(s)
		if sec == nil {
			return out, errors.New("attachments: OLE: sector outside the file")
		}
		out = append(out, sec...)
		if size >= 0 && int64(len(out)) >= size {
			return out[:size], nil
		}
		if int(s) >= len(o.fat) {
			break
		}
		s = o.fat[s]
	}
	if size >= 0 && int64(len(out)) > size {
		out = out[:size]
	}
	return out, nil
}

// setPaths walks the red-black directory tree from the root and sets each
// entry's Path.
func (o *OLE) setPaths() {
	type item struct {
		idx    uint32
		prefix string
	}
	seen := map[uint32]bool{}
	var stack []item
	if c := o.Entries[0].child; c != oleNoEntry {
		stack = append(stack, item{c, ""})
	}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if int(it.idx) >= len(o.Entries) || seen[it.idx] {
			continue
		}
		seen[it.idx] = true
		e := &o.Entries[it.idx]
		e.Path = it.prefix + e.Name
		for _, n := range []uint32{e.left, e.right} {
			if n != oleNoEntry {
				stack = append(stack, item{n, it.prefix})
			}
		}
		if e.Type == 1 && e.child != oleNoEntry {
			stack = append(stack, item{e.child, e.Path + "/"})
		}
	}
}

// Find returns the index of the entry whose path equals path
// (case-insensitively), -1 when there is none.
func (o *OLE) Find(path string) int {
	for i, e := range o.Entries {
		if e.Path != "" && strings.EqualFold(e.Path, path) {
			return i
		}
	}
	return -1
}

// Has reports whether an entry with that name exists anywhere.
func (o *OLE) Has(name string) bool {
	for _, e := range o.Entries {
		if e.Path != "" && strings.EqualFold(e.Name, name) {
			return true
		}
	}
	return false
}

// Stream returns the content of entry i, at most limit bytes.
func (o *OLE) Stream(i int, limit int64) ([]byte, error) {
	if i < 0 || i >= len(o.Entries) || o.Entries[i].Type != 2 {
		return nil, errors.New("attachments: OLE: no such stream")
	}
	e := o.Entries[i]
	size := int64(e.Size)
	if size > int64(len(o.data))*8 {
		size = int64(len(o.data)) * 8
	}
	if limit >= 0 && size > limit {
		size = limit
	}
	if e.Size < uint64(o.miniCutoff) {
		var out []byte
		seen := map[uint32]bool{}
		for s := e.start; s != oleEnd && s != oleFree && int64(len(out)) < size; {
			if seen[s] || int(s) >= len(o.miniFAT) {
				break
			}
			seen[s] = true
			off := int(s) * o.miniSize
			if off+o.miniSize > len(o.miniStream) {
				break
			}
			out = append(out, o.miniStream[off:off+o.miniSize]...)
			s = o.miniFAT[s]
		}
		if int64(len(out)) > size {
			out = out[:size]
		}
		return out, nil
	}
	return o.chain(e.start, size)
}

var msiCLSID = [16]byte{0x84, 0x10, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}

// Kind names the application of the compound file from its streams:
// "doc", "xls", "ppt", "msg", "msi", "encrypted-ooxml", "vsd", or "" when
// it is not known.
func (o *OLE) Kind() string {
	switch {
	case o.Has("EncryptionInfo") && o.Has("EncryptedPackage"):
		return "encrypted-ooxml"
	case o.Has("WordDocument"):
		return "doc"
	case o.Has("Workbook") || o.Has("Book"):
		return "xls"
	case o.Has("PowerPoint Document"):
		return "ppt"
	case o.rootCLSID == msiCLSID:
		return "msi"
	case o.hasPrefix("__substg1.0_"):
		return "msg"
	case o.Has("VisioDocument"):
		return "vsd"
	}
	return ""
}

func (o *OLE) hasPrefix(p string) bool {
	for _, e := range o.Entries {
		if strings.HasPrefix(e.Name, p) {
			return true
		}
	}
	return false
}

// oleType describes a compound file by what it holds.
func oleType(b []byte) (Type, bool) {
	o, err := ParseOLE(b)
	if err != nil {
		return Type{}, false
	}
	base := "Composite Document File V2 Document"
	switch o.Kind() {
	case "doc":
		return Type{MIME: "application/msword", Description: base + ", Microsoft Word", Family: FamilyOffice, Ext: "doc"}, true
	case "xls":
		return Type{MIME: "application/vnd.ms-excel", Description: base + ", Microsoft Excel", Family: FamilyOffice, Ext: "xls"}, true
	case "ppt":
		return Type{MIME: "application/vnd.ms-powerpoint", Description: base + ", Microsoft PowerPoint", Family: FamilyOffice, Ext: "ppt"}, true
	case "msi":
		return Type{MIME: "application/x-ms-installer", Description: "MSI Installer Composite Document File V2 Document", Family: FamilyExecutable, Ext: "msi"}, true
	case "msg":
		return Type{MIME: "application/vnd.ms-outlook", Description: "CDFV2 Microsoft Outlook Message", Family: FamilyOffice, Ext: "msg"}, true
	case "encrypted-ooxml":
		return Type{MIME: "application/x-ooxml-encrypted", Description: "CDFV2 Encrypted", Family: FamilyOffice, Ext: "docx"}, true
	case "vsd":
		return Type{MIME: "application/vnd.visio", Description: base + ", Microsoft Visio", Family: FamilyOffice, Ext: "vsd"}, true
	}
	return Type{MIME: "application/x-ole-storage", Description: base, Family: FamilyOffice, Ext: "ole"}, true
}
