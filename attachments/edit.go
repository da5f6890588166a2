package attachments

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
)

// section is one piece of a concatenation: literal data, or n bytes of r
// from off.
type section struct {
	data []byte
	r    io.ReaderAt
	off  int64
	n    int64
}

func (s section) size() int64 {
	if s.r == nil {
		return int64(len(s.data))
	}
	return s.n
}

// concatReaderAt reads a sequence of sections as one stream.
type concatReaderAt struct {
	parts []section
}

// Size is the total length.
func (c *concatReaderAt) Size() int64 {
	var n int64
	for _, p := range c.parts {
		n += p.size()
	}
	return n
}

// ReadAt implements io.ReaderAt.
func (c *concatReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("attachments: negative offset")
	}
	total := 0
	for _, s := range c.parts {
		sz := s.size()
		if off >= sz {
			off -= sz
			continue
		}
		want := int64(len(p) - total)
		if want > sz-off {
			want = sz - off
		}
		var n int
		var err error
		if s.r == nil {
			n = copy(p[total:total+int(want)], s.data[off:])
		} else {
			n, err = s.r.ReadAt(p[total:total+int(want)], s.off+off)
			if err == io.EOF && int64(n) == want {
				err = nil
			}
		}
		total += n
		if err != nil {
			return total, err
		}
		off = 0
		if total == len(p) {
			return total, nil
		}
	}
	if total < len(p) {
		return total, io.EOF
	}
	return total, nil
}

// Concat returns header followed by body as one io.ReaderAt and its size:
// the form Scan and Walk read a whole message in.
func Concat(header []byte, body io.ReaderAt, bodySize int64) (io.ReaderAt, int64) {
	c := &concatReaderAt{parts: []section{{data: header}, {r: body, off: 0, n: bodySize}}}
	return c, c.Size()
}

// SizedReaderAt is a body that knows its size (checks.Message's Body).
type SizedReaderAt interface {
	io.ReaderAt
	Size() int64
}

// Message returns a message's header block and body (nil: none) as one
// io.ReaderAt and its size: what every walk over a checked message reads.
func Message(header []byte, body SizedReaderAt) (io.ReaderAt, int64) {
	if body == nil {
		return Concat(header, bytes.NewReader(nil), 0)
	}
	return Concat(header, body, body.Size())
}

// Edit replaces one entity (its header and body, Start to End) with Data,
// or only its header block (Start to BodyStart) when HeaderOnly.
type Edit struct {
	Entity     *Entity
	Data       []byte
	HeaderOnly bool
}

func (e Edit) end() int64 {
	if e.HeaderOnly {
		return e.Entity.BodyStart
	}
	return e.Entity.End
}

// Spliced is a stream with edits applied. It implements io.ReaderAt and
// Size, the shape of a message body for the milter.
type Spliced struct{ c concatReaderAt }

// ReadAt implements io.ReaderAt.
func (s *Spliced) ReadAt(p []byte, off int64) (int, error) { return s.c.ReadAt(p, off) }

// Size is the length of the edited stream.
func (s *Spliced) Size() int64 { return s.c.Size() }

// Bytes returns the whole edited stream (for tests and small messages).
func (s *Spliced) Bytes() []byte {
	b := make([]byte, s.Size())
	n, _ := s.ReadAt(b, 0)
	return b[:n]
}

// ErrNotInPlace is returned for an edit of an entity that has no bytes of
// its own in the message (inside an encoded message/rfc822, the message
// itself): cut out its nearest in-place ancestor instead (see Editable).
var ErrNotInPlace = errors.New("attachments: part is not stored in place in the message")

// Editable returns e or its nearest ancestor that can be edited in place
// without touching the message header (a part with its own offsets below
// a multipart), nil when there is none.
func Editable(e *Entity) *Entity {
	for x := e; x != nil; x = x.Parent {
		if x.InPlace && x.Parent != nil && x.Parent.Kind == Multipart && x.Parent.InPlace {
			return x
		}
	}
	return nil
}

