package mtatest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// PostfixOptions configures StartPostfix.
type PostfixOptions struct {
	// Milter is the smtpd_milters value, in Postfix's spelling:
	// "inet:127.0.0.1:10025" or "unix:/path/to/socket". "" runs without a
	// milter. A unix socket must be reachable by user postfix.
	Milter string
	// DefaultAction is milter_default_action (accept, reject, tempfail,
	// quarantine); "tempfail" when empty.
	DefaultAction string
	// Main holds extra main.cf settings; they override the harness's.
	Main map[string]string
}

// Postfix is a private Postfix instance started by StartPostfix.
type Postfix struct {
	dir  string // instance root
	conf string // config_directory
	addr string
	sink *sink
}

var postfixSeq atomic.Int32

// Postfix binaries as Debian installs them.
const (
	postfixCmd    = "/usr/sbin/postfix"
	postfixMaster = "/usr/lib/postfix/sbin/master"
)

// StartPostfix starts a private Postfix in a temporary directory with smtpd on
// 127.0.0.1 and every accepted message relayed to the harness's SMTP sink; it
// is stopped in t.Cleanup. It needs root and Debian's postfix package: without
// them the test is skipped, or fails when CI is set.
func StartPostfix(t testing.TB, opt PostfixOptions) *Postfix {
	t.Helper()
	requireRoot(t, "Postfix")
	for _, p := range []string{postfixCmd, postfixMaster} {
		if _, err := os.Stat(p); err != nil {
			unavailable(t, "Postfix is not installed (%v); apt-get install postfix", err)
		}
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		unavailable(t, "no postfix user (%v); apt-get install postfix", err)
	}
	uid, _ := strconv.Atoi(pfUser.Uid)

	dir := instanceDir(t)
	p := &Postfix{dir: dir, conf: filepath.Join(dir, "conf")}
	for _, d := range []string{"conf", "spool", "data", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("mtatest: %v", err)
		}
	}
	// data_directory belongs to the mail_owner (master.lock, caches).
	if err := os.Chown(filepath.Join(dir, "data"), uid, -1); err != nil {
		t.Fatalf("mtatest: %v", err)
	}
	p.sink = startSink(t, "sink.chainmail.test")
	hostname := fmt.Sprintf("postfix%d.chainmail.test", postfixSeq.Add(1))
	writeFiles(t, dir, 0o644, loopbackNetFiles(hostname))
	unshare := unsharePath()

	// The chosen port may be taken between freePort and Postfix's bind: try
	// again with another one.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		p.addr = fmt.Sprintf("127.0.0.1:%d", port)
		writeFiles(t, p.conf, 0o644, map[string]string{
			"main.cf":   postfixMainCf(dir, hostname, p.sink.port(), opt),
			"master.cf": postfixMasterCf(p.addr),
		})
		// Postfix does not trust a configuration file modified within the
		// last second (it may be half-written) and polls until it is older:
		// backdate ours, which saves about two seconds per start.
		past := time.Now().Add(-time.Minute)
		for _, f := range []string{"main.cf", "master.cf"} {
			os.Chtimes(filepath.Join(p.conf, f), past, past)
		}
		start := time.Now()
		if lastErr = p.start(unshare); lastErr == nil {
			t.Cleanup(p.stop)
			if lastErr = waitGreeting(p.addr, 10*time.Second, nil); lastErr == nil {
				t.Logf("mtatest: Postfix %s on %s (sink 127.0.0.1:%d, milter %q) started in %v",
					hostname, p.addr, p.sink.port(), opt.Milter, time.Since(start).Round(time.Millisecond))
				return p
			}
			p.stop()
		}
	}
	t.Fatalf("mtatest: starting Postfix: %v\n--- maillog ---\n%s", lastErr, p.Log())
	return nil
}

// postfixMainCf renders main.cf: harness settings overlaid with opt.Main.
func postfixMainCf(dir, hostname string, sinkPort int, opt PostfixOptions) string {
	action := opt.DefaultAction
	if action == "" {
		action = "tempfail"
	}
	nexthop := fmt.Sprintf("[127.0.0.1]:%d", sinkPort)
	set := map[string]string{
		"compatibility_level": "3.6",
		"queue_directory":     filepath.Join(dir, "spool"),
		"data_directory":      filepath.Join(dir, "data"),
		"mail_owner":          "postfix",
		"myhostname":          hostname,
		"mydomain":            "chainmail.test",
		"myorigin":            "$myhostname",
		"mydestination":       "",
		"inet_interfaces":     "127.0.0.1",
		"inet_protocols":      "ipv4",
		"mynetworks":          "127.0.0.0/8",
		"smtpd_banner":        "$myhostname ESMTP Postfix (mtatest)",
		"biff":                "no",
		// Everything is relayed, whoever the client claims to be via XCLIENT,
		// and everything goes to the sink.
		"relay_domains":                  "static:ALL",
		"smtpd_relay_restrictions":       "permit_mynetworks, reject_unauth_destination",
		"smtpd_recipient_restrictions":   "",
		"smtpd_authorized_xclient_hosts": "127.0.0.0/8",
		"transport_maps":                 "static:smtp:" + nexthop,
		"relayhost":                      nexthop,
		"default_transport":              "smtp",
		"relay_transport":                "smtp",
		"local_recipient_maps":           "",
		"alias_maps":                     "",
		"alias_database":                 "",
		// Nothing leaves loopback: no DNS, no TLS, no reverse lookups.
		"smtp_dns_support_level":   "disabled",
		"smtp_host_lookup":         "native",
		"lmtp_host_lookup":         "native",
		"smtpd_peername_lookup":    "no",
		"smtp_tls_security_level":  "none",
		"smtpd_tls_security_level": "none",
		"smtp_address_preference":  "ipv4",
		// Fast and forgiving for tests.
		"smtpd_error_sleep_time":   "0",
		"smtpd_soft_error_limit":   "100",
		"smtpd_hard_error_limit":   "200",
		"smtpd_junk_command_limit": "1000",
		"in_flow_delay":            "0",
		"delay_warning_time":       "0",
		"queue_run_delay":          "10s",
		"minimal_backoff_time":     "10s",
		"maximal_backoff_time":     "60s",
		"smtp_connect_timeout":     "5s",
		"enable_long_queue_ids":    "yes",
		// Logs to a file of its own through postlogd: no syslog needed.
		"maillog_file":          filepath.Join(dir, "maillog"),
		"maillog_file_prefixes": dir,
		// Milter.
		"smtpd_milters":          opt.Milter,
		"non_smtpd_milters":      "",
		"milter_default_action":  action,
		"milter_protocol":        "6",
		"milter_connect_timeout": "2s",
		"milter_command_timeout": "30s",
		"milter_content_timeout": "60s",
		"milter_mail_macros":     "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer} {client_addr} {client_name} {daemon_name}",
	}
	for k, v := range opt.Main {
		set[k] = v
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# main.cf written by chainmail/milter/mtatest\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, set[k])
	}
	return b.String()
}

