package attachments

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// TNEF is a decoded Transport Neutral Encapsulation Format stream
// (winmail.dat, application/ms-tnef; [MS-OXTNEF]).
type TNEF struct {
	Key uint16
	// Attachments in the order they appear.
	Attachments []*TNEFAttachment
	// Body is the plain-text body (attBody or PR_BODY), RTF the
	// decompressed PR_RTF_COMPRESSED, HTML PR_BODY_HTML; each nil when
	// absent.
	Body, RTF, HTML []byte
	// MessageClass is attMessageClass, e.g. "IPM.Note".
	MessageClass string
	// Problems are what was wrong but could be read past (bad checksums,
	// garbage after the last attribute).
	Problems []string
	// IDs are the attribute ids in order (low 16 bits), for tests.
	IDs []uint16
}

// TNEFAttachment is one attached file.
type TNEFAttachment struct {
	// Title is attAttachTitle (the 8.3 name), LongName
	// PR_ATTACH_LONG_FILENAME, DisplayName PR_DISPLAY_NAME, MIMEType
	// PR_ATTACH_MIME_TAG.
	Title, LongName, DisplayName, MIMEType string
	// Method is PR_ATTACH_METHOD (5: embedded message, 6: OLE object).
	Method uint32
	// Data is the file's content (attAttachData, else PR_ATTACH_DATA_OBJ).
	Data []byte
	// Embedded is the TNEF message of an embedded-message attachment.
	Embedded *TNEF
}

// Name returns the attachment's file name: the long name, the title, the
// display name, or "" when it has none.
func (a *TNEFAttachment) Name() string {
	for _, n := range []string{a.LongName, a.Title, a.DisplayName} {
		if n != "" {
			return n
		}
	}
	return ""
}

// TNEFSignature starts every TNEF stream (little-endian 0x223E9F78).
var TNEFSignature = []byte{0x78, 0x9f, 0x3e, 0x22}

// ErrNotTNEF is returned for data without the TNEF signature.
var ErrNotTNEF = errors.New("attachments: not a TNEF stream")

// IsTNEF reports the TNEF signature.
func IsTNEF(b []byte) bool { return bytes.HasPrefix(b, TNEFSignature) }

// TNEF attribute ids (the low 16 bits of the attribute id).
const (
	tnefAttBody         = 0x800c
	tnefAttMessageClass = 0x8008
	tnefAttAttachData   = 0x800f
	tnefAttAttachTitle  = 0x8010
	tnefAttOemCodepage  = 0x9007
	tnefAttRendData     = 0x9002
	tnefAttAttachment   = 0x9005
	tnefAttMAPIProps    = 0x9003
)

// MAPI property ids.
const (
	prBody           = 0x1000
	prRTFCompressed  = 0x1009
	prBodyHTML       = 0x1013
	prDisplayName    = 0x3001
	prAttachDataObj  = 0x3701
	prAttachFilename = 0x3704
	prAttachMethod   = 0x3705
	prAttachLongName = 0x3707
	prAttachMIMETag  = 0x370e
)

// ParseTNEF decodes a TNEF stream. It is tolerant the way Outlook is: a
// wrong checksum or garbage after the last attribute is a Problem, not an
// error; only a stream that cannot be read at all is one. Embedded
// messages are decoded to maxDepth levels.
func ParseTNEF(data []byte) (*TNEF, error) { return parseTNEF(data, 0) }

const tnefMaxDepth = 5

