package main

import (
	"encoding/base64"
	"net"
	"strings"
	"testing"

	"chainmail/checks"
)

// evilExeMessage is a multipart message with a base64 evil.exe part whose
// header is partHeader (LF line ends).
func evilExeMessage(partHeader string) string {
	pe := "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + strings.Repeat("\x00", 200)
	return "From: Sender <sender@example.net>\nTo: Bob <bob@example.org>\nSubject: invoice\nMessage-ID: <inv@example.net>\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nSee the invoice.\n--b\n" +
		partHeader + "\n" + base64.StdEncoding.EncodeToString([]byte(pe)) + "\n--b--\n"
}

// TestMilterBlocksHiddenExe: through the real milter protocol with the
// default configuration, evil.exe is rejected when its message has bare
// CR line ends (the MTA hands the whole message over as one header field)
// and when its part header has the MailScanner v4#58 shape. Before: both
// were accepted, the attachment check clean.
func TestMilterBlocksHiddenExe(t *testing.T) {
	srv := startDefaultMilter(t)
	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.44"), HELO: "mail.example.net", MailFrom: "sender@example.net", Rcpts: []string{"bob@example.org"}}
	plain := evilExeMessage("Content-Type: application/octet-stream; name=\"evil.exe\"\nContent-Disposition: attachment; filename=\"evil.exe\"\nContent-Transfer-Encoding: base64\n")
	for name, msg := range map[string]string{
		"control":                    plain,
		"bare CR":                    strings.ReplaceAll(plain, "\n", "\r"),
		"MailScanner v4#58":          evilExeMessage("Content-Type: application/octet-stream;\nx-unix-mode=0600;\nname=\"evil.exe\"\nContent-Transfer-Encoding: base64\n"),
		"MailScanner v4#58, bare CR": strings.ReplaceAll(evilExeMessage("Content-Type: application/octet-stream; x-unix-mode=0600;\nname=\"evil.exe\"\nContent-Transfer-Encoding: base64\n"), "\n", "\r"),
	} {
		out := srv.Send(t, env, msg)
		if out.Action != "reject" || !strings.Contains(out.Reply, "blocked attachment") {
			t.Errorf("%s: %s %q, want reject … blocked attachment", name, out.Action, out.Reply)
		}
	}
}