// postfixMasterCf renders a minimal master.cf: no chroot, smtpd on addr.
func postfixMasterCf(addr string) string {
	return `# master.cf written by chainmail/milter/mtatest
# service type  private unpriv  chroot  wakeup  maxproc command
` + addr + ` inet  n       -       n       -       -       smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
local      unix  -       n       n       -       -       local
lmtp       unix  -       -       n       -       -       lmtp
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
`
}

// start runs "postfix -c CONF start"; with unshare available it does so in a
// private mount namespace whose /etc/resolv.conf, /etc/hosts and
// /etc/nsswitch.conf are the instance's own (see loopbackNetFiles). The
// master daemonizes and keeps the namespace alive.
func (p *Postfix) start(unshare string) error {
	var cmd *exec.Cmd
	if unshare != "" {
		script := "set -e\n" + bindNetFilesScript(p.dir) + "exec " + postfixCmd + " -c " + shQuote(p.conf) + " start\n"
		cmd = exec.Command(unshare, "--mount", "sh", "-c", script)
	} else {
		cmd = exec.Command(postfixCmd, "-c", p.conf, "start")
	}
	// Keep the system's default instance out of it: MAIL_CONFIG names ours.
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+p.conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("postfix start: %v\n%s", err, out)
	}
	return nil
}

// masterPID reads the master's pid file; 0 if there is none.
func (p *Postfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.dir, "spool", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// stop ends the instance: SIGTERM to the master (what "postfix stop" does,
// without its one-second polling), then SIGKILL to whatever is left of its
// process group.
func (p *Postfix) stop() {
	pid := p.masterPID()
	if pid == 0 || procComm(pid) != "master" {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if !waitGone(pid, 5*time.Second) {
		killGroup(pid, syscall.SIGKILL)
		waitGone(pid, 2*time.Second)
	}
	// Daemons that outlive the master (they exit on their own soon after).
	killGroup(pid, syscall.SIGKILL)
	os.Remove(filepath.Join(p.dir, "spool", "pid", "master.pid"))
}

// Addr is the host:port of the instance's smtpd.
func (p *Postfix) Addr() string { return p.addr }

// Dir is the instance's root directory (conf/, spool/, data/, maillog).
func (p *Postfix) Dir() string { return p.dir }

// Dial opens an SMTP session to the instance's smtpd (greeting already read).
func (p *Postfix) Dial(t testing.TB) *SMTPClient {
	t.Helper()
	return Dial(t, p.addr)
}

// Delivered waits until the sink has received at least n messages from this
// instance and returns all of them in arrival order (Postfix delivers in
// parallel, so that need not be submission order); it fails the test with the
// maillog if that takes longer than timeout.
func (p *Postfix) Delivered(t testing.TB, n int, timeout time.Duration) []Delivered {
	t.Helper()
	return p.sink.delivered(t, n, timeout, "Postfix", p.Log)
}

// HoldQueue lists the queue ids in the hold queue (messages a milter
// quarantined), sorted. It reads the queue directory, so it needs neither
// postqueue nor any change to /etc/postfix.
func (p *Postfix) HoldQueue(t testing.TB) []string {
	t.Helper()
	return p.queue(t, "hold")
}

// Queue lists the queue ids in one of the instance's queues ("incoming",
// "active", "deferred", "hold", ...), sorted.
func (p *Postfix) Queue(t testing.TB, name string) []string {
	t.Helper()
	return p.queue(t, name)
}

func (p *Postfix) queue(t testing.TB, name string) []string {
	t.Helper()
	var ids []string
	root := filepath.Join(p.dir, "spool", name)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			ids = append(ids, d.Name())
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("mtatest: reading %s queue: %v", name, err)
	}
	sort.Strings(ids)
	return ids
}

// Log returns the instance's maillog so far (for failure messages).
func (p *Postfix) Log() string {
	b, err := os.ReadFile(filepath.Join(p.dir, "maillog"))
	if err != nil {
		return fmt.Sprintf("(no maillog: %v)", err)
	}
	return string(b)
}
