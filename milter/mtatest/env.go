package mtatest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// unavailable ends a test whose MTA cannot be run here: a failure when the CI
// environment variable is set (CI must never silently skip end-to-end tests),
// a loud skip otherwise.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("mtatest: %s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skipf("!!! SKIPPING %s: %s !!!", t.Name(), msg)
}

// requireRoot skips or fails unless the test runs as root, which starting a
// real MTA needs.
func requireRoot(t testing.TB, mta string) {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "starting %s needs root (euid is %d)", mta, os.Geteuid())
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mtatest: finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// instanceDir makes a temporary directory for one MTA instance that the
// MTA's unprivileged users can traverse: t.TempDir creates it and its parent
// with mode 0700, which would lock Postfix's daemons (user postfix) out.
func instanceDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("mtatest: chmod %s: %v", d, err)
		}
	}
	return dir
}

// waitGreeting polls addr until it accepts a connection and sends a 220
// line, the process reported by exited ends, or timeout passes.
func waitGreeting(addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	var last error
	for delay := 10 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		select {
		case <-exited:
			return errors.New("the MTA process exited during start-up")
		default:
		}
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Until(deadline) + time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("QUIT\r\n"))
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "220") {
				return nil
			}
			if rerr == nil {
				rerr = fmt.Errorf("greeting %q", strings.TrimSpace(line))
			}
			last = rerr
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 220 greeting on %s within %v: %v", addr, timeout, last)
		}
		time.Sleep(delay)
	}
}

// procGone reports whether pid no longer runs (absent or a zombie).
func procGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}

// procComm is the command name of pid ("" if unknown).
func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// waitGone polls until pid is gone or timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !procGone(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

var unshareOnce struct {
	sync.Once
	path string
}

// unsharePath returns the unshare(1) binary, or "" when namespaces cannot be
// used here (no binary, or a trial unshare of mount and UTS namespaces
// fails).
func unsharePath() string {
	unshareOnce.Do(func() {
		p, err := exec.LookPath("unshare")
		if err != nil {
			return
		}
		if err := exec.Command(p, "--mount", "--uts", "--pid", "--fork", "true").Run(); err != nil {
			return
		}
		unshareOnce.path = p
	})
	return unshareOnce.path
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFiles writes name → content below dir with the given mode.
func writeFiles(t testing.TB, dir string, mode os.FileMode, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("mtatest: %v", err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatalf("mtatest: %v", err)
		}
	}
}

// killGroup sends sig to the process group led by pid, ignoring errors.
func killGroup(pid int, sig syscall.Signal) {
	if pid > 1 {
		syscall.Kill(-pid, sig)
	}
}

// loopbackNetFiles are the private name-service files an MTA sees inside its
// mount namespace: its own host name resolves from a hosts file, and any DNS
// query that slips through goes to 127.0.0.1, where nothing answers, instead
// of the machine's resolver.
func loopbackNetFiles(hostname string) map[string]string {
	short, _, _ := strings.Cut(hostname, ".")
	return map[string]string{
		"etc/hosts":         fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s %s\n", hostname, short),
		"etc/resolv.conf":   "# mtatest: no DNS leaves loopback\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n",
	}
}

// bindNetFilesScript is shell that bind-mounts the loopbackNetFiles written
// below dir over the system's copies (inside a private mount namespace).
func bindNetFilesScript(dir string) string {
	var b strings.Builder
	for _, f := range []string{"hosts", "resolv.conf", "nsswitch.conf"} {
		fmt.Fprintf(&b, "if [ -e /etc/%[1]s ]; then mount --bind %[2]s /etc/%[1]s; fi\n", f, shQuote(filepath.Join(dir, "etc", f)))
	}
	return b.String()
}
