package attachments

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Category is how policy should see a finding.
type Category string

// Finding categories.
const (
	// CategoryUnscannable: part of the message could not be inspected
	// (structure unreadable, encrypted archive, a limit reached). Never a
	// silent pass: the policy decides (chainmail's default quarantines).
	CategoryUnscannable Category = "unscannable"
	// CategorySuspicious: active content or a disguise (macros, DDE, PDF
	// JavaScript, a name that lies about the content, RTLO).
	CategorySuspicious Category = "suspicious"
	// CategoryEncrypted: an encrypted document (its content is hidden but
	// it is a document, not an archive).
	CategoryEncrypted Category = "encrypted"
	// CategoryMalformed: damage that was read past (bad base64, a missing
	// end boundary); informational.
	CategoryMalformed Category = "malformed"
)

// Finding is one thing a scan reports.
type Finding struct {
	Category Category
	// Kind is a short stable name: KindEncryptedArchive, KindVBA, … (see
	// kinds.go).
	Kind FindingKind
	// Path is the file's path ("1.2", "1.2/a.zip/b.exe"); File its
	// display name ("" for the message itself).
	Path, File string
	Detail     string
}

// File is one file the message carries: a MIME part, a uuencoded block, a
// TNEF attachment or an archive member.
type File struct {
	// Path: the MIME path of the part, then "/" and the names of the
	// containers and members inside it.
	Path string
	// Names are the names the file goes by, preferred first; Name is the
	// first, "" for an unnamed part.
	Names []Filename
	Name  string
	// Declared is the Content-Type of a MIME part ("" for members).
	Declared string
	Type     Type
	// Size is the decoded size (for members the declared uncompressed
	// size when the content was not read).
	Size int64
	// Member: inside an archive, so archive rules apply. TNEF attachments
	// and uuencoded files are not members (MailScanner checks them with
	// the normal rules).
	Member bool
	// Container: "", "zip", "gzip", "tar", "bzip2", "xz", "7z", "rar",
	// "tnef", "uuencode", "ole".
	Container string
	Depth     int
	// Entity is the MIME part that carries the file.
	Entity    *Entity
	Encrypted bool
	// Parent is the file this one was unpacked from (nil for a MIME
	// part's own file); Entry its name as the container lists it.
	Parent *File
	Entry  string
}

// NameList returns the names of f for rule matching.
func (f *File) NameList() []string {
	out := make([]string, 0, len(f.Names))
	for _, n := range f.Names {
		out = append(out, n.Name)
	}
	return out
}

// Report is the outcome of Scan.
type Report struct {
	Tree     *Tree
	Files    []*File
	Findings []Finding
	// Attachments counts the MIME parts that are attachments.
	Attachments int
	// Inspected is the number of decoded and decompressed bytes read.
	Inspected int64
}

// Has reports whether the report has a finding of the category.
func (r *Report) Has(c Category) bool {
	for _, f := range r.Findings {
		if f.Category == c {
			return true
		}
	}
	return false
}

// Options bound a scan. Zero values take the defaults.
type Options struct {
	Walk WalkOptions
	// MaxAttachments per message (default 200).
	MaxAttachments int
	// MaxFileSize is the largest file read whole for inspection (archives,
	// documents; default 32 MiB). Larger containers are a finding.
	MaxFileSize int64
	// MaxTotal bounds the bytes decoded and decompressed per message
	// (default 256 MiB).
	MaxTotal int64
	// MaxRatio is the largest compression ratio accepted for archive
	// members over RatioFloor bytes (defaults 100 and 1 MiB).
	MaxRatio   float64
	RatioFloor int64
	// MaxEntries per archive (default 1000).
	MaxEntries int
	// MaxDepth of nested containers (default 5).
	MaxDepth int
	// Memory is the budget shared by every scan of the process for the
	// buffers that hold whole files (nil: none); MemoryWait the longest
	// a scan waits for it (default 10s) before the file is reported
	// unscannable.
	Memory     *Memory
	MemoryWait time.Duration
	// MaxAttachmentSize is a policy, not a scan limit: a file not inside
	// an archive whose decoded size is over it is a finding of
	// CategoryPolicy (0: no limit).
	MaxAttachmentSize int64
}

