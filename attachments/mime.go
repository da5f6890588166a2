package attachments

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-message/textproto"
)

// Kind is what an entity holds.
type Kind int

// Entity kinds.
const (
	// Leaf is a part with content (text, an attachment).
	Leaf Kind = iota
	// Multipart holds child parts separated by a boundary.
	Multipart
	// Embedded is a message/rfc822 part: its one child is the message.
	Embedded
)

func (k Kind) String() string {
	switch k {
	case Multipart:
		return "multipart"
	case Embedded:
		return "message"
	}
	return "leaf"
}

// Entity is one node of a message's MIME tree.
type Entity struct {
	// Path names the entity the way mime4j's test files do: the message
	// body is "1", the parts of a multipart are numbered from 1 below it
	// ("1.2"), the message inside a message/rfc822 part is its child "1"
	// ("1.2.1").
	Path   string
	Depth  int
	Kind   Kind
	Parent *Entity
	// Children of a multipart (in order) or the message of an Embedded.
	Children []*Entity

	// Header is the entity's header block (go-message textproto: Get gives
	// the first field of a name, Values all of them in order).
	Header textproto.Header
	// MediaType is the lower-cased media type ("text/plain" when absent or
	// unreadable, "message/rfc822" in a multipart/digest).
	MediaType string
	// Params are the Content-Type parameters (lower-cased names, RFC 2231
	// joined and decoded).
	Params map[string]string
	// Disposition is the lower-cased Content-Disposition value, "" when
	// absent; DispParams its parameters.
	Disposition string
	DispParams  map[string]string
	// Encoding is the lower-cased Content-Transfer-Encoding ("" = 7bit).
	Encoding string
	// Names are the file names the header gives, decoded, in order of
	// preference (filename*, filename, name*, name), without repeats. See
	// Filename for what each holds.
	Names []Filename

	// Offsets in the stream the entity was read from: Start is where its
	// header begins, BodyStart where its body begins, End where its body
	// ends (before the line break that belongs to the next delimiter).
	Start, BodyStart, End int64
	// InPlace is true when the offsets are offsets in the scanned message
	// itself (false inside a decoded message/rfc822 or a uuencoded block):
	// only such entities can be cut out by RemoveParts.
	InPlace bool
	// Problems are what was wrong with this entity's structure.
	Problems []string

	src io.ReaderAt
	// bareCR: the stream the entity was read from has bare CR line ends.
	bareCR bool
	// boundarySeen: a multipart whose delimiter was never found.
	boundarySeen bool
	closed       bool
}

// Body returns a reader of the entity's body as sent (transfer-encoded).
func (e *Entity) Body() io.Reader {
	n := e.End - e.BodyStart
	if n < 0 {
		n = 0
	}
	return io.NewSectionReader(e.src, e.BodyStart, n)
}

// RawSize is the size of the entity's body as sent.
func (e *Entity) RawSize() int64 {
	if e.End < e.BodyStart {
		return 0
	}
	return e.End - e.BodyStart
}

// Open returns a reader of the entity's body with its transfer encoding
// undone (base64 and quoted-printable leniently, uuencode, identity for the
// rest). Bad input never stops the reader: see Decoded for what was wrong.
func (e *Entity) Open() *Decoder {
	body := e.Body()
	if e.bareCR && !identityEncoding(e.Encoding) && e.Encoding != "base64" {
		// Quoted-printable soft breaks and uuencoded lines need their
		// line ends: a bare CR is one (see lineScanner).
		body = &crlfReader{r: bufio.NewReader(body)}
	}
	return NewDecoder(e.Encoding, body)
}

// NormalizeCR returns r with every bare CR (one that no LF follows)
// turned into CRLF: the line end a permissive reader takes it for. For
// readers outside this package (a virus scanner) that know LF line ends
// only.
func NormalizeCR(r io.Reader) io.Reader { return &crlfReader{r: bufio.NewReaderSize(r, 64<<10)} }

