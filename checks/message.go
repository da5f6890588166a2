package checks

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/text/encoding/ianaindex"
)

// Envelope is what the MTA told us about the SMTP transaction.
type Envelope struct {
	// ClientIP is the SMTP client's address; nil when unknown.
	ClientIP net.IP
	// ClientName is the client's verified reverse-DNS name as the MTA
	// saw it ("unknown" or empty when there is none).
	ClientName string
	ClientPort int
	HELO       string
	// MailFrom is the envelope sender without angle brackets; "" is the
	// null sender.
	MailFrom string
	Rcpts    []string
	// AuthUser is the SASL login ({auth_authen}), empty when the client did
	// not authenticate.
	AuthUser string
	// QueueID is the MTA's queue id (macro i), "NOQUEUE" when unknown.
	QueueID string
	// Macros holds every macro the MTA sent for this message, connection
	// macros included.
	Macros map[string]string
}

// HeaderField is one header field as received, in order.
type HeaderField struct {
	Name string
	// Value is the field body as received: folding kept, line ends as CRLF,
	// the single space after the colon not included.
	Value string
}

// Body is the message body as stored by the milter session or replay.
type Body interface {
	io.ReaderAt
	Size() int64
}

// Message is one message as the checks see it.
type Message struct {
	Envelope
	Header []HeaderField
	Body   Body

	// work follows the checks the chain started on the message; set by
	// Chain.Run before its first check starts.
	work *work
	// raw is the header block built from rawOf, set by Chain.Run before
	// its first check starts (prepareRaw) so that the checks running in
	// parallel share one.
	raw   []byte
	rawOf []HeaderField
}

// work counts the check goroutines still running on one message.
type work struct {
	wg sync.WaitGroup
	n  atomic.Int64
}

func (w *work) start() {
	w.n.Add(1)
	w.wg.Add(1)
}

func (w *work) done() {
	w.n.Add(-1)
	w.wg.Done()
}

// Running returns the number of checks the chain started on m that have
// not returned yet. The chain gives up on a check that runs out of time
// but cannot stop it: until it returns it still reads the body and uses
// the CPU, after the verdict is out.
func (m *Message) Running() int {
	if m.work == nil {
		return 0
	}
	return int(m.work.n.Load())
}

// Wait blocks until every check the chain started on m has returned. Only
// then may the body be closed, and the message's share of the machine
// (its admission slot) be given to another.
func (m *Message) Wait() {
	if m.work != nil {
		m.work.wg.Wait()
	}
}

// Size is the size of the message in bytes (header block and body).
func (m *Message) Size() int64 {
	n := int64(len(m.RawHeader()))
	if m.Body != nil {
		n += m.Body.Size()
	}
	return n
}

// RawHeader returns the header block, in received order with duplicates,
// CRLF line ends and the terminating empty line. During a chain run it
// is built once for the message and shared: callers must not modify it.
func (m *Message) RawHeader() []byte {
	if m.raw != nil && sameFields(m.rawOf, m.Header) {
		return m.raw
	}
	return buildRawHeader(m.Header)
}

// prepareRaw builds the header block the checks of a chain run share.
// It must run before they start: RawHeader only reads the fields.
func (m *Message) prepareRaw() {
	m.raw, m.rawOf = buildRawHeader(m.Header), m.Header
}

