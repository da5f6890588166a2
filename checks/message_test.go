package checks

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readMessage(t testing.TB, raw string, threshold int) (*Message, *Spool) {
	t.Helper()
	s := NewSpool(threshold, t.TempDir())
	m, err := ReadMessage(strings.NewReader(raw), s)
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	return m, s
}

func body(t testing.TB, m *Message) string {
	t.Helper()
	b, err := io.ReadAll(m.BodyReader())
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func TestRawHeaderKeepsOrderAndDuplicates(t *testing.T) {
	m := &Message{Header: []HeaderField{
		{Name: "Received", Value: "from b by c"},
		{Name: "DKIM-Signature", Value: "v=1; a=rsa-sha256;\n\tb=abc"},
		{Name: "Received", Value: "from a by b"},
		{Name: "Subject", Value: "x\r\n y"},
		{Name: "X-Empty", Value: ""},
	}}
	want := "Received: from b by c\r\n" +
		"DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n" +
		"Received: from a by b\r\n" +
		"Subject: x\r\n y\r\n" +
		"X-Empty: \r\n" +
		"\r\n"
	if got := string(m.RawHeader()); got != want {
		t.Errorf("RawHeader:\n%q\nwant\n%q", got, want)
	}
	if got := m.Values("received"); !reflect.DeepEqual(got, []string{"from b by c", "from a by b"}) {
		t.Errorf("Values(received) = %q", got)
	}
	if got := m.Get("SUBJECT"); got != "x y" {
		t.Errorf("Get(SUBJECT) = %q", got)
	}
	if got := m.Get("Missing"); got != "" {
		t.Errorf("Get(Missing) = %q", got)
	}
	if got, want := m.Size(), int64(len(want)); got != want {
		t.Errorf("Size() without a body = %d, want %d", got, want)
	}
}

func TestReadMessage(t *testing.T) {
	raw := "Received: from a\n" +
		"\tby b\n" +
		"Received: from c by d\n" +
		"Subject:  two spaces\n" +
		"Comments : obsolete syntax\n" +
		"X-8bit: Grüße \xff\xfe raw\n" +
		"From: a@example.com\n" +
		"\n" +
		"Body line 1\r\n" +
		"\r\n" +
		"Not: a header\n"
	m, _ := readMessage(t, raw, 0)
	want := []HeaderField{
		{Name: "Received", Value: "from a\r\n\tby b"},
		{Name: "Received", Value: "from c by d"},
		{Name: "Subject", Value: " two spaces"},
		{Name: "Comments", Value: "obsolete syntax"},
		{Name: "X-8bit", Value: "Grüße \xff\xfe raw"},
		{Name: "From", Value: "a@example.com"},
	}
	if !reflect.DeepEqual(m.Header, want) {
		t.Errorf("fields:\n%q\nwant\n%q", m.Header, want)
	}
	if got, want := body(t, m), "Body line 1\r\n\r\nNot: a header\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	wantRaw := "Received: from a\r\n\tby b\r\nReceived: from c by d\r\nSubject:  two spaces\r\nComments: obsolete syntax\r\nX-8bit: Grüße \xff\xfe raw\r\nFrom: a@example.com\r\n\r\n"
	if got := string(m.RawHeader()); got != wantRaw {
		t.Errorf("RawHeader:\n%q\nwant\n%q", got, wantRaw)
	}
	if got, want := m.Size(), int64(len(wantRaw)+len("Body line 1\r\n\r\nNot: a header\n")); got != want {
		t.Errorf("Size() = %d, want %d", got, want)
	}
	all, _ := io.ReadAll(m.Reader())
	if string(all) != wantRaw+"Body line 1\r\n\r\nNot: a header\n" {
		t.Errorf("Reader() = %q", all)
	}
}

func TestReadMessageWithoutEmptyLine(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		fields    int
		body      string
	}{
		{"body line ends the block", "From: a@example.com\r\nSubject: hi\r\nThis is the body, not a header\r\nsecond line\r\n", 2, "This is the body, not a header\r\nsecond line\r\n"},
		{"a line with a colon after a space", "From: a@example.com\nDear friend: hello\n", 1, "Dear friend: hello\n"},
		{"EOF ends the block", "From: a@example.com\r\nSubject: hi", 2, ""},
		{"no header at all", "just text\n", 0, "just text\n"},
		{"leading continuation", " folded: no field before\n\nbody", 0, " folded: no field before\n\nbody"},
		{"empty", "", 0, ""},
		{"only the empty line", "\r\nbody", 0, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := readMessage(t, tc.raw, 0)
			if len(m.Header) != tc.fields {
				t.Errorf("%d fields %q, want %d", len(m.Header), m.Header, tc.fields)
			}
			if got := body(t, m); got != tc.body {
				t.Errorf("body %q, want %q", got, tc.body)
			}
		})
	}
	fields, err := ParseHeader(bufio.NewReader(strings.NewReader("A: b\nbody\n")), 0)
	var bs *BodyStartError
	if !errors.As(err, &bs) || bs.Line != "body\n" || len(fields) != 1 {
		t.Errorf("ParseHeader: %q, %v", fields, err)
	}
}

