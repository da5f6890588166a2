package dkim

import (
	"crypto"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"

	"github.com/emersion/go-msgauth/dkim"
	mdns "github.com/miekg/dns"
)

// txtRR formats a TXT record in zone-file syntax, split in strings of at
// most 255 octets (RFC 1035 §3.3.14) as a publisher must.
func txtRR(name, value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, value[:255])
		value = value[255:]
	}
	parts = append(parts, value)
	return fmt.Sprintf("%s. 300 IN TXT \"%s\"", name, strings.Join(parts, `" "`))
}

// e2eCheck starts a DNS server on 127.0.0.1 holding the records and
// returns a dkim check resolving through chainmail's DNS client.
func e2eCheck(t *testing.T, records map[string]string) (*Check, *zoneserver.Server) {
	t.Helper()
	srv := dnstest.Start(t)
	if err := srv.AddZone("@ 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60\n", "test."); err != nil {
		t.Fatal(err)
	}
	for name, value := range records {
		if err := srv.AddRecord(txtRR(name, value)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := dns.New(dns.Config{Servers: []string{srv.Addr()}, Timeout: 300 * time.Millisecond, Retries: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(DefaultConfig(), r)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func TestEndToEndDNS(t *testing.T) {
	if testing.Short() {
		t.Skip("real DNS server")
	}
	testKeys(t)
	c, srv := e2eCheck(t, map[string]string{
		"rsa._domainkey.sign.test":  keyRecord(t, rsa2048.Public()), // 392 octets: two strings
		"ed._domainkey.sign.test":   keyRecord(t, edKey.Public()),
		"fail._domainkey.sign.test": keyRecord(t, edKey.Public()),
		// nodata._domainkey.sign.test exists (an empty non-terminal) with
		// no TXT: NODATA, like NXDOMAIN "no key for signature".
		"deeper.nodata._domainkey.sign.test": "x",
	})
	srv.Fault("fail._domainkey.sign.test", mdns.TypeTXT, zoneserver.ServFail())
	signed := func(sel string, key crypto.Signer) string {
		return sign(t, plainMessage, dkim.SignOptions{Domain: "sign.test", Selector: sel, Signer: key, HeaderCanonicalization: dkim.CanonicalizationRelaxed})
	}
	for _, tc := range []struct {
		name   string
		raw    string
		fault  zoneserver.Fault
		status checks.Status
	}{
		{"rsa 2048 key in two strings", signed("rsa", rsa2048), zoneserver.Fault{}, checks.StatusPass},
		{"ed25519", signed("ed", edKey), zoneserver.Fault{}, checks.StatusPass},
		{"truncated over UDP, fetched over TCP", signed("rsa", rsa2048), zoneserver.Truncate(), checks.StatusPass},
		{"NXDOMAIN", signed("missing", edKey), zoneserver.Fault{}, checks.StatusPermerror},
		{"NODATA", signed("nodata", edKey), zoneserver.Fault{}, checks.StatusPermerror},
		{"SERVFAIL", signed("fail", edKey), zoneserver.Fault{}, checks.StatusTemperror},
		{"no answer (timeout)", signed("ed", edKey), zoneserver.Drop(), checks.StatusTemperror},
		{"REFUSED", signed("ed", edKey), zoneserver.Refused(), checks.StatusTemperror},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := strings.SplitN(strings.SplitN(tc.raw, "s=", 2)[1], ";", 2)[0]
			name := sel + "._domainkey.sign.test"
			if tc.fault != (zoneserver.Fault{}) {
				srv.Fault(name, mdns.TypeTXT, tc.fault)
				defer srv.Fault(name, mdns.TypeTXT, zoneserver.Fault{})
			}
			r := run(t, c, tc.raw)
			if r.Status != tc.status {
				t.Errorf("status %s, want %s (%s)", r.Status, tc.status, r.Reason)
			}
		})
	}
}

// TestEndToEndCorpus verifies the dkimpy and mimekit signed messages with
// their keys served by a real DNS server.
func TestEndToEndCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("real DNS server")
	}
	dkimpy := checktest.Corpus(t, "dkimpy")
	mimekit := checktest.Corpus(t, "mimekit-testdata")
	records := map[string]string{}
	for name, v := range dkimpyZone(t, dkimpy) {
		if _, err := lookupName(name); err == nil {
			records[name] = v[0]
		}
	}
	for name, v := range mimekitZone(t, mimekit) {
		records[name] = v[0]
	}
	c, _ := e2eCheck(t, records)
	for _, f := range []string{
		filepath.Join(dkimpy, "rfc6376.signed.msg"),
		filepath.Join(dkimpy, "ed25519test2.msg"),
		filepath.Join(dkimpy, "test2.message"),
		filepath.Join(mimekit, "dkim", "gmail.msg"),
		filepath.Join(mimekit, "dkim", "rfc8463-example.msg"),
	} {
		r := c.Check(t.Context(), readMessageFile(t, f), nil)
		for _, s := range results(r) {
			if s.Status != "pass" {
				t.Errorf("%s: %+v", filepath.Base(f), s)
			}
		}
		if r.Status != checks.StatusPass {
			t.Errorf("%s: %s (%s)", filepath.Base(f), r.Status, r.Reason)
		}
	}
}
