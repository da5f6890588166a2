package mtatest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"chainmail/checks/checktest"
)

// SendmailRootEnv names the environment variable that points at the directory
// .ci/install-sendmail unpacked sendmail into.
const SendmailRootEnv = "CHAINMAIL_SENDMAIL_ROOT"

// SendmailOptions configures StartSendmail.
type SendmailOptions struct {
	// Milter is the filter socket in sendmail's spelling ("inet:PORT@HOST",
	// "unix:/path") or Postfix's ("inet:127.0.0.1:PORT"), which is translated.
	// "" runs without a milter.
	Milter string
	// Root is the directory .ci/install-sendmail unpacked sendmail into;
	// $CHAINMAIL_SENDMAIL_ROOT when empty.
	Root string
	// MC is extra m4 text placed in the .mc before the MAILER lines, for
	// example define(`confMILTER_MACROS_EOH', `i').
	MC string
}

// Sendmail is a private sendmail daemon started by StartSendmail.
type Sendmail struct {
	dir    string
	addr   string
	sink   *sink
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *checktest.LockedBuffer
	syslog *syslogSink
	stopMu sync.Mutex
}

// sendmailHostname is the fully qualified name sendmail gets in its private
// UTS namespace; without a domain part it stalls for a minute per lookup.
const sendmailHostname = "mx.chainmail.test"

// StartSendmail starts sendmail from an unpacked Debian sendmail-bin (see
// .ci/install-sendmail) as a daemon on 127.0.0.1 in private namespaces, with
// every accepted message relayed to the harness's SMTP sink; it is stopped
// in t.Cleanup. Without root, unshare(1) or the unpacked root the test is
// skipped, or fails when CI is set.
func StartSendmail(t testing.TB, opt SendmailOptions) *Sendmail {
	t.Helper()
	requireRoot(t, "sendmail")
	root := opt.Root
	if root == "" {
		root = os.Getenv(SendmailRootEnv)
	}
	if root == "" {
		unavailable(t, "no unpacked sendmail: run `.ci/install-sendmail DIR` and set %s=DIR", SendmailRootEnv)
	}
	binary := filepath.Join(root, "usr/libexec/sendmail/sendmail")
	cfm4 := filepath.Join(root, "usr/share/sendmail/cf/m4/cf.m4")
	for _, f := range []string{binary, cfm4} {
		if _, err := os.Stat(f); err != nil {
			unavailable(t, "sendmail root %s is incomplete (%v): run `.ci/install-sendmail %s`", root, err, root)
		}
	}
	m4 := filepath.Join(root, "usr/bin/m4")
	if _, err := os.Stat(m4); err != nil {
		if m4, err = exec.LookPath("m4"); err != nil {
			unavailable(t, "no m4 (neither in %s nor on PATH): run `.ci/install-sendmail %s`", root, root)
		}
	}
	unshare := unsharePath()
	if unshare == "" {
		unavailable(t, "sendmail needs unshare(1) with mount and UTS namespaces (util-linux) for its private host name")
	}
	// A set-id binary makes the dynamic loader ignore LD_LIBRARY_PATH, which
	// must point at the unpacked libraries: run a plain copy instead (older
	// unpacked roots kept dpkg's set-gid bit).
	if fi, err := os.Stat(binary); err == nil && fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		binary = copyPlain(t, binary)
	}
	milterSpec := ""
	if opt.Milter != "" {
		var err error
		if milterSpec, err = sendmailMilterSpec(opt.Milter); err != nil {
			t.Fatalf("mtatest: %v", err)
		}
	}

	dir := instanceDir(t)
	s := &Sendmail{dir: dir, stderr: &checktest.LockedBuffer{}}
	s.sink = startSink(t, "sink.chainmail.test")
	s.syslog = startSyslog(t)
	if err := os.MkdirAll(filepath.Join(dir, "mqueue"), 0o700); err != nil {
		t.Fatalf("mtatest: %v", err)
	}
	files := loopbackNetFiles(sendmailHostname)
	files["service.switch"] = "hosts files\naliases files\n"
	files["aliases"] = "postmaster: root\n"
	files["local-host-names"] = sendmailHostname + "\nlocalhost\n"
	files["trusted-users"] = ""
	files["relay-domains"] = ""
	writeFiles(t, dir, 0o644, files)

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		s.addr = fmt.Sprintf("127.0.0.1:%d", port)
		mc := sendmailMC(cfm4, dir, port, s.sink.port(), milterSpec, opt.MC)
		writeFiles(t, dir, 0o644, map[string]string{"sendmail.mc": mc})
		cf, err := exec.Command(m4, filepath.Join(dir, "sendmail.mc")).Output()
		if err != nil {
			t.Fatalf("mtatest: m4 sendmail.mc: %v\n%s", err, stderrOf(err))
		}
		writeFiles(t, dir, 0o644, map[string]string{"sendmail.cf": string(cf)})

		start := time.Now()
		if lastErr = s.start(unshare, root, binary); lastErr != nil {
			break
		}
		t.Cleanup(s.stop)
		if lastErr = waitGreeting(s.addr, 15*time.Second, s.exited); lastErr == nil {
			t.Logf("mtatest: sendmail %s on %s (sink 127.0.0.1:%d, milter %q) started in %v",
				sendmailHostname, s.addr, s.sink.port(), milterSpec, time.Since(start).Round(time.Millisecond))
			return s
		}
		s.stop()
		if !strings.Contains(s.Log(), "Address already in use") {
			break
		}
	}
	t.Fatalf("mtatest: starting sendmail: %v\n--- log ---\n%s", lastErr, s.Log())
	return nil
}

