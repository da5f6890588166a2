package attachments

import (
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

// ZipEntry is one entry of a zip archive as its central directory (or,
// for a damaged archive, its local headers) describes it.
type ZipEntry struct {
	Name string
	// LocalName is the name in the local header when it differs from
	// the central directory's ("" when they agree).
	LocalName string
	// UnicodeNames: names given by Info-ZIP Unicode Path extra fields
	// (0x7075) of the directory entry or the local header that differ
	// from Name; unzip and 7-Zip write the file under such a name.
	UnicodeNames     []string
	Method           uint16
	Flags            uint16
	CompressedSize   uint64
	UncompressedSize uint64
	// HeaderOffset is where the local header starts, DataOffset where
	// the compressed data starts (-1 when the local header is unreadable).
	HeaderOffset, DataOffset int64
	// Encrypted: the traditional (ZipCrypto) flag or AES (method 99).
	Encrypted bool
	// Overlaps: the entry's data range overlaps another entry's, the
	// mark of an overlapping-file zip bomb.
	Overlaps bool
	Dir      bool
	// LocalOnly: found from its local header only; the central
	// directory does not list it.
	LocalOnly bool
}

// ZipListing is what ListZip found.
type ZipListing struct {
	Entries []*ZipEntry
	// Recovered: there was no readable central directory; entries come
	// from scanning local headers.
	Recovered bool
	// Problems describe damage.
	Problems []string
	// Mismatches describe places where the archive's own records
	// disagree (entry counts, a second central directory, local headers
	// the directory does not list, sizes): extractors that trust
	// different records produce different files, so every entry any of
	// them would produce is listed, and the disagreement is reported.
	Mismatches []string
	// Truncated: more than maxEntries entries; the rest are not listed.
	Truncated bool
}

// ErrNotZip is returned for data that has no zip structure at all.
var ErrNotZip = errors.New("attachments: not a zip archive")

// cdRef is one place a central directory is said to be: its offset and
// size as recorded, and where the record that gives them starts (the
// directory ends there; a difference is data prepended to the archive).
type cdRef struct {
	off, size, end int64
	from           string
}

// ListZip reads the directory of a zip archive held in data, checking each
// central-directory entry against its local header, the way tolerant
// extractors read it: the 32-bit end record and the zip64 one are both
// followed (Python's zipfile and Info-ZIP's unzip list the entries of a
// zip64 record that claims none), directory entries are read for as
// long as there are any rather than for as many as a record claims, and
// a local header that no directory entry covers is listed too (streaming
// extractors such as Java's ZipInputStream produce it). At most
// maxEntries entries are listed.
func ListZip(data []byte, maxEntries int) (*ZipListing, error) {
	l := &ZipListing{}
	tail := max(0, len(data)-(65535+22))
	eocd := bytes.LastIndex(data[tail:], []byte("PK\x05\x06"))
	if eocd >= 0 {
		eocd += tail
	}
	if eocd < 0 || eocd+22 > len(data) {
		if !bytes.HasPrefix(data, []byte("PK\x03\x04")) && !bytes.Contains(data[:min(len(data), 1<<20)], []byte("PK\x03\x04")) {
			return nil, ErrNotZip
		}
		l.Problems = append(l.Problems, "no end of central directory (truncated or damaged zip)")
		l.Recovered = true
		scanLocal(data, l, maxEntries)
		return l, nil
	}
	count16 := int64(binary.LittleEndian.Uint16(data[eocd+10:]))
	refs := []cdRef{{
		off:  int64(binary.LittleEndian.Uint32(data[eocd+16:])),
		size: int64(binary.LittleEndian.Uint32(data[eocd+12:])),
		end:  int64(eocd), from: "end record",
	}}
	var claims []int64
	if count16 != 0xffff {
		claims = append(claims, count16)
	}
	// Zip64 end of central directory: its locator sits just before the
	// 32-bit record and gives the record's offset; a record written
	// right before the locator is found there too (prepended data shifts
	// the offset).
	if loc := eocd - 20; loc >= 0 && bytes.Equal(data[loc:loc+4], []byte("PK\x06\x07")) {
		z := int64(binary.LittleEndian.Uint64(data[loc+8:]))
		for _, at := range []int64{z, int64(loc) - 56} {
			if at < 0 || at > int64(loc)-56 || !bytes.Equal(data[at:at+4], []byte("PK\x06\x06")) {
				continue
			}
			claims = append(claims, int64(min(binary.LittleEndian.Uint64(data[at+32:]), 1<<40)))
			refs = append([]cdRef{{
				off:  int64(min(binary.LittleEndian.Uint64(data[at+48:]), 1<<62)),
				size: int64(min(binary.LittleEndian.Uint64(data[at+40:]), 1<<62)),
				end:  at, from: "zip64 end record",
			}}, refs...)
			break
		}
	}
	// Every distinct directory a record points at is read.
	// A directory found shifted from where its record says is one with
	// data prepended to the archive (a self-extractor's stub): its
	// entries' local header offsets are shifted alike.
	var starts, shifts []int64
	for _, r := range refs {
		for _, p := range []int64{r.off + (r.end - (r.off + r.size)), r.off} {
			if p < 0 || p+46 > int64(len(data)) || !bytes.Equal(data[p:p+4], []byte("PK\x01\x02")) {
				continue
			}
			if !slices.Contains(starts, p) {
				starts = append(starts, p)
				shifts = append(shifts, p-r.off)
			}
			break
		}
	}
	if len(starts) == 0 {
		if count16 == 0 && len(claims) == 1 && refs[0].off == 0 && refs[0].size == 0 && !bytes.Contains(data, []byte("PK\x03\x04")) {
			return l, nil // an empty archive
		}
		l.Problems = append(l.Problems, "central directory not found where the end record says")
		l.Recovered = true
		scanLocal(data, l, maxEntries)
		return l, nil
	}
	if len(starts) > 1 {
		l.Mismatches = append(l.Mismatches, "the end records point at different central directories")
	}
	seen := map[int64]bool{}
	for i, p := range starts {
		n := readCD(data, p, shifts[i], l, maxEntries, seen)
		for _, c := range claims {
			if c != int64(n) && !l.Truncated {
				l.Mismatches = append(l.Mismatches, fmt.Sprintf("central directory has %d entries, an end record says %d", n, c))
				break
			}
		}
	}
	localOnly(data, l, maxEntries)
	markOverlaps(l)
	return l, nil
}

// HasZipEnd reports whether data ends with a zip: an end record in its
// last 64 KiB whose central directory is where the record says, or
// where it would be with data prepended to the archive (which is how
// extractors find a zip behind a self-extractor's stub or any junk).
func HasZipEnd(data []byte) bool {
	tail := max(0, len(data)-(65535+22))
	eocd := bytes.LastIndex(data[tail:], []byte("PK\x05\x06"))
	if eocd < 0 || tail+eocd+22 > len(data) {
		return false
	}
	eocd += tail
	off := int64(binary.LittleEndian.Uint32(data[eocd+16:]))
	size := int64(binary.LittleEndian.Uint32(data[eocd+12:]))
	if eocd >= 20 && bytes.Equal(data[eocd-20:eocd-16], []byte("PK\x06\x07")) {
		return true // zip64: ListZip finds its directory
	}
	for _, p := range []int64{int64(eocd) - size, off} {
		if p >= 0 && p+46 <= int64(len(data)) && bytes.Equal(data[p:p+4], []byte("PK\x01\x02")) {
			return true
		}
	}
	return false
}

// readCD reads the central directory entries at p for as long as their
// signature goes on, adding those whose offset is not in seen; it
// returns how many it read. A local header not at its recorded offset is
// looked for shift bytes further (data prepended to the archive).
func readCD(data []byte, p, shift int64, l *ZipListing, maxEntries int, seen map[int64]bool) int {
	n := 0
	for p+46 <= int64(len(data)) && bytes.Equal(data[p:p+4], []byte("PK\x01\x02")) {
		h := data[p:]
		e := &ZipEntry{
			Flags:            binary.LittleEndian.Uint16(h[8:]),
			Method:           binary.LittleEndian.Uint16(h[10:]),
			CompressedSize:   uint64(binary.LittleEndian.Uint32(h[20:])),
			UncompressedSize: uint64(binary.LittleEndian.Uint32(h[24:])),
			HeaderOffset:     int64(binary.LittleEndian.Uint32(h[42:])),
		}
		nl := int64(binary.LittleEndian.Uint16(h[28:]))
		el := int64(binary.LittleEndian.Uint16(h[30:]))
		cl := int64(binary.LittleEndian.Uint16(h[32:]))
		if p+46+nl+el > int64(len(data)) {
			l.Problems = append(l.Problems, "central directory entry runs past the end")
			break
		}
		n++
		e.Name = string(h[46 : 46+nl])
		zip64Extra(h[46+nl:46+nl+el], e)
		e.addUnicodeNames(h[46+nl : 46+nl+el])
		at := p
		p += 46 + nl + el + cl
		if seen[at] {
			continue // a directory read already, from another record
		}
		if len(l.Entries) >= maxEntries {
			l.Truncated = true
			break
		}
		seen[at] = true
		e.Encrypted = e.Flags&1 != 0 || e.Method == 99
		e.Dir = len(e.Name) > 0 && e.Name[len(e.Name)-1] == '/'
		e.DataOffset = -1
		if lh := e.HeaderOffset + shift; shift != 0 && lh >= 0 && lh <= int64(len(data))-30 && bytes.Equal(data[lh:lh+4], []byte("PK\x03\x04")) &&
			(e.HeaderOffset < 0 || e.HeaderOffset > int64(len(data))-30 || !bytes.Equal(data[e.HeaderOffset:e.HeaderOffset+4], []byte("PK\x03\x04"))) {
			e.HeaderOffset = lh
		}
		if lh := e.HeaderOffset; lh >= 0 && lh <= int64(len(data))-30 && bytes.Equal(data[lh:lh+4], []byte("PK\x03\x04")) {
			lnl := int64(binary.LittleEndian.Uint16(data[lh+26:]))
			lel := int64(binary.LittleEndian.Uint16(data[lh+28:]))
			if lh+30+lnl+lel <= int64(len(data)) {
				if ln := string(data[lh+30 : lh+30+lnl]); ln != e.Name {
					e.LocalName = ln
				}
				e.DataOffset = lh + 30 + lnl + lel
				e.addUnicodeNames(data[lh+30+lnl : e.DataOffset])
				if cs, ok := localCompressedSize(data, lh); ok && cs != e.CompressedSize {
					l.Mismatches = append(l.Mismatches, fmt.Sprintf("entry %q: compressed size %d in the directory, %d in its local header", truncateString(e.Name, 80), e.CompressedSize, cs))
				}
			}
		} else {
			l.Problems = append(l.Problems, fmt.Sprintf("entry %q: local header missing", truncateString(e.Name, 80)))
		}
		l.Entries = append(l.Entries, e)
	}
	return n
}

// localCompressedSize is the compressed size a local header gives, when
// it gives one (not deferred to a data descriptor).
func localCompressedSize(data []byte, lh int64) (uint64, bool) {
	if binary.LittleEndian.Uint16(data[lh+6:])&8 != 0 {
		return 0, false
	}
	cs := uint64(binary.LittleEndian.Uint32(data[lh+18:]))
	if cs != 0xffffffff {
		return cs, true
	}
	nl := int64(binary.LittleEndian.Uint16(data[lh+26:]))
	el := int64(binary.LittleEndian.Uint16(data[lh+28:]))
	e := &ZipEntry{UncompressedSize: uint64(binary.LittleEndian.Uint32(data[lh+22:])), CompressedSize: cs}
	zip64Extra(data[lh+30+nl:lh+30+nl+el], e)
	return e.CompressedSize, e.CompressedSize != 0xffffffff
}

// localOnly lists the local headers that lie outside every listed
// entry's header and data: files a streaming extractor produces and the
// central directory hides.
func localOnly(data []byte, l *ZipListing, maxEntries int) {
	type span struct{ from, to int64 }
	var spans []span
	for _, e := range l.Entries {
		if e.DataOffset >= 0 {
			spans = append(spans, span{e.HeaderOffset, e.DataOffset + int64(min(e.CompressedSize, uint64(len(data))))})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
	j := 0
	for p := int64(0); p < int64(len(data)); {
		i := bytes.Index(data[p:], []byte("PK\x03\x04"))
		if i < 0 {
			return
		}
		h := p + int64(i)
		p = h + 4
		// Inside a listed entry (a stored archive in an archive, say):
		// go on after it. Spans are visited in order, once each.
		for j < len(spans) && spans[j].to <= h {
			j++
		}
		if j < len(spans) && spans[j].from <= h {
			p = max(p, spans[j].to)
			continue
		}
		if h+30 > int64(len(data)) {
			return
		}
		nl := int64(binary.LittleEndian.Uint16(data[h+26:]))
		el := int64(binary.LittleEndian.Uint16(data[h+28:]))
		method := binary.LittleEndian.Uint16(data[h+8:])
		if nl == 0 || h+30+nl+el > int64(len(data)) || bytes.IndexByte(data[h+30:h+30+nl], 0) >= 0 || !knownMethod(method) {
			continue // not a plausible header: bytes that happen to match
		}
		if len(l.Entries) >= maxEntries {
			l.Truncated = true
			return
		}
		e := &ZipEntry{
			Name:             string(data[h+30 : h+30+nl]),
			Flags:            binary.LittleEndian.Uint16(data[h+6:]),
			Method:           method,
			CompressedSize:   uint64(binary.LittleEndian.Uint32(data[h+18:])),
			UncompressedSize: uint64(binary.LittleEndian.Uint32(data[h+22:])),
			HeaderOffset:     h,
			DataOffset:       h + 30 + nl + el,
			LocalOnly:        true,
		}
		zip64Extra(data[h+30+nl:h+30+nl+el], e)
		e.addUnicodeNames(data[h+30+nl : h+30+nl+el])
		e.Encrypted = e.Flags&1 != 0 || e.Method == 99
		e.Dir = e.Name[len(e.Name)-1] == '/'
		if cs, ok := localCompressedSize(data, h); ok {
			p = max(p, e.DataOffset+int64(min(cs, uint64(len(data)))))
		} else {
			// Sizes in a data descriptor after the data: unknown here.
			e.CompressedSize = uint64(int64(len(data)) - e.DataOffset)
			p = e.DataOffset
		}
		l.Entries = append(l.Entries, e)
		l.Mismatches = append(l.Mismatches, fmt.Sprintf("entry %q has a local header but is not in the central directory", truncateString(e.Name, 80)))
	}
}

// knownMethod: compression methods of the APPNOTE that extractors know
// (stored, shrunk … deflate, deflate64, bzip2, lzma, zstd, xz, ppmd, AES).
func knownMethod(m uint16) bool {
	return m <= 9 || m == 12 || m == 14 || m == 93 || m == 95 || m == 98 || m == 99
}

// otherNames are the entry's names other than Name: its local header's
// and its Unicode Path fields'.
func (e *ZipEntry) otherNames() []Filename {
	var out []Filename
	if e.LocalName != "" {
		out = append(out, NormalizeFilename(e.LocalName, "zip-local")...)
	}
	for _, u := range e.UnicodeNames {
		out = append(out, NormalizeFilename(u, "zip-unicode")...)
	}
	return out
}

// addUnicodeNames adds the names of the Info-ZIP Unicode Path fields
// (0x7075: version, CRC-32 of the header's name, UTF-8 name) in extra.
// Extractors use one only when its CRC matches the name; every one is
// taken here, matching or not.
func (e *ZipEntry) addUnicodeNames(extra []byte) {
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		n := int(binary.LittleEndian.Uint16(extra[2:]))
		if 4+n > len(extra) {
			return
		}
		if f := extra[4 : 4+n]; id == 0x7075 && len(f) > 5 {
			if u := string(f[5:]); u != e.Name && !slices.Contains(e.UnicodeNames, u) {
				e.UnicodeNames = append(e.UnicodeNames, u)
			}
		}
		extra = extra[4+n:]
	}
}

func zip64Extra(extra []byte, e *ZipEntry) {
	for len(extra) >= 4 {
		id := binary.LittleEndian.Uint16(extra)
		n := int(binary.LittleEndian.Uint16(extra[2:]))
		if 4+n > len(extra) {
			return
		}
		if id == 1 {
			f := extra[4 : 4+n]
			if e.UncompressedSize == 0xffffffff && len(f) >= 8 {
				e.UncompressedSize, f = binary.LittleEndian.Uint64(f), f[8:]
			}
			if e.CompressedSize == 0xffffffff && len(f) >= 8 {
				e.CompressedSize, f = binary.LittleEndian.Uint64(f), f[8:]
			}
			if e.HeaderOffset == 0xffffffff && len(f) >= 8 {
				e.HeaderOffset = int64(binary.LittleEndian.Uint64(f))
			}
		}
		extra = extra[4+n:]
	}
}

// markOverlaps flags entries whose local header and data overlap another
// entry's (David Fifield's non-recursive zip bomb reuses one compressed
// stream for many entries).
func markOverlaps(l *ZipListing) {
	es := make([]*ZipEntry, 0, len(l.Entries))
	for _, e := range l.Entries {
		if e.DataOffset >= 0 {
			es = append(es, e)
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].HeaderOffset < es[j].HeaderOffset })
	var end int64 = -1
	var last *ZipEntry
	for _, e := range es {
		if e.HeaderOffset < end {
			e.Overlaps = true
			last.Overlaps = true
		}
		if x := e.DataOffset + int64(min(e.CompressedSize, 1<<62)); x > end {
			end, last = x, e
		}
	}
}

// scanLocal lists a damaged archive from its local headers.
func scanLocal(data []byte, l *ZipListing, maxEntries int) {
	p := 0
	for {
		i := bytes.Index(data[p:], []byte("PK\x03\x04"))
		if i < 0 {
			return
		}
		h := p + i
		if h+30 > len(data) {
			return
		}
		if len(l.Entries) >= maxEntries {
			l.Truncated = true
			return
		}
		nl := int(binary.LittleEndian.Uint16(data[h+26:]))
		el := int(binary.LittleEndian.Uint16(data[h+28:]))
		e := &ZipEntry{
			Flags:            binary.LittleEndian.Uint16(data[h+6:]),
			Method:           binary.LittleEndian.Uint16(data[h+8:]),
			CompressedSize:   uint64(binary.LittleEndian.Uint32(data[h+18:])),
			UncompressedSize: uint64(binary.LittleEndian.Uint32(data[h+22:])),
			HeaderOffset:     int64(h),
			DataOffset:       int64(h + 30 + nl + el),
		}
		if h+30+nl > len(data) {
			return
		}
		e.Name = string(data[h+30 : h+30+nl])
		if h+30+nl+el <= len(data) {
			e.addUnicodeNames(data[h+30+nl : h+30+nl+el])
		}
		e.Encrypted = e.Flags&1 != 0 || e.Method == 99
		e.Dir = len(e.Name) > 0 && e.Name[len(e.Name)-1] == '/'
		if e.Flags&8 != 0 && e.CompressedSize == 0 {
			// Sizes in a data descriptor after the data: unknown here.
			e.CompressedSize = uint64(len(data) - int(e.DataOffset))
		}
		l.Entries = append(l.Entries, e)
		p = h + 4
	}
}

// ErrUnsupportedMethod is returned by OpenZipEntry for a compression
// method it does not decode.
var ErrUnsupportedMethod = errors.New("attachments: unsupported zip compression method")

// OpenZipEntry returns a reader of an entry's uncompressed content.
func OpenZipEntry(data []byte, e *ZipEntry) (io.Reader, error) {
	if e.DataOffset < 0 || e.DataOffset > int64(len(data)) {
		return nil, errors.New("attachments: zip entry data not found")
	}
	end := e.DataOffset + int64(min(e.CompressedSize, uint64(len(data))))
	if end > int64(len(data)) || end < e.DataOffset {
		end = int64(len(data))
	}
	raw := bytes.NewReader(data[e.DataOffset:end])
	switch e.Method {
	case 0:
		return raw, nil
	case 8:
		return flate.NewReader(raw), nil
	case 12:
		return bzip2.NewReader(raw), nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnsupportedMethod, e.Method)
}