func (o *Options) defaults() {
	if o.MaxAttachments <= 0 {
		o.MaxAttachments = 200
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 32 << 20
	}
	if o.MaxTotal <= 0 {
		o.MaxTotal = 256 << 20
	}
	if o.MaxRatio <= 0 {
		o.MaxRatio = 100
	}
	if o.RatioFloor <= 0 {
		o.RatioFloor = 1 << 20
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 1000
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 5
	}
	if o.MemoryWait <= 0 {
		o.MemoryWait = 10 * time.Second
	}
}

// Scan walks the message in src and inspects every file it carries.
func Scan(src io.ReaderAt, size int64, opts Options) *Report {
	return ScanContext(context.Background(), src, size, opts)
}

// ScanContext is Scan that waits for the memory budget no longer than
// ctx allows.
func ScanContext(ctx context.Context, src io.ReaderAt, size int64, opts Options) *Report {
	opts.defaults()
	s := &scanner{ctx: ctx, opts: opts, budget: opts.MaxTotal, rep: &Report{}}
	defer s.releaseTo(0)
	s.rep.Tree = Walk(src, size, opts.Walk)
	for _, p := range s.rep.Tree.Problems {
		c := CategoryMalformed
		if p.Unreadable {
			c = CategoryUnscannable
		}
		s.add(Finding{Category: c, Kind: KindMIMEStructure, Path: p.Path, Detail: p.Detail})
	}
	s.formats()
	for _, e := range s.rep.Tree.Root.Leaves() {
		s.part(e)
	}
	s.oversize()
	return s.rep
}

type scanner struct {
	ctx  context.Context
	opts Options
	// held: bytes of opts.Memory this scan holds.
	held      int64
	budget    int64
	rep       *Report
	overAtt   bool
	overTotal bool
}

func (s *scanner) add(f Finding) { s.rep.Findings = append(s.rep.Findings, f) }

// hold takes n bytes of the process's memory budget for a buffer about
// to be allocated; when it cannot in time, the file (path, name) is
// reported unscannable and hold returns false.
func (s *scanner) hold(n int64, path, name string) bool {
	if s.opts.Memory == nil {
		return true
	}
	if err := s.opts.Memory.acquire(s.ctx, n, s.opts.MemoryWait, s.held > 0); err != nil {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitMemory, Path: path, File: name, Detail: fmt.Sprintf("no memory to unpack %d bytes within %s (%d bytes shared by all scans): not inspected", n, s.opts.MemoryWait, s.opts.Memory.Limit())})
		return false
	}
	s.held += n
	return true
}

// unhold gives back n bytes taken by hold.
func (s *scanner) unhold(n int64) {
	if s.opts.Memory != nil {
		s.held -= n
		s.opts.Memory.release(n, s.held == 0)
	}
}

// releaseTo gives back what was taken since held was mark: the buffers
// of the files inspected since then are no longer referenced.
func (s *scanner) releaseTo(mark int64) {
	if s.held > mark {
		s.unhold(s.held - mark)
	}
}

// take reserves n bytes of the per-message budget; false when it is spent.
func (s *scanner) take(n int64) bool {
	if s.budget < n {
		s.budget = 0
		if !s.overTotal {
			s.overTotal = true
			s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitTotal, Detail: fmt.Sprintf("more than %d bytes to decode and unpack: the rest was not inspected", s.opts.MaxTotal)})
		}
		return false
	}
	s.budget -= n
	s.rep.Inspected += n
	return true
}

