package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/gtube"
	"chainmail/milter/miltertest"
)

// attackerZone: attacker.example is the attacker's own domain, with SPF
// for the attacker's host and a DMARC record, so mail from that host with
// a From of attacker.example passes DMARC. partner.example is allow-listed
// and publishes p=none with ~all, as many domains do.
const attackerZone = `$ORIGIN example.
$TTL 3600
@                   IN SOA ns.example. hostmaster.example. 1 3600 600 86400 300
attacker            IN TXT "v=spf1 ip4:203.0.113.9 -all"
_dmarc.attacker     IN TXT "v=DMARC1; p=none"
partner             IN TXT "v=spf1 ip4:198.51.100.7 ~all"
_dmarc.partner      IN TXT "v=DMARC1; p=none"
`

// TestMilterAllowNeedsAuthenticatedFrom: through the real milter protocol
// with real SPF and DMARC (DNS on loopback), an allow entry for
// boss@partner.example is not reached by a From that names that address
// beside the attacker's own, DMARC-passing one, nor by a softfail, a
// trailing dot, a different case or an SPF pass for another domain. Each
// carries GTUBE, which an allow decision would skip. Before: the From
// forms that DMARC reads as attacker.example alone ("boss@partner.example
// <me@attacker.example>", a quoted "<boss@partner.example>" after the
// address) were allowed and delivered, because a DMARC pass counted for
// every address the lists check found in From.
func TestMilterAllowNeedsAuthenticatedFrom(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "example.zone")
	if err := os.WriteFile(zone, []byte(attackerZone), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse("test.yaml", []byte(`hostname: mx.chainmail.test
checks:
  - name: lists
    decisive: both
    options:
      allow: {senders: [boss@partner.example]}
  - name: gtube
    decisive: spam
  - name: spf
  - name: dkim
  - name: dmarc
`))
	if err != nil {
		t.Fatal(err)
	}
	deps, closeDNS, err := replayDependencies(f, []string{zone}, "", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer closeDNS()
	eng, err := f.Build(deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := miltertest.Start(t, eng)
	send := func(ip, mailFrom, from string) *checksOutcome {
		t.Helper()
		env := checks.Envelope{ClientIP: net.ParseIP(ip), HELO: "mail.example.net", MailFrom: mailFrom, Rcpts: []string{"bob@example.org"}}
		msg := "From: " + from + "\r\nTo: bob@example.org\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\n" + gtube.String + "\r\n"
		out := srv.Send(t, env, msg)
		return &checksOutcome{out.Action, out.Reply}
	}
	attacker, partner := "203.0.113.9", "198.51.100.7"
	for _, tc := range []struct{ name, ip, mailFrom, from string }{
		{"display name holds the allowed address", attacker, "me@attacker.example", "boss@partner.example <me@attacker.example>"},
		{"quoted angle address after the real one", attacker, "me@attacker.example", `"x" <me@attacker.example> "<boss@partner.example>"`},
		{"two addresses", attacker, "me@attacker.example", "me@attacker.example, boss@partner.example"},
		{"SPF softfail", attacker, "boss@partner.example", "boss@partner.example"},
		{"trailing dot, SPF softfail", attacker, "boss@partner.example", "boss@partner.example."},
		{"upper case, SPF softfail", attacker, "boss@partner.example", "Boss@PARTNER.example"},
		{"envelope SPF pass for another domain", attacker, "boss@attacker.example", "boss@partner.example"},
	} {
		if out := send(tc.ip, tc.mailFrom, tc.from); out.action != "reject" {
			t.Errorf("%s: %s %q, want reject (GTUBE, not allowed)", tc.name, out.action, out.reply)
		}
	}
	// Control: the partner's own host passes SPF and DMARC for the From.
	if out := send(partner, "boss@partner.example", "Boss <boss@partner.example>"); out.action != "accept" {
		t.Errorf("authenticated allowed From: %s %q, want accept (allowed, GTUBE skipped)", out.action, out.reply)
	}
}

type checksOutcome struct{ action, reply string }