// sameFields reports whether a and b are the same slice (a header changed
// by appending or reassigning is not).
func sameFields(a, b []HeaderField) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func buildRawHeader(header []HeaderField) []byte {
	var b bytes.Buffer
	for _, f := range header {
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(toCRLF(f.Value))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// BodyReader returns a fresh reader over the body.
func (m *Message) BodyReader() io.Reader {
	if m.Body == nil {
		return strings.NewReader("")
	}
	return io.NewSectionReader(m.Body, 0, m.Body.Size())
}

// Reader returns the whole message: header block then body.
func (m *Message) Reader() io.Reader {
	return io.MultiReader(bytes.NewReader(m.RawHeader()), m.BodyReader())
}

// Get returns the first value of the named header field, unfolded and
// trimmed; "" when absent.
func (m *Message) Get(name string) string {
	for _, f := range m.Header {
		if strings.EqualFold(f.Name, name) {
			return Unfold(f.Value)
		}
	}
	return ""
}

// Values returns every value of the named header field, unfolded.
func (m *Message) Values(name string) []string {
	var out []string
	for _, f := range m.Header {
		if strings.EqualFold(f.Name, name) {
			out = append(out, Unfold(f.Value))
		}
	}
	return out
}

// Subject returns the Subject with RFC 2047 encoded words decoded where
// they can be; undecodable words are kept as they are.
func (m *Message) Subject() string { return decodeHeader(m.Get("Subject")) }

// wordDecoder decodes the charsets IANA registers for MIME (windows-1252,
// koi8-r, iso-2022-jp, …) besides the UTF-8, US-ASCII and ISO-8859-1 that
// package mime knows itself.
var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
	enc, err := ianaindex.MIME.Encoding(charset)
	if err != nil || enc == nil {
		return nil, fmt.Errorf("charset %q not supported", charset)
	}
	return enc.NewDecoder().Reader(input), nil
}}

// encodedWord matches one RFC 2047 encoded word.
var encodedWord = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// decodeHeader decodes the RFC 2047 encoded words of an unstructured
// header value. A word that cannot be decoded (unknown charset, bad
// encoding) is kept as it is and the others are still decoded.
func decodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	var b strings.Builder
	last, prevDecoded := 0, false
	for _, loc := range encodedWord.FindAllStringIndex(s, -1) {
		gap := s[last:loc[0]]
		word := s[loc[0]:loc[1]]
		d, err := wordDecoder.Decode(word)
		// RFC 2047 §6.2: white space between two encoded words is not
		// displayed.
		if !(err == nil && prevDecoded && strings.TrimLeft(gap, " \t\r\n") == "") {
			b.WriteString(gap)
		}
		if err == nil {
			b.WriteString(d)
		} else {
			b.WriteString(word)
		}
		last, prevDecoded = loc[1], err == nil
	}
	b.WriteString(s[last:])
	return b.String()
}

// Unfold removes header folding (RFC 5322 §2.2.3) and trims the result.
func Unfold(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v)
	}
	return strings.TrimSpace(v)
}

func toCRLF(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// ErrHeaderTooLarge is returned by ParseMessage when the header block
// exceeds the limit.
var ErrHeaderTooLarge = errors.New("checks: header block too large")

// ParseHeader reads a header block from r up to and including the empty
// line and returns the fields in order. A line that is neither a field nor
// a continuation ends the block as if an empty line had come before it:
// the fields so far are returned with a *BodyStartError holding that line,
// which is the first line of the body. EOF ends the block too. With limit
// > 0, a block longer than limit bytes gives ErrHeaderTooLarge.
func ParseHeader(r *bufio.Reader, limit int) ([]HeaderField, error) {
	var fields []HeaderField
	// The field being read: continuation lines are collected in a builder
	// (appending to a string would be quadratic in the number of lines).
	var value strings.Builder
	open := false
	flush := func() {
		if open {
			fields[len(fields)-1].Value = value.String()
			value.Reset()
			open = false
		}
	}
	start := func(name, v string) {
		flush()
		fields = append(fields, HeaderField{Name: name})
		value.WriteString(v)
		open = true
	}
	read := 0
	for {
		line, err := r.ReadString('\n')
		read += len(line)
		if limit > 0 && read > limit {
			flush()
			return fields, ErrHeaderTooLarge
		}
		if line == "" && err != nil {
			flush()
			if err == io.EOF {
				return fields, nil
			}
			return fields, err
		}
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" {
			flush()
			return fields, nil
		}
		if (trimmed[0] == ' ' || trimmed[0] == '\t') && len(fields) > 0 {
			value.WriteString("\r\n")
			value.WriteString(trimmed)
		} else if i := strings.IndexByte(trimmed, ':'); i > 0 && !strings.ContainsAny(trimmed[:i], " \t") {
			start(trimmed[:i], strings.TrimPrefix(trimmed[i+1:], " "))
		} else if i > 0 && strings.TrimRight(trimmed[:i], " \t") != "" && !strings.ContainsAny(strings.TrimRight(trimmed[:i], " \t"), " \t") {
			// "Name : value" (obsolete syntax, RFC 5322 §4.5.3)
			start(strings.TrimRight(trimmed[:i], " \t"), strings.TrimPrefix(trimmed[i+1:], " "))
		} else {
			// Not a header line: the body started without an empty line.
			// Push the line back by returning it as the body start.
			flush()
			return fields, &BodyStartError{Line: line}
		}
		if err != nil {
			flush()
			if err == io.EOF {
				return fields, nil
			}
			return fields, err
		}
	}
}

