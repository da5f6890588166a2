// Command chainmail-bench measures chainmail through the real milter
// protocol: it starts `chainmail serve` as a separate process with a DNS
// server on loopback (serving SPF, DKIM and DMARC records for the test
// domain), drives DKIM-signed messages through it at a chosen concurrency,
// and prints throughput, latency percentiles, server CPU per message, DNS
// queries per message and the server's peak RSS. Further sections measure
// the DNS list checks, the attachment check, (disarm.go) what disarming
// makes of the corpus's Office documents and what it costs,
// (adversarial.go) whether blocked messages get through under CPU
// pressure, and (classify.go) how
// well chainmail's bayes check, bogofilter and SpamAssassin tell spam from
// ham on the SpamAssassin public corpus. -sections picks them.
//
//	go run ./cmd/chainmail-bench -chainmail bin/chainmail -n 4000 -c 16
//	go run ./cmd/chainmail-bench -chainmail bin/chainmail -sections classification
//	go run ./cmd/chainmail-bench -chainmail bin/chainmail -sections adversarial -strict
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"chainmail/checks"
	"chainmail/milter"
)

func main() {
	bin := flag.String("chainmail", "bin/chainmail", "chainmail binary to run")
	n := flag.Int("n", 4000, "messages to send in the timed run")
	conc := flag.Int("c", 16, "concurrent milter connections")
	perConn := flag.Int("per-conn", 10, "messages per milter connection (as over one SMTP session)")
	size := flag.Int("size", 10*1024, "message size in bytes")
	dnsbl := flag.Bool("dnsbl", true, "also measure the DNS list checks (rbl, uribl) and URL extraction")
	atts := flag.Bool("attachments", true, "also measure the attachment check on gargantua.eml and a 10 MB attachment")
	corpus := flag.String("corpus", "../shared/corpus", "the shared test corpus (gargantua.eml; oletools-test-data and SpamAssassin's olevbmacro messages for disarm)")
	sections := flag.String("sections", "all", "comma-separated sections to run: throughput, dnsbl, attachments, disarm, adversarial, classification, or all")
	strict := flag.Bool("strict", false, "exit with status 2 when the adversarial section delivered a blocked message")
	var adv advOptions
	flag.IntVar(&adv.heavy, "adv-heavy", 120, "adversarial: CPU-heavy messages")
	flag.IntVar(&adv.exe, "adv-exe", 400, "adversarial: messages with a blocked evil.exe")
	flag.IntVar(&adv.deny, "adv-deny", 300, "adversarial: messages from a deny-listed envelope sender")
	flag.IntVar(&adv.garg, "adv-gargantua", 80, "adversarial: gargantua.eml messages (CPU-heavy, and blocked: one attachment is a PE program)")
	flag.IntVar(&adv.plain, "adv-plain", 100, "adversarial: ordinary small messages")
	flag.IntVar(&adv.conc, "adv-c", 200, "adversarial: concurrent milter connections")
	flag.DurationVar(&adv.listsTimeout, "adv-lists-timeout", 200*time.Millisecond, "adversarial: timeout of the lists check")
	flag.DurationVar(&adv.attTimeout, "adv-attachment-timeout", 300*time.Millisecond, "adversarial: timeout of the attachment check")
	flag.IntVar(&adv.htmlSize, "adv-html-size", 3<<20, "adversarial: size of the heavy HTML message in bytes")
	var class classOptions
	flag.IntVar(&class.saMax, "sa-max", 0, "classification: score only this many test messages through SpamAssassin, spread evenly over the groups (0: all)")
	flag.IntVar(&class.workers, "sa-workers", 2, "classification: spamd children scoring in parallel")
	sa := flag.Bool("sa", true, "classification: also measure SpamAssassin (minutes: sa-learn, then spamd on every test message)")
	flag.BoolVar(&class.keep, "class-keep", false, "classification: keep the working directory (the splits, the trained databases) and print its path")
	flag.Parse()
	adv.corpus = *corpus
	class.noSA = !*sa
	want := map[string]bool{}
	for _, s := range strings.Split(*sections, ",") {
		switch s = strings.TrimSpace(s); s {
		case "all":
			want["throughput"], want["dnsbl"], want["attachments"], want["adversarial"] = true, *dnsbl, *atts, true
			want["classification"], want["disarm"] = true, true
		case "throughput", "dnsbl", "attachments", "disarm", "adversarial", "classification":
			want[s] = true
		default:
			fmt.Fprintf(os.Stderr, "chainmail-bench: -sections: unknown section %q (throughput, dnsbl, attachments, disarm, adversarial, classification, all)\n", s)
			os.Exit(1)
		}
	}
	if want["throughput"] {
		if err := run(*bin, *n, *conc, *perConn, *size); err != nil {
			fmt.Fprintln(os.Stderr, "chainmail-bench:", err)
			os.Exit(1)
		}
	}
	if want["dnsbl"] {
		if err := runDNSBL(*bin, *n, *conc); err != nil {
			fmt.Fprintln(os.Stderr, "chainmail-bench: dnsbl:", err)
			os.Exit(1)
		}
	}
	if want["attachments"] {
		if err := runAttachments(*bin, *corpus); err != nil {
			fmt.Fprintln(os.Stderr, "chainmail-bench: attachments:", err)
			os.Exit(1)
		}
	}
	if want["disarm"] {
		if err := runDisarm(*corpus); err != nil {
			fmt.Fprintln(os.Stderr, "chainmail-bench: disarm:", err)
			os.Exit(1)
		}
	}
	if want["classification"] {
		if err := runClassification(*bin, class); err != nil {
			fmt.Fprintln(os.Stderr, "chainmail-bench: classification:", err)
			os.Exit(1)
		}
	}
	if want["adversarial"] {
		bad, err := runAdversarial(*bin, adv)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chainmail-bench: adversarial:", err)
			os.Exit(1)
		}
		if bad > 0 && *strict {
			fmt.Fprintf(os.Stderr, "chainmail-bench: adversarial: %d blocked messages delivered (-strict)\n", bad)
			os.Exit(2)
		}
	}
}

