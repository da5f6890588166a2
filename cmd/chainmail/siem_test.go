package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/dns/dnstest"
	"chainmail/checks/dns/zoneserver"
	"chainmail/reputation/rdaptest"
)

// siemEnv names the directory of patterns.tsv when it is not at
// ../shared/siem from the repository root.
const siemEnv = "CHAINMAIL_SIEM"

// siemPattern is one row of patterns.tsv: the regular expression a parser
// in the field matches an event's line with.
type siemPattern struct {
	event, regex, example string
	re                    *regexp.Regexp
}

func readSIEMPatterns(t *testing.T) []siemPattern {
	t.Helper()
	dir := os.Getenv(siemEnv)
	if dir == "" {
		dir = filepath.Join(checktest.RepoRoot(), "..", "shared", "siem")
	}
	f, err := os.Open(filepath.Join(dir, "patterns.tsv"))
	if err != nil {
		t.Skipf("!!! SKIPPING SIEM TEST: %v (set %s to the directory of patterns.tsv) !!!", err, siemEnv)
	}
	defer f.Close()
	var out []siemPattern
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first || strings.TrimSpace(sc.Text()) == "" {
			continue // the header
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 3 {
			t.Fatalf("patterns.tsv: %d columns in %q", len(cols), sc.Text())
		}
		p := siemPattern{event: cols[0], regex: cols[1], example: cols[2]}
		if p.re, err = regexp.Compile(p.regex); err != nil {
			t.Fatalf("patterns.tsv: %s: %v", p.event, err)
		}
		// The vendor's own line must match, or the row is wrong.
		if !p.re.MatchString(p.example) {
			t.Fatalf("patterns.tsv: %s: the example does not match its own regex", p.event)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// siemLineOf picks, for each event of patterns.tsv, chainmail's line for
// it from the log, by the words only that line has.
var siemLineOf = map[string]string{
	"whaling":     "has been blocked as Whaling attack",
	"quota":       "module=Quotas,",
	"delivery":    "Delivery of nonspam:",
	"spam-report": " is spam, ",
	"virus":       "Infected message ",
	"filetype":    "Filetype Checks: File type “executable”",
	"filename":    "Filename Checks: File extension “exe”",
	"sdr-domains": "SDR: Domains for which SDR is requested",
	"sdr-verdict": "SDR: Consolidated Sender Reputation",
	"sdr-grep":    "MID 4SdrA070 SDR: Consolidated Sender Reputation",
}

// siemMany are the events of patterns.tsv with one row per wording
// (QuickSand's: disarmed, removed because …, ignored, …): each of
// chainmail's lines that starts with the prefix must be read whole by one
// of them.
var siemMany = map[string]string{"quicksand": "QuickSand "}

// TestSIEMPatterns sends one message per event through serve's own
// configuration loader and the milter protocol, with the settings a
// site with existing parsers uses (log.engine SpamAssassin, the quota
// lines under cbpolicyd's tag), and asserts that each event's line in the
// log file matches the regular expression the vendor's parsers use.
func TestSIEMPatterns(t *testing.T) {
	patterns := readSIEMPatterns(t)
	sock := checktest.StartClamd(t, checktest.EICAR(t))

	sdrDir := filepath.Join("testdata", "sdr", "070-young-domain-dmarc-fail")
	zones, _ := filepath.Glob(filepath.Join(sdrDir, "*.zone"))
	dnsSrv := dnstest.Start(t, zones...)
	rdap := rdaptest.Start(t)
	rdap.Register("fresh-invoices.test", time.Now().Add(-2*24*time.Hour-time.Hour))

	tmp := t.TempDir()
	logPath := filepath.Join(tmp, "mail.log")
	cfg := fmt.Sprintf(`dns: {servers: [%q], timeout: 2s}
state: {backend: bolt, path: %q}
log:
  engine: SpamAssassin
  tags: {quota: cbpolicyd}
  sinks:
    - {type: file, path: %q}
checks:
  - name: quota
    options:
      quotas:
        - {name: per-user-hour, policy: submission, track: sasl_user, period: 1h, messages: 1, action: defer}
  - name: gtube
  - name: spf
  - name: dkim
  - name: dmarc
  - name: reputation
    enabled: true
    options:
      learn: false
      rdap: {bootstrap_file: %q, timeout: 2s}
  - name: whaling
    options:
      protected:
        - {name: John Doe, addresses: [john.doe@example.org, ceo@example.org]}
  - name: attachment
  - name: antivirus
    enabled: true
    options: {address: %q}
`, dnsSrv.Addr(), filepath.Join(tmp, "state.db"), logPath, rdap.BootstrapFile(t, tmp, "test"), "unix:"+sock)
	// Operational lines go to a buffer: the reputation writer may still
	// report after the test (t.Logf would panic then).
	var ops checktest.LockedBuffer
	srv := startServing(t, cfg, func(format string, args ...any) { fmt.Fprintf(&ops, format+"\n", args...) })

	// The messages of the replay cases, with their envelopes.
	sendCase := func(path string) {
		t.Helper()
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		env := checks.Envelope{}
		if err := applySidecar(&env, path+".envelope"); err != nil {
			t.Fatal(err)
		}
		srv.Send(t, env, string(raw))
	}
	sendCase(filepath.Join(caseDir("002-ham"), "message.eml"))
	sendCase(filepath.Join(caseDir("001-gtube"), "message.eml"))
	sendCase(filepath.Join(caseDir("060-whaling-confusable-name"), "message.eml"))
	sendCase(filepath.Join(sdrDir, "message.eml"))

	attach := func(id, name string, data []byte) {
		t.Helper()
		env := checks.Envelope{ClientIP: net.ParseIP("111.90.144.79"), HELO: "mail.sender.test", MailFrom: "sender@sender.test",
			Rcpts: []string{"recipient@example.org"}, QueueID: id}
		msg := "From: sender@sender.test\r\nTo: recipient@example.org\r\nSubject: shipping documents\r\nMessage-ID: <" + id + "@sender.test>\r\n" +
			"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
			"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString(data) + "\r\n--b--\r\n"
		srv.Send(t, env, msg)
	}
	attach("4SiemExe", "SHIPPING DOC..exe", append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"), make([]byte, 200)...))
	attach("4SiemVir", "notes.txt", checktest.EICAR(t))
	attach("4SiemDocm", "order.docm", autoRunDocm(t))
	attach("4SiemPdf", "report.pdf", []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"))

	// Two messages from one SASL user: the second is over the quota and
	// deferred at RCPT.
	qenv := checks.Envelope{ClientIP: net.ParseIP("192.0.2.7"), HELO: "laptop", MailFrom: "alice@example.com",
		Rcpts: []string{"bob@example.org"}, AuthUser: "alice"}
	for i := 1; i <= 2; i++ {
		qenv.QueueID = fmt.Sprintf("4SiemQ%d", i)
		srv.Send(t, qenv, "From: alice@example.com\r\nTo: bob@example.org\r\nSubject: note\r\n\r\nhello\r\n")
	}

	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// "Mmm dd hh:mm:ss host TAG[PID]: text"
	frame := regexp.MustCompile(`^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ (([^\s\[]+)\[\d+\]: (.*))$`)
	type logLine struct{ withTag, text string }
	var lines []logLine
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		m := frame.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a syslog-style line: %q", l)
		}
		lines = append(lines, logLine{withTag: m[1], text: m[3]})
	}

	many := map[string][]siemPattern{}
	for _, p := range patterns {
		if _, ok := siemMany[p.event]; ok {
			many[p.event] = append(many[p.event], p)
			continue
		}
		sel, ok := siemLineOf[p.event]
		if !ok {
			t.Errorf("patterns.tsv: event %q: no message in this test makes it", p.event)
			continue
		}
		found := false
		for _, l := range lines {
			if !strings.Contains(l.text, sel) {
				continue
			}
			found = true
			subject := l.text
			if strings.HasPrefix(p.regex, `cbpolicyd\[`) || strings.HasPrefix(p.regex, `MailScanner\[`) {
				subject = l.withTag
			}
			if !p.re.MatchString(subject) {
				t.Errorf("%s: line does not match the vendor's regex\n  line:  %s\n  regex: %s\n  like:  %s", p.event, l.withTag, p.regex, p.example)
			}
		}
		if !found {
			t.Errorf("%s: no line with %q in the log:\n%s", p.event, sel, data)
		}
	}
	for event, prefix := range siemMany {
		n := 0
		for _, l := range lines {
			if !strings.HasPrefix(l.text, prefix) {
				continue
			}
			n++
			read := false
			for _, p := range many[event] {
				if m := p.re.FindString(l.text); m == l.text {
					read = true
				}
			}
			if !read {
				t.Errorf("%s: no row of patterns.tsv reads the whole line %q", event, l.text)
			}
		}
		if n == 0 {
			t.Errorf("%s: no line starting %q in the log:\n%s", event, prefix, data)
		}
	}
}

// TestOutageLoggedAsDeferral: a message deferred because clamd is down or
// because DNS failed (SERVFAIL for the DMARC record) is logged as a
// deferral, never "is spam" with "Spam Actions: … defer", so an outage
// does not count as spam in the parsers that read the log.
func TestOutageLoggedAsDeferral(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "partner.zone")
	if err := os.WriteFile(zone, []byte("$ORIGIN partner.test.\n$TTL 300\n@ IN SOA ns.partner.test. hostmaster.partner.test. 1 3600 600 86400 300\n@ IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dnsSrv := dnstest.Start(t, zone)
	dnsSrv.Fault("_dmarc.partner.test", mdns.TypeTXT, zoneserver.ServFail())

	tmp := t.TempDir()
	logPath := filepath.Join(tmp, "mail.log")
	cfg := fmt.Sprintf(`dns: {servers: [%q], timeout: 2s}
log:
  sinks:
    - {type: file, path: %q}
checks:
  - name: spf
  - name: dkim
  - name: dmarc
  - name: antivirus
    enabled: true
    options: {address: %q}
`, dnsSrv.Addr(), logPath, "unix:"+filepath.Join(tmp, "no-clamd.sock"))
	srv := startServing(t, cfg, t.Logf)

	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.9"), HELO: "mail.partner.test", MailFrom: "alice@partner.test",
		Rcpts: []string{"bob@example.org"}, QueueID: "4Outage1"}
	out := srv.Send(t, env, "From: alice@partner.test\r\nTo: bob@example.org\r\nSubject: minutes\r\nMessage-ID: <1@partner.test>\r\n\r\nhello\r\n")
	if out.Action != "tempfail" {
		t.Fatalf("clamd down and DMARC record SERVFAIL: %s %s, want tempfail", out.Action, out.Reply)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	if strings.Contains(log, " is spam, ") || strings.Contains(log, "Spam Actions:") || !strings.Contains(log, "Deferral of message: message 4Outage1 ") {
		t.Errorf("an outage deferral must be logged as a deferral, not as spam:\n%s", log)
	}
}