// BodyStartError reports a header block that ended without an empty line:
// Line is the first body line, which the caller keeps.
type BodyStartError struct{ Line string }

func (e *BodyStartError) Error() string { return "checks: header block ended without an empty line" }

// ReadMessage parses a whole message (an .eml file) into a Message whose
// Body is spooled through s. The envelope is left empty.
func ReadMessage(r io.Reader, s *Spool) (*Message, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	fields, err := ParseHeader(br, 0)
	var bs *BodyStartError
	if errors.As(err, &bs) {
		if _, werr := s.Write([]byte(bs.Line)); werr != nil {
			return nil, werr
		}
	} else if err != nil {
		return nil, err
	}
	if _, err := io.Copy(s, br); err != nil {
		return nil, err
	}
	return &Message{Header: fields, Body: s}, nil
}

// Spool stores a message body in memory up to a threshold and in an
// unlinked temporary file past it, so memory per message stays bounded.
// It is written once, then read through ReadAt.
type Spool struct {
	Threshold int
	Dir       string
	mem       []byte
	file      *os.File
	size      int64
}

// DefaultSpoolThreshold is the body size kept in memory.
const DefaultSpoolThreshold = 1 << 20

// NewSpool returns a spool keeping up to threshold bytes in memory.
func NewSpool(threshold int, dir string) *Spool {
	if threshold <= 0 {
		threshold = DefaultSpoolThreshold
	}
	return &Spool{Threshold: threshold, Dir: dir}
}

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.file == nil && len(s.mem)+len(p) > s.Threshold {
		f, err := os.CreateTemp(s.Dir, "chainmail-body-*")
		if err != nil {
			return 0, fmt.Errorf("checks: spool: %w", err)
		}
		// Unlinked at once: the data goes away with the last descriptor,
		// even if the process dies.
		_ = os.Remove(f.Name())
		if _, err := f.Write(s.mem); err != nil {
			f.Close()
			return 0, fmt.Errorf("checks: spool: %w", err)
		}
		s.file, s.mem = f, nil
	}
	if s.file != nil {
		n, err := s.file.Write(p)
		s.size += int64(n)
		if err != nil {
			return n, fmt.Errorf("checks: spool: %w", err)
		}
		return n, nil
	}
	s.mem = append(s.mem, p...)
	s.size += int64(len(p))
	return len(p), nil
}

// ReadAt implements io.ReaderAt.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("checks: spool: negative offset")
	}
	if s.file != nil {
		return s.file.ReadAt(p, off)
	}
	if off >= int64(len(s.mem)) {
		return 0, io.EOF
	}
	n := copy(p, s.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// OnDisk reports whether the body went past the threshold.
func (s *Spool) OnDisk() bool { return s.file != nil }

// Close releases the spool's file.
func (s *Spool) Close() error {
	s.mem = nil
	if s.file != nil {
		err := s.file.Close()
		s.file = nil
		return err
	}
	return nil
}