// ApplyEdits returns src[from:size] with the edits applied. Edits must be
// of in-place entities starting at or after from; an edit inside another
// edited entity is dropped (the outer one wins).
func ApplyEdits(src io.ReaderAt, from, size int64, edits []Edit) (*Spliced, error) {
	es := append([]Edit(nil), edits...)
	for _, e := range es {
		if !e.Entity.InPlace || e.Entity.Start < from || e.Entity.End > size || e.Entity.End < e.Entity.Start {
			return nil, fmt.Errorf("%w: part %s", ErrNotInPlace, e.Entity.Path)
		}
	}
	// By start; at one start a whole-part edit (a removal) before a
	// header edit (a rename) of the same part, so the removal wins.
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Entity.Start != es[j].Entity.Start {
			return es[i].Entity.Start < es[j].Entity.Start
		}
		return !es[i].HeaderOnly && es[j].HeaderOnly
	})
	out := &Spliced{}
	pos := from
	for _, e := range es {
		if e.Entity.Start < pos {
			continue // nested in an earlier edit
		}
		if e.Entity.Start > pos {
			out.c.parts = append(out.c.parts, section{r: src, off: pos, n: e.Entity.Start - pos})
		}
		out.c.parts = append(out.c.parts, section{data: e.Data})
		pos = e.end()
	}
	if pos < size {
		out.c.parts = append(out.c.parts, section{r: src, off: pos, n: size - pos})
	}
	return out, nil
}

// LineEnding returns the line break the message uses ("\r\n" or "\n"),
// judged from the first line of src.
func LineEnding(src io.ReaderAt) string {
	buf := make([]byte, 4096)
	n, _ := src.ReadAt(buf, 0)
	if i := bytes.IndexByte(buf[:n], '\n'); i > 0 && buf[i-1] == '\r' {
		return "\r\n"
	} else if i >= 0 {
		return "\n"
	}
	return "\r\n"
}

// RemovalNote is the text/plain part put where a removed attachment was.
// It carries no trailing line break: the break before the next delimiter
// belongs to the delimiter and is kept.
func RemovalNote(filename, reason, eol string) []byte {
	var b strings.Builder
	b.WriteString("Content-Type: text/plain; charset=utf-8" + eol)
	b.WriteString("Content-Disposition: inline" + eol)
	b.WriteString("Content-Transfer-Encoding: 8bit" + eol)
	b.WriteString("X-Chainmail-Removed: " + headerSafe(filename) + eol)
	b.WriteString(eol)
	fmt.Fprintf(&b, "The attachment %q was removed from this message by chainmail.%s", oneLine(filename), eol)
	if reason != "" {
		b.WriteString("Reason: " + oneLine(reason) + eol)
	}
	b.WriteString("Ask the sender to send it another way if you need it.")
	return []byte(b.String())
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// headerSafe returns s as a header value: ASCII as is, anything else
// percent-encoded.
func headerSafe(s string) string {
	s = oneLine(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return "utf-8''" + url.PathEscape(s)
		}
	}
	return s
}

// RenameHeader returns e's header block (as sent, Start to BodyStart) with
// the file name in Content-Type and Content-Disposition replaced by
// newName; other fields are kept byte for byte.
func RenameHeader(e *Entity, newName string) ([]byte, error) {
	return RewriteHeader(e, PartChange{Name: newName})
}

// PartChange is what RewriteHeader changes in a part's header block.
type PartChange struct {
	// Name is the new file name (Content-Type name, Content-Disposition
	// filename), "" to keep it.
	Name string
	// MediaType is the new Content-Type value, "" to keep it.
	MediaType string
	// Base64: the body is replaced by base64 (Content-Transfer-Encoding).
	Base64 bool
	// Disarmed adds an X-Chainmail-Disarmed field saying what was
	// removed ("" adds none).
	Disarmed string
}

