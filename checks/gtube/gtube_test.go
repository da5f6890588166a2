package gtube

import (
	"bytes"
	"context"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/checktest"
)

func readMessage(t *testing.T, raw string) *checks.Message {
	t.Helper()
	s := checks.NewSpool(0, "")
	t.Cleanup(func() { s.Close() })
	m, err := checks.ReadMessage(strings.NewReader(raw), s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, cfg Config, raw string) checks.Result {
	t.Helper()
	c, err := New(cfg, attachments.WalkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Check(context.Background(), readMessage(t, raw), nil)
}

// wantHit checks a GTUBE result and where it was found.
func wantHit(t *testing.T, r checks.Result, where string) {
	t.Helper()
	if r.Status != checks.StatusSpam || r.Class != checks.ClassSpam || len(r.Symbols) != 1 ||
		r.Symbols[0] != (checks.Symbol{Name: Symbol, Score: 1000, Detail: where}) || r.Reason != "GTUBE test string found in "+where {
		t.Errorf("result %+v, want a GTUBE hit in %s", r, where)
	}
}

func wantClean(t *testing.T, r checks.Result) {
	t.Helper()
	if r.Status != checks.StatusClean || r.Class != checks.ClassNone || r.Symbols != nil {
		t.Errorf("result %+v, want clean", r)
	}
}

func b64(s string) string { return checktest.Base64Lines([]byte(s)) }

func qp(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return b.String()
}

func TestPlainBody(t *testing.T) {
	c, _ := New(DefaultConfig(), attachments.WalkOptions{})
	if c.Name() != "gtube" {
		t.Errorf("Name() = %q", c.Name())
	}
	wantHit(t, run(t, DefaultConfig(), "Subject: test\r\n\r\nThis is the GTUBE:\r\n"+String+"\r\n"), "body")
	wantClean(t, run(t, DefaultConfig(), "Subject: test\r\n\r\nnothing to see\r\n"))
	wantClean(t, run(t, DefaultConfig(), "Subject: "+String+"\r\n\r\nonly the header has it\r\n"))
	wantClean(t, run(t, DefaultConfig(), "Subject: test\r\n\r\n"+strings.Replace(String, "GTUBE", "GTUBF", 1)+"\r\n"))
	wantClean(t, run(t, DefaultConfig(), ""))
	// With a Body that is nil.
	if r := c.Check(context.Background(), &checks.Message{}, nil); r.Status != checks.StatusClean {
		t.Errorf("nil body: %+v", r)
	}
	cfg := DefaultConfig()
	cfg.Score = 25
	if r := run(t, cfg, "\r\n"+String); len(r.Symbols) != 1 || r.Symbols[0].Score != 25 {
		t.Errorf("score 25: %+v", r.Symbols)
	}
}

func TestAcrossReadBoundaries(t *testing.T) {
	const chunk = 32 * 1024
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+err": iotest.DataErrReader,
		"odd":      func(r io.Reader) io.Reader { return &chunked{r: r, n: 4093} },
		"32KiB":    func(r io.Reader) io.Reader { return &chunked{r: r, n: chunk} },
	}
	n := len(String)
	offsets := []int{0, 1}
	for _, base := range []int{chunk, chunk + n, 2 * chunk, 2*chunk + n - 1} {
		for _, d := range []int{-n - 1, -n, -n + 1, -n / 2, -2, -1, 0, 1} {
			offsets = append(offsets, base+d)
		}
	}
	for name, wrap := range readers {
		for _, off := range offsets {
			body := strings.Repeat("a", off) + String + strings.Repeat("b", 100)
			if !contains(wrap(strings.NewReader(body))) {
				t.Errorf("%s reader: GTUBE at offset %d not found", name, off)
			}
			// The string cut in two by other bytes is not a hit.
			split := strings.Repeat("a", off) + String[:30] + "\n" + String[30:]
			if contains(wrap(strings.NewReader(split))) {
				t.Errorf("%s reader: split GTUBE at offset %d found", name, off)
			}
		}
	}
	// Through the check: the string straddles the 32 KiB boundary of the
	// body.
	header := "Subject: big\r\n\r\n"
	body := strings.Repeat("x", chunk-30) + String + "\r\n"
	if i := strings.Index(body, String); i >= chunk || i+n <= chunk {
		t.Fatalf("test body does not straddle: %d", i)
	}
	wantHit(t, run(t, DefaultConfig(), header+body), "body")
}

// chunked returns at most n bytes per Read.
type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestTransferEncodedParts(t *testing.T) {
	text := "Hello,\r\n\r\nthis is a test with the string " + String + " inside a longer line of text.\r\n"
	encoded := qp(t, text)
	if strings.Contains(encoded, String) {
		t.Fatalf("quoted-printable test text keeps the string whole:\n%s", encoded)
	}
	for _, tc := range []struct {
		name, raw string
	}{
		{"base64 single part", "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(text)},
		{"base64 without a Content-Type", "Content-Transfer-Encoding: base64\r\n\r\n" + b64(text)},
		{"quoted-printable single part", "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded},
		{"unknown charset", "Content-Type: text/plain; charset=x-unknown\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(text)},
		{"multipart", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n" +
			"--b1\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64("<p>nothing</p>") +
			"--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(text) +
			"--b1--\r\n"},
		{"nested multipart", "Content-Type: multipart/mixed; boundary=outer\r\n\r\n" +
			"--outer\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64("%PDF-1.4") +
			"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
			"--inner\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded + "\r\n" +
			"--inner--\r\n" +
			"--outer--\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.raw, String) {
				t.Fatal("the raw message holds the string: not a test of decoding")
			}
			wantHit(t, run(t, DefaultConfig(), tc.raw), "decoded text part")
		})
	}
	// Only text parts are decoded and searched.
	raw := "Content-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nclean text\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(text) +
		"--b1--\r\n"
	wantClean(t, run(t, DefaultConfig(), raw))
}

func TestMaxScan(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxScan = 1000
	at := func(off int) string { return "Subject: x\r\n\r\n" + strings.Repeat("z", off) + String + "\r\n" }
	wantHit(t, run(t, cfg, at(0)), "body")
	wantHit(t, run(t, cfg, at(1000-len(String))), "body")
	wantClean(t, run(t, cfg, at(1000-len(String)+1))) // ends one byte past the limit
	wantClean(t, run(t, cfg, at(2000)))

	// The limit bounds the encoded bytes read for decoding too.
	text := strings.Repeat("filler line of text\r\n", 100) + String + "\r\n"
	raw := "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(text)
	wantHit(t, run(t, DefaultConfig(), raw), "decoded text part")
	wantClean(t, run(t, cfg, raw))

	// 0 means the default.
	c, _ := New(Config{Score: 1000}, attachments.WalkOptions{})
	if c.cfg.MaxScan != DefaultConfig().MaxScan {
		t.Errorf("MaxScan 0 became %d", c.cfg.MaxScan)
	}
	if got := c.Check(context.Background(), readMessage(t, at(5<<20)), nil); got.Status != checks.StatusSpam {
		t.Errorf("GTUBE at 5 MiB with the default limit: %s", got.Status)
	}
}
