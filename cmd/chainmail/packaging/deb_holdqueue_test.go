package packaging

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/milter/mtatest"
)

// The hold queue helper's socket as the package's units set it up.
const helperSocket = "/run/chainmail-holdqueue/holdqueue.sock"

// checkHelperUnits: the settings of chainmail-holdqueue.socket and
// .service that the console, the helper and the test depend on.
func checkHelperUnits(t *testing.T, sock, svc unitFile) {
	t.Helper()
	for k, want := range map[string]string{
		"ListenStream": helperSocket, "SocketUser": "root", "SocketGroup": "chainmail", "SocketMode": "0660",
		"DirectoryMode": "0755", "Accept": "no", "WantedBy": "sockets.target",
	} {
		if sock.get(k) != want {
			t.Errorf("chainmail-holdqueue.socket %s=%q, want %q", k, sock.get(k), want)
		}
	}
	for k, want := range map[string]string{
		"Type": "simple", "User": "root", "Requires": "chainmail-holdqueue.socket",
		"ExecStart":       "/usr/sbin/chainmail holdqueue serve --group chainmail",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/spool/postfix",
		"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes", "IPAddressDeny": "any",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	} {
		if svc.get(k) != want {
			t.Errorf("chainmail-holdqueue.service %s=%q, want %q", k, svc.get(k), want)
		}
	}
	if f := strings.Join(svc["SystemCallFilter"], " "); f != "@system-service ~@resources" {
		t.Errorf("chainmail-holdqueue.service SystemCallFilter %q", f)
	}
	if len(capabilities(t, svc)) == 0 {
		t.Error("chainmail-holdqueue.service has no CapabilityBoundingSet")
	}
}

// capabilities lists the unit's CapabilityBoundingSet as setpriv names
// them (dac_override, …).
func capabilities(t *testing.T, u unitFile) []string {
	t.Helper()
	var caps []string
	for _, c := range strings.Fields(u.get("CapabilityBoundingSet")) {
		if !strings.HasPrefix(c, "CAP_") {
			t.Fatalf("CapabilityBoundingSet entry %q", c)
		}
		caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	return caps
}

// consoleTestToken is the console's bearer token in the installed test.
const consoleTestToken = "deb-test-console-token-0123456789"

// enableConsole turns the console on in the installed configuration, as
// the packaged configuration's header shows it, on the helper's socket,
// and adds a rule that quarantines mail from hold@example.net. The daemon
// runs without a network here, so every DNS lookup fails: the DMARC
// temperror rule, which would defer that mail, is turned off.
func enableConsole(t *testing.T) string {
	t.Helper()
	const conf = "/etc/chainmail/chainmail.yaml"
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.Contains(s, "\n#     postfix:\n#       socket: "+helperSocket+"\n") {
		t.Errorf("the packaged configuration does not show console.postfix.socket: %s", helperSocket)
	}
	if strings.Contains(s, "\nconsole:") {
		t.Fatal("the packaged configuration has a console section already")
	}
	tempErr := `if: 'dmarc.status == "temperror" && (dmarc.policy == "reject" || dmarc.temperror_policy_unknown == true)'`
	for old, new := range map[string]string{
		"\nrules:\n": "\nrules:\n  - name: hold-for-review\n    if: 'envelope.from == \"hold@example.net\"'\n    action: quarantine\n",
		tempErr:      "if: 'false'",
	} {
		if strings.Count(s, old) != 1 {
			t.Fatalf("the configuration has no single %q", old)
		}
		s = strings.Replace(s, old, new, 1)
	}
	tokenFile := "/etc/chainmail/console.token"
	s += fmt.Sprintf("\nconsole:\n  listen: 127.0.0.1:9480\n  token_file: %s\n  postfix:\n    socket: %s\n", tokenFile, helperSocket)
	if err := os.WriteFile(conf, []byte(s), 0o640); err != nil {
		t.Fatal(err)
	}
	grp, err := user.LookupGroup("chainmail")
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(grp.Gid)
	if err := os.WriteFile(tokenFile, []byte(consoleTestToken+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chown(tokenFile, 0, gid)
	t.Cleanup(func() { os.Remove(tokenFile) }) // before the purge
	return consoleTestToken
}

// startHelper does what systemd does for chainmail-holdqueue.socket and
// .service: the socket's directory and the socket with the unit's owner,
// group and mode, then ExecStart as root with the socket as fd 3
// (LISTEN_PID, LISTEN_FDS), no new privileges and the unit's capability
// bounding set. --config-dir names the test's
// Postfix: the helper's own setting, not the console's.
func startHelper(t *testing.T, pf *mtatest.Postfix, sock, svc unitFile) (pid int, log func() string) {
	t.Helper()
	path := sock.get("ListenStream")
	dirMode, _ := strconv.ParseUint(sock.get("DirectoryMode"), 8, 32)
	sockMode, _ := strconv.ParseUint(sock.get("SocketMode"), 8, 32)
	grp, err := user.LookupGroup(sock.get("SocketGroup"))
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(grp.Gid)
	if err := os.MkdirAll(filepath.Dir(path), os.FileMode(dirMode)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(path), os.FileMode(dirMode))
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	// The helper has its own copy; the socket file stays, as systemd
	// keeps it while the socket unit is active.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	defer ln.Close()
	if err := os.Chown(path, 0, gid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, os.FileMode(sockMode))
	lnFile, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lnFile.Close()

	var bounding []string
	for _, c := range capabilities(t, svc) {
		bounding = append(bounding, "+"+c)
	}
	execStart := append(strings.Fields(svc.get("ExecStart")), "--config-dir", filepath.Join(pf.Dir(), "conf"))
	script := `exec setpriv --no-new-privs --bounding-set=-all,` + strings.Join(bounding, ",") +
		` env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 LISTEN_PID=$$ LISTEN_FDS=1 "$@"`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, execStart...)...)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{lnFile} // fd 3
	out := newLockedBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// systemctl stop: SIGTERM, a clean exit.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the helper's exit after SIGTERM: %v\n%s", err, out.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("the helper did not stop on SIGTERM\n%s", out.String())
		}
		t.Logf("the helper's log (the journal under systemd):\n%s", out.String())
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "listening on"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the helper did not start:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "(from systemd)") {
		t.Errorf("the helper did not take the socket systemd passes:\n%s", out.String())
	}
	return cmd.Process.Pid, out.String
}

