package attachment

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/checktest"
)

// raw reads a whole message (header and body; an mbox From line is
// dropped) into a checks.Message.
func raw(t *testing.T, s string) *checks.Message {
	t.Helper()
	if strings.HasPrefix(s, "From ") {
		_, s, _ = strings.Cut(s, "\n")
	}
	m, err := checks.ReadMessage(strings.NewReader(s), checks.NewSpool(0, ""))
	if err != nil {
		t.Fatal(err)
	}
	m.Envelope.QueueID = "4FmtQueue01"
	return m
}

func b64(data []byte) string { return checktest.Base64Lines(data) }

// setupExe is a program large enough to be sent in two fragments.
var setupExe = append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), bytes.Repeat([]byte("setup payload "), 200)...)

// partialMessages splits a message carrying setup.exe into two
// message/partial fragments (RFC 2046 §5.2.2), as Outlook Express did.
func partialMessages() [2]string {
	inner := "From: a@example.net\r\nSubject: installer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n" +
		"--in\r\nContent-Type: application/octet-stream; name=setup.exe\r\nContent-Disposition: attachment; filename=setup.exe\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b64(setupExe) + "--in--\r\n"
	half := strings.Index(inner[len(inner)/2:], "\r\n") + len(inner)/2 + 2
	frag := func(n int, body string) string {
		return "From: a@example.net\r\nTo: b@example.org\r\nSubject: installer (" + string(rune('0'+n)) + "/2)\r\nMIME-Version: 1.0\r\n" +
			"Content-Type: message/partial; id=\"setup-42@example.net\"; number=" + string(rune('0'+n)) + "; total=2\r\n\r\n" + body
	}
	return [2]string{frag(1, inner[:half]), frag(2, inner[half:])}
}

const externalBody = "From: a@example.net\r\nTo: b@example.org\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
	"--b\r\nContent-Type: text/plain\r\n\r\nthe report is attached\r\n" +
	"--b\r\nContent-Type: message/external-body; access-type=URL; URL=\"http://files.example.net/report.exe\"\r\n\r\n" +
	"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\r\n--b--\r\n"

// smimeEnveloped: an S/MIME encrypted message (RFC 8551 §3.3); the
// content is opaque CMS.
var smimeEnveloped = "From: a@example.net\r\nTo: b@example.org\r\nSubject: secret\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Disposition: attachment; filename=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	b64(append([]byte("\x30\x82\x01\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x82"), bytes.Repeat([]byte{0xa5, 0x17}, 120)...))

// pgpMIME: a PGP/MIME encrypted message (RFC 3156 §4).
const pgpMIME = "From: a@example.net\r\nTo: b@example.org\r\nSubject: secret\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=enc\r\n\r\n" +
	"--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n" +
	"--enc\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA8ZrjzIFMm0NAQf/Z4l0xXw\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n--enc--\r\n"

const inlinePGP = "From: a@example.net\r\nTo: b@example.org\r\nSubject: secret\r\n\r\n" +
	"Hi,\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nVersion: GnuPG v1\r\n\r\nhQEMA8ZrjzIFMm0NAQf/Z4l0xXw\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n"

