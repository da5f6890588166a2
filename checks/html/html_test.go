package html

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
)

func message(t *testing.T, eml string) *checks.Message {
	t.Helper()
	s := checks.NewSpool(0, "")
	m, err := checks.ReadMessage(strings.NewReader(strings.ReplaceAll(eml, "\n", "\r\n")), s)
	if err != nil {
		t.Fatal(err)
	}
	m.QueueID = "4QueueID01"
	return m
}

func run(t *testing.T, mod func(*Config), m *checks.Message, prior ...checks.Result) checks.Result {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Check(context.Background(), m, prior)
	r.Check = "html"
	return r
}

func bodyOf(b checks.Body) []byte {
	out := make([]byte, b.Size())
	n, _ := b.ReadAt(out, 0)
	return out[:n]
}

// sameOutside asserts old and new differ only in old[from:to], replaced
// by something, and returns that replacement.
func sameOutside(t *testing.T, old, new []byte, from, to int) []byte {
	t.Helper()
	tail := len(old) - to
	if !bytes.Equal(old[:from], new[:from]) || !bytes.Equal(old[to:], new[len(new)-tail:]) {
		t.Fatalf("bytes outside [%d:%d] changed:\nold %q\nnew %q", from, to, old, new)
	}
	return new[from : len(new)-tail]
}

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return strings.ReplaceAll(b.String(), "\r\n", "\n")
}

const htmlDoc = `<html><body><p>Dear customer, caf=C3=A9</p><script>document.location="http://evil.example/"</script><a href="https://ok.example/" onclick="steal()">link</a><img src="http://track.example/o.gif" width=1 height=1></body></html>`

var nested = `From: a@example.net
To: b@example.org
Subject: offer
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Dear customer <script> in plain text is only text.
--alt
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

` + qp(strings.ReplaceAll(htmlDoc, "caf=C3=A9", "café")) + `
--alt--

--outer
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

AAECAwQF
--outer--
epilogue
`

func TestDisarmNestedQuotedPrintable(t *testing.T) {
	m := message(t, nested)
	r := run(t, nil, m)
	if r.Status != StatusDisarmed || r.NewBody == nil {
		t.Fatalf("status %s reason %q, new body %v", r.Status, r.Reason, r.NewBody != nil)
	}
	old, nb := bodyOf(m.Body), bodyOf(r.NewBody)
	// The HTML part's body is the only change.
	hdr := []byte("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
	from := bytes.Index(old, hdr) + len(hdr)
	to := bytes.Index(old, []byte("\r\n--alt--"))
	enc := sameOutside(t, old, nb, from, to)
	for _, l := range bytes.Split(enc, []byte("\r\n")) {
		if len(l) > 76 {
			t.Errorf("quoted-printable line of %d bytes", len(l))
		}
	}
	if bytes.Contains(enc, []byte("\n")) && !bytes.Contains(enc, []byte("\r\n")) {
		t.Errorf("line ends changed: %q", enc)
	}
	dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(enc)))
	if err != nil {
		t.Fatal(err)
	}
	want := `<html><body><p>Dear customer, café</p><a href="https://ok.example/">link</a><img src="` + WebBugReplacement + `" width="1" height="1"></body></html>`
	if string(dec) != want {
		t.Errorf("delivered HTML\n got %q\nwant %q", dec, want)
	}
	if got := r.Facts["disarmed"].([]string); strings.Join(got, ",") != "script,web-bug" {
		t.Errorf("disarmed %v", got)
	}
	var lines []string
	for _, e := range r.Events {
		lines = append(lines, e.Line)
	}
	if want := "Content Checks: Detected and have disabled HTML script tags in 4QueueID01|Content Checks: Detected and have disabled web bugs in 4QueueID01"; strings.Join(lines, "|") != want {
		t.Errorf("lines %q\nwant %q", lines, want)
	}
	if r.Score != 0 {
		t.Errorf("score %v: a disarm alone scores 0", r.Score)
	}
}

func TestDisarmBase64SinglePart(t *testing.T) {
	html := `<p>hi</p><iframe src="http://evil.example/"></iframe><form action="http://phish.example/"><input name=pw></form>` + strings.Repeat("<p>filler text</p>", 20)
	b64 := base64.StdEncoding.EncodeToString([]byte(html))
	var lines []string
	for len(b64) > 76 {
		lines, b64 = append(lines, b64[:76]), b64[76:]
	}
	lines = append(lines, b64)
	m := message(t, "From: a@example.net\nSubject: x\nMIME-Version: 1.0\nContent-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: base64\n\n"+strings.Join(lines, "\n")+"\n")
	r := run(t, nil, m)
	if r.NewBody == nil {
		t.Fatalf("status %s %q: no new body", r.Status, r.Reason)
	}
	nb := bodyOf(r.NewBody)
	if !bytes.HasSuffix(nb, []byte("\r\n")) {
		t.Errorf("final line break lost: %q", nb)
	}
	for _, l := range bytes.Split(bytes.TrimSuffix(nb, []byte("\r\n")), []byte("\r\n")) {
		if len(l) > 76 {
			t.Errorf("base64 line of %d", len(l))
		}
	}
	dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(nb), "\r\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	want := `<p>hi</p><iframe></iframe><form><input name="pw" disabled="disabled"></form>` + strings.Repeat("<p>filler text</p>", 20)
	if string(dec) != want {
		t.Errorf("got %q\nwant %q", dec, want)
	}
}