// budgetReader reads through the per-message budget.
type budgetReader struct {
	r io.Reader
	s *scanner
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.s.budget <= 0 {
		b.s.take(1)
		return 0, errBudget
	}
	if int64(len(p)) > b.s.budget {
		p = p[:b.s.budget]
	}
	n, err := b.r.Read(p)
	b.s.take(int64(n))
	if err == io.ErrUnexpectedEOF {
		// A decompressor's truncated stream: not to be taken for the
		// short end of a whole file by io.ReadFull.
		err = errTruncated
	}
	return n, err
}

var errBudget = errors.New("attachments: byte budget spent")

var errTruncated = errors.New("attachments: data ends early (truncated)")

// read reads a file's content: the first SniffSize bytes always, and the
// whole file (up to limit bytes) only when keep(head) says it is worth
// opening. The rest of a file that is not kept is not read at all: a
// member that lies about its size costs nothing. over is set when a kept
// file is larger than limit (data is then its head only).
func (s *scanner) read(r io.Reader, hint int64, keep func(head []byte) int64, where Finding) (data []byte, whole, over bool, err error) {
	br := &budgetReader{r: r, s: s}
	n0 := int64(SniffSize)
	if hint > 0 && hint < n0 {
		n0 = hint + 1 // a short file: no 64 KiB buffer for it
	}
	head := make([]byte, n0)
	n, err := io.ReadFull(br, head)
	head = head[:n]
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return head, true, false, nil
	}
	if int64(n) < SniffSize && err == nil {
		// The hint was low: read on up to SniffSize.
		more := make([]byte, SniffSize-int64(n))
		m, err2 := io.ReadFull(br, more)
		head = append(head, more[:m]...)
		n += m
		if err2 == io.EOF || err2 == io.ErrUnexpectedEOF {
			return head, true, false, nil
		}
		if err2 != nil {
			return head, false, false, err2
		}
	}
	if err != nil {
		return head, false, false, err
	}
	limit := keep(head)
	if limit <= int64(n) {
		return head, false, false, nil
	}
	// The whole file: its buffer comes from the memory budget, at the
	// size the hint gives (the bytes of a part or the declared size of
	// a member: the reader stops there) or, unknown, growing by doubling.
	c := limit + 1
	if hint > 0 {
		c = min(hint, limit) + 1
	} else {
		c = min(c, max(1<<20, int64(n)*2))
	}
	if !s.hold(c, where.Path, where.File) {
		return head, false, false, nil
	}
	buf := make([]byte, n, c)
	copy(buf, head)
	for {
		if len(buf) == cap(buf) {
			if int64(cap(buf)) > limit {
				break
			}
			nc := min(2*int64(cap(buf)), limit+1)
			if !s.hold(nc, where.Path, where.File) {
				return buf, false, false, nil
			}
			nb := make([]byte, len(buf), nc)
			copy(nb, buf)
			s.unhold(int64(cap(buf)))
			buf = nb
		}
		m, err := br.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, true, false, nil
		}
		if err != nil {
			return buf, false, false, err
		}
	}
	return buf[:limit], false, true, nil
}

// textScan is how much of a text file is read for uuencoded blocks, DDE
// formulas and SYLK macros.
const textScan = 1 << 20

// keep says how much of a file to read whole, from its first bytes:
// containers (archives, documents, TNEF) up to MaxFileSize, text up to
// textScan, anything else not past its head.
func (s *scanner) keep(head []byte) int64 {
	t := Sniff(head)
	switch {
	case t.Family == FamilyArchive, t.Family == FamilyOffice, t.Family == FamilyPDF, t.SelfExtracting:
		return s.opts.MaxFileSize
	case IsTNEF(head), IsOLE(head), bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return s.opts.MaxFileSize
	case t.MIME == "application/java-archive", t.MIME == "application/vnd.android.package-archive":
		return s.opts.MaxFileSize
	case t.Family == FamilyText:
		return textScan
	}
	return 0
}

