package main

// The DNS list section of the benchmark (issue 4): a message with 50 URLs
// through rbl (one IP list) and uribl (two URI lists), cold and warm DNS
// cache, DNS queries per message, and the cost of URL extraction for
// 10 KB, 1 MB and 10 MB bodies.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"chainmail/checks"
	"chainmail/checks/dns/zoneserver"
	"chainmail/checks/uribl"
	"chainmail/milter"
)

const dnsblZones = `$TTL 3600
$ORIGIN zen.bench.test.
@          IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
2.0.0.127  IN A 127.0.0.2
$ORIGIN dbl.bench.test.
@          IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
test       IN A 127.0.1.2
$ORIGIN multi.bench.test.
@          IN SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 300
test       IN A 127.0.0.14
`

const dnsblConfig = `listen: inet:%s
hostname: mx.bench.test
metrics: {listen: ""}
dns: {servers: [%q]}
log:
  sinks: [{type: file, path: %q}]
rules: []
checks:
  - name: rbl
    options:
      lists:
        - {name: ZEN, zone: zen.bench.test, lookup: [client, received], codes: [{symbol: RBL_ZEN, score: 4, match: 127.0.0.2-127.0.0.11}]}
  - name: uribl
    options:
      lists:
        - {name: DBL, zone: dbl.bench.test, lookup: [domains], codes: [{symbol: DBL_SPAM, score: 4, match: 127.0.1.2}]}
        - {name: URIBL, zone: multi.bench.test, codes: [{symbol: URIBL_BLACK, score: 4, bits: 2}]}
`

// urlMessage is an HTML newsletter of about 10 KB with 50 links, each to
// its own registrable domain; tag makes the domains of one message its
// own.
func urlMessage(tag string) []byte {
	var b strings.Builder
	b.WriteString("From: News <news@bench.example>\r\nTo: Bob <bob@example.org>\r\nSubject: Weekly links\r\n" +
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <links-" + tag + "@bench.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "<p>Story %d: <a href=\"https://www.site%d-%s.com/articles/%d?utm_source=news\">read the whole story</a> "+
			"on our partner's site, with pictures and comments.</p>\r\n", i, i, tag, i)
	}
	for b.Len() < 10*1024 {
		b.WriteString("<p>Unsubscribe at any time from the link at the top of this message.</p>\r\n")
	}
	b.WriteString("</body></html>\r\n")
	return []byte(b.String())
}