// RewriteHeader returns e's header block (as sent, Start to BodyStart)
// with the changes made; fields it does not change are kept byte for
// byte, and a changed field keeps its parameters.
func RewriteHeader(e *Entity, ch PartChange) ([]byte, error) {
	if e.BodyStart < e.Start {
		return nil, ErrNotInPlace
	}
	raw := make([]byte, e.BodyStart-e.Start)
	if _, err := e.src.ReadAt(raw, e.Start); err != nil && err != io.EOF {
		return nil, err
	}
	eol := "\r\n"
	if i := bytes.IndexByte(raw, '\n'); i >= 0 && (i == 0 || raw[i-1] != '\r') {
		eol = "\n"
	}
	lines := strings.SplitAfter(string(raw), "\n")
	// The empty line that ends the block (absent in a header that runs
	// to the end of the part) stays last.
	var tail string
	if n := len(lines); n > 0 && strings.TrimRight(lines[n-1], "\r\n") == "" {
		if lines[n-1] == "" && n > 1 && strings.TrimRight(lines[n-2], "\r\n") == "" {
			tail, lines = lines[n-2], lines[:n-2]
		} else if lines[n-1] != "" {
			tail, lines = lines[n-1], lines[:n-1]
		} else {
			lines = lines[:n-1]
		}
	}
	var out strings.Builder
	sawType, sawCTE := false, false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		name := ""
		if j := strings.IndexByte(l, ':'); j > 0 && l[0] != ' ' && l[0] != '\t' {
			name = strings.ToLower(strings.TrimSpace(l[:j]))
		}
		changes := name == "content-type" && (ch.Name != "" || ch.MediaType != "") ||
			name == "content-disposition" && ch.Name != "" ||
			name == "content-transfer-encoding" && ch.Base64
		sawType = sawType || name == "content-type"
		if !changes {
			out.WriteString(l)
			continue
		}
		// Gather the continuation lines.
		field := strings.TrimRight(l, "\r\n")
		// (and the lines without a colon the walk read as continuing it)
		for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t' || !isHeaderLine(trimEOL([]byte(lines[i+1])))) {
			i++
			field += " " + strings.TrimSpace(lines[i])
		}
		if name == "content-transfer-encoding" {
			if !sawCTE {
				out.WriteString("Content-Transfer-Encoding: base64" + eol)
			}
			sawCTE = true
			continue
		}
		colon := strings.IndexByte(field, ':')
		value, params := ParseParams(field[colon+1:])
		if name == "content-type" && ch.MediaType != "" {
			value = ch.MediaType
		}
		param := "name"
		if name == "content-disposition" {
			param = "filename"
		}
		var b strings.Builder
		b.WriteString(field[:colon+1] + " " + value)
		had := false
		for _, p := range params {
			base := p.Name
			if k := strings.IndexByte(base, '*'); k >= 0 {
				base = base[:k]
			}
			if base == param && ch.Name != "" {
				had = true
				continue
			}
			b.WriteString(";" + eol + "\t" + p.Name + "=" + quoteParam(p.Value))
		}
		if ch.Name != "" && (had || name == "content-disposition" || param == "name") {
			b.WriteString(";" + eol + "\t" + encodeParam(param, ch.Name))
		}
		out.WriteString(b.String() + eol)
	}
	if kept := out.String(); kept != "" && !strings.HasSuffix(kept, "\n") {
		// A last line without its line end (or with a bare CR, which the
		// walk also takes for one).
		out.Reset()
		out.WriteString(strings.TrimRight(kept, "\r") + eol)
	}
	if ch.MediaType != "" && !sawType {
		out.WriteString("Content-Type: " + ch.MediaType)
		if ch.Name != "" {
			out.WriteString(";" + eol + "\t" + encodeParam("name", ch.Name))
		}
		out.WriteString(eol)
	}
	if ch.Base64 && !sawCTE {
		out.WriteString("Content-Transfer-Encoding: base64" + eol)
	}
	if ch.Disarmed != "" {
		out.WriteString("X-Chainmail-Disarmed: " + headerSafe(ch.Disarmed) + eol)
	}
	if tail == "" {
		tail = eol
	}
	out.WriteString(tail)
	return []byte(out.String()), nil
}

// ReplacePart returns a whole new part for e (an Edit's Data): its header
// rewritten by ch, then content in base64, in lines of 76 characters. Like
// RemovalNote it ends without a line break.
func ReplacePart(e *Entity, ch PartChange, content []byte) ([]byte, error) {
	ch.Base64 = true
	hdr, err := RewriteHeader(e, ch)
	if err != nil {
		return nil, err
	}
	eol := "\r\n"
	if bytes.HasSuffix(hdr, []byte("\n")) && !bytes.HasSuffix(hdr, []byte("\r\n")) {
		eol = "\n"
	}
	enc := base64.StdEncoding.EncodeToString(content)
	out := make([]byte, 0, len(hdr)+len(enc)+len(enc)/76*len(eol))
	out = append(out, hdr...)
	for i := 0; i < len(enc); i += 76 {
		if i > 0 {
			out = append(out, eol...)
		}
		out = append(out, enc[i:min(i+76, len(enc))]...)
	}
	return out, nil
}

func quoteParam(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// encodeParam writes name="value", or name*=utf-8”… for non-ASCII
// (RFC 2231).
func encodeParam(name, v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 || v[i] < 0x20 {
			return name + "*=utf-8''" + url.PathEscape(v)
		}
	}
	return name + "=" + quoteParam(v)
}