// TestMessageFormats: each format is its finding, anywhere in the tree
// (the top level too); the default options reject fragments and
// external bodies, allow encrypted and signed messages, and log all but
// an allowed signature.
func TestMessageFormats(t *testing.T) {
	signed, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "spamassassin-public-corpus-sample"), "easy-ham-2", "00002.5a587ae61666c5aa097c8e866aedcc59.eml"))
	if err != nil {
		t.Fatal(err)
	}
	parts := partialMessages()
	wrapped := "From: a@example.net\r\nTo: b@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=w\r\n\r\n" +
		"--w\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--w\r\nContent-Type: message/rfc822\r\n\r\n" + parts[0] + "\r\n--w--\r\n"
	for _, tc := range []struct {
		name, msg     string
		kind          string
		refused, held []string
		logged        string // a line containing this, "" for none
		symbol        string
	}{
		{"partial 1 of setup.exe", parts[0], "message-partial", []string{"message-partial"}, []string{},
			`Attachment Checks: policy: message/partial: fragment 1 of 2 of message "setup-42@example.net", reassembled by the reader's client, never scanned whole (4FmtQueue01 message)`, SymPartial},
		{"partial 2", parts[1], "message-partial", []string{"message-partial"}, []string{}, "fragment 2 of 2", SymPartial},
		{"partial inside a forward", wrapped, "message-partial", []string{"message-partial"}, []string{}, "(4FmtQueue01 unnamed-1.2.1)", SymPartial},
		{"external body", externalBody, "message-external-body", []string{"message-external-body"}, []string{},
			"message/external-body: content fetched by the reader's client from elsewhere (URL http://files.example.net/report.exe), never scanned (4FmtQueue01 unnamed-1.2)", SymExternalBody},
		{"S/MIME enveloped", smimeEnveloped, "message-encrypted", []string{}, []string{}, "encrypted message (S/MIME enveloped-data): content not scanned (4FmtQueue01 smime.p7m)", SymEncryptedMsg},
		{"PGP/MIME", pgpMIME, "message-encrypted", []string{}, []string{}, "encrypted message (multipart/encrypted, application/pgp-encrypted): content not scanned (4FmtQueue01 message)", SymEncryptedMsg},
		{"inline PGP", inlinePGP, "message-encrypted", []string{}, []string{}, "encrypted message (inline PGP in text/plain): content not scanned", SymEncryptedMsg},
		{"PGP/MIME signed (corpus)", string(signed), "message-signed", []string{}, []string{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCheck(t, nil).Check(context.Background(), raw(t, tc.msg), nil)
			if !contains(r.Facts["findings"].([]string), tc.kind) {
				t.Errorf("findings %v, want %s", r.Facts["findings"], tc.kind)
			}
			if got := r.Facts["refused"]; !reflect.DeepEqual(got, tc.refused) {
				t.Errorf("refused %v, want %v", got, tc.refused)
			}
			if got := r.Facts["held"]; !reflect.DeepEqual(got, tc.held) {
				t.Errorf("held %v, want %v", got, tc.held)
			}
			ls := strings.Join(lines(r), "\n")
			if tc.logged == "" && strings.Contains(ls, "policy:") || tc.logged != "" && !strings.Contains(ls, tc.logged) {
				t.Errorf("log:\n%s\nwant a line with %q", ls, tc.logged)
			}
			if tc.symbol != "" && !hasSymbol(r, tc.symbol) {
				t.Errorf("symbols %v, want %s", r.Symbols, tc.symbol)
			}
		})
	}
}

// TestMessageFormatsPolicy: the options move each kind between refused,
// held and allowed; a signed message held is logged.
func TestMessageFormatsPolicy(t *testing.T) {
	signed := "From: a@example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=s\r\n\r\n" +
		"--s\r\nContent-Type: text/plain\r\n\r\nhello\r\n--s\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBAA==\r\n--s--\r\n"
	c := newCheck(t, func(c *Config) {
		c.PartialMessages, c.ExternalBody, c.EncryptedMessages, c.SignedMessages = PolicyAllow, PolicyQuarantine, PolicyReject, PolicyQuarantine
	})
	for _, tc := range []struct {
		msg, kind     string
		refused, held []string
	}{
		{partialMessages()[0], "message-partial", []string{}, []string{}},
		{externalBody, "message-external-body", []string{}, []string{"message-external-body"}},
		{smimeEnveloped, "message-encrypted", []string{"message-encrypted"}, []string{}},
		{pgpMIME, "message-encrypted", []string{"message-encrypted"}, []string{}},
		{signed, "message-signed", []string{}, []string{"message-signed"}},
	} {
		r := c.Check(context.Background(), raw(t, tc.msg), nil)
		if !contains(r.Facts["findings"].([]string), tc.kind) || !reflect.DeepEqual(r.Facts["refused"], tc.refused) || !reflect.DeepEqual(r.Facts["held"], tc.held) {
			t.Errorf("%s: findings %v refused %v held %v, want refused %v held %v", tc.kind, r.Facts["findings"], r.Facts["refused"], r.Facts["held"], tc.refused, tc.held)
		}
		if !strings.Contains(strings.Join(lines(r), "\n"), "Attachment Checks: policy: ") {
			t.Errorf("%s: not logged: %q", tc.kind, lines(r))
		}
	}
	// S/MIME signed-data is signed, not encrypted; certs-only neither.
	for typ, want := range map[string]string{"signed-data": "message-signed", "certs-only": ""} {
		m := "From: a@example.net\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=" + typ + "; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIBAA==\r\n"
		r := c.Check(context.Background(), raw(t, m), nil)
		got := ""
		for _, k := range r.Facts["findings"].([]string) {
			if strings.HasPrefix(k, "message-") {
				got = k
			}
		}
		if got != want {
			t.Errorf("smime-type=%s: %v, want %q", typ, r.Facts["findings"], want)
		}
	}
}

