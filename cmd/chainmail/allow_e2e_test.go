package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks/checktest"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/gtube"
	"chainmail/milter/mtatest"
)

// partnerZone: partner.example sends from 198.51.100.7 only, with a DMARC
// record, so a From of partner.example passes DMARC only from there.
const partnerZone = `$ORIGIN partner.example.
$TTL 3600
@       IN SOA ns.partner.example. hostmaster.partner.example. 1 3600 600 86400 300
@       IN TXT "v=spf1 ip4:198.51.100.7 -all"
_dmarc  IN TXT "v=DMARC1; p=none"
`

// forgedFields are what a sender may write to look checked by us.
const forgedFields = "Authentication-Results: mx.chainmail.test; dkim=pass header.d=partner.example; dmarc=pass\r\n" +
	"Authentication-Results: (trust me) mx.chainmail.test; dmarc=pass\r\n" +
	"Authentication-Results: \"mx.chainmail.test\"; dkim=pass\r\n" +
	"X-Spam-Status: No, score=-10.00\r\nX-Spam-Flag: NO\r\nX-Spam-Score: -10\r\nX-Chainmail-Verdict: accept\r\n"

// Through a real Postfix with real SPF/DKIM/DMARC (DNS on loopback), the
// attachment check and a real clamd: an allow-listed header From that
// anyone can write does not end the chain; an authenticated one is
// allowed, and the attachment and antivirus checks still run on it. On
// the paths that end the chain early (an allowed sender, an allowed
// recipient) forged Authentication-Results with our authserv-id and
// forged spam verdict fields are not delivered.
func TestPostfixAllowListAuthAndSecurity(t *testing.T) {
	bin := buildBinary(t)
	eicar := checktest.EICAR(t)
	sock := checktest.StartClamd(t, eicar)
	zone := filepath.Join(t.TempDir(), "partner.zone")
	if err := os.WriteFile(zone, []byte(partnerZone), 0o644); err != nil {
		t.Fatal(err)
	}
	dnsSrv := dnstest.Start(t, zone)
	d := startDaemon(t, bin, fmt.Sprintf(`hostname: mx.chainmail.test
dns: {servers: [%q]}
checks:
  - name: lists
    decisive: both
    options:
      allow: {senders: [boss@partner.example], recipients: [postmaster@example.org]}
  - name: gtube
    decisive: spam
  - name: spf
  - name: dkim
  - name: dmarc
  - name: attachment
  - name: antivirus
    options: {address: "unix:%s"}
`, dnsSrv.Addr(), sock))
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})

	program := "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff program bytes " + strings.Repeat("A", 300)
	from := func(b []byte) []byte {
		return bytes.Replace(b, []byte("From: Sender <sender@example.net>\r\n"), []byte(forgedFields+"From: The Boss <boss@partner.example>\r\n"), 1)
	}
	send := func(ip, sender, rcpt string, msg []byte) mtatest.Reply {
		t.Helper()
		c := pf.Dial(t)
		defer c.Quit()
		c.Ehlo("client.example")
		c.XClient("ADDR=" + ip + " NAME=[UNAVAILABLE] HELO=mail.partner.example")
		return c.Send(sender, []string{rcpt}, msg)
	}
	spoofed, genuine := "203.0.113.9", "198.51.100.7"

	// Spoofed allow-listed From: the program and the virus are refused.
	if r := send(spoofed, "boss@partner.example", "bob@example.org", from(attachmentMessage("spoofed exe", "setup.exe", "application/octet-stream", program))); r.Code != 550 || !strings.Contains(r.Text, "blocked attachment") {
		t.Errorf("spoofed allowed From with .exe: %v, want 550 blocked attachment", r)
	}
	if r := send(spoofed, "boss@partner.example", "bob@example.org", from(attachmentMessage("spoofed eicar", "eicar.com.txt", "text/plain", string(eicar)))); r.Code != 550 || !strings.Contains(r.Text, "virus") {
		t.Errorf("spoofed allowed From with EICAR: %v, want 550 virus", r)
	}
	// Spoofed allow-listed From: not allowed, so GTUBE (skipped after an
	// allow) still decides.
	if r := send(spoofed, "boss@partner.example", "bob@example.org", from(attachmentMessage("spoofed gtube", "notes.txt", "text/plain", gtube.String))); r.Code != 550 {
		t.Errorf("spoofed allowed From with GTUBE: %v, want 550", r)
	}
	// Authenticated From: still no program, no virus.
	if r := send(genuine, "boss@partner.example", "bob@example.org", from(attachmentMessage("genuine exe", "setup.exe", "application/octet-stream", program))); r.Code != 550 {
		t.Errorf("authenticated allowed From with .exe: %v, want 550", r)
	}
	if r := send(genuine, "boss@partner.example", "bob@example.org", from(attachmentMessage("genuine eicar", "eicar.com.txt", "text/plain", string(eicar)))); r.Code != 550 {
		t.Errorf("authenticated allowed From with EICAR: %v, want 550", r)
	}
	// Authenticated From, clean: allowed (the chain ends early).
	if r := send(genuine, "boss@partner.example", "bob@example.org", from(attachmentMessage("genuine clean", "notes.txt", "text/plain", "hello\r\n"))); r.Code != 250 {
		t.Errorf("authenticated allowed From: %v, want 250", r)
	}
	// Allowed recipient (the chain ends early), spoofed sender, clean.
	if r := send(spoofed, "boss@partner.example", "postmaster@example.org", from(attachmentMessage("to postmaster", "notes.txt", "text/plain", "hello\r\n"))); r.Code != 250 {
		t.Errorf("allowed recipient: %v, want 250", r)
	}
	got := pf.Delivered(t, 2, 30*time.Second)
	if len(got) != 2 {
		t.Fatalf("delivered %d messages, want 2", len(got))
	}
	d.waitLog(t, "LISTS_ALLOW_SENDER")
	d.waitLog(t, "LISTS_ALLOW_RECIPIENT")
	for _, m := range got {
		head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		h := string(head)
		for _, bad := range []string{"(trust me)", `"mx.chainmail.test"`, "header.d=partner.example; dmarc=pass", "X-Spam-Status: No, score=-10.00", "X-Spam-Flag: NO", "X-Spam-Score: -10", "X-Chainmail-Verdict: accept\r\n"} {
			if strings.Contains(h, bad) {
				t.Errorf("delivered to %v with forged %q:\n%s", m.Rcpts, bad, h)
			}
		}
	}
}
