package main

// The adversarial section of the benchmark: hundreds of concurrent
// CPU-heavy messages (multi-MB HTML with a URL every line and five DKIM
// signatures, zips of thousands of small members nested several deep,
// a large base64 attachment, rspamd's gargantua.eml) mixed with messages
// that must never be delivered — a Windows program (evil.exe, denied by
// the default filename and filetype rules: attachment.status "blocked",
// rule attachment-blocked, reject) and an envelope sender on the lists
// check's deny list (lists.status "listed", rule deny-list, reject) — and
// with ordinary small messages. It prints how many blocked messages were
// delivered (accept, tag or continue instead of reject, tempfail,
// quarantine or discard): that figure must be 0.

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	mrand "math/rand"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns/zoneserver"
)

// advOptions are the adversarial section's settings (flags -adv-*).
type advOptions struct {
	heavy, exe, deny, garg, plain int
	conc                          int
	listsTimeout                  time.Duration
	attTimeout                    time.Duration
	htmlSize                      int
	corpus                        string
}

const advConfig = `listen: inet:%[1]s
hostname: mx.bench.test
metrics: {listen: %[2]q}
dns: {servers: [%[3]q]}
spool: {dir: %[4]q}
log:
  sinks: [{type: file, path: %[5]q}]
checks:
  - name: lists
    decisive: both
    timeout: %[6]s
    options:
      deny: {clients: [], senders: [%[7]s], recipients: []}
  - name: gtube
    decisive: spam
    timeout: 5s
    max_size: 10MiB
  - name: spf
    timeout: 20s
  - name: dkim
    timeout: 20s
  - name: dmarc
    timeout: 20s
  - name: uribl
    timeout: 15s
  - name: whaling
    timeout: 2s
  - name: attachment
    timeout: %[8]s
`

// advDeniedSender is the envelope sender on the bench's deny list.
const advDeniedSender = "mallory@bench.example"

type advClass int

const (
	advHeavy advClass = iota
	advExe
	advDeny
	advGarg
	advPlain
)

var advClassNames = []string{"heavy", "blocked .exe", "deny-listed sender", "gargantua.eml", "ordinary"}

type advResult struct {
	class   advClass
	kind    string
	action  string
	latency time.Duration
	err     error
}

// delivered reports whether an action lets the message reach a mailbox
// (a tagged message is accepted with headers).
func delivered(action string) bool { return action == "accept" || action == "continue" }