const domain = "bench.example"

func run(bin string, n, conc, perConn, size int) error {
	dir, err := os.MkdirTemp("", "chainmail-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	dnsSrv, err := benchDNS(key)
	if err != nil {
		return err
	}
	defer dnsSrv.Close()

	msg, err := signedMessage(key, size)
	if err != nil {
		return err
	}

	milterAddr, err := freePort()
	if err != nil {
		return err
	}
	metricsAddr, err := freePort()
	if err != nil {
		return err
	}
	conf := fmt.Sprintf("listen: inet:%s\nhostname: mx.bench.test\nmetrics: {listen: %q}\ndns: {servers: [%q]}\nlog:\n  sinks: [{type: file, path: %q}]\n",
		milterAddr, metricsAddr, dnsSrv.Addr(), filepath.Join(dir, "verdicts.log"))
	srv, err := startServer(bin, dir, "bench.yaml", conf, milterAddr)
	if err != nil {
		return err
	}
	defer srv.stop()
	client := srv.client
	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.25"), ClientName: "mail." + domain, HELO: "mail." + domain,
		MailFrom: "alice@" + domain, Rcpts: []string{"bob@example.org"}}

	// Cold: the first message, with empty DNS caches.
	dnsSrv.ResetQueries()
	coldEnv := env
	coldEnv.QueueID = "BCOLD"
	first, err := send(client, coldEnv, msg)
	if err != nil {
		return err
	}
	cold := dnsSrv.Queries()
	if first.Action != "accept" {
		return fmt.Errorf("the benchmark message was not accepted (%s %s); server log:\n%s", first.Action, first.Reply, srv.stderr.String())
	}
	authResults := "(none)"
	for _, h := range first.Headers {
		if h.Name == "Authentication-Results" {
			authResults = h.Value
		}
	}
	// Warm-up, then the timed run.
	if _, _, err := sendBatch(client, env, msg, 200, conc, perConn); err != nil {
		return err
	}
	dnsSrv.ResetQueries()
	checks0, err := checkTimes(metricsAddr)
	if err != nil {
		return err
	}
	cpu0, _ := cpuTime(srv.cmd.Process.Pid)
	start := time.Now()
	_, lat, err := sendBatch(client, env, msg, n, conc, perConn)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	cpu1, _ := cpuTime(srv.cmd.Process.Pid)
	warm := dnsSrv.Queries()
	rss, _ := peakRSS(srv.cmd.Process.Pid)
	checks1, err := checkTimes(metricsAddr)
	if err != nil {
		return err
	}

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	fmt.Printf("chainmail-bench: %d messages of %d bytes (DKIM rsa-2048 signed), %d connections, %d messages per connection\n",
		n, len(msg), conc, perConn)
	fmt.Printf("  Authentication-Results of the first message: %s\n", authResults)
	fmt.Printf("  throughput        %8.0f msgs/s\n", float64(n)/elapsed.Seconds())
	fmt.Printf("  latency p50       %8.2f ms\n", ms(pct(0.50)))
	fmt.Printf("  latency p99       %8.2f ms\n", ms(pct(0.99)))
	fmt.Printf("  latency max       %8.2f ms\n", ms(lat[len(lat)-1]))
	fmt.Printf("  server CPU        %8.3f ms per message\n", ms(cpu1-cpu0)/float64(n))
	fmt.Printf("  DNS queries       %8d cold (first message), %.3f per message warm\n", cold, float64(warm)/float64(n))
	fmt.Printf("  server peak RSS   %8.1f MiB\n", float64(rss)/1024)
	fmt.Printf("  time per check (mean over the timed run, from chainmail_check_duration_seconds):\n")
	var names []string
	for name := range checks1 {
		names = append(names, name)
	}
	sort.Strings(names)
	total := 0.0
	for _, name := range names {
		d := checks1[name].sum - checks0[name].sum
		c := checks1[name].count - checks0[name].count
		if c == 0 {
			continue
		}
		total += d / c
		fmt.Printf("    %-12s %8.3f ms\n", name, d/c*1000)
	}
	fmt.Printf("    %-12s %8.3f ms\n", "all checks", total*1000)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sendBatch sends n messages over conc workers, each opening a new milter
// connection every perConn messages.
func sendBatch(c *milter.Client, env checks.Envelope, msg []byte, n, conc, perConn int) ([]string, []time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var actions []string
	var firstErr error
	jobs := make(chan int, n)
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s *milter.Session
			sent := 0
			defer func() {
				if s != nil {
					s.Close()
				}
			}()
			for i := range jobs {
				if s == nil || sent == perConn {
					if s != nil {
						s.Close()
					}
					var err error
					if s, err = c.Dial(env); err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					sent = 0
				}
				e := env
				e.QueueID = fmt.Sprintf("B%06d", i)
				t0 := time.Now()
				out, err := s.Send(e, bytes.NewReader(msg))
				d := time.Since(t0)
				sent++
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					lat = append(lat, d)
					actions = append(actions, out.Action)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return actions, lat, firstErr
}

// server is a `chainmail serve` process started by the bench.
type server struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	client *milter.Client
}

// startServer writes conf to dir/name, runs chainmail serve on it and
// waits until addr, its milter address, accepts connections.
func startServer(bin, dir, name, conf, addr string) (*server, error) {
	cfg := filepath.Join(dir, name)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	s := &server{cmd: exec.Command(bin, "serve", "-c", cfg)}
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitPort(addr); err != nil {
		s.stop()
		return nil, fmt.Errorf("%v\n%s", err, s.stderr.String())
	}
	s.client = &milter.Client{Network: "tcp", Address: addr, Timeout: time.Minute}
	return s, nil
}

func (s *server) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// send sends one message on its own milter connection and returns the
// milter's answer, whatever it is.
func send(c *milter.Client, env checks.Envelope, msg []byte) (*milter.Outcome, error) {
	s, err := c.Dial(env)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Send(env, bytes.NewReader(msg))
}

func signedMessage(key *rsa.PrivateKey, size int) ([]byte, error) {
	var body strings.Builder
	line := "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
	for body.Len() < size {
		body.WriteString(line)
	}
	raw := "From: Alice <alice@" + domain + ">\r\nTo: Bob <bob@example.org>\r\nSubject: Quarterly figures\r\n" +
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@" + domain + ">\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body.String()
	return signN(key, raw, 1)
}

// signN adds n DKIM signatures (selector sel) to raw.
func signN(key *rsa.PrivateKey, raw string, n int) ([]byte, error) {
	for i := 0; i < n; i++ {
		var signed bytes.Buffer
		if err := dkim.Sign(&signed, strings.NewReader(raw), &dkim.SignOptions{
			Domain: domain, Selector: "sel", Signer: key,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		}); err != nil {
			return nil, err
		}
		raw = signed.String()
	}
	return []byte(raw), nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitPort(addr string) error {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("chainmail did not start listening on %s", addr)
}

type sumCount struct{ sum, count float64 }

// checkTimes scrapes the per-check latency histograms from /metrics.
func checkTimes(addr string) (map[string]sumCount, error) {
	b, err := scrape(addr)
	if err != nil {
		return nil, err
	}
	out := map[string]sumCount{}
	for _, line := range strings.Split(b, "\n") {
		for _, suffix := range []string{"_sum", "_count"} {
			prefix := "chainmail_check_duration_seconds" + suffix + "{check=\""
			if !strings.HasPrefix(line, prefix) {
				continue
			}
			rest := line[len(prefix):]
			name, val, ok := strings.Cut(rest, "\"} ")
			if !ok {
				continue
			}
			v, _ := strconv.ParseFloat(val, 64)
			sc := out[name]
			if suffix == "_sum" {
				sc.sum = v
			} else {
				sc.count = v
			}
			out[name] = sc
		}
	}
	return out, nil
}

// scrape returns the text of /metrics.
func scrape(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// cpuTime is the process's user+system CPU time from /proc.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on Linux.
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// peakRSS is VmHWM in KiB.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM")
}
