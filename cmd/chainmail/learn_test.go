package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/reputation/rdaptest"
)

func TestLearnUsage(t *testing.T) {
	for _, args := range [][]string{
		{"learn"},
		{"learn", "x.eml"},
		{"learn", "--good", "--bad", "x.eml"},
		{"learn", "--bad"},
		{"learn", "--listen", "127.0.0.1:0", "--bad", "x.eml"},
		{"learn", "--listen", "0.0.0.0:9470"},
		{"learn", "--bad", "--url", "http://127.0.0.1:1/learn", "x.eml"}, // no token
	} {
		if code, _, _ := runCmd(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
	// The reputation check must be enabled.
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("checks: [{name: gtube}]\n"), 0o644)
	if code, _, stderr := runCmd(t, "learn", "--bad", "-c", cfg, "x.eml"); code != exitUsage || !strings.Contains(stderr, "no learner is enabled") {
		t.Errorf("without the check: exit %d: %s", code, stderr)
	}
}

// The feedback endpoint: `learn --url` posts to it with the token; the
// report lands in the store the endpoint's process holds, and replay
// then sees the sender moved down.
func TestLearnThroughEndpoint(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("longtime-supplier.test", time.Now().AddDate(-8, 0, 0))
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state: {backend: bolt, path: %q}
checks:
  - name: reputation
    options:
      learn: false
      feedback_token_file: %q
      rdap: {bootstrap_file: %q}
`, filepath.Join(dir, "state.db"), tok, srv.BootstrapFile(t, dir, "test"))), 0o644)

	eng, closeAll := testLearnEngine(t, cfg)
	ep := httptest.NewServer(feedbackHandler(func() feedbackTarget { return feedbackTarget{engine: eng, token: reputationToken(eng)} }))
	msg := filepath.Join("testdata", "sdr", "072-learn-bad-moves-down", "message.eml")
	if code, out, stderr := runCmd(t, "learn", "--bad", "--url", ep.URL+"/learn", "--token-file", tok, msg); code != exitOK || !strings.Contains(out, "reputation: 1 learned, 0 already learned, 0 moved, 0 failed") {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	bad := filepath.Join(dir, "bad-token")
	os.WriteFile(bad, []byte("wrong-token-wrong-token"), 0o600)
	if code, _, stderr := runCmd(t, "learn", "--bad", "--url", ep.URL+"/learn", "--token-file", bad, msg); code != exitFiles || !strings.Contains(stderr, "401") {
		t.Errorf("wrong token: exit %d: %s", code, stderr)
	}
	ep.Close()
	closeAll() // the endpoint's process lets go of the bbolt file

	code, out, stderr := runCmd(t, "replay", "-c", cfg, "--zone", emptyZone(t), msg)
	if code != exitOK {
		t.Fatalf("replay: %d %s", code, stderr)
	}
	if !strings.Contains(out, "orders@longtime-supplier.test reported bad (-1.5)") || !strings.Contains(out, "longtime-supplier.test reported bad (-3)") {
		t.Errorf("the report did not reach the store:\n%s", out)
	}
}

// learn reads several files and goes on past a bad one.
func TestLearnDirect(t *testing.T) {
	srv := rdaptest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state: {backend: bolt, path: %q}\nchecks:\n  - name: reputation\n    options: {rdap: {bootstrap_file: %q}}\n",
		filepath.Join(dir, "state.db"), srv.BootstrapFile(t, dir, "test"))), 0o644)
	good := filepath.Join("testdata", "sdr", "071-long-clean-history", "history.eml")
	empty := filepath.Join(dir, "empty.eml")
	os.WriteFile(empty, []byte("Subject: no sender\r\n\r\nx\r\n"), 0o644)
	code, out, stderr := runCmd(t, "learn", "--good", "-c", cfg, good, empty, filepath.Join(dir, "missing.eml"))
	if code != exitFiles || !strings.Contains(out, "reputation: 1 learned, 0 already learned, 0 moved, 1 failed") || !strings.Contains(stderr, "empty.eml: reputation: reputation: the message names no sender") || !strings.Contains(stderr, "missing.eml") {
		t.Errorf("exit %d\n%s\n%s", code, out, stderr)
	}
}

// `learn --listen` as its own process: it serves reports on loopback until
// SIGTERM, then lets go of the store.
func TestLearnListenProcess(t *testing.T) {
	bin := buildBinary(t)
	srv := rdaptest.Start(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state: {backend: bolt, path: %q}\nchecks:\n  - name: reputation\n    options: {rdap: {bootstrap_file: %q}}\n",
		filepath.Join(dir, "state.db"), srv.BootstrapFile(t, dir, "test"))), 0o644)
	addr := freePort(t)
	cmd := exec.Command(bin, "learn", "--listen", addr, "-c", cfg, "--token-file", tok)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, "the feedback endpoint", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	msg := filepath.Join("testdata", "sdr", "071-long-clean-history", "history.eml")
	if code, out, errOut := runCmd(t, "learn", "--good", "--url", "http://"+addr+"/learn", "--token-file", tok, msg); code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("learn --listen did not stop on SIGTERM")
	}
	// The store now holds the report; the file is free again.
	code, out, _ := runCmd(t, "replay", "-c", cfg, "--zone", emptyZone(t), msg)
	if code != exitOK || !strings.Contains(out, "longtime-supplier.test reported good (+2)") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// The daemon-side handler follows the engine in force.
func TestEngineFeedback(t *testing.T) {
	srv := rdaptest.Start(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o600)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state: {backend: bolt, path: %q}\nchecks:\n  - name: reputation\n    options: {feedback_token_file: %q, rdap: {bootstrap_file: %q}}\n",
		filepath.Join(dir, "state.db"), tok, srv.BootstrapFile(t, dir, "test"))), 0o644)
	full, closeAll := testLearnEngine(t, cfg)
	defer closeAll()
	var eng *checks.Engine
	ep := httptest.NewServer(feedbackHandler(func() feedbackTarget { return feedbackTarget{engine: eng, token: reputationToken(full)} }))
	defer ep.Close()
	msg := filepath.Join("testdata", "sdr", "071-long-clean-history", "history.eml")
	learnArgs := []string{"learn", "--good", "--url", ep.URL + "/learn", "--token-file", tok, msg}
	if code, _, stderr := runCmd(t, learnArgs...); code != exitFiles || !strings.Contains(stderr, "404") {
		t.Errorf("no engine: exit %d %s", code, stderr)
	}
	eng = full
	if code, _, stderr := runCmd(t, learnArgs...); code != exitOK {
		t.Errorf("exit %d %s", code, stderr)
	}
}

// testLearnEngine builds the engine of configuration cfg over its store,
// as learn does.
func testLearnEngine(t *testing.T, cfg string) (*checks.Engine, func()) {
	t.Helper()
	f, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eng, closeAll, err := learnEngine(f, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return eng, closeAll
}
