package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	mdns "github.com/miekg/dns"

	"chainmail/checks/dns/dnstest"
)

// One DNS client serves the daemon across reloads: a reload keeps its
// cache (the second message, after a SIGHUP, asks the blocklist nothing
// new) and its metrics are on /metrics.
func TestServeDNSClientSurvivesReload(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	zone := filepath.Join(dir, "rbl.zone")
	if err := os.WriteFile(zone, []byte(rblZone+"7.2.0.192   IN A 127.0.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dnsSrv := dnstest.Start(t, zone)
	milterAddr, metricsAddr := freePort(t), freePort(t)
	logFile := filepath.Join(dir, "verdicts.log")
	cfg := filepath.Join(dir, "chainmail.yaml")
	conf := fmt.Sprintf(`listen: inet:%s
metrics: {listen: %q}
log:
  sinks: [{type: file, path: %q}]
dns: {servers: [%q], retries: -1}
checks:
  - name: rbl
    options:
      lists:
        - name: TEST-RBL
          zone: rbl.e2e.test
          codes:
            - {symbol: RBL_TEST_SBL, score: 4, match: 127.0.0.2}
`, milterAddr, metricsAddr, logFile, dnsSrv.Addr())
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, exec.Command(bin, "serve", "-c", cfg), "tcp", milterAddr)
	logText := func() string { b, _ := os.ReadFile(logFile); return string(b) }

	const qname = "7.2.0.192.rbl.e2e.test"
	sendOne(t, milterAddr, "x@example.net", hamMsg)
	waitFor(t, "the first verdict", func() bool { return strings.Contains(logText(), "found in TEST-RBL") })
	if n := dnsSrv.QueriesFor(qname, mdns.TypeA); n != 1 {
		t.Fatalf("first message: %d queries for %s, want 1", n, qname)
	}

	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return strings.Contains(logText(), "configuration reloaded") })
	sendOne(t, milterAddr, "y@example.net", hamMsg)
	waitFor(t, "the second verdict", func() bool { return strings.Count(logText(), "found in TEST-RBL") == 2 })
	if n := dnsSrv.QueriesFor(qname, mdns.TypeA); n != 1 {
		t.Errorf("after a reload: %d queries for %s, want 1 (the cache survives the reload)", n, qname)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`chainmail_dns_cache_hits_total{qtype="A"}`, `chainmail_dns_queries_total{qtype="A"}`, `chainmail_dns_lookups_total{qtype="A"}`, "chainmail_dns_cache_entries"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