func runAdversarial(bin string, o advOptions) (blockedDelivered int, err error) {
	dir, err := os.MkdirTemp("", "chainmail-bench-adv-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	dnsSrv, err := benchDNS(key)
	if err != nil {
		return 0, err
	}
	defer dnsSrv.Close()

	// The messages, built once.
	type kind struct {
		name string
		msg  []byte
	}
	var heavy []kind
	html, err := signN(key, heavyHTML(o.htmlSize), 5)
	if err != nil {
		return 0, err
	}
	heavy = append(heavy, kind{fmt.Sprintf("%d KiB HTML, a URL every line, 5 DKIM signatures", len(html)>>10), html})
	z, err := nestedZipMessage()
	if err != nil {
		return 0, err
	}
	heavy = append(heavy, kind{fmt.Sprintf("%d KiB nested zips of many small members", len(z)>>10), z})
	heavy = append(heavy, kind{"8 MiB base64 attachment", bigAttachment(8 << 20)})
	garg, err := os.ReadFile(filepath.Join(o.corpus, "rspamd-functional", "messages", "gargantua.eml"))
	if err != nil {
		return 0, fmt.Errorf("gargantua.eml: %v (set -corpus)", err)
	}
	exe := exeMessage()
	deny := denyMessage()
	plain, err := signedMessage(key, 10*1024)
	if err != nil {
		return 0, err
	}

	addr, err := freePort()
	if err != nil {
		return 0, err
	}
	metricsAddr, err := freePort()
	if err != nil {
		return 0, err
	}
	conf := fmt.Sprintf(advConfig, addr, metricsAddr, dnsSrv.Addr(), dir, filepath.Join(dir, "verdicts.log"),
		o.listsTimeout, strconv.Quote(advDeniedSender), o.attTimeout)
	srv, err := startServer(bin, dir, "adversarial.yaml", conf, addr)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	client := srv.client
	client.Timeout = 5 * time.Minute

	env := func(c advClass, i int) checks.Envelope {
		e := checks.Envelope{ClientIP: net.ParseIP("192.0.2.25"), ClientName: "mail." + domain, HELO: "mail." + domain,
			MailFrom: "alice@" + domain, Rcpts: []string{"bob@example.org"}, QueueID: fmt.Sprintf("X%06d", i)}
		if c == advDeny {
			e.MailFrom = advDeniedSender
		}
		return e
	}

	// Unloaded, each blocked message must be refused and every other
	// one delivered (or deferred, when a check outruns its timeout), or
	// the section would measure nothing.
	type probe struct {
		name    string
		class   advClass
		msg     []byte
		blocked bool
	}
	probes := []probe{{"blocked .exe", advExe, exe, true}, {"deny-listed sender", advDeny, deny, true},
		{"gargantua.eml", advGarg, garg, true}, {"ordinary", advPlain, plain, false}}
	for _, k := range heavy {
		probes = append(probes, probe{k.name, advHeavy, k.msg, false})
	}
	for _, p := range probes {
		out, err := send(client, env(p.class, 0), p.msg)
		if err != nil {
			return 0, err
		}
		switch {
		case delivered(out.Action) == p.blocked && (p.blocked || out.Action != "tempfail"):
			return 0, fmt.Errorf("%s message unloaded: %s %s; server log:\n%s", p.name, out.Action, out.Reply, srv.stderr.String())
		case out.Action == "tempfail":
			// A content check slower than its configured timeout
			// defers the message (on_timeout: tempfail), loaded or not.
			fmt.Printf("  note: %s is deferred even unloaded (%s): a content check outruns its timeout\n", p.name, out.Reply)
		}
	}

	// The jobs, mixed in a fixed order so the blocked and ordinary
	// messages arrive while the heavy ones are in flight.
	var jobs []advClass
	for c, n := range []int{o.heavy, o.exe, o.deny, o.garg, o.plain} {
		for i := 0; i < n; i++ {
			jobs = append(jobs, advClass(c))
		}
	}
	mrand.New(mrand.NewSource(1)).Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	before, err := checkStatuses(metricsAddr)
	if err != nil {
		return 0, err
	}
	cpu0, _ := cpuTime(srv.cmd.Process.Pid)
	idx := make(chan int, len(jobs))
	for i := range jobs {
		idx <- i
	}
	close(idx)
	results := make([]advResult, len(jobs))
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				c := jobs[i]
				r := advResult{class: c}
				var msg []byte
				switch c {
				case advHeavy:
					k := heavy[i%len(heavy)]
					r.kind, msg = k.name, k.msg
				case advExe:
					msg = exe
				case advDeny:
					msg = deny
				case advGarg:
					msg = garg
				default:
					msg = plain
				}
				t0 := time.Now()
				out, err := send(client, env(c, i+1), msg)
				r.latency = time.Since(t0)
				if err != nil {
					r.err = err
				} else {
					r.action = out.Action
				}
				results[i] = r
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := cpuTime(srv.cmd.Process.Pid)
	rss, _ := peakRSS(srv.cmd.Process.Pid)
	after, err := checkStatuses(metricsAddr)
	if err != nil {
		return 0, err
	}

	fmt.Printf("\nchainmail-bench: adversarial — %d CPU-heavy messages and %d gargantua.eml mixed with %d blocked .exe, %d deny-listed senders and %d ordinary messages, %d connections at once, one message per connection, %d cores\n",
		o.heavy, o.garg, o.exe, o.deny, o.plain, o.conc, runtime.NumCPU())
	fmt.Printf("  settings: lists timeout %s, attachment timeout %s; gtube 5s, spf/dkim/dmarc 20s, uribl 15s (no lists: URL extraction and phishing), whaling 2s; policy deadline 60s, milter timeout 120s (defaults); default rules\n",
		o.listsTimeout, o.attTimeout)
	fmt.Printf("  blocked: a %d-byte message with evil.exe (default filename and filetype rules: deny -> rule attachment-blocked -> reject); envelope sender %s on the lists deny list (rule deny-list -> reject);\n"+
		"           rspamd's gargantua.eml, %d KiB, 59 attachments, one a PE program (default filetype rule: deny -> reject), CPU-heavy itself; all three refused when sent unloaded first\n",
		len(exe), advDeniedSender, len(garg)>>10)
	fmt.Printf("  heavy kinds, in turn:")
	for i, k := range heavy {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Printf("%s %s", sep, k.name)
	}
	fmt.Println()

	// Per class: actions, delivered, errors, latency.
	type stats struct {
		n, delivered, errs int
		actions            map[string]int
		lat                []time.Duration
		firstErr           error
	}
	per := make([]stats, len(advClassNames))
	for i := range per {
		per[i].actions = map[string]int{}
	}
	for _, r := range results {
		s := &per[r.class]
		s.n++
		if r.err != nil {
			s.errs++
			if s.firstErr == nil {
				s.firstErr = r.err
			}
			continue
		}
		s.actions[r.action]++
		s.lat = append(s.lat, r.latency)
		if delivered(r.action) {
			s.delivered++
		}
	}
	for _, c := range []advClass{advExe, advDeny, advGarg} {
		s := per[c]
		blockedDelivered += s.delivered
		fmt.Printf("  %-20s delivered %5d of %5d   MUST BE 0   (%s)\n", advClassNames[c], s.delivered, s.n, actionList(s.actions, s.errs))
	}
	fmt.Printf("  %-20s delivered %5d of %5d   MUST BE 0\n", "blocked, all", blockedDelivered, per[advExe].n+per[advDeny].n+per[advGarg].n)
	var rest []time.Duration
	for _, c := range []advClass{advHeavy, advPlain} {
		s := per[c]
		rest = append(rest, s.lat...)
		fmt.Printf("  %-20s %5d messages, p50 %8.0f ms, p99 %8.0f ms, max %8.0f ms (%s)\n", advClassNames[c], s.n,
			ms(pctl(s.lat, .5)), ms(pctl(s.lat, .99)), ms(pctl(s.lat, 1)), actionList(s.actions, s.errs))
	}
	fmt.Printf("  the rest (heavy + ordinary): %.1f msgs/s over the run, p99 %.0f ms\n", float64(len(rest))/elapsed.Seconds(), ms(pctl(rest, .99)))
	fmt.Printf("  all %d messages in %.1f s (%.1f msgs/s), server CPU %.1f s\n", len(results), elapsed.Seconds(), float64(len(results))/elapsed.Seconds(), (cpu1 - cpu0).Seconds())
	fmt.Printf("  server peak RSS   %8.1f MiB\n", float64(rss)/1024)
	fmt.Printf("  check results that were timeouts (chainmail_check_results_total):")
	var names []string
	for name := range after {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if d := after[name]["timeout"] - before[name]["timeout"]; d > 0 {
			fmt.Printf(" %s %.0f", name, d)
		}
	}
	fmt.Println()
	for c := range per {
		if per[c].firstErr != nil {
			fmt.Printf("  first %s error: %v\n", advClassNames[c], per[c].firstErr)
		}
	}
	return blockedDelivered, nil
}

func actionList(m map[string]int, errs int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if errs > 0 {
		parts = append(parts, fmt.Sprintf("errors %d", errs))
	}
	return strings.Join(parts, ", ")
}

// benchDNS serves SPF, DKIM (selector sel, key) and DMARC for the bench
// domain on loopback.
func benchDNS(key *rsa.PrivateKey) (*zoneserver.Server, error) {
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	dnsSrv, err := zoneserver.New()
	if err != nil {
		return nil, err
	}
	zone := fmt.Sprintf(`$ORIGIN %[1]s.
$TTL 3600
@ IN SOA ns.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 300
@ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
@ IN MX 10 mx.%[1]s.
mx IN A 192.0.2.1
_dmarc IN TXT "v=DMARC1; p=reject; adkim=r; aspf=r"
`, domain)
	if err := dnsSrv.AddZone(zone, domain+"."); err != nil {
		return nil, err
	}
	p := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
	var parts []string
	for len(p) > 0 {
		k := min(255, len(p))
		parts = append(parts, strconv.Quote(p[:k]))
		p = p[k:]
	}
	if err := dnsSrv.AddRecord(fmt.Sprintf("sel._domainkey.%s. 3600 IN TXT %s", domain, strings.Join(parts, " "))); err != nil {
		return nil, err
	}
	if err := dnsSrv.Start(); err != nil {
		return nil, err
	}
	return dnsSrv, nil
}

const advHeader = "From: Alice <alice@" + domain + ">\r\nTo: Bob <bob@example.org>\r\n" +
	"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"

// heavyHTML is an HTML newsletter of about size bytes with a link on
// every line, each to its own host.
func heavyHTML(size int) string {
	var b strings.Builder
	b.WriteString(advHeader + "Subject: Links\r\nMessage-ID: <html@" + domain + ">\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "<p>Item %d: <a href=\"https://www.site%d.example.com/a/%d?u=%d\">www.other%d.example.net</a> and mailto:news%d@example.org</p>\r\n", i, i, i, i, i, i)
	}
	b.WriteString("</body></html>\r\n")
	return b.String()
}

