package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks/checktest"
)

// startLimited runs the built daemon under prlimit's descriptor limit
// (soft:hard) and waits for its milter port.
func startLimited(t *testing.T, nofile, extra string) (milterAddr string, stderr *checktest.LockedBuffer, exited chan error) {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	milterAddr = freePort(t)
	cfg := filepath.Join(dir, "chainmail.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: inet:%s\n", milterAddr)+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, exec.Command(prlimit, "--nofile="+nofile, "--", bin, "serve", "-c", cfg), "tcp", milterAddr)
	return milterAddr, p.stderr, p.exited
}

// At the descriptor limit the daemon stops accepting for a while (backing
// off) instead of exiting, and serves again when connections close. The
// limit is real: the daemon runs under prlimit --nofile=40:40, and the
// test holds more connections than that.
func TestServeSurvivesDescriptorExhaustion(t *testing.T) {
	addr, stderr, exited := startLimited(t, "40:40", "metrics: {listen: \"\"}\nchecks:\n  - name: gtube\n    decisive: spam\n")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 80; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break // the accept backlog is full: that is exhaustion too
		}
		conns = append(conns, c)
	}
	waitFor(t, "the accept error to be logged", func() bool {
		return strings.Contains(stderr.String(), "too many open files")
	})
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("daemon exited at the descriptor limit: %v\n%s", err, stderr.String())
	case <-time.After(2 * time.Second):
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if out := sendOne(t, addr, "x@example.net", gtubeMsg); out.Action != "reject" {
		t.Fatalf("after the connections closed: %+v\n%s", out, stderr.String())
	}
	if n := strings.Count(stderr.String(), "too many open files"); n != 1 {
		t.Errorf("accept error logged %d times, want once a minute", n)
	}
}

// The soft descriptor limit is raised to the hard one: with a soft limit
// of 40 and a hard one of 4096 the daemon holds 200 connections.
func TestServeRaisesSoftDescriptorLimit(t *testing.T) {
	metricsAddr := freePort(t)
	addr, stderr, _ := startLimited(t, "40:4096", fmt.Sprintf("metrics: {listen: %q}\n", metricsAddr))
	if !strings.Contains(stderr.String(), "descriptor limit 4096") {
		waitFor(t, "the descriptor limit line", func() bool { return strings.Contains(stderr.String(), "descriptor limit 4096") })
	}
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, "200 sessions", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/healthz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), "sessions=200")
	})
	if strings.Contains(stderr.String(), "too many open files") {
		t.Errorf("accept errors below the hard limit:\n%s", stderr.String())
	}
}

// /debug/pprof/ is served only with metrics.pprof: true.
func TestServePprofOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		metricsAddr := freePort(t)
		startLimited(t, "4096:4096", fmt.Sprintf("metrics: {listen: %q, pprof: %v}\n", metricsAddr, on))
		var code int
		waitFor(t, "the metrics listener", func() bool {
			resp, err := http.Get("http://" + metricsAddr + "/debug/pprof/goroutine?debug=1")
			if err != nil {
				return false
			}
			resp.Body.Close()
			code = resp.StatusCode
			return true
		})
		if want := map[bool]int{false: 404, true: 200}[on]; code != want {
			t.Errorf("pprof: %v: /debug/pprof/goroutine answered %d, want %d", on, code, want)
		}
	}
}
