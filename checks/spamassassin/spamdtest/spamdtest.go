// Package spamdtest starts the real spamd (Debian's spamassassin
// package) for tests: on a free loopback port and a unix socket, with a
// private configuration directory and home, local tests only (-L, no DNS),
// no Bayes and no autolearn, so a test run leaves nothing behind and
// reaches no network.
//
// spamd takes seconds to start: a test package starts one (Shared) and
// stops it in TestMain (StopShared).
package spamdtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bin is where Debian installs spamd.
const Bin = "/usr/sbin/spamd"

// ErrNotInstalled is returned by Start when spamd is not installed.
var ErrNotInstalled = errors.New("spamdtest: " + Bin + " not installed (apt-get install spamassassin)")

// Server is one running spamd.
type Server struct {
	// Addr is its TCP address, 127.0.0.1:PORT.
	Addr string
	// Socket is the path of its unix socket.
	Socket string
	dir    string
	cmd    *exec.Cmd
	log    *lockedBuffer
	done   chan struct{}
}

// Start runs spamd and waits until it answers PING (at most a minute).
func Start() (*Server, error) {
	if _, err := os.Stat(Bin); err != nil {
		return nil, ErrNotInstalled
	}
	dir, err := os.MkdirTemp("", "spamdtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, Socket: filepath.Join(dir, "spamd.sock"), log: &lockedBuffer{}, done: make(chan struct{})}
	if err := s.start(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	// The site configuration: only the .pre files that load the plugins
	// (without them spamd cannot scan), none of the machine's local.cf.
	site := filepath.Join(s.dir, "site")
	home := filepath.Join(s.dir, "home")
	for _, d := range []string{site, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	pres, _ := filepath.Glob("/etc/spamassassin/*.pre")
	for _, p := range pres {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(site, filepath.Base(p)), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(site, "local.cf"), []byte(localCF), 0o644); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"-L", "-x", // local tests only; no per-user configuration
		"--siteconfigpath=" + site,
		"-H", home,
		"--listen=" + s.Addr, "--listen=" + s.Socket, "--socketmode=0666",
		"--min-children=1", "--max-children=4",
		"-s", "stderr", "-r", filepath.Join(s.dir, "spamd.pid"),
	}
	if os.Geteuid() == 0 {
		// spamd refuses to run as root without a user to run as.
		u, err := user.Lookup("nobody")
		if err != nil {
			return fmt.Errorf("spamdtest: running as root needs the user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{s.dir, site, home} {
			os.Chmod(p, 0o755)
		}
		os.Chown(home, uid, gid)
		args = append(args, "-u", "nobody")
	}
	s.cmd = exec.Command(Bin, args...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Env = append(os.Environ(), "HOME="+home)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("spamdtest: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		if Ping("tcp", s.Addr) == nil && Ping("unix", s.Socket) == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("spamdtest: spamd exited: %s", s.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("spamdtest: spamd did not answer PING within a minute: %s", s.Log())
		}
	}
}

// localCF keeps the test spamd self-contained: no Bayes database, no
// autolearn, no auto-welcomelist history, no network tests.
const localCF = `use_bayes 0
bayes_auto_learn 0
use_auto_whitelist 0
skip_rbl_checks 1
dns_available no
`

// Ping sends spamd's PING and wants its PONG.
func Ping(network, address string) error {
	conn, err := net.DialTimeout(network, address, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("PING SPAMC/1.5\r\n\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasSuffix(strings.TrimSpace(line), " 0 PONG") {
		return fmt.Errorf("spamdtest: PING answered %q", line)
	}
	return nil
}

// Stop ends spamd (its whole process group: the children too) and
// removes its directory. Stopping twice is harmless.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}

// Log returns what spamd logged.
func (s *Server) Log() string { return s.log.String() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the test binary's one spamd, starting it on first use;
// the package's TestMain calls StopShared after m.Run. The test is
// skipped, loudly, when spamd is not installed.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() { shared.s, shared.err = Start() })
	if errors.Is(shared.err, ErrNotInstalled) {
		t.Skip("!!! SKIPPING SPAMASSASSIN TEST: " + shared.err.Error() + " !!!")
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s
}

// StopShared stops the spamd Shared started, if any.
func StopShared() {
	if shared.s != nil {
		shared.s.Stop()
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
