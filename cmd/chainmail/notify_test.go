package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/checks/checktest"
)

// notifyListener is a stand-in for systemd's notification socket.
func notifyListener(t *testing.T, addr string) <-chan string { return checktest.NotifySocket(t, addr) }

// nextNotify waits for the next datagram and wants every one of lines in it.
func nextNotify(t *testing.T, ch <-chan string, lines ...string) string {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("notification socket closed, want %q", lines)
		}
		got := strings.Split(strings.TrimSuffix(m, "\n"), "\n")
		for _, l := range lines {
			found := false
			for _, g := range got {
				found = found || g == l || strings.HasSuffix(l, "=") && strings.HasPrefix(g, l)
			}
			if !found {
				t.Errorf("notification %q lacks %q", m, l)
			}
		}
		return m
	case <-time.After(15 * time.Second):
		t.Fatalf("no notification, want %q", lines)
	}
	return ""
}

func TestSdNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	ch := notifyListener(t, path)
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdNotify("READY=1", "STATUS=up"); err != nil {
		t.Fatal(err)
	}
	if m := nextNotify(t, ch, "READY=1", "STATUS=up"); m != "READY=1\nSTATUS=up\n" {
		t.Errorf("datagram %q", m)
	}

	// An abstract socket, as systemd names it ("@...").
	abstract := fmt.Sprintf("@chainmail-test-%d", os.Getpid())
	ach := notifyListener(t, abstract)
	t.Setenv("NOTIFY_SOCKET", abstract)
	if err := sdNotify("STOPPING=1"); err != nil {
		t.Fatal(err)
	}
	nextNotify(t, ach, "STOPPING=1")

	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v, want nothing done", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if err := sdNotify("READY=1"); err == nil {
		t.Error("a socket nobody listens on: no error")
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1")
	if err := sdNotify("READY=1"); err == nil {
		t.Error("vsock address: no error")
	}
}

// serve under a Type=notify unit: READY=1 once the milter socket accepts
// connections, RELOADING=1 then READY=1 around a SIGHUP reload (also a
// refused one), STOPPING=1 on SIGTERM.
func TestServeNotifiesSystemd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	notify := filepath.Join(dir, "notify")
	ch := notifyListener(t, notify)
	sock := filepath.Join(dir, "milter.sock")
	cfg := filepath.Join(dir, "chainmail.yaml")
	conf := "metrics: {listen: \"\"}\nchecks:\n  - name: gtube\n    decisive: spam\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-c", cfg, "-listen", "unix:"+sock)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify, "STATE_DIRECTORY="+dir)
	p := startProcess(t, cmd, "unix", sock)
	m := nextNotify(t, ch, "READY=1", "STATUS=")
	if !strings.Contains(m, sock) {
		t.Errorf("READY notification %q does not name the socket", m)
	}

	p.cmd.Process.Signal(syscall.SIGHUP)
	nextNotify(t, ch, "RELOADING=1", "MONOTONIC_USEC=")
	nextNotify(t, ch, "READY=1", "STATUS=configuration reloaded (1 checks)")

	if err := os.WriteFile(cfg, []byte("checks: [{name: nosuchcheck}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	nextNotify(t, ch, "RELOADING=1")
	if m := nextNotify(t, ch, "READY=1"); !strings.Contains(m, "refused") {
		t.Errorf("after a refused reload: %q", m)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	nextNotify(t, ch, "STOPPING=1")
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Errorf("exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
