package attachments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xzReader unpacks an xz file the way a decoder does, stream by stream
// and block by block, reading each block's header where the block before
// it ended; the LZMA2 dictionary a block header declares is allocated
// only when hold allows it (and never over maxDict). The index is read
// past, not trusted: it may list fewer blocks than a decoder unpacks.
// Block checks are not verified.
type xzReader struct {
	data    []byte
	r       *bytes.Reader // data, from the position reached
	block   io.Reader     // the current block's LZMA2 data, nil between blocks
	start   int64         // where the current block starts
	check   int64         // the check size of the current stream
	streams int           // streams begun
	inside  bool          // inside a stream
	maxDict int64
	held    int64 // the largest dictionary held
	blocks  uint64
	// lying: an index lists another number of blocks than its stream
	// has (a decoder unpacks them all before it says so).
	lying bool
	hold  func(n int64) bool
	err   error
}

var errXZIndex = errors.New("xz: damaged index")

var errXZMemory = errors.New("xz: no memory for the block's dictionary")

func newXZReader(data []byte, maxDict int64, hold func(n int64) bool) *xzReader {
	return &xzReader{data: data, r: bytes.NewReader(data), maxDict: maxDict, hold: hold}
}

func (x *xzReader) pos() int64 { return int64(len(x.data)) - int64(x.r.Len()) }

func (x *xzReader) Read(p []byte) (int, error) {
	for x.err == nil {
		if x.block != nil {
			n, err := x.block.Read(p)
			if err == io.EOF {
				// Block padding to 4 bytes, then its check.
				end := x.pos()
				end += (4-(end-x.start)%4)%4 + x.check
				if end > int64(len(x.data)) {
					x.err = errTruncated
				} else {
					x.r.Seek(end, io.SeekStart)
				}
				x.block = nil
				err = nil
			} else if err == io.ErrUnexpectedEOF {
				err = errTruncated
			}
			if err != nil {
				x.err = err
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		x.err = x.next()
	}
	return 0, x.err
}

// next reads up to the next block's data: stream padding and headers,
// indexes and footers on the way.
func (x *xzReader) next() error {
	d := x.data
	p := x.pos()
	if !x.inside {
		if x.streams > 0 {
			for p+4 <= int64(len(d)) && d[p]|d[p+1]|d[p+2]|d[p+3] == 0 {
				p += 4 // stream padding
			}
			if p == int64(len(d)) {
				return io.EOF
			}
		}
		if p+12 > int64(len(d)) || !bytes.HasPrefix(d[p:], []byte("\xfd7zXZ\x00")) || d[p+6] != 0 || d[p+7] > 15 {
			return errors.New("xz: bad stream header")
		}
		x.check = [16]int64{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}[d[p+7]]
		x.inside = true
		x.streams++
		x.r.Seek(p+12, io.SeekStart)
		return nil
	}
	if p >= int64(len(d)) {
		return errTruncated
	}
	uvarint := func(b []byte, q *int64) (uint64, error) {
		if *q >= int64(len(b)) {
			return 0, errXZIndex
		}
		v, k := binary.Uvarint(b[*q:])
		if k <= 0 {
			return 0, errXZIndex
		}
		*q += int64(k)
		return v, nil
	}
	if d[p] == 0 {
		// The index: its records, padding and CRC, then the footer.
		q := p + 1
		n, err := uvarint(d, &q)
		if err != nil || n > uint64(len(d)) {
			return errXZIndex
		}
		if n != x.blocks {
			x.lying = true
		}
		x.blocks = 0
		for i := uint64(0); i < 2*n; i++ {
			if _, err := uvarint(d, &q); err != nil {
				return err
			}
		}
		q += (4-(q-p)%4)%4 + 4 + 12
		if q > int64(len(d)) || string(d[q-2:q]) != "YZ" {
			return errXZIndex
		}
		x.inside = false
		x.r.Seek(q, io.SeekStart)
		return nil
	}
	hs := (int64(d[p]) + 1) * 4
	if p+hs > int64(len(d)) {
		return errTruncated
	}
	h := d[p : p+hs-4]
	if h[1]&0x3c != 0 {
		return errors.New("xz: unsupported block header flags")
	}
	q := int64(2)
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if h[1]&bit != 0 {
			if _, err := uvarint(h, &q); err != nil {
				return errXZIndex
			}
		}
	}
	var dict int64 = -1
	for i := 0; i <= int(h[1]&3); i++ {
		id, err1 := uvarint(h, &q)
		size, err2 := uvarint(h, &q)
		if err1 != nil || err2 != nil || size > uint64(int64(len(h))-q) {
			return errors.New("xz: bad block header")
		}
		if id != 0x21 || size != 1 || i != int(h[1]&3) {
			return fmt.Errorf("xz: filter %#x not supported", id)
		}
		switch b := h[q]; {
		case b > 40:
			return errors.New("xz: bad dictionary size")
		case b == 40:
			dict = 0xffffffff
		default:
			dict = int64(2|b&1) << (b/2 + 11)
		}
		q += int64(size)
	}
	if dict > x.maxDict {
		return fmt.Errorf("xz: dictionary of %d bytes: not unpacked", dict)
	}
	if dict > x.held {
		if !x.hold(dict - x.held) {
			return errXZMemory
		}
		x.held = dict
	}
	x.r.Seek(p+hs, io.SeekStart)
	x.start = p
	br, err := lzma.Reader2Config{DictCap: int(dict)}.NewReader2(x.r)
	if err != nil {
		return fmt.Errorf("xz: %w", err)
	}
	x.block = br
	x.blocks++
	return nil
}