// nestedZipMessage carries a zip of 900 small text members and four
// zips, each of 900 members and four zips of 900 members.
func nestedZipMessage() ([]byte, error) {
	leaf := func(tag string) ([]byte, error) { return smallZip(tag, 900, nil) }
	var mid [][]byte
	for i := 0; i < 4; i++ {
		var inner [][]byte
		for j := 0; j < 4; j++ {
			z, err := leaf(fmt.Sprintf("l%d-%d", i, j))
			if err != nil {
				return nil, err
			}
			inner = append(inner, z)
		}
		z, err := smallZip(fmt.Sprintf("m%d", i), 900, inner)
		if err != nil {
			return nil, err
		}
		mid = append(mid, z)
	}
	top, err := smallZip("top", 900, mid)
	if err != nil {
		return nil, err
	}
	return attachmentMessage("archive.zip", "application/zip", top), nil
}

func smallZip(tag string, n int, nested [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < n; i++ {
		w, err := zw.Create(fmt.Sprintf("%s/notes-%04d.txt", tag, i))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "Note %d of %s: nothing to see here, just a line of text.\n", i, tag)
	}
	for i, z := range nested {
		w, err := zw.Create(fmt.Sprintf("%s/part-%d.zip", tag, i))
		if err != nil {
			return nil, err
		}
		w.Write(z)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func bigAttachment(size int) []byte {
	data := make([]byte, size)
	rand.Read(data)
	return attachmentMessage("data.bin", "application/octet-stream", data)
}

// attachmentMessage is a multipart message with a short text and one
// base64 attachment.
func attachmentMessage(name, ctype string, data []byte) []byte {
	var m bytes.Buffer
	m.WriteString(advHeader + "Subject: " + name + "\r\nMessage-ID: <" + name + "@" + domain + ">\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe file.\r\n" +
		"--b\r\nContent-Type: " + ctype + "; name=" + name + "\r\nContent-Disposition: attachment; filename=" + name +
		"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	writeBase64(&m, data)
	m.WriteString("--b--\r\n")
	return m.Bytes()
}

// writeBase64 writes data base64-encoded in lines of 76 characters, each
// ended by CRLF (RFC 2045 §6.8).
func writeBase64(m *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		m.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	m.WriteString(enc + "\r\n")
}

// exeMessage carries evil.exe, a small PE program: blocked by the default
// filename rule (\.exe$) and filetype rule (PE32 executable).
func exeMessage() []byte {
	pe := make([]byte, 1024)
	copy(pe, "MZ")
	pe[0x3c] = 0x80
	copy(pe[0x80:], "PE\x00\x00\x4c\x01")
	return attachmentMessage("evil.exe", "application/octet-stream", pe)
}

// denyMessage is a short clean message; its envelope sender is on the
// deny list.
func denyMessage() []byte {
	return []byte("From: Mallory <" + advDeniedSender + ">\r\nTo: Bob <bob@example.org>\r\nSubject: Hello\r\n" +
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <deny@" + domain + ">\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\nJust saying hello.\r\n")
}

// checkStatuses scrapes chainmail_check_results_total: check -> status -> count.
func checkStatuses(addr string) (map[string]map[string]float64, error) {
	b, err := scrape(addr)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]float64{}
	const prefix = "chainmail_check_results_total{"
	for _, line := range strings.Split(b, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		labels, val, ok := strings.Cut(line[len(prefix):], "} ")
		if !ok {
			continue
		}
		var check, status string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "check":
				check = v
			case "status":
				status = v
			}
		}
		f, _ := strconv.ParseFloat(val, 64)
		if out[check] == nil {
			out[check] = map[string]float64{}
		}
		out[check][status] = f
	}
	return out, nil
}