func parseTNEF(data []byte, depth int) (*TNEF, error) {
	if len(data) < 6 || !IsTNEF(data) {
		return nil, ErrNotTNEF
	}
	t := &TNEF{Key: binary.LittleEndian.Uint16(data[4:])}
	codepage := uint32(1252)
	var cur *TNEFAttachment
	p := 6
	for p < len(data) {
		if len(data)-p < 11 {
			t.Problems = append(t.Problems, fmt.Sprintf("%d bytes of garbage after the last attribute", len(data)-p))
			break
		}
		level := data[p]
		id := binary.LittleEndian.Uint32(data[p+1:])
		n := int(binary.LittleEndian.Uint32(data[p+5:]))
		if level != 1 && level != 2 || n < 0 || n > len(data)-p-11 {
			if len(t.IDs) == 0 {
				return nil, errors.New("attachments: TNEF: first attribute unreadable")
			}
			t.Problems = append(t.Problems, fmt.Sprintf("unreadable attribute at offset %d: the rest was not read", p))
			break
		}
		val := data[p+9 : p+9+n]
		sum := binary.LittleEndian.Uint16(data[p+9+n:])
		var calc uint16
		for _, c := range val {
			calc += uint16(c)
		}
		if calc != sum {
			t.Problems = append(t.Problems, fmt.Sprintf("attribute 0x%04x: bad checksum", id&0xffff))
		}
		p += 11 + n
		code := uint16(id)
		t.IDs = append(t.IDs, code)
		switch code {
		case tnefAttOemCodepage:
			if len(val) >= 4 {
				codepage = binary.LittleEndian.Uint32(val)
			}
		case tnefAttMessageClass:
			t.MessageClass = cString(val, codepage)
		case tnefAttBody:
			if level == 1 {
				t.Body = val
			}
		case tnefAttRendData:
			cur = &TNEFAttachment{}
			t.Attachments = append(t.Attachments, cur)
		case tnefAttAttachTitle:
			if cur == nil {
				cur = &TNEFAttachment{}
				t.Attachments = append(t.Attachments, cur)
			}
			cur.Title = cString(val, codepage)
		case tnefAttAttachData:
			if cur == nil {
				cur = &TNEFAttachment{}
				t.Attachments = append(t.Attachments, cur)
			}
			cur.Data = val
		case tnefAttAttachment:
			if cur == nil {
				cur = &TNEFAttachment{}
				t.Attachments = append(t.Attachments, cur)
			}
			props, err := parseMAPIProps(val, codepage)
			if err != nil {
				t.Problems = append(t.Problems, "attachment properties: "+err.Error())
			}
			applyAttachProps(cur, props, depth, t)
		case tnefAttMAPIProps:
			props, err := parseMAPIProps(val, codepage)
			if err != nil {
				t.Problems = append(t.Problems, "message properties: "+err.Error())
			}
			for _, pr := range props {
				switch pr.id {
				case prRTFCompressed:
					if len(pr.values) > 0 {
						rtf, err := DecompressRTF(pr.values[0])
						if err != nil {
							t.Problems = append(t.Problems, "compressed RTF: "+err.Error())
						}
						t.RTF = rtf
					}
				case prBody:
					if len(pr.values) > 0 && t.Body == nil {
						t.Body = []byte(pr.str)
					}
				case prBodyHTML:
					if len(pr.values) > 0 {
						if pr.typ == ptBinary {
							t.HTML = pr.values[0]
						} else {
							t.HTML = []byte(pr.str)
						}
					}
				}
			}
		}
	}
	return t, nil
}

func applyAttachProps(a *TNEFAttachment, props []mapiProp, depth int, t *TNEF) {
	for _, pr := range props {
		switch pr.id {
		case prAttachLongName:
			a.LongName = pr.str
		case prAttachFilename:
			if a.Title == "" {
				a.Title = pr.str
			}
		case prDisplayName:
			a.DisplayName = pr.str
		case prAttachMIMETag:
			a.MIMEType = pr.str
		case prAttachMethod:
			if len(pr.values) > 0 && len(pr.values[0]) >= 4 {
				a.Method = binary.LittleEndian.Uint32(pr.values[0])
			}
		case prAttachDataObj:
			if len(pr.values) == 0 {
				continue
			}
			v := pr.values[0]
			if pr.typ == ptObject && len(v) >= 16 {
				v = v[16:] // the interface id
			}
			if a.Data == nil {
				a.Data = v
			}
			if IsTNEF(v) {
				if depth+1 >= tnefMaxDepth {
					t.Problems = append(t.Problems, "embedded messages nested too deep")
				} else if e, err := parseTNEF(v, depth+1); err == nil {
					a.Embedded = e
				}
			}
		}
	}
}

// MAPI property types.
const (
	ptShort    = 0x0002
	ptLong     = 0x0003
	ptFloat    = 0x0004
	ptDouble   = 0x0005
	ptCurrency = 0x0006
	ptAppTime  = 0x0007
	ptError    = 0x000a
	ptBoolean  = 0x000b
	ptObject   = 0x000d
	ptI8       = 0x0014
	ptString8  = 0x001e
	ptUnicode  = 0x001f
	ptSysTime  = 0x0040
	ptCLSID    = 0x0048
	ptBinary   = 0x0102
	ptMulti    = 0x1000
)

type mapiProp struct {
	typ, id uint16
	values  [][]byte
	str     string // first value as text for string types
}

