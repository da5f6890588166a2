package attachments

import (
	"bufio"
	"bytes"
	"io"
)

// Decoder undoes a transfer encoding leniently: it never returns an error
// for bad input, it skips or keeps what it cannot read and counts it, as
// mail clients do.
type Decoder struct {
	r io.Reader
	// Bad counts input bytes that were not valid in the encoding.
	Bad int64
	enc string
	// srcErr is a read error of the source (not bad input): returned at
	// the end instead of io.EOF, so that a part cut short by it is not
	// taken for a whole one.
	srcErr error
}

// srcReader records the source's read errors in d.
type srcReader struct {
	r io.Reader
	d *Decoder
}

func (s *srcReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.d.srcErr = err
	}
	return n, err
}

// NewDecoder returns a decoder for the Content-Transfer-Encoding enc
// (lower case) over r. Unknown encodings pass the bytes through.
func NewDecoder(enc string, r io.Reader) *Decoder {
	d := &Decoder{enc: enc}
	r = &srcReader{r: r, d: d}
	switch enc {
	case "base64":
		d.r = &b64Reader{src: bufio.NewReaderSize(r, 32<<10), d: d}
	case "quoted-printable":
		d.r = &qpReader{src: bufio.NewReaderSize(r, 32<<10), d: d}
	case "x-uuencode", "uuencode", "x-uue":
		d.r = &uuReader{src: bufio.NewReaderSize(r, 32<<10), d: d}
	default:
		d.r = r
	}
	return d
}

// Known reports whether the encoding is one the decoder understands.
func (d *Decoder) Known() bool {
	switch d.enc {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue":
		return true
	}
	return false
}

func (d *Decoder) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err == io.EOF && d.srcErr != nil {
		err = d.srcErr
	}
	return n, err
}

var b64val = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	return t
}()

// b64Reader decodes base64, skipping white space and junk, and going on
// after padding (some senders concatenate encoded blocks).
type b64Reader struct {
	src  *bufio.Reader
	d    *Decoder
	acc  uint32
	n    int
	out  []byte
	buf  []byte
	raw  []byte
	done bool
}

func (b *b64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if b.buf == nil {
			b.buf = make([]byte, 0, 6*1024)
			b.raw = make([]byte, 8*1024)
		}
		chunk := b.buf[:0]
		m, err := b.src.Read(b.raw)
		acc, n := b.acc, b.n
		for _, c := range b.raw[:m] {
			v := b64val[c]
			if v == 0xff {
				switch c {
				case '=':
					b.acc, b.n = acc, n
					b.flush(&chunk)
					acc, n = 0, 0
				case ' ', '\t', '\r', '\n':
				default:
					b.d.Bad++
				}
				continue
			}
			acc = acc<<6 | uint32(v)
			n++
			if n == 4 {
				chunk = append(chunk, byte(acc>>16), byte(acc>>8), byte(acc))
				acc, n = 0, 0
			}
		}
		b.acc, b.n = acc, n
		if err != nil {
			b.done = true
			b.flush(&chunk)
		}
		b.out = chunk
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// flush emits the bytes of a partial quantum (at padding or the end).
func (b *b64Reader) flush(chunk *[]byte) {
	switch b.n {
	case 1:
		b.d.Bad++
	case 2:
		*chunk = append(*chunk, byte(b.acc>>4))
	case 3:
		*chunk = append(*chunk, byte(b.acc>>10), byte(b.acc>>2))
	}
	b.acc, b.n = 0, 0
}

// qpReader decodes quoted-printable; an "=" not followed by two hex digits
// or a line break is kept as it is.
type qpReader struct {
	src *bufio.Reader
	d   *Decoder
	out []byte
	eof bool
}

func (q *qpReader) Read(p []byte) (int, error) {
	for len(q.out) == 0 {
		if q.eof {
			return 0, io.EOF
		}
		line, err := q.src.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil
		} else if err != nil {
			q.eof = true
		}
		q.out = q.decodeLine(line, q.out[:0])
	}
	n := copy(p, q.out)
	q.out = q.out[n:]
	return n, nil
}

func (q *qpReader) decodeLine(line, out []byte) []byte {
	eol := line[len(line)-int(eolLen(line)):]
	body := bytes.TrimRight(line, "\r\n")
	// Trailing white space is transport padding (RFC 2045 §6.7 rule 3).
	body = bytes.TrimRight(body, " \t")
	soft := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		if i == len(body)-1 {
			soft = true
			break
		}
		if i+2 < len(body) && isHex(body[i+1]) && isHex(body[i+2]) {
			out = append(out, unhex(body[i+1])<<4|unhex(body[i+2]))
			i += 2
			continue
		}
		if i+2 == len(body) && isHex(body[i+1]) {
			q.d.Bad++
			out = append(out, c)
			continue
		}
		q.d.Bad++
		out = append(out, c)
	}
	if !soft {
		out = append(out, eol...)
	}
	return out
}

// uuReader decodes a uuencoded body (the "begin"/"end" lines are skipped).
type uuReader struct {
	src   *bufio.Reader
	d     *Decoder
	out   []byte
	eof   bool
	begun bool
}

func (u *uuReader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.eof {
			return 0, io.EOF
		}
		line, err := u.src.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil
		} else if err != nil {
			u.eof = true
		}
		t := bytes.TrimRight(line, "\r\n")
		switch {
		case !u.begun && bytes.HasPrefix(t, []byte("begin")):
			u.begun = true
		case bytes.Equal(t, []byte("end")):
			u.eof = true
		default:
			u.out = uudecodeLine(t, u.out[:0], &u.d.Bad)
		}
	}
	n := copy(p, u.out)
	u.out = u.out[n:]
	return n, nil
}

// uudecodeLine decodes one uuencoded line into out.
func uudecodeLine(t, out []byte, bad *int64) []byte {
	if len(t) == 0 {
		return out
	}
	n := int((t[0] - ' ') & 0x3f)
	if n == 0 {
		return out
	}
	data := t[1:]
	var got int
	for i := 0; i+3 < len(data)+3 && got < n; i += 4 {
		var c [4]byte
		for j := 0; j < 4; j++ {
			if i+j < len(data) {
				c[j] = (data[i+j] - ' ') & 0x3f
			}
		}
		b := [3]byte{c[0]<<2 | c[1]>>4, c[1]<<4 | c[2]>>2, c[2]<<6 | c[3]}
		for j := 0; j < 3 && got < n; j++ {
			out = append(out, b[j])
			got++
		}
		if i+4 > len(data) {
			break
		}
	}
	if got < n {
		*bad += int64(n - got)
	}
	return out
}
