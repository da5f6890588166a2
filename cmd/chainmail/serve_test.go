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
	"sync"
	"syscall"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/milter"
	"chainmail/milter/miltertest"

	"github.com/prometheus/client_golang/prometheus"
)

// buildBinary compiles chainmail once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chainmail")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// process is a daemon started by a test (startProcess).
type process struct {
	cmd    *exec.Cmd
	stderr *checktest.LockedBuffer
	exited chan error // gets the exit once: a test that takes it puts it back
	once   sync.Once
}

// startProcess starts cmd with its stderr kept, kills it when the test
// ends, and waits until it accepts connections on addr (network "tcp" or
// "unix").
func startProcess(t *testing.T, cmd *exec.Cmd, network, addr string) *process {
	t.Helper()
	p := &process{cmd: cmd, stderr: &checktest.LockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if cmd.Env == nil {
		// A state file of its own: two daemons of one test would wait
		// on each other's lock.
		cmd.Env = append(os.Environ(), "STATE_DIRECTORY="+t.TempDir())
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(p.Stop)
	waitFor(t, "the milter to listen on "+addr, func() bool {
		c, err := net.Dial(network, addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// Stop kills the process and waits for it.
func (p *process) Stop() {
	p.once.Do(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
}

func sendOne(t *testing.T, addr, from, raw string) *milter.Outcome {
	t.Helper()
	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.7"), HELO: "client.example", MailFrom: from, Rcpts: []string{"bob@example.org"}, QueueID: "Q1"}
	c := &milter.Client{Network: "tcp", Address: addr, Timeout: 20 * time.Second}
	s, err := c.Dial(env)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Send(env, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const gtubeMsg = "Subject: test\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
const hamMsg = "From: alice@example.com\r\nSubject: hello\r\n\r\nhi\r\n"

// The daemon as a postmaster runs it: serves, reloads on SIGHUP (keeping
// the old configuration when the new one is bad), reports health and
// metrics, and stops on SIGTERM.
func TestServeReloadAndShutdown(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	milterAddr, metricsAddr := freePort(t), freePort(t)
	logFile := filepath.Join(dir, "verdicts.log")
	cfg := filepath.Join(dir, "chainmail.yaml")
	base := fmt.Sprintf("listen: inet:%s\nmetrics: {listen: %q}\nlog:\n  tag: MailScanner\n  sinks: [{type: file, path: %q}]\n", milterAddr, metricsAddr, logFile)
	zone := filepath.Join(dir, "empty.zone")
	os.WriteFile(zone, []byte("; empty\n"), 0o644)
	write := func(extra string) {
		if err := os.WriteFile(cfg, []byte(base+extra), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("checks:\n  - name: lists\n  - name: gtube\n    decisive: spam\n")

	p := startProcess(t, exec.Command(bin, "serve", "-c", cfg), "tcp", milterAddr)
	cmd, stderr, exited := p.cmd, p.stderr, p.exited

	if out := sendOne(t, milterAddr, "alice@example.com", hamMsg); out.Action != "accept" {
		t.Fatalf("ham: %+v", out)
	}
	if out := sendOne(t, milterAddr, "x@example.net", gtubeMsg); out.Action != "reject" {
		t.Fatalf("gtube: %+v", out)
	}
	logText := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	waitFor(t, "verdict lines in the log file", func() bool {
		return strings.Contains(logText(), " MailScanner[") && strings.Contains(logText(), "Message Q1 from 192.0.2.7 (x@example.net) to example.org is spam")
	})

	// A bad configuration is refused with file:line; the old one stays.
	write("policy:\n  tagg: 5\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload refusal", func() bool {
		return strings.Contains(logText(), "reload refused") && strings.Contains(logText(), cfg+":")
	})
	if out := sendOne(t, milterAddr, "x@example.net", gtubeMsg); out.Action != "reject" {
		t.Fatalf("old configuration lost after a refused reload: %+v", out)
	}

	// So is an empty (truncated) file: it is not "all defaults".
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload refusal of an empty file", func() bool {
		return strings.Contains(logText(), cfg+":1: the configuration file is empty")
	})
	if out := sendOne(t, milterAddr, "x@example.net", gtubeMsg); out.Action != "reject" {
		t.Fatalf("old configuration lost after an empty file: %+v", out)
	}

	// A good one takes effect.
	write("checks:\n  - name: lists\n    options: {deny: {senders: [alice@example.com]}}\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return strings.Contains(logText(), "configuration reloaded") })
	out := sendOne(t, milterAddr, "alice@example.com", hamMsg)
	if out.Action != "reject" || out.Reply != "550 5.7.1 Message rejected by local policy" {
		t.Fatalf("after reload: %+v", out)
	}

	resp, err := http.Get("http://" + metricsAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "ok") {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`chainmail_messages_total{action="reject"} 4`, `chainmail_messages_total{action="accept"} 1`, `chainmail_check_results_total{check="gtube",status="spam"} 3`, "chainmail_chain_duration_seconds_count 5"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	bin := buildBinary(t)
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte("listen: inet:127.0.0.1:0\nchecks:\n  - name: nosuchcheck\n"), 0o644)
	out, err := exec.Command(bin, "serve", "-c", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitUsage {
		t.Fatalf("exit %v, want %d", err, exitUsage)
	}
	if !strings.Contains(string(out), cfg+":3:") || !strings.Contains(string(out), `unknown check "nosuchcheck"`) {
		t.Errorf("message %q", out)
	}
}

// startServing writes cfg to a file, loads it as serve does (engine,
// verdict log, state) and serves the engine over the real milter
// protocol; logf takes serve's operational lines. Everything is closed
// when the test ends.
func startServing(t *testing.T, cfg string, logf func(string, ...any)) *miltertest.Server {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "chainmail.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := load(cfgPath, nil, nil, prometheus.NewRegistry(), logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rs.log.Close()
		if rs.state != nil {
			rs.state.store.Close()
		}
	})
	return miltertest.Start(t, rs.engine)
}
