package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns/dnstest"
	"chainmail/milter"
)

// parityZone gives 198.51.100.20 a forward-confirmed name; 192.0.2.7 has
// no PTR.
const parityZone = `$ORIGIN 100.51.198.in-addr.arpa.
$TTL 300
@   IN SOA ns.sender.example. hostmaster.sender.example. 1 3600 600 86400 60
20  IN PTR mx.sender.example.
$ORIGIN sender.example.
@   IN SOA ns.sender.example. hostmaster.sender.example. 1 3600 600 86400 60
mx  IN A 198.51.100.20
`

// parityConfig is the configuration both runs use; %s is the state file.
const parityConfig = `milter: {max_header_bytes: 4096}
dns: {servers: [%q], timeout: 2s}
state: {backend: bolt, path: %q}
checks:
  - name: quota
    options:
      quotas:
        - name: per-user-hour
          policy: submission
          track: sasl_user
          period: 1h
          messages: 2
          action: defer
          reply: "451 4.7.1 You have sent too much mail this hour, try again later"
  - name: greylist
  - name: gtube
    decisive: spam
  - name: reputation
    options: {rdap: {enabled: false}}
`

type parityMessage struct {
	name string
	env  checks.Envelope
	raw  string
}

func parityMessages() []parityMessage {
	// Each message has a sender domain of its own: what reputation
	// learned from one message (written within its flush interval) never
	// shows in another's lines.
	laptop := func(qid, user, domain string) checks.Envelope {
		return checks.Envelope{ClientIP: net.ParseIP("192.0.2.7"), ClientName: "unknown", HELO: "laptop.example",
			MailFrom: user + "@" + domain, Rcpts: []string{"bob@example.org"}, AuthUser: user, QueueID: qid}
	}
	msg := func(from, subject, body string) string {
		return "From: " + from + "\r\nTo: bob@example.org\r\nSubject: " + subject + "\r\nMessage-ID: <" +
			strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n\r\n" + body + "\r\n"
	}
	mx := checks.Envelope{ClientIP: net.ParseIP("198.51.100.20"), ClientName: "mx.sender.example", HELO: "mx.sender.example",
		MailFrom: "news@sender.example", Rcpts: []string{"carol@example.org"}, QueueID: "4QGREY0001"}
	authMX := mx
	authMX.AuthUser, authMX.MailFrom, authMX.QueueID = "carol", "carol@sender.example", "4QPTR00001"
	return []parityMessage{
		{"01-quota-1", laptop("4QQUOTA001", "alice", "one.example"), msg("alice@one.example", "burst one", "x")},
		{"02-quota-2", laptop("4QQUOTA002", "alice", "two.example"), msg("alice@two.example", "burst two", "x")},
		// Over quota: deferred at RCPT, before the body.
		{"03-quota-defer", laptop("4QQUOTA003", "alice", "three.example"), msg("alice@three.example", "burst three", "x")},
		// A new triplet: greylisted at RCPT.
		{"04-greylist", mx, msg("news@sender.example", "weekly news", "News.")},
		// Authenticated (no greylisting), from a client with a PTR name.
		{"05-ptr", authMX, msg("carol@sender.example", "report", "Attached.")},
		{"06-gtube", laptop("4QGTUBE001", "dave", "four.example"), msg("dave@four.example", "gtube", "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X")},
		// Over milter.max_header_bytes: refused at end of message, no verdict.
		{"07-header-too-large", laptop("4QHEADER01", "erin", "five.example"), "X-Filler: " + strings.Repeat("y", 5000) + "\r\n" + msg("erin@five.example", "big header", "x")},
	}
}

// TestReplayMatchesServe sends the same messages through `replay` and
// through `serve` over the milter protocol, each with a fresh state file,
// and compares the verdict log lines: the RCPT stage (a quota deferral, a
// greylisting), the client's verified name (SDR's reverse DNS host) and
// the milter limits are the same in both.
func TestReplayMatchesServe(t *testing.T) {
	bin := buildBinary(t)
	zoneFile := filepath.Join(t.TempDir(), "parity.zone")
	if err := os.WriteFile(zoneFile, []byte(parityZone), 0o644); err != nil {
		t.Fatal(err)
	}
	zs := dnstest.Start(t, zoneFile)
	msgs := parityMessages()

	// replay: the messages as files with their envelope sidecars (no
	// client-name: replay looks it up).
	dir := t.TempDir()
	for _, m := range msgs {
		p := filepath.Join(dir, m.name+".eml")
		side := fmt.Sprintf("client-ip: %s\nhelo: %s\nfrom: %q\nrcpt: [%s]\nqueue-id: %s\n",
			m.env.ClientIP, m.env.HELO, m.env.MailFrom, strings.Join(m.env.Rcpts, ", "), m.env.QueueID)
		if m.env.AuthUser != "" {
			side += "auth: " + m.env.AuthUser + "\n"
		}
		if err := os.WriteFile(p, []byte(m.raw), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p+".envelope", []byte(side), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "chainmail.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(parityConfig, zs.Addr(), filepath.Join(t.TempDir(), "replay.db"))), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "replay", "-c", cfg, dir)
	if code != exitOK {
		t.Fatalf("replay: exit %d\n%s", code, errOut)
	}
	replayed := strings.Split(strings.TrimSuffix(out, "\n"), "\n")

	// serve: the same envelopes over the milter protocol, as the MTA
	// sends them (with the client name it verified).
	d := startDaemon(t, bin, fmt.Sprintf(parityConfig, zs.Addr(), filepath.Join(t.TempDir(), "serve.db")))
	c := &milter.Client{Network: "tcp", Address: d.Addr, Timeout: 30 * time.Second}
	for _, m := range msgs {
		s, err := c.Dial(m.env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Send(m.env, strings.NewReader(m.raw)); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		s.Close()
	}
	// The daemon writes a message's lines before it answers the command
	// that ended the message.
	served := verdictLines(d.Log())

	norm := func(lines []string) string {
		s := strings.Join(lines, "\n")
		for _, m := range msgs {
			s = strings.ReplaceAll(s, m.env.QueueID, "QUEUEID")
		}
		return s
	}
	if got, want := norm(replayed), norm(served); got != want {
		t.Errorf("replay and serve log differently\n--- replay\n%s\n--- serve\n%s", got, want)
	}
	// What the comparison must have covered.
	for _, want := range []string{
		"module=Quotas, action=defer, host=192.0.2.7",
		"module=Greylist, action=greylist, reason=new, client_address=198.51.100.20",
		"reverse DNS host: mx.sender.example",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("replay wrote no line with %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "big header") {
		t.Errorf("replay logged a verdict for a header block over milter.max_header_bytes:\n%s", out)
	}
}

// verdictLines returns the messages of a text log file's lines, without
// the syslog-style prefix and without chainmail's operational lines.
func verdictLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		_, msg, ok := strings.Cut(l, "]: ")
		if !ok || strings.HasPrefix(msg, "chainmail ") || strings.HasPrefix(msg, "chainmail:") {
			continue
		}
		out = append(out, msg)
	}
	return out
}