func TestDenyIsAFinding(t *testing.T) {
	m := message(t, nested)
	r := run(t, func(c *Config) { c.Script = Deny; c.WebBugs = Allow }, m)
	if r.Status != StatusFound || r.NewBody != nil {
		t.Fatalf("status %s, new body %v", r.Status, r.NewBody != nil)
	}
	if got := r.Facts["findings"].([]string); len(got) != 1 || got[0] != "script" {
		t.Errorf("findings %v", got)
	}
	if len(r.Symbols) != 1 || r.Symbols[0].Name != "HTML_SCRIPT" || r.Score != 1 {
		t.Errorf("symbols %v score %v", r.Symbols, r.Score)
	}
	if len(r.Events) != 1 || r.Events[0].Line != "Content Checks: Detected HTML script tags in 4QueueID01 (2)" {
		t.Errorf("events %+v", r.Events)
	}
}

func TestAllowLooksAtNothing(t *testing.T) {
	r := run(t, func(c *Config) {
		c.Script, c.IFrame, c.Form, c.ObjectCodebase, c.WebBugs = Allow, Allow, Allow, Allow, Allow
	}, message(t, nested))
	if r.Status != checks.StatusClean || r.NewBody != nil || len(r.Events) != 0 {
		t.Errorf("status %s events %v", r.Status, r.Events)
	}
}

func TestTooBigIsUnscannable(t *testing.T) {
	m := message(t, nested)
	r := run(t, func(c *Config) { c.MaxPartSize = 100 }, m)
	if r.Status != StatusUnscannable || r.NewBody != nil || r.Facts["unscannable"] != true {
		t.Fatalf("status %s %q", r.Status, r.Reason)
	}
	if len(r.Events) != 1 || !strings.HasPrefix(r.Events[0].Line, "Content Checks: Could not check HTML in 4QueueID01: 1.1.2: too big") {
		t.Errorf("events %+v", r.Events)
	}
}

func TestCharsetThatCannotBeRewritten(t *testing.T) {
	m := message(t, "From: a@example.net\nMIME-Version: 1.0\nContent-Type: text/html; charset=ISO-2022-JP\n\n<script>x()</script>\n")
	r := run(t, nil, m)
	if r.Status != StatusUnscannable || r.NewBody != nil {
		t.Fatalf("status %s %q", r.Status, r.Reason)
	}
	// A tracking pixel alone in such a part is no reason to hold the
	// mail: delivered as it is, the web bug counted.
	m = message(t, "From: a@example.net\nMIME-Version: 1.0\nContent-Type: text/html; charset=ISO-2022-JP\n\n<p>news</p><img src=\"http://t.example/p.gif\" width=1 height=1>\n")
	r = run(t, nil, m)
	if r.Status == StatusUnscannable || r.NewBody != nil || r.Facts["unscannable"] != false {
		t.Fatalf("web bug in ISO-2022-JP: status %s %q", r.Status, r.Reason)
	}
}

func TestCleanHTMLUntouched(t *testing.T) {
	m := message(t, "From: a@example.net\nMIME-Version: 1.0\nContent-Type: text/html\n\n<p>Hello</p>\n")
	r := run(t, nil, m)
	if r.Status != checks.StatusClean || r.NewBody != nil || r.Facts["parts"] != 1 {
		t.Errorf("status %s parts %v", r.Status, r.Facts["parts"])
	}
}

// The attachment check removed a file: the html check rewrites that
// body, so both changes are delivered.
func TestBuildsOnAttachmentsBody(t *testing.T) {
	m := message(t, nested)
	src, size := attachments.Message(m.RawHeader(), m.Body)
	tree := attachments.Walk(src, size, attachments.WalkOptions{})
	var bin *attachments.Entity
	for _, e := range tree.Root.Leaves() {
		if e.Filename() == "data.bin" {
			bin = e
		}
	}
	cut, err := attachments.ApplyEdits(src, int64(len(m.RawHeader())), size, []attachments.Edit{{Entity: bin, Data: []byte("Content-Type: text/plain\r\n\r\nremoved")}})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, m, checks.Result{Check: "attachment", NewBody: cut})
	nb := bodyOf(r.NewBody)
	if !bytes.Contains(nb, []byte("\r\nremoved\r\n--outer--")) || bytes.Contains(nb, []byte("AAECAwQF")) {
		t.Errorf("the attachment's removal was lost:\n%s", nb)
	}
	if bytes.Contains(nb, []byte("document.location")) {
		t.Errorf("script kept:\n%s", nb)
	}
}

func TestPastMIMELimitsIsUnscannable(t *testing.T) {
	m := message(t, nested)
	r := run(t, func(c *Config) { c.Walk.MaxParts = 2 }, m)
	if r.Status != StatusUnscannable || r.Facts["unscannable"] != true {
		t.Errorf("status %s %q", r.Status, r.Reason)
	}
}
