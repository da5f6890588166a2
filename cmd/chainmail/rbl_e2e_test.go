package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks/dns/dnstest"
	"chainmail/milter/mtatest"
)

// rblZone is a test blocklist in the style of Spamhaus ZEN, with the RFC
// 5782 §5 test entries, 192.0.2.66 on SBL and 192.0.2.68 answering the
// "public resolver" error code.
const rblZone = `$ORIGIN rbl.e2e.test.
$TTL 300
@           IN SOA ns.e2e.test. hostmaster.e2e.test. 1 3600 600 86400 60
2.0.0.127   IN A 127.0.0.2
66.2.0.192  IN A 127.0.0.2
66.2.0.192  IN TXT "listed for the end-to-end test"
68.2.0.192  IN A 127.255.255.254
`

// The rbl check through a real Postfix: a client on a test blocklist
// served on loopback is rejected at end of message with the list named in
// the reply and in the verdict log; a client the list refuses to answer
// for is not a listing and its mail is delivered; a clean client too.
func TestPostfixRBL(t *testing.T) {
	bin := buildBinary(t)
	zone := filepath.Join(t.TempDir(), "rbl.zone")
	if err := os.WriteFile(zone, []byte(rblZone), 0o644); err != nil {
		t.Fatal(err)
	}
	dnsSrv := dnstest.Start(t, zone)
	conf := fmt.Sprintf(`hostname: mx.chainmail.test
dns: {servers: [%q], retries: -1}
rules:
  - name: test-rbl
    if: '"TEST-RBL" in rbl.listed'
    action: reject
    reply: "550 5.7.1 Service unavailable; client host blocked using TEST-RBL"
checks:
  - name: rbl
    timeout: 10s
    options:
      lists:
        - name: TEST-RBL
          zone: rbl.e2e.test
          codes:
            - {symbol: RBL_TEST_SBL, score: 4, match: 127.0.0.2}
`, dnsSrv.Addr())
	d := startDaemon(t, bin, conf)
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})
	rcpt := []string{"bob@example.org"}

	send := func(ip, from, subject string) mtatest.Reply {
		t.Helper()
		c := pf.Dial(t)
		defer c.Quit()
		if r := c.Ehlo("client.example"); r.Code != 250 {
			t.Fatalf("EHLO: %v", r)
		}
		if r := c.XClient("ADDR=" + ip + " NAME=[UNAVAILABLE] HELO=mail.sender.example"); r.Code != 220 {
			t.Fatalf("XCLIENT: %v", r)
		}
		return c.Send(from, rcpt, e2eMessage(subject, "Hello."))
	}

	r := send("192.0.2.66", "listed@sender.example", "from a listed host")
	if r.Code != 550 || r.Enhanced != "5.7.1" || !strings.Contains(r.Text, "blocked using TEST-RBL") {
		t.Errorf("listed client: %v, want 550 5.7.1 … blocked using TEST-RBL", r)
	}
	if r := send("192.0.2.68", "refused@sender.example", "list refuses"); r.Code != 250 {
		t.Errorf("error answer: %v, want 250 (not a listing)", r)
	}
	if r := send("192.0.2.67", "clean@sender.example", "clean host"); r.Code != 250 {
		t.Errorf("clean client: %v", r)
	}

	line := d.waitLog(t, "RBL checks: ", "found in TEST-RBL")
	if strings.Contains(line, "NOQUEUE") {
		t.Errorf("no queue id in %q", line)
	}
	id := strings.Fields(strings.SplitN(line, "RBL checks: ", 2)[1])[0]
	d.waitLog(t, "Message "+id+" from 192.0.2.66 (listed@sender.example)", "is spam, TEST-RBL, chainmail", "RBL_TEST_SBL 4.00")
	d.waitLog(t, "RBL warning: list TEST-RBL (rbl.e2e.test) did not answer for 192.0.2.68", "127.255.255.254")
	d.waitLog(t, "from 192.0.2.68 (refused@sender.example)", "is not spam", "RBL_TEST_RBL_FAIL 0.00")
	d.waitLog(t, "from 192.0.2.67 (clean@sender.example)", "is not spam")

	got := pf.Delivered(t, 2, 30*time.Second)
	for _, m := range got {
		if m.Sender == "listed@sender.example" {
			t.Error("the listed client's message was delivered")
		}
	}
	// The health probe asked the test entry once, not per message.
	if n := dnsSrv.QueriesFor("2.0.0.127.rbl.e2e.test", 0); n != 1 {
		t.Errorf("health probe asked %d times", n)
	}
}
