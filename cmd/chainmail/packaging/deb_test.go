package packaging

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/checks/checktest"
	"chainmail/milter/mtatest"
)

// unavailable skips loudly, or fails when CI is set: CI must run it all.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skipf("!!! SKIPPING %s: %s !!!", t.Name(), msg)
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s is not installed", tool)
		}
	}
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// buildDeb runs `make deb` from the repository root into a directory of
// its own, and returns the .deb and the version it was built with.
func buildDeb(t *testing.T) (deb, version string) {
	t.Helper()
	need(t, "make", "dpkg-deb", "git")
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("make", "-C", root, "deb", "DEB_OUT="+out, "DEBDIR="+filepath.Join(out, "build"))
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, msg)
	}
	t.Logf("make deb took %v", time.Since(start).Round(time.Millisecond))
	debs, _ := filepath.Glob(filepath.Join(out, "chainmail_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %q", debs)
	}
	version = strings.TrimSpace(output(t, filepath.Join(root, "cmd", "chainmail", "packaging", "version")))
	return debs[0], version
}

// unitFile is a systemd unit's settings, key → values in order.
type unitFile map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: line %q", path, l)
		}
		u[k] = append(u[k], v)
	}
	return u
}

func (u unitFile) get(k string) string {
	if v := u[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// What the package holds: path → mode and owner, as dpkg-deb --contents
// prints them.
var wantContents = map[string]string{
	"./usr/sbin/chainmail":                                 "-rwxr-xr-x root/root",
	"./etc/chainmail/chainmail.yaml":                       "-rw-r--r-- root/root",
	"./etc/logrotate.d/chainmail":                          "-rw-r--r-- root/root",
	"./usr/lib/systemd/system/chainmail.service":           "-rw-r--r-- root/root",
	"./usr/lib/systemd/system/chainmail-holdqueue.socket":  "-rw-r--r-- root/root",
	"./usr/lib/systemd/system/chainmail-holdqueue.service": "-rw-r--r-- root/root",
	"./usr/share/man/man8/chainmail.8.gz":                  "-rw-r--r-- root/root",
	"./usr/share/chainmail/grafana-dashboard.json":         "-rw-r--r-- root/root",
	"./usr/share/chainmail/prometheus-alerts.yml":          "-rw-r--r-- root/root",
	"./usr/share/doc/chainmail/README.md":                  "-rw-r--r-- root/root",
}

// TestDebianPackage builds the package the way `make deb` does, reads it
// with dpkg-deb, checks what it holds (files, modes, conffiles, maintainer
// scripts, the unit with systemd-analyze, the configuration with chainmail
// itself), then as root installs it with dpkg, runs the installed daemon
// as systemd would run the unit (its user, groups, directories and
// NOTIFY_SOCKET), sends mail through a real Postfix on the packaged
// socket, and purges it again.
func TestDebianPackage(t *testing.T) {
	deb, version := buildDeb(t)
	tmp := t.TempDir()

	// Control data.
	info := output(t, "dpkg-deb", "--info", deb)
	for _, want := range []string{
		"Package: chainmail\n", "Version: " + version + "\n", "Architecture: " + runtime.GOARCH + "\n",
		"Depends: adduser\n", "Section: mail\n", "Maintainer: ",
	} {
		if !strings.Contains(info, " "+want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	ctl := filepath.Join(tmp, "control")
	output(t, "dpkg-deb", "--control", deb, ctl)
	conffiles, err := os.ReadFile(filepath.Join(ctl, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(conffiles)); strings.Join(got, " ") != "/etc/chainmail/chainmail.yaml /etc/logrotate.d/chainmail" {
		t.Errorf("conffiles %q", got)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctl, s))
		if err != nil {
			t.Errorf("maintainer script %s: %v", s, err)
			continue
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v", s, fi.Mode())
		}
		if err := exec.Command("sh", "-n", filepath.Join(ctl, s)).Run(); err != nil {
			t.Errorf("sh -n %s: %v", s, err)
		}
	}

	// Files, modes, owners.
	contents := output(t, "dpkg-deb", "--contents", deb)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(contents), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", l)
		}
		if f[1] != "root/root" {
			t.Errorf("%s belongs to %s", f[5], f[1])
		}
		if !strings.HasPrefix(f[0], "d") {
			got[f[5]] = f[0] + " " + f[1]
		}
	}
	for p, want := range wantContents {
		if got[p] != want {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
	for p := range got {
		if _, ok := wantContents[p]; !ok {
			t.Errorf("unexpected file %s", p)
		}
	}

	// The unpacked tree.
	x := filepath.Join(tmp, "x")
	output(t, "dpkg-deb", "-x", deb, x)
	bin := filepath.Join(x, "usr/sbin/chainmail")
	if v := output(t, bin, "version"); v != "chainmail "+version+"\n" {
		t.Errorf("chainmail version: %q, want the package version %s", v, version)
	}
	checkManPage(t, filepath.Join(x, "usr/share/man/man8/chainmail.8.gz"), version)
	conf := filepath.Join(x, "etc/chainmail/chainmail.yaml")
	checkConfig(t, bin, conf)
	unitPath := filepath.Join(x, "usr/lib/systemd/system/chainmail.service")
	u := parseUnit(t, unitPath)
	checkUnit(t, u)
	verifyUnit(t, unitPath, filepath.Join(x, "usr/share/man"), false)
	hqSocketPath := filepath.Join(x, "usr/lib/systemd/system/chainmail-holdqueue.socket")
	hqServicePath := filepath.Join(x, "usr/lib/systemd/system/chainmail-holdqueue.service")
	hqs, hqu := parseUnit(t, hqSocketPath), parseUnit(t, hqServicePath)
	checkHelperUnits(t, hqs, hqu)
	verifyUnit(t, hqSocketPath, filepath.Join(x, "usr/share/man"), false)
	verifyUnit(t, hqServicePath, filepath.Join(x, "usr/share/man"), false)
	if _, err := exec.LookPath("logrotate"); err == nil {
		// -d: read and plan only.
		if msg, err := exec.Command("logrotate", "-d", filepath.Join(x, "etc/logrotate.d/chainmail")).CombinedOutput(); err != nil || bytes.Contains(msg, []byte("error")) {
			t.Errorf("logrotate -d: %v\n%s", err, msg)
		}
	}

	t.Run("installed", func(t *testing.T) { testInstalled(t, deb, u, hqs, hqu) })
}

func checkManPage(t *testing.T, path, version string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	page, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(page, []byte(`.TH CHAINMAIL 8 "" "chainmail `+strings.ReplaceAll(version, "-", `\-`)+`"`)) {
		t.Errorf("man page starts %q", page[:min(80, len(page))])
	}
	for _, want := range []string{".SS serve", `\-listen`, ".SS holdqueue serve", `\-config\-dir`, ".SH SIGNALS"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("man page lacks %q", want)
		}
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = bytes.NewReader(page)
		if msg, err := cmd.CombinedOutput(); err != nil || len(msg) > 0 {
			t.Errorf("groff: %v\n%s", err, msg)
		}
	}
}

// checkConfig: the conffile is the embedded default with the listen
// address changed, and chainmail finds it valid.
func checkConfig(t *testing.T, bin, conf string) {
	t.Helper()
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	def := output(t, bin, "config", "default")
	body := string(data)
	if i := strings.Index(body, "\n\n"); i < 0 || !strings.HasPrefix(body, "# /etc/chainmail/chainmail.yaml") {
		t.Fatalf("no header comment:\n%.300s", body)
	} else {
		body = body[i+2:]
	}
	wantBody := strings.Replace(def, "\nlisten: inet:127.0.0.1:10025\n", "\nlisten: unix:/run/chainmail/chainmail.sock\n", 1)
	if wantBody == def || body != wantBody {
		t.Errorf("the conffile is not the default with listen changed:\n%s", body)
	}
	eff := output(t, bin, "config", "check", "-c", conf)
	for _, want := range []string{"\nlisten: unix:/run/chainmail/chainmail.sock\n", "\n  socket_group: \"\"\n", "\n  socket_mode: \"0660\"\n"} {
		if !strings.Contains(eff, want) {
			t.Errorf("effective configuration lacks %q:\n%s", want, eff)
		}
	}
}

// checkUnit: the settings the daemon and the test depend on.
func checkUnit(t *testing.T, u unitFile) {
	t.Helper()
	for k, want := range map[string]string{
		"Type": "notify", "User": "chainmail", "Group": "chainmail",
		"ExecStart":        "/usr/sbin/chainmail serve -c /etc/chainmail/chainmail.yaml",
		"ExecReload":       "/bin/kill -HUP $MAINPID",
		"RuntimeDirectory": "chainmail", "StateDirectory": "chainmail", "LogsDirectory": "chainmail",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "SystemCallFilter": "@system-service",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	} {
		if v, ok := u[k]; !ok || u.get(k) != want {
			t.Errorf("unit %s=%q (set: %v), want %q", k, u.get(k), v != nil, want)
		}
	}
}

// verifyUnit runs systemd-analyze verify (and, offline, security) on the
// unit. Before installation /usr/sbin/chainmail is not there: that one
// complaint is expected then, and nothing else.
func verifyUnit(t *testing.T, unit, manpath string, installed bool) {
	t.Helper()
	need(t, "systemd-analyze")
	cmd := exec.Command("systemd-analyze", "verify", unit)
	cmd.Env = append(os.Environ(), "MANPATH="+manpath)
	msg, err := cmd.CombinedOutput()
	var rest []string
	for _, l := range strings.Split(strings.TrimSpace(string(msg)), "\n") {
		if l == "" || !installed && strings.Contains(l, "Command /usr/sbin/chainmail is not executable") {
			continue
		}
		rest = append(rest, l)
	}
	if len(rest) > 0 || err != nil && (installed || len(msg) == 0) {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, msg)
	}
	if !strings.HasSuffix(unit, ".service") {
		return
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(filepath.Base(unit)) + `: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
		return
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2 {
		t.Errorf("exposure level %.1f, want at most 2 (of 10):\n%s", level, out)
	}
}

// notifyListener stands in for systemd's notification socket: a path the
// daemon's user can send to.
func notifyListener(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "chainmail-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "notify")
	ch := checktest.NotifySocket(t, path)
	os.Chmod(path, 0o666)
	return path, ch
}

func waitNotify(t *testing.T, ch <-chan string, want string, stderr func() string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-ch:
			if strings.Contains("\n"+m, "\n"+want+"\n") {
				return m
			}
			t.Logf("notification %q", m)
		case <-timeout:
			t.Fatalf("no %s notification\n%s", want, stderr())
		}
	}
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	ch  chan struct{}
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer {
	b := &lockedBuffer{ch: make(chan struct{}, 1)}
	b.ch <- struct{}{}
	return b
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	<-b.ch
	defer func() { b.ch <- struct{}{} }()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	<-b.ch
	defer func() { b.ch <- struct{}{} }()
	return b.buf.String()
}

func testInstalled(t *testing.T, deb string, u, hqs, hqu unitFile) {
	if os.Geteuid() != 0 {
		unavailable(t, "installing the package needs root (euid %d)", os.Geteuid())
	}
	need(t, "dpkg", "setpriv", "unshare", "ip", "nsenter", "curl")
	if exec.Command("dpkg-query", "-W", "chainmail").Run() == nil {
		unavailable(t, "a chainmail package is installed on this machine; not touching it")
	}
	if _, err := user.Lookup("chainmail"); err == nil {
		unavailable(t, "user chainmail exists already; not touching it")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		unavailable(t, "no user postfix: install postfix")
	}

	start := time.Now()
	if msg, err := dpkg("-i", deb); err != nil {
		dpkg("--purge", "chainmail")
		t.Fatalf("dpkg -i: %v\n%s", err, msg)
	}
	t.Logf("dpkg -i took %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { purge(t) })

	// postinst: a system user and group, user postfix in group chainmail,
	// the configuration readable by root and chainmail only.
	usr, err := user.Lookup("chainmail")
	if err != nil {
		t.Fatalf("postinst made no user chainmail: %v", err)
	}
	uid, _ := strconv.Atoi(usr.Uid)
	gid, _ := strconv.Atoi(usr.Gid)
	if uid >= 1000 || uid == 0 {
		t.Errorf("uid %d is not a system uid", uid)
	}
	if grp, err := user.LookupGroupId(usr.Gid); err != nil || grp.Name != "chainmail" {
		t.Errorf("primary group %s (%v), want chainmail", usr.Gid, err)
	}
	if shell := strings.Split(output(t, "getent", "passwd", "chainmail"), ":"); len(shell) < 7 || strings.TrimSpace(shell[6]) != "/usr/sbin/nologin" {
		t.Errorf("passwd entry %q: want shell /usr/sbin/nologin", shell)
	}
	if pf, err := user.Lookup("postfix"); err != nil {
		t.Fatal(err)
	} else if gids, _ := pf.GroupIds(); !contains(gids, usr.Gid) {
		t.Errorf("postfix's groups %v lack chainmail (%s)", gids, usr.Gid)
	}
	if gids, _ := usr.GroupIds(); len(gids) != 1 {
		t.Errorf("chainmail is in groups %v, want its own only", gids)
	}
	if fi, err := os.Stat("/etc/chainmail/chainmail.yaml"); err != nil {
		t.Fatal(err)
	} else if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o640 || st.Uid != 0 || int(st.Gid) != gid {
		t.Errorf("/etc/chainmail/chainmail.yaml: %v %d:%d, want 0640 root:chainmail", fi.Mode(), st.Uid, st.Gid)
	}
	verifyUnit(t, "/usr/lib/systemd/system/chainmail.service", "", true)
	verifyUnit(t, "/usr/lib/systemd/system/chainmail-holdqueue.socket", "", true)
	verifyUnit(t, "/usr/lib/systemd/system/chainmail-holdqueue.service", "", true)
	consoleToken := enableConsole(t)
	if _, err := os.Stat("/usr/share/man/man8/chainmail.8.gz"); err != nil {
		// Slim images tell dpkg to leave out /usr/share/man.
		t.Logf("the manual page was not installed (%v): dpkg path-exclude?", err)
	} else if _, err := exec.LookPath("man"); err == nil {
		if msg, err := exec.Command("man", "-w", "chainmail").CombinedOutput(); err != nil || strings.TrimSpace(string(msg)) != "/usr/share/man/man8/chainmail.8.gz" {
			t.Errorf("man -w chainmail: %v %s", err, msg)
		}
	}

	// What systemd does for the unit: its directories, owned by User and
	// Group with the unit's modes, then ExecStart as User with the user's
	// groups, no capabilities, no new privileges, the environment it sets.
	// A private network namespace keeps the daemon's DNS queries and its
	// metrics port off the machine; the milter socket is a file, reachable
	// from every namespace.
	dirs := map[string]string{
		"RUNTIME_DIRECTORY": "/run/" + u.get("RuntimeDirectory"),
		"STATE_DIRECTORY":   "/var/lib/" + u.get("StateDirectory"),
		"LOGS_DIRECTORY":    "/var/log/" + u.get("LogsDirectory"),
	}
	modes := map[string]string{
		"RUNTIME_DIRECTORY": u.get("RuntimeDirectoryMode"),
		"STATE_DIRECTORY":   u.get("StateDirectoryMode"),
		"LOGS_DIRECTORY":    u.get("LogsDirectoryMode"),
	}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	for k, d := range dirs {
		mode, err := strconv.ParseUint(modes[k], 8, 32)
		if err != nil {
			t.Fatalf("unit mode of %s: %q", k, modes[k])
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		// systemd.exec(5): a directory that exists with another owner is
		// given to User and Group with everything in it (state left by a
		// chainmail run as root before the package, say).
		filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err == nil {
				os.Lchown(p, uid, gid)
			}
			return nil
		})
		os.Chmod(d, os.FileMode(mode))
		env = append(env, k+"="+d)
	}
	t.Cleanup(func() { os.RemoveAll(dirs["RUNTIME_DIRECTORY"]) })
	notify, notes := notifyListener(t)
	env = append(env, "NOTIFY_SOCKET="+notify)
	execStart := strings.Fields(u.get("ExecStart"))
	// Under strace, when there is one: the system calls the daemon makes
	// must pass the unit's SystemCallFilter, RestrictAddressFamilies and
	// MemoryDenyWriteExecute, which only systemd applies.
	traceFile := ""
	if _, err := exec.LookPath("strace"); err == nil {
		traceDir, err := os.MkdirTemp("", "chainmail-strace-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(traceDir) })
		os.Chmod(traceDir, 0o777)
		traceFile = filepath.Join(traceDir, "trace")
		execStart = append([]string{"strace", "-f", "-qq", "-o", traceFile}, execStart...)
	} else {
		unavailable(t, "strace is not installed: the unit's system call filter is not checked")
	}
	script := `ip link set lo up && exec setpriv --reuid=chainmail --regid=chainmail --init-groups --no-new-privs --inh-caps=-all --bounding-set=-all env -i "$@"`
	args := append([]string{"--net", "sh", "-c", script, "sh"}, env...)
	cmd := exec.Command("unshare", append(args, execStart...)...)
	cmd.Dir = "/"
	stderr := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = stderr, stderr
	start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	tracedPID := 0 // the daemon under strace, which killing strace leaves running
	t.Cleanup(func() {
		if !stopped {
			if tracedPID > 0 {
				syscall.Kill(tracedPID, syscall.SIGKILL)
			}
			cmd.Process.Kill()
			<-exited
		}
	})
	waitNotify(t, notes, "READY=1", stderr.String)
	t.Logf("READY=1 %v after start", time.Since(start).Round(time.Millisecond))
	// The daemon (the unit's main PID): strace's child, when it runs under
	// strace.
	pid := cmd.Process.Pid
	if traceFile != "" {
		children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err != nil || len(strings.Fields(string(children))) != 1 {
			t.Fatalf("strace's children: %q %v", children, err)
		}
		pid, _ = strconv.Atoi(strings.Fields(string(children))[0])
		tracedPID = pid
	}

	// The daemon runs as chainmail with the user's groups and nothing more.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid), fmt.Sprintf("Gid:\t%d\t%d\t%d\t%d\n", gid, gid, gid, gid),
		"CapEff:\t0000000000000000\n", "CapBnd:\t0000000000000000\n", "NoNewPrivs:\t1\n",
	} {
		if !strings.Contains(string(status), want) {
			t.Errorf("/proc/PID/status lacks %q:\n%s", want, status)
		}
	}

	// The socket: in the runtime directory, mode 0660, group chainmail.
	sock := dirs["RUNTIME_DIRECTORY"] + "/chainmail.sock"
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatalf("no socket: %v\n%s", err, stderr.String())
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v %d:%d, want a socket 0660 chainmail:chainmail", sock, fi.Mode(), st.Uid, st.Gid)
	}

	// A real Postfix (smtpd as user postfix) on the packaged socket.
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "unix:" + sock, DefaultAction: "tempfail"})
	c := pf.Dial(t)
	if r := c.Ehlo("client.example"); r.Code != 250 {
		t.Fatalf("EHLO: %v", r)
	}
	sendGTUBE := func(c *mtatest.SMTPClient, n int) {
		t.Helper()
		gtube := []byte(fmt.Sprintf("From: spammer@example.net\r\nTo: bob@example.org\r\nSubject: buy now\r\nMessage-ID: <gtube%d@example.net>\r\n\r\n", n) +
			"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n")
		r := c.Send("spammer@example.net", []string{"bob@example.org"}, gtube)
		if r.Code != 550 || r.Enhanced != "5.7.1" || r.Text != "Message rejected as spam" {
			t.Errorf("GTUBE %d through Postfix: %v, want chainmail's 550 5.7.1 Message rejected as spam\n%s\n%s", n, r, pf.Log(), stderr.String())
		}
	}
	sendGTUBE(c, 1)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(pf.Log(), "milter-reject: END-OF-MESSAGE"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("Postfix's log shows no milter reject:\n%s", pf.Log())
			break
		}
	}

	// The metrics listener of the packaged configuration, inside the
	// daemon's network namespace.
	metrics := output(t, "nsenter", "--target", strconv.Itoa(pid), "--net",
		"curl", "-sS", "--max-time", "10", "http://127.0.0.1:9469/metrics")
	for _, want := range []string{`chainmail_messages_total{action="reject"} 1`, `chainmail_state_up{backend="bolt"} 1`} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The console's quarantine page through the hold queue helper.
	testHoldQueueHelper(t, pf, hqs, hqu, pid, consoleToken, stderr.String)

	// The state store is in StateDirectory, the daemon's own.
	if fi, err := os.Stat(dirs["STATE_DIRECTORY"] + "/state.db"); err != nil {
		t.Errorf("no state store in the StateDirectory: %v", err)
	} else if int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Errorf("state.db belongs to uid %d", fi.Sys().(*syscall.Stat_t).Uid)
	}

	// ExecReload as systemd runs it, $MAINPID the daemon.
	reload := strings.Fields(strings.ReplaceAll(u.get("ExecReload"), "$MAINPID", strconv.Itoa(pid)))
	if msg, err := exec.Command(reload[0], reload[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecReload: %v %s", err, msg)
	}
	waitNotify(t, notes, "RELOADING=1", stderr.String)
	waitNotify(t, notes, "READY=1", stderr.String)

	// A file log sink in LogsDirectory, rotated by the packaged logrotate
	// file: after its postrotate reload (SIGHUP, sent here as systemctl
	// reload would) the verdict lines go to a new file.
	if _, err := exec.LookPath("logrotate"); err != nil {
		unavailable(t, "logrotate is not installed")
	}
	logFile := dirs["LOGS_DIRECTORY"] + "/chainmail.log"
	confData, err := os.ReadFile("/etc/chainmail/chainmail.yaml")
	if err != nil {
		t.Fatal(err)
	}
	withFile := strings.Replace(string(confData), "\n    - type: stderr ", "\n    - {type: file, path: "+logFile+"}\n    - type: stderr ", 1)
	if withFile == string(confData) {
		t.Fatal("no stderr sink line in the configuration")
	}
	if err := os.WriteFile("/etc/chainmail/chainmail.yaml", []byte(withFile), 0o640); err != nil {
		t.Fatal(err)
	}
	hup := func() {
		t.Helper()
		if msg, err := exec.Command(reload[0], reload[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("ExecReload: %v %s", err, msg)
		}
		waitNotify(t, notes, "RELOADING=1", stderr.String)
		if m := waitNotify(t, notes, "READY=1", stderr.String); !strings.Contains(m, "configuration reloaded") {
			t.Fatalf("reload: %q\n%s", m, stderr.String())
		}
	}
	hup()
	c = pf.Dial(t)
	c.Ehlo("client.example")
	sendGTUBE(c, 2)
	if fi, err := os.Stat(logFile); err != nil {
		t.Fatalf("no log file: %v\n%s", err, stderr.String())
	} else if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: %v uid %d, want 0640 chainmail", logFile, fi.Mode(), st.Uid)
	}
	state := filepath.Join(t.TempDir(), "logrotate.state")
	if msg, err := exec.Command("logrotate", "-f", "-s", state, "/etc/logrotate.d/chainmail").CombinedOutput(); err != nil {
		t.Fatalf("logrotate -f: %v\n%s", err, msg)
	}
	hup()
	sendGTUBE(c, 3)
	c.Quit()
	waitLines := func(path string, want int) string {
		t.Helper()
		var data []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			data, _ = os.ReadFile(path)
			if strings.Count(string(data), " is spam, ") >= want {
				break
			}
		}
		return string(data)
	}
	rotated := waitLines(logFile+".1", 1)
	current := waitLines(logFile, 1)
	if strings.Count(rotated, " is spam, ") != 1 {
		t.Errorf("rotated file %s.1:\n%s", logFile, rotated)
	}
	if strings.Count(current, " is spam, ") != 1 {
		t.Errorf("after rotation and reload the verdict went elsewhere; %s:\n%s\n%s.1:\n%s", logFile, current, logFile, rotated)
	}

	// Installing the package again (an upgrade does the same) keeps the
	// changed conffile and its permissions.
	if msg, err := dpkg("--force-confold", "-i", deb); err != nil {
		t.Fatalf("dpkg -i again: %v\n%s", err, msg)
	}
	if data, err := os.ReadFile("/etc/chainmail/chainmail.yaml"); err != nil || string(data) != withFile {
		t.Errorf("the changed configuration did not survive reinstalling (%v)", err)
	}
	if fi, err := os.Stat("/etc/chainmail/chainmail.yaml"); err != nil || fi.Mode().Perm() != 0o640 || int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Errorf("the configuration's permissions after reinstalling: %v %v", fi.Mode(), err)
	}

	// systemctl stop: SIGTERM, STOPPING=1, a clean exit, the socket gone.
	syscall.Kill(pid, syscall.SIGTERM)
	waitNotify(t, notes, "STOPPING=1", stderr.String)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", stderr.String())
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the socket outlived the daemon")
	}
	if traceFile != "" {
		checkSyscalls(t, traceFile, u)
	}
	log := stderr.String()
	if !strings.Contains(log, "milter listening on "+sock) || !strings.Contains(log, "configuration reloaded") {
		t.Errorf("the daemon's log (the journal under systemd):\n%s", log)
	}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "is spam") {
			t.Logf("verdict line: %s", sc.Text())
		}
	}
}

// purge removes the package and checks that it leaves nothing behind.
func purge(t *testing.T) {
	t.Helper()
	if msg, err := dpkg("--purge", "chainmail"); err != nil {
		t.Errorf("dpkg --purge: %v\n%s", err, msg)
	}
	for _, p := range []string{"/usr/sbin/chainmail", "/etc/chainmail", "/usr/lib/systemd/system/chainmail.service",
		"/usr/lib/systemd/system/chainmail-holdqueue.socket", "/usr/lib/systemd/system/chainmail-holdqueue.service",
		"/etc/logrotate.d/chainmail", "/var/lib/chainmail", "/var/log/chainmail", "/usr/share/chainmail"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after purge", p)
		}
	}
	if _, err := user.Lookup("chainmail"); err == nil {
		t.Error("user chainmail is left after purge")
	}
	if _, err := user.LookupGroup("chainmail"); err == nil {
		t.Error("group chainmail is left after purge")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// syscallGroups reads systemd's system call groups (systemd-analyze
// syscall-filter) and expands group into system call names.
func syscallGroups(t *testing.T, group string) map[string]bool {
	t.Helper()
	groups := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(output(t, "systemd-analyze", "syscall-filter"), "\n") {
		switch {
		case strings.HasPrefix(l, "@"):
			cur = strings.Fields(l)[0]
		case strings.HasPrefix(l, "    ") && !strings.HasPrefix(strings.TrimSpace(l), "#") && cur != "":
			groups[cur] = append(groups[cur], strings.TrimSpace(l))
		}
	}
	out := map[string]bool{}
	var add func(string)
	add = func(name string) {
		if !strings.HasPrefix(name, "@") {
			out[name] = true
			return
		}
		members, ok := groups[name]
		if !ok {
			t.Fatalf("systemd knows no system call group %s", name)
		}
		for _, m := range members {
			add(m)
		}
	}
	add(group)
	return out
}

var (
	straceCall   = regexp.MustCompile(`^\d+ +([a-z0-9_]+)\(`)
	straceSocket = regexp.MustCompile(`^\d+ +socket\((AF_[A-Z0-9]+)`)
)

// checkSyscalls: every system call in the trace is one the unit's
// SystemCallFilter allows, every socket of a family
// RestrictAddressFamilies allows, and no mapping writable and executable
// (MemoryDenyWriteExecute).
func checkSyscalls(t *testing.T, traceFile string, u unitFile) {
	t.Helper()
	allowed := map[string]bool{}
	for _, f := range u["SystemCallFilter"] {
		if strings.HasPrefix(f, "~") {
			t.Fatalf("checkSyscalls reads allow lists only, not %q", f)
		}
		for _, g := range strings.Fields(f) {
			for c := range syscallGroups(t, g) {
				allowed[c] = true
			}
		}
	}
	families := map[string]bool{}
	for _, f := range strings.Fields(u.get("RestrictAddressFamilies")) {
		families[f] = true
	}
	data, err := os.ReadFile(traceFile)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, l := range strings.Split(string(data), "\n") {
		if m := straceCall.FindStringSubmatch(l); m != nil {
			calls[m[1]]++
		}
		if m := straceSocket.FindStringSubmatch(l); m != nil && !families[m[1]] {
			t.Errorf("a socket of family %s, which RestrictAddressFamilies refuses: %s", m[1], l)
		}
		if (strings.Contains(l, "mmap(") || strings.Contains(l, "mprotect(")) && strings.Contains(l, "PROT_WRITE|PROT_EXEC") {
			t.Errorf("writable and executable memory, which MemoryDenyWriteExecute refuses: %s", l)
		}
	}
	if calls["execve"] == 0 || calls["bind"] == 0 || len(calls) < 20 {
		t.Fatalf("the trace looks wrong: %v", calls)
	}
	var refused []string
	for c := range calls {
		if !allowed[c] {
			refused = append(refused, c)
		}
	}
	if len(refused) > 0 {
		t.Errorf("system calls SystemCallFilter=%s refuses (EPERM): %v", u["SystemCallFilter"], refused)
	}
	t.Logf("%d distinct system calls, all allowed by the unit's filter", len(calls))
}

// dpkg runs dpkg, waiting up to two minutes for a lock another dpkg or
// apt-get holds.
func dpkg(args ...string) ([]byte, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		msg, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil || !bytes.Contains(msg, []byte("lock")) || time.Now().After(deadline) {
			return msg, err
		}
		time.Sleep(time.Second)
	}
}