func TestParseHeaderManyContinuationLines(t *testing.T) {
	// 200,000 folded lines (600 KB): linear work, not quadratic (that took
	// minutes).
	raw := "A: x\n" + strings.Repeat(" y\n", 200000) + "B: z\n\nbody"
	start := time.Now()
	m, _ := readMessage(t, raw, 0)
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %v", el)
	}
	if len(m.Header) != 2 || len(m.Header[0].Value) != 1+200000*4 || !strings.HasSuffix(m.Header[0].Value, "\r\n y") || m.Header[1].Value != "z" {
		t.Errorf("fields: %d, first value %d bytes", len(m.Header), len(m.Header[0].Value))
	}
}

func TestParseHeaderLimit(t *testing.T) {
	raw := "A: " + strings.Repeat("x", 100) + "\r\nB: c\r\n\r\n"
	if _, err := ParseHeader(bufio.NewReader(strings.NewReader(raw)), 50); !errors.Is(err, ErrHeaderTooLarge) {
		t.Errorf("limit 50: %v", err)
	}
	if f, err := ParseHeader(bufio.NewReader(strings.NewReader(raw)), len(raw)); err != nil || len(f) != 2 {
		t.Errorf("limit %d: %q %v", len(raw), f, err)
	}
}

func TestSubject(t *testing.T) {
	for _, tc := range []struct {
		raw, want string
	}{
		{"plain subject", "plain subject"},
		{"=?UTF-8?Q?caf=C3=A9?= time", "café time"},
		{"=?utf-8?B?R3LDvMOfZQ==?=", "Grüße"},
		{"=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab"},
		{"=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab"},
		{"=?iso-8859-1?q?p=E4ivitys?=", "päivitys"},
		{"=?windows-1252?q?=93quoted=94?=", "\u201cquoted\u201d"},
		{"=?koi8-r?b?8NLJ18XU?=", "Привет"},
		{"=?iso-2022-jp?B?GyRCJEskTyQkGyhC?=", "にはい"},
		// An undecodable word stays as it is; the others are decoded.
		{"=?x-unknown?q?abc?= =?UTF-8?Q?caf=C3=A9?=", "=?x-unknown?q?abc?= café"},
		{"=?UTF-8?Q?caf=C3=A9?= =?x-unknown?q?abc?= end", "café =?x-unknown?q?abc?= end"},
		{"=?UTF-8?B?!!!not base64?= x", "=?UTF-8?B?!!!not base64?= x"},
		{"=?UTF-8?Q?ok?= =?UTF-8?B?@@@?=", "ok =?UTF-8?B?@@@?="},
		{"raw 8-bit \xe9t\xe9 \xff", "raw 8-bit \xe9t\xe9 \xff"},
	} {
		m := &Message{Header: []HeaderField{{Name: "Subject", Value: tc.raw}}}
		if got := m.Subject(); got != tc.want {
			t.Errorf("Subject(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
	if got := (&Message{}).Subject(); got != "" {
		t.Errorf("no Subject: %q", got)
	}
}

func TestSpool(t *testing.T) {
	dir := t.TempDir()
	s := NewSpool(1024, dir)
	defer s.Close()
	var want bytes.Buffer
	write := func(p []byte) {
		t.Helper()
		n, err := s.Write(p)
		if err != nil || n != len(p) {
			t.Fatalf("Write: %d, %v", n, err)
		}
		want.Write(p)
	}
	chunk := make([]byte, 300)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for i := 0; i < 3; i++ {
		write(chunk)
	}
	if s.OnDisk() || s.Size() != 900 {
		t.Fatalf("900 bytes: OnDisk %v, Size %d", s.OnDisk(), s.Size())
	}
	check := func(stage string) {
		t.Helper()
		got := make([]byte, want.Len())
		if n, err := s.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%s: ReadAt(all) = %d, %v, equal %v", stage, n, err, bytes.Equal(got, want.Bytes()))
		}
		for _, off := range []int64{0, 1, 299, 900, 1023, 1024, 1025, int64(want.Len() - 1)} {
			if off >= int64(want.Len()) {
				continue
			}
			p := make([]byte, 100)
			n, err := s.ReadAt(p, off)
			end := min(int(off)+100, want.Len())
			if n != end-int(off) || !bytes.Equal(p[:n], want.Bytes()[off:end]) || (n < 100 && err != io.EOF) {
				t.Errorf("%s: ReadAt(off %d) = %d, %v", stage, off, n, err)
			}
		}
		if n, err := s.ReadAt(make([]byte, 1), int64(want.Len())); n != 0 || err != io.EOF {
			t.Errorf("%s: ReadAt(end) = %d, %v", stage, n, err)
		}
		if _, err := s.ReadAt(make([]byte, 1), -1); err == nil {
			t.Errorf("%s: ReadAt(-1) gave no error", stage)
		}
	}
	check("memory")
	write(chunk) // 1200 > 1024: to disk
	if !s.OnDisk() || s.Size() != 1200 {
		t.Fatalf("1200 bytes: OnDisk %v, Size %d", s.OnDisk(), s.Size())
	}
	write([]byte("tail"))
	check("disk")
	// The file is unlinked at once.
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("spool dir holds %v (%v)", ents, err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestReadMessageSpoolsToDisk(t *testing.T) {
	bodyText := strings.Repeat("0123456789abcdef", 1000)
	raw := "From: a@example.com\r\nX-8: \xc3\xa9\xff\r\n\r\n" + bodyText
	m, s := readMessage(t, raw, 4096)
	if !s.OnDisk() {
		t.Fatal("16000-byte body with threshold 4096 is not on disk")
	}
	if got := body(t, m); got != bodyText {
		t.Errorf("body differs (%d bytes, want %d)", len(got), len(bodyText))
	}
	all, _ := io.ReadAll(m.Reader())
	if string(all) != raw {
		t.Error("Reader() differs from the input")
	}
	m, s = readMessage(t, raw, 1<<20)
	if s.OnDisk() || body(t, m) != bodyText {
		t.Errorf("below the threshold: OnDisk %v", s.OnDisk())
	}
}

// FuzzReadMessage: ReadMessage never fails or panics on in-memory input,
// the body is what follows the header block, the sizes add up, and the
// rebuilt message reads back to the same fields and body.
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		"",
		"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n",
		"Received: from a\n\tby b\nSubject: =?UTF-8?Q?caf=C3=A9?=\n\nbody\n",
		"From: a\nnot a header\nmore\n",
		"Name : obsolete\r\n\r\n",
		" leading continuation\r\n\r\n",
		"A: b\r\r\n\r\r\nbody",
		"X: \xff\xfe\x00\r\n\r\n\x00",
		"A:\n",
		"A: b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// A small threshold so that bodies go to (unlinked) files too.
		s := NewSpool(64, "")
		defer s.Close()
		m, err := ReadMessage(bytes.NewReader(in), s)
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		b, err := io.ReadAll(m.BodyReader())
		if err != nil {
			t.Fatalf("reading the body: %v", err)
		}
		if int64(len(b)) != m.Body.Size() || !bytes.HasSuffix(in, b) {
			t.Fatalf("body %q (Size %d) is not the end of the input", b, m.Body.Size())
		}
		raw := m.RawHeader()
		if m.Size() != int64(len(raw))+int64(len(b)) {
			t.Fatalf("Size %d != header %d + body %d", m.Size(), len(raw), len(b))
		}
		all, _ := io.ReadAll(m.Reader())
		if !bytes.Equal(all, append(raw, b...)) {
			t.Fatal("Reader() is not RawHeader() + body")
		}
		s2 := NewSpool(0, "")
		m2, err := ReadMessage(bytes.NewReader(all), s2)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m2.Header, m.Header) && !(len(m2.Header) == 0 && len(m.Header) == 0) {
			t.Fatalf("fields after a rebuild:\n%q\nwant\n%q", m2.Header, m.Header)
		}
		b2, _ := io.ReadAll(m2.BodyReader())
		if !bytes.Equal(b2, b) {
			t.Fatalf("body after a rebuild %q, want %q", b2, b)
		}
		_ = m.Subject()
	})
}