// TestMaxAttachmentSize: a file whose decoded size is over the limit is a
// finding and, by default, refused; one byte under is not, whatever its
// base64 length; archive members are not measured; max_file_size alone
// still refuses nothing.
func TestMaxAttachmentSize(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 10000)
	c := newCheck(t, func(c *Config) { c.MaxAttachmentSize = 10000 })
	r := c.Check(context.Background(), msg(part{"a.bin", "application/octet-stream", big}), nil)
	if !reflect.DeepEqual(r.Facts["refused"], []string{}) {
		t.Errorf("exactly at the limit: refused %v", r.Facts["refused"])
	}
	r = c.Check(context.Background(), msg(part{"a.bin", "application/octet-stream", append(big, 'y')}), nil)
	if !reflect.DeepEqual(r.Facts["refused"], []string{"attachment-too-large"}) || !hasSymbol(r, SymTooLarge) {
		t.Errorf("one byte over: refused %v symbols %v", r.Facts["refused"], r.Symbols)
	}
	if ls := strings.Join(lines(r), "\n"); !strings.Contains(ls, "Attachment Checks: policy: ASCII text of 10001 bytes, over the 10000 bytes allowed per attachment (4QueueID01 a.bin)") {
		t.Errorf("log:\n%s", ls)
	}
	// A program past the bytes read for sniffing: its size is counted
	// from the decoded part, not estimated from the base64.
	prog := append(append([]byte{}, exe...), make([]byte, 200000-len(exe))...)
	for limit, want := range map[checks.Size][]string{200000: {}, 199999: {"attachment-too-large"}} {
		r = newCheck(t, func(c *Config) { c.MaxAttachmentSize = limit }).Check(context.Background(), msg(part{"setup.bin", "application/octet-stream", prog}), nil)
		if !reflect.DeepEqual(r.Facts["refused"], want) {
			t.Errorf("program of 200000 bytes, limit %d: refused %v, want %v", limit, r.Facts["refused"], want)
		}
	}
	// A zip of a large member: the zip is small, the member not counted.
	zipped := zipOf(t, "huge.txt", bytes.Repeat([]byte("a"), 50000))
	r = c.Check(context.Background(), msg(part{"h.zip", "application/zip", zipped}), nil)
	if contains(r.Facts["findings"].([]string), "attachment-too-large") {
		t.Errorf("member measured: %v", r.Facts["findings"])
	}
	// max_file_size is a scan limit: small, it makes files unscannable,
	// never refused as too large.
	r = newCheck(t, func(c *Config) { c.MaxFileSize = 1000 }).Check(context.Background(), msg(part{"a.bin", "application/octet-stream", append(big, 'y')}), nil)
	if !reflect.DeepEqual(r.Facts["refused"], []string{}) {
		t.Errorf("max_file_size: refused %v", r.Facts["refused"])
	}
	// quarantine instead.
	r = newCheck(t, func(c *Config) { c.MaxAttachmentSize, c.OversizeAttachments = 100, PolicyQuarantine }).Check(context.Background(), msg(part{"a.bin", "application/octet-stream", big}), nil)
	if !reflect.DeepEqual(r.Facts["held"], []string{"attachment-too-large"}) {
		t.Errorf("quarantine: held %v", r.Facts["held"])
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