// testHoldQueueHelper: with the installed helper running as root and the
// packaged serve as user chainmail, chainmail quarantines two messages in
// Postfix's hold queue and the console lists them, reads and releases one
// (Postfix delivers it) and reads and deletes the other, all through the
// helper's socket.
func testHoldQueueHelper(t *testing.T, pf *mtatest.Postfix, sock, svc unitFile, daemonPID int, token string, daemonLog func() string) {
	t.Helper()
	hpid, helperLog := startHelper(t, pf, sock, svc)

	// The helper: root, no new privileges, the unit's bounding set.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hpid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), "Uid:\t0\t0\t0\t0\n") || !strings.Contains(string(status), "NoNewPrivs:\t1\n") {
		t.Errorf("the helper's /proc/PID/status:\n%s", status)
	}
	capNumbers := map[string]uint{"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "setgid": 6, "setuid": 7}
	var mask uint64
	for _, c := range capabilities(t, svc) {
		n, ok := capNumbers[c]
		if !ok {
			t.Fatalf("capability %s: add its number", c)
		}
		mask |= 1 << n
	}
	if want := fmt.Sprintf("CapBnd:\t%016x\n", mask); !strings.Contains(string(status), want) {
		t.Errorf("the helper's /proc/PID/status lacks %q:\n%s", want, status)
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", hpid)); err != nil || exe != "/usr/sbin/chainmail" {
		t.Errorf("the helper runs %q (%v), want /usr/sbin/chainmail", exe, err)
	}
	// The socket: root's, group chainmail, mode 0660; its directory 0755.
	chainmail, _ := user.LookupGroup("chainmail")
	if fi, err := os.Lstat(helperSocket); err != nil {
		t.Fatal(err)
	} else if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 || st.Uid != 0 || strconv.Itoa(int(st.Gid)) != chainmail.Gid {
		t.Errorf("%s: %v %d:%d, want a socket 0660 root:chainmail", helperSocket, fi.Mode(), st.Uid, st.Gid)
	}
	// Another local user cannot even connect.
	if msg, err := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
		"curl", "-v", "--max-time", "5", "--unix-socket", helperSocket, "http://x/").CombinedOutput(); err == nil || !strings.Contains(string(msg), "Permission denied") {
		t.Errorf("user nobody connecting to the helper's socket: %v %s", err, msg)
	}

	// Two messages quarantined by chainmail.
	c := pf.Dial(t)
	if r := c.Ehlo("client.example"); r.Code != 250 {
		t.Fatalf("EHLO: %v", r)
	}
	for i, subject := range []string{"release me", "delete me"} {
		msg := fmt.Sprintf("From: <hold@example.net>\r\nTo: <bob@example.org>\r\nSubject: %s\r\nDate: Mon, 7 Dec 2026 09:00:0%d +0000\r\nMessage-ID: <held%d@example.net>\r\n\r\nHeld for review.\r\n", subject, i, i)
		if r := c.Send("hold@example.net", []string{"bob@example.org"}, []byte(msg)); r.Code != 250 {
			t.Fatalf("sending %q: %v\n%s", subject, r, daemonLog())
		}
	}
	c.Quit()
	for deadline := time.Now().Add(20 * time.Second); len(pf.HoldQueue(t)) != 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hold queue %v, want the two quarantined messages\n%s", pf.HoldQueue(t), pf.Log())
		}
	}

	// The console's API with the token, inside the daemon's network
	// namespace.
	api := func(method, path string, wantCode int) []byte {
		t.Helper()
		start := time.Now()
		out := output(t, "nsenter", "--target", strconv.Itoa(daemonPID), "--net",
			"curl", "-sS", "--max-time", "60", "-X", method, "-H", "Authorization: Bearer "+token,
			"-w", "\n%{http_code}", "http://127.0.0.1:9480"+path)
		nl := strings.LastIndexByte(out, '\n')
		if nl < 0 {
			t.Fatalf("%s %s: no status from curl: %q", method, path, out)
		}
		body, code := out[:nl], out[nl+1:]
		t.Logf("%s %s: HTTP %s in %v", method, path, code, time.Since(start).Round(time.Millisecond))
		if code != strconv.Itoa(wantCode) {
			t.Fatalf("%s %s: HTTP %s, want %d: %s\nhelper:\n%s\ndaemon:\n%s", method, path, code, wantCode, body, helperLog(), daemonLog())
		}
		return []byte(body)
	}
	var q struct {
		Held []struct {
			QueueID string   `json:"queue_id"`
			Sender  string   `json:"sender"`
			Rcpts   []string `json:"rcpts"`
			Verdict *struct {
				Subject string `json:"subject"`
			} `json:"verdict"`
		} `json:"held"`
	}
	if err := json.Unmarshal(api("GET", "/api/quarantine", 200), &q); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, h := range q.Held {
		if h.Sender != "hold@example.net" || strings.Join(h.Rcpts, ",") != "bob@example.org" {
			t.Errorf("held %+v", h)
		}
		if h.Verdict != nil {
			ids[h.Verdict.Subject] = h.QueueID
		}
	}
	if len(q.Held) != 2 || ids["release me"] == "" || ids["delete me"] == "" {
		t.Fatalf("/api/quarantine: %+v, want both held messages with their verdicts", q.Held)
	}

	// Release (after reading it to learn it as ham): Postfix delivers it.
	start := time.Now()
	api("POST", "/quarantine/"+ids["release me"]+"/release-ham", 200)
	got := pf.Delivered(t, 1, 20*time.Second)
	t.Logf("released through the console and the helper: delivered %v after the request", time.Since(start).Round(time.Millisecond))
	if got[0].Header("Subject") != "release me" {
		t.Errorf("delivered %q, want the released message", got[0].Header("Subject"))
	}
	// Delete (after reading it to learn it as spam): gone, never delivered.
	api("POST", "/quarantine/"+ids["delete me"]+"/delete-spam", 200)
	if held := pf.HoldQueue(t); len(held) != 0 {
		t.Errorf("hold queue after release and delete: %v", held)
	}
	// Deleting it again: the helper's "not found" reaches the console.
	body := api("POST", "/quarantine/"+ids["delete me"]+"/delete", 502)
	if !strings.Contains(string(body), "no such message in the hold queue") {
		t.Errorf("deleting a deleted message: %s", body)
	}
	if err := json.Unmarshal(api("GET", "/api/quarantine", 200), &q); err != nil || len(q.Held) != 0 {
		t.Errorf("/api/quarantine after release and delete: %+v %v", q.Held, err)
	}
	time.Sleep(time.Second)
	if got := pf.Delivered(t, 1, time.Second); len(got) != 1 {
		t.Errorf("delivered %d messages, want only the released one", len(got))
	}
	// The helper logged each request with the daemon's uid.
	usr, _ := user.Lookup("chainmail")
	for _, want := range []string{"uid " + usr.Uid + " pid ", ": list: ok", ": message " + ids["release me"] + ": ok",
		": release " + ids["release me"] + ": ok", ": delete " + ids["delete me"] + ": ok"} {
		if !strings.Contains(helperLog(), want) {
			t.Errorf("the helper's log lacks %q:\n%s", want, helperLog())
		}
	}
}