// parseMAPIProps reads an attMAPIProps / attAttachment value.
func parseMAPIProps(b []byte, codepage uint32) ([]mapiProp, error) {
	if len(b) < 4 {
		return nil, errors.New("too short")
	}
	count := binary.LittleEndian.Uint32(b)
	p := 4
	var out []mapiProp
	need := func(n int) bool { return n >= 0 && p+n <= len(b) }
	for i := uint32(0); i < count; i++ {
		if !need(4) {
			return out, errors.New("truncated")
		}
		typ := binary.LittleEndian.Uint16(b[p:])
		id := binary.LittleEndian.Uint16(b[p+2:])
		p += 4
		if id >= 0x8000 {
			// Named property: GUID, kind, then an id or a name.
			if !need(20) {
				return out, errors.New("truncated named property")
			}
			kind := binary.LittleEndian.Uint32(b[p+16:])
			p += 20
			if !need(4) {
				return out, errors.New("truncated named property")
			}
			v := int(binary.LittleEndian.Uint32(b[p:]))
			p += 4
			if kind != 0 {
				// A string name: v is its length in bytes.
				if v < 0 || !need(pad4(v)) {
					return out, errors.New("truncated property name")
				}
				p += pad4(v)
			}
		}
		base := typ &^ ptMulti
		multi := typ&ptMulti != 0
		pr := mapiProp{typ: base, id: id}
		variable := base == ptString8 || base == ptUnicode || base == ptBinary || base == ptObject
		n := 1
		if multi || variable {
			if !need(4) {
				return out, errors.New("truncated value count")
			}
			c := binary.LittleEndian.Uint32(b[p:])
			p += 4
			if c > uint32(len(b)) {
				return out, errors.New("value count too large")
			}
			n = int(c)
		}
		for j := 0; j < n; j++ {
			if variable {
				if !need(4) {
					return out, errors.New("truncated value")
				}
				l := int(binary.LittleEndian.Uint32(b[p:]))
				p += 4
				if l < 0 || !need(l) {
					return out, errors.New("value longer than the attribute")
				}
				pr.values = append(pr.values, b[p:p+l])
				p += pad4(l)
				if p > len(b) {
					p = len(b)
				}
				continue
			}
			size := fixedSize(base)
			if size < 0 {
				return out, fmt.Errorf("unknown property type 0x%04x", base)
			}
			if !need(size) {
				return out, errors.New("truncated value")
			}
			pr.values = append(pr.values, b[p:p+size])
			p += pad4(size)
			if p > len(b) {
				p = len(b)
			}
		}
		if len(pr.values) > 0 {
			switch base {
			case ptString8:
				pr.str = cString(pr.values[0], codepage)
			case ptUnicode:
				pr.str = utf16String(pr.values[0])
			}
		}
		out = append(out, pr)
	}
	return out, nil
}

func fixedSize(t uint16) int {
	switch t {
	case ptShort, ptBoolean:
		return 2
	case ptLong, ptFloat, ptError:
		return 4
	case ptDouble, ptCurrency, ptAppTime, ptI8, ptSysTime:
		return 8
	case ptCLSID:
		return 16
	case 0x0001: // PT_NULL
		return 0
	}
	return -1
}

func pad4(n int) int { return (n + 3) &^ 3 }

// cString reads a NUL-terminated 8-bit string in the given Windows code
// page (1252 and UTF-8 handled; other code pages as windows-NNNN through
// the charset package).
func cString(b []byte, codepage uint32) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	switch codepage {
	case 65001:
		return decodeCharset("utf-8", b)
	case 1252, 0:
		return decodeCharset("windows-1252", b)
	}
	return decodeCharset(fmt.Sprintf("windows-%d", codepage), b)
}

func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// The dictionary every compressed RTF stream starts with ([MS-OXRTFCP]
// §3.1.3.1).
const rtfPrebuf = `{\rtf1\ansi\mac\deff0\deftab720{\fonttbl;}{\f0\fnil \froman \fswiss \fmodern \fscript \fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\colortbl\red0\green0\blue0` + "\r\n" + `\par \pard\plain\f0\fs20\b\i\u\tab\tx`

// DecompressRTF decodes PR_RTF_COMPRESSED ([MS-OXRTFCP]): "LZFu"
// compressed or "MELA" stored. The output is bounded by the size the
// header declares (at most 64 MiB).
func DecompressRTF(b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, errors.New("too short")
	}
	rawSize := int(binary.LittleEndian.Uint32(b[4:]))
	kind := string(b[8:12])
	data := b[16:]
	if rawSize < 0 || rawSize > 64<<20 {
		return nil, errors.New("declared size too large")
	}
	switch kind {
	case "MELA":
		if len(data) > rawSize {
			data = data[:rawSize]
		}
		return append([]byte(nil), data...), nil
	case "LZFu":
	default:
		return nil, fmt.Errorf("unknown compression %q", strings.TrimRight(kind, "\x00"))
	}
	var dict [4096]byte
	copy(dict[:], rtfPrebuf)
	w := len(rtfPrebuf)
	// Each input byte yields at most 8.5 output bytes (a control byte
	// and eight 2-byte references of 17): the header cannot make us
	// allocate more than that.
	out := make([]byte, 0, min(rawSize, 9*len(data)))
	p := 0
	for p < len(data) && len(out) < rawSize {
		ctrl := data[p]
		p++
		for bit := 0; bit < 8 && p < len(data) && len(out) < rawSize; bit++ {
			if ctrl&(1<<bit) == 0 {
				c := data[p]
				p++
				out = append(out, c)
				dict[w] = c
				w = (w + 1) % 4096
				continue
			}
			if p+1 >= len(data) {
				return out, errors.New("truncated reference")
			}
			ref := int(data[p])<<8 | int(data[p+1])
			p += 2
			off, n := ref>>4, ref&0xf+2
			if off == w {
				return out, nil // end of stream
			}
			for i := 0; i < n && len(out) < rawSize; i++ {
				c := dict[(off+i)%4096]
				out = append(out, c)
				dict[w] = c
				w = (w + 1) % 4096
			}
		}
	}
	return out, nil
}