// runDNSBL measures the rbl and uribl checks through the milter protocol.
func runDNSBL(bin string, n, conc int) error {
	dir, err := os.MkdirTemp("", "chainmail-bench-dnsbl-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dnsSrv, err := zoneserver.New()
	if err != nil {
		return err
	}
	if err := dnsSrv.AddZone(dnsblZones, ""); err != nil {
		return err
	}
	if err := dnsSrv.Start(); err != nil {
		return err
	}
	defer dnsSrv.Close()

	addr, err := freePort()
	if err != nil {
		return err
	}
	srv, err := startServer(bin, dir, "dnsbl.yaml", fmt.Sprintf(dnsblConfig, addr, dnsSrv.Addr(), filepath.Join(dir, "verdicts.log")), addr)
	if err != nil {
		return err
	}
	defer srv.stop()
	client := srv.client
	env := func(i int) checks.Envelope {
		return checks.Envelope{ClientIP: net.IPv4(198, 51, byte(i>>8), byte(i)), ClientName: "mail.bench.example",
			HELO: "mail.bench.example", MailFrom: "news@bench.example", Rcpts: []string{"bob@example.org"},
			QueueID: fmt.Sprintf("D%06d", i)}
	}

	// The first message: empty caches, health probes of the three lists.
	dnsSrv.ResetQueries()
	if _, err := sendDNSBL(client, env(0), urlMessage("first")); err != nil {
		return err
	}
	first := dnsSrv.Queries()

	// Cold: every message has its own client address and 50 domains
	// nobody asked about before.
	cold := min(n, 500)
	dnsSrv.ResetQueries()
	cpu0, _ := cpuTime(srv.cmd.Process.Pid)
	start := time.Now()
	coldLat, err := sendMany(client, cold, conc, func(i int) (checks.Envelope, []byte) {
		return env(1000 + i), urlMessage(fmt.Sprintf("c%d", i))
	})
	if err != nil {
		return err
	}
	coldTime := time.Since(start)
	cpu1, _ := cpuTime(srv.cmd.Process.Pid)
	coldQ := dnsSrv.Queries()

	// Warm: the same client and links again and again.
	msg := urlMessage("warm")
	if _, err := sendDNSBL(client, env(1), msg); err != nil {
		return err
	}
	dnsSrv.ResetQueries()
	cpu2, _ := cpuTime(srv.cmd.Process.Pid)
	start = time.Now()
	warmLat, err := sendMany(client, n, conc, func(i int) (checks.Envelope, []byte) { return env(1), msg })
	if err != nil {
		return err
	}
	warmTime := time.Since(start)
	cpu3, _ := cpuTime(srv.cmd.Process.Pid)
	warmQ := dnsSrv.Queries()
	rss, _ := peakRSS(srv.cmd.Process.Pid)
	fmt.Printf("\nchainmail-bench: DNS lists — rbl (1 IP list) and uribl (2 URI lists), %d-byte HTML message with 50 URLs on 50 domains, %d connections\n", len(msg), conc)
	fmt.Printf("  first message     %8d DNS queries (3 health probes of 2 queries, 1 client, 50 domains x 2 lists)\n", first)
	fmt.Printf("  cold cache        %8.0f msgs/s, p50 %.2f ms, p99 %.2f ms, %.3f ms CPU, %.1f DNS queries per message (%d messages, new client and domains each)\n",
		float64(cold)/coldTime.Seconds(), ms(pctl(coldLat, .5)), ms(pctl(coldLat, .99)), ms(cpu1-cpu0)/float64(cold), float64(coldQ)/float64(cold), cold)
	fmt.Printf("  warm cache        %8.0f msgs/s, p50 %.2f ms, p99 %.2f ms, %.3f ms CPU, %.3f DNS queries per message (%d messages)\n",
		float64(n)/warmTime.Seconds(), ms(pctl(warmLat, .5)), ms(pctl(warmLat, .99)), ms(cpu3-cpu2)/float64(n), float64(warmQ)/float64(n), n)
	fmt.Printf("  server peak RSS   %8.1f MiB\n", float64(rss)/1024)

	// URL extraction alone, in this process.
	fmt.Printf("  URL extraction (text/html and text/plain, a URL every ~100 bytes, every host new every 200 lines):\n")
	for _, size := range []int{10 << 10, 1 << 20, 10 << 20} {
		for _, html := range []bool{false, true} {
			m := extractionMessage(size, html)
			runs := max(3, min(200, (4<<20)/size))
			var best time.Duration
			for r := 0; r < runs; r++ {
				t0 := time.Now()
				uribl.Extract(m, uribl.Limits{MaxScan: 64 << 20, MaxURLs: 1 << 30})
				if d := time.Since(t0); r == 0 || d < best {
					best = d
				}
			}
			kind := "plain"
			if html {
				kind = "html "
			}
			fmt.Printf("    %s %6d KiB  %9.3f ms  %6.1f ns/byte  %6.0f MB/s\n", kind, size>>10, ms(best),
				float64(best.Nanoseconds())/float64(size), float64(size)/best.Seconds()/1e6)
		}
	}
	return nil
}

func pctl(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[int(float64(len(lat)-1)*p)]
}

func sendDNSBL(c *milter.Client, env checks.Envelope, msg []byte) (*milter.Outcome, error) {
	out, err := send(c, env, msg)
	if err == nil && out.Action != "accept" {
		err = fmt.Errorf("benchmark message not accepted: %s %s", out.Action, out.Reply)
	}
	return out, err
}

// sendMany sends n messages over conc workers, one milter connection per
// message (each has its own client address).
func sendMany(c *milter.Client, n, conc int, next func(i int) (checks.Envelope, []byte)) ([]time.Duration, error) {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan int, n)
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				env, msg := next(i)
				t0 := time.Now()
				_, err := sendDNSBL(c, env, msg)
				d := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, firstErr
}

// extractionMessage is a body of about size bytes with a URL and an
// address on every line.
func extractionMessage(size int, html bool) *checks.Message {
	var b strings.Builder
	ct := "text/plain"
	if html {
		ct = "text/html"
	}
	b.WriteString("Content-Type: " + ct + "; charset=utf-8\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		if html {
			fmt.Fprintf(&b, "<p>Line %d of the <b>newsletter</b>, <a href=\"http://www.site%d.example.com/a?b=c\">read more</a> about it.</p>\r\n", i, i%200)
		} else {
			fmt.Fprintf(&b, "Line %d of the newsletter, see http://www.site%d.example.com/a?b=c or write to news%d@example.org.\r\n", i, i%200, i)
		}
	}
	m, _ := checks.ReadMessage(strings.NewReader(b.String()), checks.NewSpool(1<<20, ""))
	return m
}