// HasBareCR reports whether r holds a CR that no LF follows.
func HasBareCR(r io.Reader) (bool, error) {
	buf := make([]byte, 64<<10)
	lastCR := false
	for {
		n, err := r.Read(buf)
		b := buf[:n]
		if n > 0 && lastCR && b[0] != '\n' {
			return true, nil
		}
		for i := bytes.IndexByte(b, '\r'); i >= 0; {
			if i+1 < len(b) && b[i+1] != '\n' {
				return true, nil
			}
			j := bytes.IndexByte(b[i+1:], '\r')
			if j < 0 {
				break
			}
			i += 1 + j
		}
		if n > 0 {
			lastCR = b[n-1] == '\r'
		}
		if err == io.EOF {
			return lastCR, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// crlfReader turns every CR that no LF follows into CRLF.
type crlfReader struct {
	r       *bufio.Reader
	pending bool // an LF is owed after a bare CR
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.pending {
			p[n] = '\n'
			n++
			c.pending = false
			continue
		}
		b, err := c.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		p[n] = b
		n++
		if b == '\r' {
			if next, err := c.r.Peek(1); err != nil || next[0] != '\n' {
				c.pending = true
			}
		}
	}
	return n, nil
}

// Filename returns the entity's preferred file name, "" when it has none.
func (e *Entity) Filename() string {
	if len(e.Names) == 0 {
		return ""
	}
	return e.Names[0].Name
}

// IsAttachment reports whether the entity is a file rather than message
// text: it has a name, is marked attachment, or is neither text nor a
// container.
func (e *Entity) IsAttachment() bool {
	if e.Kind != Leaf {
		return false
	}
	if len(e.Names) > 0 || e.Disposition == "attachment" {
		return true
	}
	return !strings.HasPrefix(e.MediaType, "text/") && !strings.HasPrefix(e.MediaType, "message/")
}

// Leaves returns the leaf entities below e (e itself when it is one), in
// document order.
func (e *Entity) Leaves() []*Entity {
	var out []*Entity
	e.walk(func(x *Entity) {
		if x.Kind == Leaf {
			out = append(out, x)
		}
	})
	return out
}

// walk visits e and its descendants depth first, without recursion (the
// tree may be thousands deep when the limits are raised).
func (e *Entity) walk(f func(*Entity)) {
	stack := []*Entity{e}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f(x)
		for i := len(x.Children) - 1; i >= 0; i-- {
			stack = append(stack, x.Children[i])
		}
	}
}

// WalkOptions bound a Walk.
type WalkOptions struct {
	// MaxDepth is the deepest entity that is still parsed as a container
	// (default 50); deeper containers are read as leaves and reported.
	MaxDepth int
	// MaxParts bounds the entities recorded (default 1000).
	MaxParts int
	// MaxHeader bounds one entity's header block in bytes (default 256 KiB).
	MaxHeader int
	// MaxDecodedMessage bounds an encoded message/rfc822 part that is
	// decoded to be walked (default 32 MiB).
	MaxDecodedMessage int64
}

func (o *WalkOptions) defaults() {
	if o.MaxDepth <= 0 {
		o.MaxDepth = 50
	}
	if o.MaxParts <= 0 {
		o.MaxParts = 1000
	}
	if o.MaxHeader <= 0 {
		o.MaxHeader = 256 << 10
	}
	if o.MaxDecodedMessage <= 0 {
		o.MaxDecodedMessage = 32 << 20
	}
}

// Tree is the result of a Walk.
type Tree struct {
	Root *Entity
	// Problems are structural findings about the whole message: each
	// entity's Problems are repeated here with its path.
	Problems []Problem
	// Truncated is set when a limit stopped the walk from recording
	// everything (too deep, too many parts): the message could not be
	// read completely.
	Truncated bool
	// Parts counts the entities recorded.
	Parts int
}

// Problem is a structural finding.
type Problem struct {
	Path   string
	Detail string
	// Unreadable is set when the problem hides content from the scan.
	Unreadable bool
}

// Walk reads the MIME structure of the message in src (header block and
// body, size bytes). It never fails: what it cannot read is a Problem.
func Walk(src io.ReaderAt, size int64, opts WalkOptions) *Tree {
	opts.defaults()
	w := &walker{opts: opts, tree: &Tree{}}
	root := w.parse(src, size, true, "1", 0, nil, "")
	w.tree.Root = root
	// Encoded message/rfc822 parts: decode and walk them too.
	for len(w.pending) > 0 {
		e := w.pending[0]
		w.pending = w.pending[1:]
		w.decodeEmbedded(e)
	}
	root.walk(func(e *Entity) {
		for _, p := range e.Problems {
			unreadable := strings.HasPrefix(p, "!")
			w.tree.Problems = append(w.tree.Problems, Problem{Path: e.Path, Detail: strings.TrimPrefix(p, "!"), Unreadable: unreadable})
		}
	})
	root.walk(func(e *Entity) {
		for i, p := range e.Problems {
			e.Problems[i] = strings.TrimPrefix(p, "!")
		}
	})
	return w.tree
}

type walker struct {
	opts       WalkOptions
	recovering int
	tree       *Tree
	pending    []*Entity
	capped     bool
}

// frame is one open container while parsing.
type frame struct {
	e *Entity
	// delim is "--boundary" for a multipart; nil for an embedded message,
	// which ends with its parent.
	delim []byte
	// next is the number of the next child.
	next int
}

// lineScanner reads lines with their offsets. A line ends with CRLF, LF
// or a CR that no LF follows: bare CR line ends are read as line ends, as
// permissive readers (Python's email package, mail clients) do, so a
// message written with them shows the parts a mail client shows. A line
// longer than the buffer is returned truncated (its first bytes, enough
// to recognise a delimiter) and the rest skipped; n is always the full
// length.
type lineScanner struct {
	r   *bufio.Reader
	off int64
	// bareCR counts the lines that ended with a bare CR.
	bareCR int
}

const maxLine = 64 << 10

// readerPool keeps the line readers' 64 KiB buffers between walks.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxLine) }}

// lineEnd returns the length of the first line of b with its line end,
// or -1 when b holds no whole line. A CR that is the last byte of b ends
// a line only at the end of the input (atEOF): else an LF may follow.
func lineEnd(b []byte, atEOF bool) int {
	nl := bytes.IndexByte(b, '\n')
	head := b
	if nl >= 0 {
		head = b[:nl]
	}
	if cr := bytes.IndexByte(head, '\r'); cr >= 0 {
		switch {
		case cr+1 < len(b) && b[cr+1] == '\n':
			return cr + 2
		case cr+1 < len(b) || atEOF:
			return cr + 1
		}
		return -1
	}
	if nl >= 0 {
		return nl + 1
	}
	return -1
}

func (s *lineScanner) next() (line []byte, start, n int64, err error) {
	start = s.off
	truncated := false
	for {
		b, perr := s.r.Peek(max(s.r.Buffered(), 1))
		if len(b) == 0 {
			if n == 0 {
				err = perr
			}
			break
		}
		e := lineEnd(b, false)
		whole := e >= 0
		if !whole {
			if len(b) < s.r.Size() {
				// Read more, unless the input ends here.
				if more, _ := s.r.Peek(len(b) + 1); len(more) > len(b) {
					continue
				}
				e = lineEnd(b, true)
				whole = true
				if e < 0 {
					e = len(b)
				}
			} else {
				// The buffer is full and holds no line end: part of a
				// long line. A CR at its end stays for the next round,
				// which decides whether it is a bare CR.
				e = len(b)
				if b[e-1] == '\r' {
					e--
				}
			}
		}
		switch {
		case !truncated && whole:
			line = b[:e]
		case !truncated:
			line = append([]byte(nil), b[:e]...)
			truncated = true
		}
		if whole && e > 0 && b[e-1] == '\r' {
			s.bareCR++
		}
		n += int64(e)
		_, _ = s.r.Discard(e)
		if whole {
			break
		}
	}
	s.off += n
	return line, start, n, err
}

// eolLen is the length of the line break that ends line (0, 1 or 2).
func eolLen(line []byte) int64 {
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(line, []byte("\n")), bytes.HasSuffix(line, []byte("\r")):
		return 1
	}
	return 0
}

