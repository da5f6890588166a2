package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks/checktest"
	"chainmail/checks/dns/dnstest"
	"chainmail/milter/mtatest"
)

// daemon is a `chainmail serve` process started by a test.
type daemon struct {
	Addr    string // HOST:PORT of the milter
	LogFile string
	*process
}

// startDaemon runs the chainmail binary with the given configuration body;
// listen address and a verdict log file are added.
func startDaemon(t *testing.T, bin, conf string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{Addr: freePort(t), LogFile: filepath.Join(dir, "verdicts.log")}
	cfg := filepath.Join(dir, "chainmail.yaml")
	full := fmt.Sprintf("listen: inet:%s\nmetrics: {listen: \"\"}\nlog:\n  sinks: [{type: file, path: %q}]\n%s", d.Addr, d.LogFile, conf)
	if err := os.WriteFile(cfg, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	d.process = startProcess(t, exec.Command(bin, "serve", "-c", cfg), "tcp", d.Addr)
	return d
}

func (d *daemon) Log() string {
	b, _ := os.ReadFile(d.LogFile)
	return string(b)
}

// waitLog waits for a line containing every one of parts.
func (d *daemon) waitLog(t *testing.T, parts ...string) string {
	t.Helper()
	var found string
	waitFor(t, fmt.Sprintf("a log line with %q", parts), func() bool {
		for _, l := range strings.Split(d.Log(), "\n") {
			ok := true
			for _, p := range parts {
				if !strings.Contains(l, p) {
					ok = false
					break
				}
			}
			if ok {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

const e2eConfig = `hostname: mx.chainmail.test
policy:
  subject_tag: "***SPAM*** %s"
rules:
  - name: defer-me
    if: envelope.from == "defer@example.net"
    action: tempfail
    reply: "451 4.7.1 Try again later, says the test"
  - name: hold-me
    if: envelope.from == "hold@example.net"
    action: quarantine
  - name: tag-me
    if: envelope.from == "tag@example.net"
    action: tag
checks:
  - name: lists
    decisive: both
  - name: gtube
    decisive: spam
`

func e2eMessage(subject, body string) []byte {
	return []byte("From: Sender <sender@example.net>\r\nTo: Bob <bob@example.org>\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.net>\r\n\r\n" + body + "\r\n")
}

// Through a real Postfix: each verdict reaches the SMTP client or the
// queue as a postmaster expects, and several messages over one SMTP
// session each keep the client's address and HELO.
func TestPostfixEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	// Every message of the session must reach the checks with the
	// connection facts XCLIENT gave; a message that lost them is refused
	// and the assertions below fail.
	conf := strings.Replace(e2eConfig, "rules:\n", `rules:
  - name: connection-facts-lost
    if: envelope.client_ip != "192.0.2.10" || envelope.helo != "mail.example.net" || envelope.client_name != "mail.example.net"
    action: reject
    reply: "550 5.7.0 connection facts lost"
`, 1)
	d := startDaemon(t, bin, conf)
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr, DefaultAction: "tempfail"})

	c := pf.Dial(t)
	if r := c.Ehlo("client.example"); r.Code != 250 {
		t.Fatalf("EHLO: %v", r)
	}
	if r := c.XClient("ADDR=192.0.2.10 NAME=mail.example.net HELO=mail.example.net"); r.Code != 220 {
		t.Fatalf("XCLIENT: %v", r)
	}
	rcpt := []string{"bob@example.org"}

	// 1: ham, delivered with our headers.
	if r := c.Send("ham@example.net", rcpt, e2eMessage("lunch", "See you at noon.")); r.Code != 250 {
		t.Fatalf("ham: %v", r)
	}
	// 2: GTUBE, rejected at end of data.
	r := c.Send("spam@example.net", rcpt, e2eMessage("gtube", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"))
	if r.Code != 550 || !strings.Contains(r.Text, "Message rejected as spam") {
		t.Errorf("gtube: %v, want 550 … Message rejected as spam", r)
	}
	// 3: a tempfail rule, with its own reply.
	r = c.Send("defer@example.net", rcpt, e2eMessage("later", "Not now."))
	if r.Code != 451 || !strings.Contains(r.Text, "Try again later, says the test") {
		t.Errorf("tempfail: %v", r)
	}
	// 4: quarantine: accepted, then held.
	if r := c.Send("hold@example.net", rcpt, e2eMessage("hold me", "Suspicious.")); r.Code != 250 {
		t.Errorf("quarantine: %v", r)
	}
	// 5: tag: delivered with the Subject rewritten.
	if r := c.Send("tag@example.net", rcpt, e2eMessage("weekly news", "News.")); r.Code != 250 {
		t.Errorf("tag: %v", r)
	}
	c.Quit()

	got := pf.Delivered(t, 2, 30*time.Second)
	bySender := map[string]mtatest.Delivered{}
	for _, m := range got {
		bySender[m.Sender] = m
	}
	ham, ok := bySender["ham@example.net"]
	if !ok {
		t.Fatalf("ham not delivered; got %d messages\n%s", len(got), pf.Log())
	}
	if v := ham.Header("X-Spam-Status"); !strings.HasPrefix(v, "No, score=0.00 required=5.00") {
		t.Errorf("ham X-Spam-Status %q", v)
	}
	tag, ok := bySender["tag@example.net"]
	if !ok {
		t.Fatalf("tagged message not delivered")
	}
	if s := tag.Header("Subject"); s != "***SPAM*** weekly news" {
		t.Errorf("tagged Subject %q", s)
	}
	if v := tag.Header("X-Spam-Status"); !strings.HasPrefix(v, "Yes,") {
		t.Errorf("tagged X-Spam-Status %q", v)
	}
	if _, ok := bySender["spam@example.net"]; ok {
		t.Error("rejected message was delivered")
	}
	waitFor(t, "one message in the hold queue", func() bool { return len(pf.HoldQueue(t)) == 1 })

	// Every message of the one SMTP session was logged with the client's
	// address, and with Postfix's queue id.
	for _, from := range []string{"ham@example.net", "spam@example.net", "defer@example.net", "hold@example.net", "tag@example.net"} {
		line := d.waitLog(t, "from 192.0.2.10 ("+from+")")
		if strings.Contains(line, "Message NOQUEUE") {
			t.Errorf("no queue id: %s", line)
		}
	}
	held := pf.HoldQueue(t)[0]
	d.waitLog(t, "Non-delivery of spam: message "+held+" from hold@example.net")
	d.waitLog(t, "Spam Actions: message "+held+" actions are store")

	// With chainmail stopped, Postfix applies milter_default_action.
	d.Stop()
	c = pf.Dial(t)
	c.Ehlo("client.example")
	if r := c.Send("ham@example.net", rcpt, e2eMessage("while down", "x")); r.Code != 451 {
		t.Errorf("milter down with tempfail default: %v, want 451", r)
	}
	c.Quit()
}

// milter_default_action = accept lets mail through when chainmail is down,
// as documented.
func TestPostfixDefaultActionAccept(t *testing.T) {
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + freePort(t), DefaultAction: "accept"})
	c := pf.Dial(t)
	c.Ehlo("client.example")
	if r := c.Send("a@example.net", []string{"bob@example.org"}, e2eMessage("down", "x")); r.Code != 250 {
		t.Fatalf("%v", r)
	}
	c.Quit()
	if got := pf.Delivered(t, 1, 30*time.Second); len(got) != 1 {
		t.Fatalf("delivered %d", len(got))
	}
}

// Through a real sendmail with INPUT_MAIL_FILTER: a reject and an accept.
func TestSendmailEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	d := startDaemon(t, bin, e2eConfig)
	sm := mtatest.StartSendmail(t, mtatest.SendmailOptions{Milter: "inet:" + d.Addr})
	c := sm.Dial(t)
	c.Ehlo("client.example")
	rcpt := []string{"bob@example.org"}
	r := c.Send("spam@example.net", rcpt, e2eMessage("gtube", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"))
	if r.Code != 550 || !strings.Contains(r.Text, "Message rejected as spam") {
		t.Errorf("gtube through sendmail: %v", r)
	}
	if r := c.Send("ham@example.net", rcpt, e2eMessage("hello", "Hi.")); r.Code != 250 {
		t.Errorf("ham through sendmail: %v", r)
	}
	c.Quit()
	got := sm.Delivered(t, 1, 60*time.Second)
	if len(got) != 1 || got[0].Sender != "ham@example.net" || !strings.HasPrefix(got[0].Header("X-Spam-Status"), "No,") {
		t.Fatalf("delivered: %+v", got)
	}
	// sendmail has no XCLIENT: its milter sees the client as 127.0.0.1.
	d.waitLog(t, "from 127.0.0.1 (spam@example.net)", "is spam")
}

// DMARC through a real Postfix, with the domains' records on a DNS server
// on loopback: a p=reject failure is rejected with the DMARC reply, an
// aligned DKIM pass is delivered with Authentication-Results.
func TestPostfixDMARC(t *testing.T) {
	bin := buildBinary(t)
	zones, _ := filepath.Glob(filepath.Join(checktest.RepoRoot(), "testdata", "cases", "01[01]-*", "*.zone"))
	dnsSrv := dnstest.Start(t, zones...)
	d := startDaemon(t, bin, fmt.Sprintf("hostname: mx.chainmail.test\ndns: {servers: [%q]}\n", dnsSrv.Addr()))
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})

	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(caseDir(name), "message.eml"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	c := pf.Dial(t)
	c.Ehlo("client.example")
	c.XClient("ADDR=203.0.113.66 NAME=[UNAVAILABLE] HELO=mail.bank.example")
	r := c.Send("security@bank.example", []string{"bob@example.org"}, read("010-dmarc-reject"))
	if r.Code != 550 || !strings.Contains(r.Text, "Email rejected per DMARC policy") {
		t.Errorf("p=reject failure: %v", r)
	}
	c.Quit()

	c = pf.Dial(t)
	c.Ehlo("client.example")
	c.XClient("ADDR=198.51.100.80 NAME=relay.forwarder.example HELO=relay.forwarder.example")
	if r := c.Send("bounces@forwarder.example", []string{"bob@example.org"}, read("011-dkim-dmarc-pass")); r.Code != 250 {
		t.Fatalf("aligned DKIM pass: %v", r)
	}
	c.Quit()
	got := pf.Delivered(t, 1, 30*time.Second)
	if len(got) != 1 {
		t.Fatalf("delivered %d", len(got))
	}
	ar := got[0].Header("Authentication-Results")
	for _, want := range []string{"mx.chainmail.test;", "dkim=pass", "dmarc=pass", "header.from=signed.example"} {
		if !strings.Contains(ar, want) {
			t.Errorf("delivered Authentication-Results %q lacks %q", ar, want)
		}
	}
	d.waitLog(t, "(security@bank.example)", "is spam", "DMARC_POLICY_REJECT")
}