// part inspects one leaf MIME entity.
func (s *scanner) part(e *Entity) {
	att := e.IsAttachment()
	if att {
		s.rep.Attachments++
		if s.rep.Attachments > s.opts.MaxAttachments {
			if !s.overAtt {
				s.overAtt = true
				s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitAttachments, Path: e.Path, Detail: fmt.Sprintf("more than %d attachments: the rest were not inspected", s.opts.MaxAttachments)})
			}
			// Names are still checked, content is not.
			s.rep.Files = append(s.rep.Files, &File{Path: e.Path, Names: e.Names, Name: e.Filename(), Declared: e.MediaType, Entity: e, Size: e.RawSize(), Type: Type{Description: "data", Family: FamilyData}})
			return
		}
	}
	d := e.Open()
	if !d.Known() {
		s.add(Finding{Category: CategoryMalformed, Kind: KindUnknownEncoding, Path: e.Path, File: e.Filename(), Detail: fmt.Sprintf("unknown Content-Transfer-Encoding %q: read as is", truncateString(e.Encoding, 40))})
	}
	if s.budget <= 0 {
		s.take(1)
		s.rep.Files = append(s.rep.Files, &File{Path: e.Path, Names: e.Names, Name: e.Filename(), Declared: e.MediaType, Entity: e, Size: e.RawSize(), Type: Type{Description: "data", Family: FamilyData}})
		return
	}
	hint := e.RawSize()
	defer s.releaseTo(s.held)
	data, whole, over, err := s.read(d, hint, s.keep, Finding{Path: e.Path, File: e.Filename()})
	if err != nil && !errors.Is(err, errBudget) {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindReadError, Path: e.Path, File: e.Filename(), Detail: "part could not be read: " + err.Error()})
	}
	size := int64(len(data))
	if !whole {
		size = e.RawSize()
		if e.Encoding == "base64" {
			size = size * 3 / 4
		}
	}
	if d.Bad > 0 {
		s.add(Finding{Category: CategoryMalformed, Kind: KindBadEncoding, Path: e.Path, File: e.Filename(), Detail: fmt.Sprintf("%d bytes invalid in %s", d.Bad, e.Encoding)})
	}
	f := &File{Path: e.Path, Names: e.Names, Name: e.Filename(), Declared: e.MediaType, Entity: e, Size: size}
	if !att && strings.HasPrefix(e.MediaType, "text/") {
		s.inlinePGP(e, data)
	}
	if !att && len(data) == 0 {
		return
	}
	if !att && strings.HasPrefix(e.MediaType, "text/") {
		// Message text: not a file, but it may carry uuencoded files and
		// is sniffed (an executable sent as text/plain is still one).
		f.Type = Sniff(data)
		if f.Type.Family == FamilyText || f.Type.Family == FamilyData {
			s.uuencoded(f, data, 0)
			return
		}
	}
	s.rep.Files = append(s.rep.Files, f)
	s.inspect(f, data, whole, 0)
	if over && f.Type.Family != FamilyText {
		s.tooBig(f)
	}
}

func (s *scanner) tooBig(f *File) {
	s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitSize, Path: f.Path, File: f.Name, Detail: fmt.Sprintf("%s larger than %d bytes: not inspected", firstField(f.Type.Description), s.opts.MaxFileSize)})
}