// sendmailMilterSpec turns a milter address into sendmail's S= spelling.
func sendmailMilterSpec(spec string) (string, error) {
	if strings.HasPrefix(spec, "/") {
		return "unix:" + spec, nil
	}
	proto, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return "", fmt.Errorf("milter address %q: want inet:HOST:PORT, inet:PORT@HOST or unix:/path", spec)
	}
	switch proto {
	case "unix", "local":
		return spec, nil
	case "inet", "inet6":
		if strings.Contains(rest, "@") {
			return spec, nil
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return "", fmt.Errorf("milter address %q: %v", spec, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("milter address %q: bad port", spec)
		}
		return proto + ":" + port + "@" + host, nil
	}
	return "", fmt.Errorf("milter address %q: unknown type %q", spec, proto)
}

// sendmailMC renders the .mc that m4 turns into sendmail.cf.
func sendmailMC(cfm4, dir string, port, sinkPort int, milterSpec, extra string) string {
	q := func(s string) string { return "`" + s + "'" }
	def := func(k, v string) string { return "define(" + q(k) + ", " + q(v) + ")dnl\n" }
	p := func(name string) string { return filepath.Join(dir, name) }
	var b strings.Builder
	b.WriteString("divert(-1)\n# sendmail.mc written by chainmail/milter/mtatest\ndivert(0)dnl\n")
	b.WriteString("include(" + q(cfm4) + ")dnl\n")
	b.WriteString("VERSIONID(`chainmail mtatest')dnl\n")
	b.WriteString("OSTYPE(`linux')dnl\n")
	// Who we are, without asking DNS or probing interfaces.
	b.WriteString(def("confDOMAIN_NAME", sendmailHostname))
	b.WriteString(def("confDONT_PROBE_INTERFACES", "True"))
	b.WriteString(def("confHOSTS_FILE", p("etc/hosts")))
	b.WriteString(def("confSERVICE_SWITCH_FILE", p("service.switch")))
	b.WriteString(def("confBIND_OPTS", "-DNSRCH -DEFNAMES"))
	b.WriteString(def("confCW_FILE", p("local-host-names")))
	b.WriteString(def("confCT_FILE", p("trusted-users")))
	b.WriteString(def("confCR_FILE", p("relay-domains")))
	// Private files. They live below /tmp: trust its sticky bit instead of
	// refusing the world-writable directory in their path.
	b.WriteString(def("confDONT_BLAME_SENDMAIL", "TrustStickyBit"))
	b.WriteString(def("QUEUE_DIR", p("mqueue")))
	b.WriteString(def("STATUS_FILE", p("sendmail.st")))
	b.WriteString(def("confHOST_STATUS_DIRECTORY", ""))
	b.WriteString(def("confPID_FILE", p("sendmail.pid")))
	b.WriteString(def("ALIAS_FILE", p("aliases")))
	b.WriteString(def("HELP_FILE", p("helpfile")))
	b.WriteString(def("confDEAD_LETTER_DROP", p("dead.letter")))
	// Never refuse or queue because the shared test machine is busy.
	b.WriteString(def("confQUEUE_LA", "999"))
	b.WriteString(def("confREFUSE_LA", "999"))
	b.WriteString(def("confDELAY_LA", "0"))
	b.WriteString(def("confMIN_FREE_BLOCKS", "0"))
	b.WriteString(def("confCONNECTION_RATE_THROTTLE", "0"))
	b.WriteString(def("confMAX_DAEMON_CHILDREN", "0"))
	b.WriteString(def("confTO_IDENT", "0"))
	b.WriteString(def("confTO_CONNECT", "5s"))
	b.WriteString(def("confLOG_LEVEL", "10"))
	// Everything to the sink.
	b.WriteString(def("SMART_HOST", "esmtp:[127.0.0.1]"))
	b.WriteString(def("ESMTP_MAILER_ARGS", "TCP $h "+strconv.Itoa(sinkPort)))
	b.WriteString("FEATURE(`no_default_msa')dnl\n")
	b.WriteString("FEATURE(`nocanonify')dnl\n")
	b.WriteString("FEATURE(`promiscuous_relay')dnl\n")
	b.WriteString("FEATURE(`accept_unresolvable_domains')dnl\n")
	b.WriteString("FEATURE(`accept_unqualified_senders')dnl\n")
	b.WriteString("DAEMON_OPTIONS(" + q(fmt.Sprintf("Family=inet, Addr=127.0.0.1, Port=%d, Name=MTA", port)) + ")dnl\n")
	// The macros the Postfix instances send at MAIL, and the queue id at end
	// of message (sendmail's default there is only {msg_id}).
	b.WriteString("define(`confMILTER_MACROS_ENVFROM', confMILTER_MACROS_ENVFROM`, {client_addr}, {client_name}, {daemon_name}')dnl\n")
	b.WriteString("define(`confMILTER_MACROS_EOM', confMILTER_MACROS_EOM`, i')dnl\n")
	if milterSpec != "" {
		b.WriteString("INPUT_MAIL_FILTER(`chainmail', " + q("S="+milterSpec+", F=T, T=S:30s;R:60s;E:5m") + ")dnl\n")
	}
	if extra != "" {
		b.WriteString(extra)
		if !strings.HasSuffix(extra, "\n") {
			b.WriteString("\n")
		}
	}
	b.WriteString("MAILER(`local')dnl\nMAILER(`smtp')dnl\n")
	return b.String()
}