func trimEOL(line []byte) []byte {
	return line[:len(line)-int(eolLen(line))]
}

type mode int

const (
	modeHeader mode = iota
	modeBody        // leaf body
	modeSkip        // preamble, epilogue, or a part not recorded
)

// parse walks one stream. path and depth are the root entity's; parent is
// set when the stream is the decoded body of an embedded message.
func (w *walker) parse(src io.ReaderAt, size int64, inPlace bool, path string, depth int, parent *Entity, defaultType string) *Entity {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(io.NewSectionReader(src, 0, size))
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	sc := &lineScanner{r: br}
	root := w.newRoot(src, inPlace, path, depth, parent)
	var stack []*frame
	cur := root // entity whose header or body is being read
	md := modeHeader
	var hdr [][]byte // header lines of cur
	hdrBytes := 0
	var prevEOL int64
	curDefault := defaultType
	// contUntil: lines before this offset that have no colon continue
	// the field before them (see continues); noted: cur has a problem
	// saying so.
	var contUntil int64
	noted := false

	// finishHeader ends cur's header at body offset bodyStart and decides
	// what cur is.
	finishHeader := func(bodyStart int64) {
		w.setHeader(cur, hdr, curDefault)
		hdr, hdrBytes = hdr[:0], 0
		noted = false
		cur.BodyStart = bodyStart
		md = modeBody
		switch {
		case strings.HasPrefix(cur.MediaType, "multipart/"):
			b := cur.Params["boundary"]
			if b == "" {
				cur.Problems = append(cur.Problems, "multipart without a boundary parameter: read as a single part")
				return
			}
			if cur.Depth >= w.opts.MaxDepth {
				cur.Problems = append(cur.Problems, fmt.Sprintf("!MIME nesting deeper than %d: not parsed further", w.opts.MaxDepth))
				w.tree.Truncated = true
				return
			}
			cur.Kind = Multipart
			stack = append(stack, &frame{e: cur, delim: append([]byte("--"), b...), next: 1})
			md = modeSkip
		case isMessageType(cur.MediaType) && identityEncoding(cur.Encoding):
			if cur.Depth >= w.opts.MaxDepth {
				cur.Problems = append(cur.Problems, fmt.Sprintf("!MIME nesting deeper than %d: not parsed further", w.opts.MaxDepth))
				w.tree.Truncated = true
				return
			}
			cur.Kind = Embedded
			stack = append(stack, &frame{e: cur})
			child := w.newEntity(src, inPlace, cur.Path+".1", cur.Depth+1, cur, bodyStart)
			if child == nil {
				md = modeSkip
				return
			}
			cur.Children = append(cur.Children, child)
			cur = child
			curDefault = ""
			md = modeHeader
		case isMessageType(cur.MediaType):
			// Encoded: decoded and walked after this pass.
			w.pending = append(w.pending, cur)
		}
	}

	// closeTo ends every open entity inside frame k at offset end.
	closeTo := func(k int, end int64) {
		for i := len(stack) - 1; i > k; i-- {
			f := stack[i]
			if f.delim != nil && !f.e.closed {
				if f.e.boundarySeen {
					f.e.Problems = append(f.e.Problems, "missing end boundary")
				}
			}
			endOpen(f.e, end)
		}
		stack = stack[:k+1]
		if len(stack[k].e.Children) > 0 {
			endOpen(stack[k].e.Children[len(stack[k].e.Children)-1], end)
		}
	}

	for {
		line, start, n, err := sc.next()
		if n == 0 {
			break
		}
		if len(stack) > 0 && len(line) >= 2 && line[0] == '-' && line[1] == '-' {
			if k, closing := matchDelimiter(stack, line); k >= 0 {
				end := start - prevEOL
				if end < 0 {
					end = 0
				}
				if md == modeHeader && cur != nil {
					// A header block cut short by a delimiter.
					finishHeader(start)
					if cur.Kind == Multipart {
						// It pushed a frame that has no content.
						stack = stack[:len(stack)-1]
					}
				}
				closeTo(k, end)
				f := stack[k]
				f.e.boundarySeen = true
				if closing {
					f.e.closed = true
					cur, md = nil, modeSkip
					stack = stack[:k]
					// The multipart's own end is set when its parent ends;
					// its epilogue is skipped.
					if k > 0 || len(stack) > 0 {
						// keep reading: the epilogue belongs to no part
					}
				} else {
					path := ""
					if w.tree.Parts < w.opts.MaxParts {
						// (Past the limit no path is made: a million parts
						// cost a million lines read, nothing more.)
						path = f.e.Path + "." + strconv.Itoa(f.next)
					}
					child := w.newEntity(src, inPlace, path, f.e.Depth+1, f.e, start+n)
					f.next++
					if child == nil {
						cur, md = nil, modeSkip
					} else {
						f.e.Children = append(f.e.Children, child)
						cur, md = child, modeHeader
						curDefault = ""
						if f.e.MediaType == "multipart/digest" {
							curDefault = "message/rfc822"
						}
					}
				}
				prevEOL = eolLen(line)
				if err != nil {
					break
				}
				continue
			}
		}
		if md == modeHeader {
			t := trimEOL(line)
			switch {
			case len(t) == 0:
				finishHeader(start + n)
			case (t[0] == ' ' || t[0] == '\t') && len(hdr) > 0:
				hdr[len(hdr)-1] = append(append(hdr[len(hdr)-1], '\n'), t...)
				hdrBytes += len(t)
			case isHeaderLine(t) || (cur == root && len(hdr) == 0 && bytes.HasPrefix(t, []byte("From "))):
				// (An mbox "From " line before the first field is kept as a
				// junk field, not taken for the body.)
				hdr = append(hdr, append([]byte(nil), t...))
				hdrBytes += len(t)
			case len(hdr) > 0 && (start < contUntil || w.continues(src, size, stack, hdr[len(hdr)-1], t, start+n, &contUntil)):
				// A line without a colon inside a header block that goes on
				// (MailScanner v4#58: "x-unix-mode=0600;" unindented between
				// Content-Type and its name parameter): read as a
				// continuation of the field before it, as mail clients do,
				// so the parameters after it and the fields below count.
				hdr[len(hdr)-1] = append(append(hdr[len(hdr)-1], '\n', ' '), t...)
				hdrBytes += len(t)
				if !noted {
					noted = true
					cur.Problems = append(cur.Problems, fmt.Sprintf("header line without a colon read as a continuation: %q", truncateString(string(t), 60)))
				}
			default:
				// Not a header field: the body starts here without the
				// empty line (mime4j and Python do the same).
				if len(hdr) > 0 || cur != root {
					cur.Problems = append(cur.Problems, "header block ended without an empty line")
				}
				finishHeader(start)
				if md == modeHeader {
					// An embedded message started at this very line: its
					// header is read from the next line on; rare enough to
					// treat the line as lost.
					break
				}
			}
			if md == modeHeader && hdrBytes > w.opts.MaxHeader {
				cur.Problems = append(cur.Problems, fmt.Sprintf("!header block larger than %d bytes: rest read as body", w.opts.MaxHeader))
				finishHeader(start + n)
			}
		}
		prevEOL = eolLen(line)
		if err != nil {
			break
		}
	}
	// End of the stream: everything still open ends here.
	if md == modeHeader && cur != nil {
		finishHeader(size)
		if cur.Kind == Multipart {
			stack = stack[:len(stack)-1]
		}
		if cur.Kind == Embedded {
			// its child got a header-less empty body; fine
			_ = cur
		}
	}
	for i := len(stack) - 1; i >= 0; i-- {
		f := stack[i]
		if f.delim != nil && !f.e.closed && f.e.boundarySeen {
			f.e.Problems = append(f.e.Problems, "missing end boundary")
		}
	}
	root.walk(func(e *Entity) { endOpen(e, size) })
	if sc.bareCR > 0 {
		root.walk(func(e *Entity) { e.bareCR = true })
		if w.recovering == 0 {
			root.Problems = append(root.Problems, fmt.Sprintf("%d lines end with a bare CR: read as line ends", sc.bareCR))
		}
	}
	// Multiparts whose boundary never appeared.
	var lost []*Entity
	root.walk(func(e *Entity) {
		if e.Kind == Multipart && !e.boundarySeen {
			lost = append(lost, e)
		}
	})
	for _, e := range lost {
		if w.recovering > 0 {
			// Inside a recovery: no second guess.
			e.Problems = append(e.Problems, fmt.Sprintf("boundary %q never appears: read as a single part", truncateString(e.Params["boundary"], 80)))
			e.Kind = Leaf
			continue
		}
		w.recoverBoundary(e)
	}
	return root
}

