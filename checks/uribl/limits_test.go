package uribl

import (
	"encoding/base64"
	"strings"
	"testing"

	"chainmail/attachments"
	"chainmail/checks"
)

// emptyParts is a multipart message with n empty parts, then a text part
// with a URL.
func emptyParts(n int) string {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range n {
		b.WriteString("--b\r\n\r\n")
	}
	b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nsee http://last.example.com/x\r\n--b--\r\n")
	return b.String()
}

func readMsg(t testing.TB, raw string) *checks.Message {
	t.Helper()
	s := checks.NewSpool(len(raw)+1, "")
	m, err := checks.ReadMessage(strings.NewReader(raw), s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExtractMIMELimits: the URL extraction walks the parts within the
// shared MIME limits and says when parts were left unread. Before: its
// own limits (500 parts, depth 10), and a message past them was cut
// short without a word.
func TestExtractMIMELimits(t *testing.T) {
	f := Extract(readMsg(t, emptyParts(50)), Limits{Walk: attachments.WalkOptions{MaxParts: 100}})
	if f.Unscannable != "" || len(f.Keys) != 1 || f.Keys[0].Value != "example.com" {
		t.Errorf("under the limit: %+v", f)
	}
	f = Extract(readMsg(t, emptyParts(1000)), Limits{Walk: attachments.WalkOptions{MaxParts: 100}})
	if !strings.Contains(f.Unscannable, "more than 100 MIME parts") {
		t.Errorf("past the limit: unscannable %q", f.Unscannable)
	}
}

// BenchmarkExtractManyEmptyParts: a message of a million empty parts.
func BenchmarkExtractManyEmptyParts(b *testing.B) {
	m := readMsg(b, emptyParts(1000000))
	b.SetBytes(m.Size())
	b.ResetTimer()
	for range b.N {
		Extract(m, Limits{})
	}
}

// TestExtractBareCR: a URL in a base64 text part of a message whose line
// ends are bare CRs is found, with CRLF or bare CR alike. Before: not
// with bare CR.
func TestExtractBareCR(t *testing.T) {
	crlf := "From: a@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte("visit http://hidden.example.net/x now")) + "\r\n--b--\r\n"
	cr := strings.ReplaceAll(crlf, "\r\n", "\r")
	for name, raw := range map[string]string{"CRLF": crlf, "bare CR": cr, "bare CR, header only": cr + "\r\n\r\n"} {
		f := Extract(readMsg(t, raw), Limits{})
		found := false
		for _, k := range f.Keys {
			found = found || k.Value == "example.net"
		}
		if !found {
			t.Errorf("%s: hidden.example.net not found: %+v", name, f.Keys)
		}
	}
}