// start launches sendmail -bD (a daemon that stays in the foreground) as
// PID 1 of new PID, mount and UTS namespaces. Inside, the host name is
// sendmailHostname, /etc/hosts, /etc/resolv.conf and /etc/nsswitch.conf are
// the instance's own, and /dev is a private copy whose /dev/log is the
// harness's syslog socket. Killing the unshare process kills sendmail (via
// --kill-child), and with it the whole PID namespace: no stray children.
func (s *Sendmail) start(unshare, root, binary string) error {
	var libs []string
	for _, pat := range []string{"usr/lib/*-linux-gnu", "lib/*-linux-gnu"} {
		m, _ := filepath.Glob(filepath.Join(root, pat))
		libs = append(libs, m...)
	}
	if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
		libs = append(libs, old)
	}
	devdir := filepath.Join(s.dir, "dev")
	script := "set -e\n" +
		"hostname " + sendmailHostname + "\n" +
		bindNetFilesScript(s.dir) +
		"mkdir -p " + shQuote(devdir) + "\n" +
		"for n in null zero full random urandom tty; do\n" +
		"  if [ -e /dev/$n ]; then : > " + shQuote(devdir) + "/$n; mount --bind /dev/$n " + shQuote(devdir) + "/$n; fi\n" +
		"done\n" +
		"ln -sfn /proc/self/fd " + shQuote(devdir+"/fd") + "\n" +
		"ln -sfn " + shQuote(s.syslog.path) + " " + shQuote(devdir+"/log") + "\n" +
		"mount --rbind " + shQuote(devdir) + " /dev\n" +
		"export LD_LIBRARY_PATH=" + shQuote(strings.Join(libs, ":")) + "\n" +
		"exec " + shQuote(binary) + " -bD -q1m -C " + shQuote(filepath.Join(s.dir, "sendmail.cf")) + "\n"
	cmd := exec.Command(unshare, "--pid", "--fork", "--kill-child", "--mount", "--uts", "sh", "-c", script)
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	cmd.Dir = s.dir
	// If the test binary dies without cleanup, take the namespace with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	runtime.LockOSThread() // Pdeathsig follows the thread that forked
	err := cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("starting %s: %v", unshare, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	return nil
}

