package config_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/gtube"
	"chainmail/checks/verdictlog"
)

// exeMessage carries setup.exe (a Windows program by name and content)
// and pad bytes of text, so its size can be pushed over a max_size.
func exeMessage(pad int) string {
	program := "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff program bytes " + strings.Repeat("A", 300)
	return "From: a@example.net\r\nTo: user@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		strings.Repeat("x", pad) + "\r\n--b\r\nContent-Type: application/octet-stream; name=setup.exe\r\n" +
		"Content-Disposition: attachment; filename=setup.exe\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(program)) + "\r\n--b--\r\n"
}

// A message over the max_size of the attachment or antivirus check is
// not let through as if it had been checked: the check reports it
// unscannable and the default rules hold it (quarantine), like the
// antivirus check's own options.max_size. Before: skipped, "too big",
// and the program in it delivered (accept).
func TestMaxSizeOfSecurityCheckIsUnscannable(t *testing.T) {
	f := parse(t, `
checks:
  - name: attachment
    max_size: 4KiB
`)
	e := build(t, f)
	if v := evaluate(t, e, message(t, "a@example.net", exeMessage(0))); v.Action != checks.Reject {
		t.Fatalf("small message with setup.exe: %s (%s), want reject", v.Action, v.Why)
	}
	v := evaluate(t, e, message(t, "a@example.net", exeMessage(8<<10)))
	if v.Action != checks.Quarantine {
		t.Errorf("setup.exe in a message over max_size: %s (%s), want quarantine", v.Action, v.Why)
	}
	m := message(t, "a@example.net", exeMessage(8<<10))
	v = evaluate(t, e, m)
	lines := strings.Join(verdictlog.Lines(m, v), "\n")
	if !strings.Contains(lines, "Check attachment on message 4ABC: unscannable (too big (") {
		t.Errorf("log lines lack the size reason:\n%s", lines)
	}
	// A check that is no security check is still just skipped.
	f = parse(t, `
checks:
  - name: gtube
    decisive: spam
    max_size: 1KiB
`)
	e = build(t, f)
	big := "From: a@example.net\r\nSubject: s\r\n\r\n" + gtube.String + "\r\n" + strings.Repeat("x", 2<<10) + "\r\n"
	if v := evaluate(t, e, message(t, "a@example.net", big)); v.Action != checks.Accept {
		t.Errorf("gtube over max_size: %s (%s), want accept (skipped)", v.Action, v.Why)
	}
}

// A check set to always_run after an allow decision still decides: its
// decisive spam result is not overruled by the earlier ham one. Before:
// GTUBE to an allow-listed recipient was accepted although gtube ran.
func TestAlwaysRunDecisiveSpamAfterHam(t *testing.T) {
	f := parse(t, `
checks:
  - name: lists
    decisive: both
    options:
      allow: {recipients: [user@example.org]}
  - name: gtube
    decisive: spam
    always_run: true
`)
	e := build(t, f)
	raw := "From: a@example.net\r\nSubject: s\r\n\r\n" + gtube.String + "\r\n"
	v := evaluate(t, e, message(t, "a@example.net", raw))
	if r, _ := v.Results.Get("gtube"); r.Status == checks.StatusSkipped {
		t.Fatalf("gtube skipped: %s", r.Reason)
	}
	if v.Action != checks.Reject {
		t.Errorf("GTUBE to an allowed recipient, gtube always_run: %s (%s), want reject", v.Action, v.Why)
	}
	// Clean mail to the recipient stays allowed.
	v = evaluate(t, e, message(t, "a@example.net", "From: a@example.net\r\nSubject: s\r\n\r\nhello\r\n"))
	if v.Action != checks.Accept || v.Why.String() != "decisive:lists" {
		t.Errorf("clean mail to an allowed recipient: %s (%s), want accept decisive:lists", v.Action, v.Why)
	}
}
