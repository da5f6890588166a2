package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/milter/mtatest"
)

// Through a real Postfix: a message whose From display name impersonates
// the protected CEO (Cyrillic letters, a bidi override) goes to the hold
// queue, the whaling line is in the verdict log, and the CEO's own mail
// is delivered.
func TestPostfixWhaling(t *testing.T) {
	bin := buildBinary(t)
	d := startDaemon(t, bin, `hostname: mx.chainmail.test
checks:
  - name: whaling
    options:
      protected:
        - {name: John Doe, addresses: [john.doe@example.org]}
      domains: [example.org]
`)
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})
	raw, err := os.ReadFile(filepath.Join(caseDir("060-whaling-confusable-name"), "message.eml"))
	if err != nil {
		t.Fatal(err)
	}
	c := pf.Dial(t)
	c.Ehlo("client.example")
	c.XClient("ADDR=192.0.2.200 NAME=smtp.freemail.test HELO=smtp.freemail.test")
	if r := c.Send("ceo.johndoe@freemail.test", []string{"cfo@example.org"}, raw); r.Code != 250 {
		t.Fatalf("whaling message: %v (a quarantine is accepted, then held)", r)
	}
	own := []byte("From: John Doe <john.doe@example.org>\r\nTo: cfo@example.org\r\nSubject: lunch\r\nMessage-ID: <lunch@example.org>\r\n\r\nNoon?\r\n")
	if r := c.Send("john.doe@example.org", []string{"cfo@example.org"}, own); r.Code != 250 {
		t.Fatalf("own mail: %v", r)
	}
	c.Quit()

	waitFor(t, "one message in the hold queue", func() bool { return len(pf.HoldQueue(t)) == 1 })
	held := pf.HoldQueue(t)[0]
	line := d.waitLog(t, "Message "+held+" has been blocked as Whaling attack to John Doe john.doe@example.org")
	if !strings.Contains(line, "chainmail") {
		t.Errorf("line without the tag: %s", line)
	}
	d.waitLog(t, "Spam Actions: message "+held+" actions are store")
	got := pf.Delivered(t, 1, 30*time.Second)
	if len(got) != 1 || got[0].Sender != "john.doe@example.org" {
		t.Fatalf("delivered %+v", got)
	}
	d.waitLog(t, "(john.doe@example.org)", "is not spam")
	if n := strings.Count(d.Log(), "has been blocked as Whaling attack"); n != 1 {
		t.Errorf("%d whaling lines, want 1:\n%s", n, d.Log())
	}
}
