package gtube

import (
	"context"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
)

// manyParts is a multipart message with n empty parts and, when last is
// set, a base64 text part carrying the GTUBE string after them.
func manyParts(n int, last bool) string {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range n {
		b.WriteString("--b\r\n\r\n")
	}
	if last {
		b.WriteString("--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(String))
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

// TestMIMELimits: the gtube walk obeys the shared MIME limits (parts and
// depth) and reports a message past them instead of cutting it short
// silently. Before: every part was walked and the result was clean.
func TestMIMELimits(t *testing.T) {
	c, err := New(DefaultConfig(), attachments.WalkOptions{MaxParts: 100, MaxDepth: 5})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name, raw string, want checks.Status, limit string) {
		t.Helper()
		r := c.Check(context.Background(), readMessage(t, raw), nil)
		if r.Status != want {
			t.Errorf("%s: %+v, want status %s", name, r, want)
		}
		if want == StatusUnscannable && (len(r.Symbols) != 1 || r.Symbols[0].Name != SymbolUnscannable || !strings.Contains(r.Reason, limit)) {
			t.Errorf("%s: %+v, want %s naming the limit", name, r, SymbolUnscannable)
		}
	}
	check("under the part limit", manyParts(50, true), checks.StatusSpam, "")
	check("past the part limit", manyParts(1000, false), StatusUnscannable, "more than 100 MIME parts")
	// The GTUBE string past the limit is not decoded, but the message is
	// reported.
	check("GTUBE past the part limit", manyParts(1000, true), StatusUnscannable, "more than 100 MIME parts")
	deep := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
	for i := 1; i < 10; i++ {
		deep += "--b" + string(rune('0'+i-1)) + "\r\nContent-Type: multipart/mixed; boundary=b" + string(rune('0'+i)) + "\r\n\r\n"
	}
	check("past the depth limit", deep, StatusUnscannable, "deeper than 5")
}

// BenchmarkManyEmptyParts: one message of a million empty MIME parts.
func BenchmarkManyEmptyParts(b *testing.B) {
	raw := manyParts(1000000, false)
	s := checks.NewSpool(len(raw)+1, "")
	m, err := checks.ReadMessage(strings.NewReader(raw), s)
	if err != nil {
		b.Fatal(err)
	}
	c, _ := New(DefaultConfig(), attachments.WalkOptions{})
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for range b.N {
		c.Check(context.Background(), m, nil)
	}
}

// TestBareCRParts: GTUBE in a base64 text part of a message whose line
// ends are bare CRs is found, as it is with CRLF (the attachments walk
// reads bare CR line ends, as mail clients do); also when a milter hands
// the whole message over as one header field. Before: clean.
func TestBareCRParts(t *testing.T) {
	crlf := "From: a@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(String) + "--b--\r\n"
	cr := strings.ReplaceAll(crlf, "\r\n", "\r")
	for name, raw := range map[string]string{"CRLF": crlf, "bare CR": cr, "bare CR, header only": cr + "\r\n\r\n"} {
		t.Run(name, func(t *testing.T) { wantHit(t, run(t, DefaultConfig(), raw), "decoded text part") })
	}
}