// continues decides whether t, a header line without a colon after the
// field prev, continues prev rather than starting the body. It does when
// prev is a parameter list that asks for more (its value ends with ";")
// and t looks like a parameter ("name=value"), or when a header field
// comes after t before the header block ends (the empty line, a delimiter
// or MaxHeader bytes): a body has no field below its first line, a
// header block broken by a stray line does. from is the offset after t;
// *until is set to the offset of that field, so the lines up to it are
// not looked at again and the walk stays linear.
func (w *walker) continues(src io.ReaderAt, size int64, stack []*frame, prev, t []byte, from int64, until *int64) bool {
	if bytes.IndexByte(t, '=') > 0 && bytes.HasSuffix(bytes.TrimRight(prev, " \t"), []byte(";")) {
		return true
	}
	if from >= size {
		return false
	}
	sc := &lineScanner{r: bufio.NewReaderSize(io.NewSectionReader(src, from, size-from), 4096), off: from}
	for read := int64(0); read < int64(w.opts.MaxHeader); {
		line, start, n, _ := sc.next()
		if n == 0 {
			return false
		}
		read += n
		l := trimEOL(line)
		switch {
		case len(l) == 0:
			return false
		case len(stack) > 0 && len(l) >= 2 && l[0] == '-' && l[1] == '-':
			if k, _ := matchDelimiter(stack, l); k >= 0 {
				return false
			}
		case isHeaderLine(l):
			*until = start
			return true
		}
	}
	return false
}