// stop kills the namespace (through unshare) and waits for it to go.
func (s *Sendmail) stop() {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	// The namespace's init (sendmail) is unshare's only child.
	var child int
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		child, _ = strconv.Atoi(strings.TrimSpace(strings.Fields(string(b) + " 0")[0]))
	}
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
	if child > 1 {
		waitGone(child, 5*time.Second)
	}
	s.cmd = nil
}

// Addr is the host:port of the daemon.
func (s *Sendmail) Addr() string { return s.addr }

// Dir is the instance's root directory (sendmail.mc, sendmail.cf, mqueue/).
func (s *Sendmail) Dir() string { return s.dir }

// Dial opens an SMTP session to the daemon (greeting already read).
func (s *Sendmail) Dial(t testing.TB) *SMTPClient {
	t.Helper()
	return Dial(t, s.addr)
}

// Delivered waits until the sink has received at least n messages from this
// instance and returns all of them in arrival order; it fails the test with
// the log if that takes longer than timeout.
func (s *Sendmail) Delivered(t testing.TB, n int, timeout time.Duration) []Delivered {
	t.Helper()
	return s.sink.delivered(t, n, timeout, "sendmail", s.Log)
}

// Log returns what sendmail logged to syslog (received by the harness) and
// wrote to stderr.
func (s *Sendmail) Log() string {
	var b strings.Builder
	b.WriteString(s.syslog.String())
	if e := s.stderr.String(); e != "" {
		b.WriteString("--- stderr ---\n")
		b.WriteString(e)
	}
	return b.String()
}

// ---- helpers ----

// syslogSink receives syslog datagrams on a unix socket that the sendmail
// namespace sees as /dev/log.
type syslogSink struct {
	path string
	conn *net.UnixConn
	buf  checktest.LockedBuffer
	done chan struct{}
}

func startSyslog(t testing.TB) *syslogSink {
	t.Helper()
	// A short path: unix socket names are limited to 107 bytes, and test
	// names make t.TempDir paths long.
	dir, err := os.MkdirTemp("", "mtatest-log")
	if err != nil {
		t.Fatalf("mtatest: %v", err)
	}
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("mtatest: syslog socket: %v", err)
	}
	os.Chmod(path, 0o666)
	s := &syslogSink{path: path, conn: conn, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		conn.Close()
		<-s.done
		os.RemoveAll(dir)
	})
	return s
}

func (s *syslogSink) serve() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		line := string(buf[:n])
		// Drop the "<PRI>" prefix; keep timestamp, tag and text.
		if strings.HasPrefix(line, "<") {
			if i := strings.IndexByte(line, '>'); i > 0 && i < 5 {
				line = line[i+1:]
			}
		}
		s.buf.Write([]byte(strings.TrimRight(line, "\r\n\x00") + "\n"))
	}
}

func (s *syslogSink) String() string { return s.buf.String() }

// copyPlain copies the executable src into a temporary directory without
// set-id bits and returns the copy's path.
func copyPlain(t testing.TB, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("mtatest: %v", err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatalf("mtatest: %v", err)
	}
	return dst
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