// inspect looks at one file's content (data: the whole file when whole,
// else its first bytes) and opens it when it is a container.
func (s *scanner) inspect(f *File, data []byte, whole bool, depth int) {
	f.Depth = depth
	if f.Type.Description == "" {
		f.Type = Sniff(data)
	}
	if whole && IsOLE(data) {
		if t, ok := oleType(data); ok {
			f.Type = t
		}
	}
	for _, n := range f.Names {
		if n.Flags&NameBidi != 0 {
			s.add(Finding{Category: CategorySuspicious, Kind: KindNameBidi, Path: f.Path, File: n.Name, Detail: "bidirectional control characters in the file name (right-to-left override disguise)"})
		}
		if n.Flags&NameNUL != 0 {
			s.add(Finding{Category: CategorySuspicious, Kind: KindNameNUL, Path: f.Path, File: n.Name, Detail: "NUL byte in the file name"})
		}
	}
	for _, n := range f.Names {
		if m := Mismatch(n.Name, f.Declared, f.Type); m != "" {
			s.add(Finding{Category: CategorySuspicious, Kind: KindNameTypeMismatch, Path: f.Path, File: f.Name, Detail: m})
			break
		}
	}
	if len(f.Names) == 0 && f.Declared != "" {
		if m := Mismatch("", f.Declared, f.Type); m != "" {
			s.add(Finding{Category: CategorySuspicious, Kind: KindNameTypeMismatch, Path: f.Path, File: f.Name, Detail: m})
		}
	}
	if !whole {
		return
	}
	if depth >= s.opts.MaxDepth && (f.Type.Family == FamilyArchive || IsTNEF(data) || IsOLE(data) || f.Type.SelfExtracting || bytes.HasPrefix(data, []byte("PK\x03\x04"))) {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitDepth, Path: f.Path, File: f.Name, Detail: fmt.Sprintf("archive nested deeper than %d: not opened", s.opts.MaxDepth)})
		return
	}
	zipped := false
	defer func() {
		// A zip behind data of another kind (a self-extractor's stub,
		// junk, a PDF): unzip, Python's zipfile and 7-Zip find it from
		// its end record and extract it whatever comes first.
		if !zipped && HasZipEnd(data) {
			s.zip(f, data, depth)
		}
	}()
	switch {
	case IsTNEF(data):
		s.tnef(f, data, depth)
	case IsOLE(data):
		s.ole(f, data, depth)
	case bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")) || f.Type.MIME == "application/zip" || f.Type.SelfExtracting && bytes.Contains(data, []byte("PK\x03\x04")):
		zipped = true
		s.zip(f, data, depth)
	case bytes.HasPrefix(data, []byte("\x1f\x8b")):
		s.stream(f, data, depth, "gzip")
	case bytes.HasPrefix(data, []byte("BZh")):
		s.stream(f, data, depth, "bzip2")
	case bytes.HasPrefix(data, []byte("\xfd7zXZ\x00")):
		s.stream(f, data, depth, "xz")
	case f.Type.MIME == "application/x-tar":
		s.tar(f, bytes.NewReader(data), depth)
	case bytes.HasPrefix(data, []byte("7z\xbc\xaf\x27\x1c")):
		s.sevenZip(f, data, depth)
	case bytes.HasPrefix(data, []byte("Rar!\x1a\x07")):
		s.rar(f, data, depth)
	case f.Type.MIME == "application/pdf":
		as, used := pdfActive(data, min(s.budget, 16<<20))
		s.take(used)
		if s.budget <= 0 {
			s.take(1) // streams left uninflated: say so
		}
		s.active(f, as)
	case f.Type.MIME == "text/rtf" || bytes.HasPrefix(data, []byte(`{\rt`)):
		s.active(f, RTFActive(data))
	case f.Type.Family == FamilyText || f.Type.Family == FamilyData:
		s.active(f, TextActive(data))
		s.uuencoded(f, data, depth)
	}
}

func (s *scanner) active(f *File, as []Active) {
	for _, a := range as {
		s.add(Finding{Category: a.Category, Kind: a.Kind, Path: f.Path, File: f.Name, Detail: a.Detail})
	}
}

var uuBegin = regexp.MustCompile(`(?m)^begin(-base64)? [0-7]{3,4} ([^\r\n]+)\r?$`)

// bareCRs counts the CRs of b that no LF follows.
func bareCRs(b []byte) int {
	n := 0
	for i := bytes.IndexByte(b, '\r'); i >= 0; {
		if i+1 == len(b) || b[i+1] != '\n' {
			n++
		}
		j := bytes.IndexByte(b[i+1:], '\r')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