// endOpen sets End on e and its open descendants.
func endOpen(e *Entity, end int64) {
	e.walk(func(x *Entity) {
		if x.End < 0 {
			// A part cut short by the next delimiter right after its own
			// delimiter line is empty, not negative.
			x.End = max(end, x.Start)
			if x.BodyStart < 0 || x.BodyStart > x.End {
				x.BodyStart = x.End
			}
		}
	})
}

// matchDelimiter finds the innermost open multipart whose delimiter the
// line is. RFC 2046 §5.1.1 asks for "--" boundary, optionally "--", then
// only transport padding, but its note to implementors says a line that
// starts with the delimiter is enough; mime4j and most clients follow the
// note, and so do we (the rest of the line is ignored). An outer boundary
// also counts, which closes the inner parts.
func matchDelimiter(stack []*frame, line []byte) (int, bool) {
	for k := len(stack) - 1; k >= 0; k-- {
		d := stack[k].delim
		if d == nil || !bytes.HasPrefix(line, d) {
			continue
		}
		return k, bytes.HasPrefix(line[len(d):], []byte("--"))
	}
	return -1, false
}

func isMessageType(t string) bool {
	return t == "message/rfc822" || t == "message/global"
}

func identityEncoding(enc string) bool {
	switch enc {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// isHeaderLine reports whether t looks like "Name: value" (or the obsolete
// "Name : value").
func isHeaderLine(t []byte) bool {
	i := bytes.IndexByte(t, ':')
	if i <= 0 {
		return false
	}
	name := bytes.TrimRight(t[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// newEntity returns a new child entity, nil once MaxParts entities exist.
func (w *walker) newEntity(src io.ReaderAt, inPlace bool, path string, depth int, parent *Entity, start int64) *Entity {
	if w.tree.Parts >= w.opts.MaxParts {
		if !w.capped {
			w.capped = true
			w.tree.Truncated = true
			parent.Problems = append(parent.Problems, fmt.Sprintf("!more than %d MIME parts: the rest was not read", w.opts.MaxParts))
		}
		return nil
	}
	return w.newRoot(src, inPlace, path, depth, parent).at(start)
}

func (e *Entity) at(start int64) *Entity { e.Start = start; return e }

// newRoot returns the first entity of a stream (never nil).
func (w *walker) newRoot(src io.ReaderAt, inPlace bool, path string, depth int, parent *Entity) *Entity {
	w.tree.Parts++
	return &Entity{
		Path: path, Depth: depth, Parent: parent, src: src, InPlace: inPlace,
		BodyStart: -1, End: -1, MediaType: "text/plain",
		Params: map[string]string{}, DispParams: map[string]string{},
	}
}

// setHeader parses the collected header lines into e.
func (w *walker) setHeader(e *Entity, lines [][]byte, defaultType string) {
	var keys, vals []string
	for _, l := range lines {
		i := bytes.IndexByte(l, ':')
		if i < 0 {
			continue // an mbox "From " line
		}
		k := string(bytes.TrimRight(l[:i], " \t"))
		v := strings.TrimSpace(strings.ReplaceAll(string(l[i+1:]), "\n", ""))
		keys, vals = append(keys, k), append(vals, v)
	}
	// go-message's Get returns the last field added: add in reverse so it
	// returns the first field of the message.
	for i := len(keys) - 1; i >= 0; i-- {
		e.Header.Add(keys[i], vals[i])
	}
	ct := e.Header.Get("Content-Type")
	if ct == "" {
		if defaultType != "" {
			e.MediaType = defaultType
		}
	} else {
		mt, params := ParseParams(ct)
		switch {
		case mt == "" || !strings.Contains(mt, "/"):
			e.Problems = append(e.Problems, fmt.Sprintf("unreadable Content-Type %q: read as text/plain", truncateString(ct, 80)))
		default:
			e.MediaType = mt
		}
		e.Params = joinParams(params)
	}
	if len(e.Header.Values("Content-Type")) > 1 {
		e.Problems = append(e.Problems, "more than one Content-Type field: the first one is used")
	}
	if cd := e.Header.Get("Content-Disposition"); cd != "" {
		d, params := ParseParams(cd)
		e.Disposition = d
		e.DispParams = joinParams(params)
	}
	e.Encoding = strings.ToLower(strings.TrimSpace(e.Header.Get("Content-Transfer-Encoding")))
	if i := strings.IndexAny(e.Encoding, "; \t"); i >= 0 {
		e.Encoding = e.Encoding[:i]
	}
	e.Names = entityNames(&e.Header)
}

// recoverBoundary handles a multipart whose declared boundary never
// appears: if its body has lines of the shape "--X" followed by a header
// field, it is re-read with X as the boundary, because a mail client that
// guesses would show those parts.
func (w *walker) recoverBoundary(e *Entity) {
	body := io.NewSectionReader(e.src, e.BodyStart, e.End-e.BodyStart)
	sc := &lineScanner{r: bufio.NewReaderSize(body, maxLine)}
	var prev []byte
	candidate := ""
	for i := 0; i < 20000; i++ {
		line, _, n, err := sc.next()
		if n == 0 {
			break
		}
		t := trimEOL(line)
		if prev != nil && isHeaderLine(t) && bytes.HasPrefix(bytes.ToLower(t), []byte("content-")) {
			candidate = string(prev[2:])
			break
		}
		prev = nil
		if len(t) > 2 && len(t) < 200 && t[0] == '-' && t[1] == '-' && !bytes.ContainsAny(t, " \t") {
			prev = append([]byte(nil), t...)
		}
		if err != nil {
			break
		}
	}
	if candidate == "" {
		e.Problems = append(e.Problems, fmt.Sprintf("boundary %q never appears: read as a single part", truncateString(e.Params["boundary"], 80)))
		e.Kind = Leaf
		return
	}
	e.Problems = append(e.Problems, fmt.Sprintf("!boundary %q never appears; the parts use %q", truncateString(e.Params["boundary"], 80), truncateString(candidate, 80)))
	// Re-read the body as the parts of a multipart with the boundary found.
	sub := &Entity{}
	*sub = *e
	fake := "Content-Type: multipart/mixed; boundary=" + quoteParam(candidate) + "\r\n\r\n"
	bodyLen := e.End - e.BodyStart
	joined := &concatReaderAt{parts: []section{{data: []byte(fake)}, {r: e.src, off: e.BodyStart, n: bodyLen}}}
	w.recovering++
	r := w.parse(joined, int64(len(fake))+bodyLen, false, e.Path, e.Depth, e.Parent, "")
	w.recovering--
	e.Kind = r.Kind
	e.Children = r.Children
	for _, c := range r.Children {
		c.Parent = e
	}
	e.boundarySeen = true
	shiftInto(e, joined, int64(len(fake)), e.BodyStart)
}

// shiftInto re-bases the children of e, read from joined where the body
// began at skip, onto e's own stream where it begins at base.
func shiftInto(e *Entity, joined io.ReaderAt, skip, base int64) {
	for _, c := range e.Children {
		c.walk(func(x *Entity) {
			if x.src != joined {
				return
			}
			x.src = e.src
			x.InPlace = e.InPlace
			x.Start += base - skip
			x.BodyStart += base - skip
			x.End += base - skip
		})
	}
}

// decodeEmbedded walks the decoded body of an encoded message/rfc822 part.
func (w *walker) decodeEmbedded(e *Entity) {
	if e.Depth >= w.opts.MaxDepth {
		e.Problems = append(e.Problems, fmt.Sprintf("!MIME nesting deeper than %d: not parsed further", w.opts.MaxDepth))
		w.tree.Truncated = true
		return
	}
	d := e.Open()
	data, err := io.ReadAll(io.LimitReader(d, w.opts.MaxDecodedMessage+1))
	if err != nil || int64(len(data)) > w.opts.MaxDecodedMessage {
		e.Problems = append(e.Problems, fmt.Sprintf("!encoded message/rfc822 part larger than %d bytes: not parsed", w.opts.MaxDecodedMessage))
		w.tree.Truncated = true
		return
	}
	child := w.parse(bytes.NewReader(data), int64(len(data)), false, e.Path+".1", e.Depth+1, e, "")
	e.Kind = Embedded
	e.Children = []*Entity{child}
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
