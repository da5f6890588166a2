package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/config"
	"chainmail/milter/miltertest"
)

var update = flag.Bool("update", false, "rewrite the want.log files of testdata/cases")

// runCmd runs the command in-process and returns its exit code and
// output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// emptyZone returns a zone file with no records: every name is NXDOMAIN,
// so cases without a zone run offline and deterministic.
func emptyZone(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.zone")
	if err := os.WriteFile(p, []byte("; no records\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// caseArgs builds the replay arguments of one testdata/cases directory:
// config.yaml if present, every *.zone file (else an empty zone), and
// message.eml.
func caseArgs(t *testing.T, dir string, extra ...string) []string {
	t.Helper()
	args := []string{"replay"}
	if _, err := os.Stat(filepath.Join(dir, "config.yaml")); err == nil {
		args = append(args, "-c", filepath.Join(dir, "config.yaml"))
	}
	zones, _ := filepath.Glob(filepath.Join(dir, "*.zone"))
	if len(zones) == 0 {
		zones = []string{emptyZone(t)}
	}
	for _, z := range zones {
		args = append(args, "--zone", z)
	}
	args = append(args, extra...)
	return append(args, filepath.Join(dir, "message.eml"))
}

// TestCases replays every testdata/cases/NNN-name/ and compares the log
// lines with want.log (go test -run TestCases -update rewrites them).
func TestCases(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(checktest.RepoRoot(), "testdata", "cases", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases found: %v", err)
	}
	for _, dir := range dirs {
		dir := dir
		t.Run(filepath.Base(dir), func(t *testing.T) {
			code, out, errOut := runCmd(t, caseArgs(t, dir)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			want := filepath.Join(dir, "want.log")
			if *update {
				if err := os.WriteFile(want, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			w, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if out != string(w) {
				t.Errorf("log lines differ\n--- got\n%s--- want\n%s", out, w)
			}
		})
	}
}

func caseDir(name string) string {
	return filepath.Join(checktest.RepoRoot(), "testdata", "cases", name)
}

func TestReplayJSON(t *testing.T) {
	code, out, errOut := runCmd(t, caseArgs(t, caseDir("001-gtube"), "--json")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"file", "queue_id", "action", "score", "required", "reply", "results", "symbols", "headers", "log"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, out)
		}
	}
	if r["action"] != "reject" || r["queue_id"] != "4XyzAB1234" || r["reply"] != "550 5.7.1 Message rejected as spam" {
		t.Errorf("action %v queue %v reply %v", r["action"], r["queue_id"], r["reply"])
	}
	found := false
	for _, x := range r["results"].([]any) {
		res := x.(map[string]any)
		if res["check"] == "gtube" && res["status"] == "spam" {
			found = true
		}
	}
	if !found {
		t.Errorf("no gtube result with status spam: %v", r["results"])
	}
}

func TestReplayExitCodes(t *testing.T) {
	good := filepath.Join(caseDir("002-ham"), "message.eml")
	zone := emptyZone(t)
	code, out, errOut := runCmd(t, "replay", "--zone", zone, "/nonexistent/x.eml", good)
	if code != exitFiles {
		t.Errorf("missing file: exit %d, want %d", code, exitFiles)
	}
	if !strings.Contains(out, "Delivery of nonspam") || !strings.Contains(errOut, "/nonexistent/x.eml") {
		t.Errorf("the readable file must still be processed and the bad one named: out=%q err=%q", out, errOut)
	}
	if code, _, _ := runCmd(t, "replay"); code != exitUsage {
		t.Errorf("no path: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("policy:\n  tagg: 5\n"), 0o644)
	code, _, errOut = runCmd(t, "replay", "-c", bad, "--zone", zone, good)
	if code != exitUsage || !strings.Contains(errOut, bad+":2:") || !strings.Contains(errOut, `unknown key "tagg"`) {
		t.Errorf("bad config: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCmd(t, "replay", "--client-ip", "not-an-ip", good); code != exitUsage {
		t.Errorf("bad --client-ip: exit %d", code)
	}
	if code, _, _ := runCmd(t, "replay", "--zone", zone, "--dns", "127.0.0.1:53", good); code != exitUsage {
		t.Errorf("--zone with --dns: exit %d", code)
	}
	badEnv := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(badEnv, []byte("Subject: x\r\n\r\nx\r\n"), 0o644)
	os.WriteFile(badEnv+".envelope", []byte("client-ip: nope\n"), 0o644)
	if code, _, errOut := runCmd(t, "replay", "--zone", zone, badEnv); code != exitFiles || !strings.Contains(errOut, "client-ip") {
		t.Errorf("bad sidecar: exit %d %q", code, errOut)
	}
}

// A directory is expanded into its *.eml files, in name order.
func TestReplayDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.eml", "a.eml", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, n), []byte("Subject: "+n+"\r\nTo: x@example.org\r\n\r\nhi\r\n"), 0o644)
	}
	code, out, errOut := runCmd(t, "replay", "--zone", emptyZone(t), "--from", "s@example.com", dir)
	if code != exitOK {
		t.Fatalf("exit %d %s", code, errOut)
	}
	a, b := strings.Index(out, "subject a.eml"), strings.Index(out, "subject b.eml")
	if a < 0 || b < 0 || a > b || strings.Contains(out, "notes.txt") {
		t.Errorf("order or selection wrong:\n%s", out)
	}
}

func TestEnvelopeFromMessageAndSidecar(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(caseDir("007-received-envelope"), "message.eml"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := checks.ReadMessage(bytes.NewReader(raw), checks.NewSpool(0, ""))
	if err != nil {
		t.Fatal(err)
	}
	env := envelopeFromMessage(m)
	if env.MailFrom != "carol@example.com" || strings.Join(env.Rcpts, ",") != "bob@example.org" ||
		!env.ClientIP.Equal(net.ParseIP("192.0.2.44")) || env.HELO != "smtp.example.com" || env.ClientName != "smtp.example.com" {
		t.Errorf("envelope %+v", env)
	}
	side := filepath.Join(t.TempDir(), "x.envelope")
	os.WriteFile(side, []byte("client-ip: 2001:db8::1\nfrom: \"\"\nrcpt: [a@b.example]\nauth: u1\nqueue-id: Q1\n"), 0o644)
	if err := applySidecar(&env, side); err != nil {
		t.Fatal(err)
	}
	if env.ClientIP.String() != "2001:db8::1" || env.MailFrom != "" || env.Rcpts[0] != "a@b.example" || env.AuthUser != "u1" || env.QueueID != "Q1" {
		t.Errorf("sidecar not applied: %+v", env)
	}
	os.WriteFile(side, []byte("clientip: 1.2.3.4\n"), 0o644)
	if err := applySidecar(&env, side); err == nil {
		t.Error("unknown sidecar key accepted")
	}
	for _, c := range []struct{ in, ip, helo string }{
		{"from [192.0.2.1] by x", "192.0.2.1", "[192.0.2.1]"},
		{"from h.example (h.example [IPv6:2001:db8::5]) by x", "2001:db8::5", "h.example"},
		{"from h (unknown [198.51.100.2]) by x", "198.51.100.2", "h"},
		{"by localhost with local", "", ""},
	} {
		ip, helo, _ := parseReceived(c.in)
		got := ""
		if ip != nil {
			got = ip.String()
		}
		if got != c.ip || helo != c.helo {
			t.Errorf("parseReceived(%q) = %q %q, want %q %q", c.in, got, helo, c.ip, c.helo)
		}
	}
}

// startDefaultMilter serves the default configuration over the real milter
// protocol, its DNS answered from an empty zone.
func startDefaultMilter(t *testing.T) *miltertest.Server {
	t.Helper()
	f, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	deps, closeDNS, err := replayDependencies(f, []string{emptyZone(t)}, "", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeDNS)
	eng, err := f.Build(deps)
	if err != nil {
		t.Fatal(err)
	}
	return miltertest.Start(t, eng)
}

// --milter sends the message through the milter protocol and reports what
// came back.
func TestReplayThroughMilter(t *testing.T) {
	srv := startDefaultMilter(t)
	code, out, errOut := runCmd(t, "replay", "--milter", "inet:"+srv.Addr, "--json", filepath.Join(caseDir("001-gtube"), "message.eml"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r["action"] != "reject" || r["reply"] != "550 5.7.1 Message rejected as spam" {
		t.Errorf("milter answer %v", r)
	}
	code, out, _ = runCmd(t, "replay", "--milter", "inet:"+srv.Addr, filepath.Join(caseDir("002-ham"), "message.eml"))
	if code != exitOK || !strings.Contains(out, " accept") || !strings.Contains(out, `header="X-Spam-Status: No, score=`) {
		t.Errorf("ham through milter: %d %q", code, out)
	}
	if code, _, _ := runCmd(t, "replay", "--milter", "inet:127.0.0.1:1", filepath.Join(caseDir("002-ham"), "message.eml")); code != exitFiles {
		t.Errorf("unreachable milter: exit %d", code)
	}
}

func TestConfigCheck(t *testing.T) {
	code, out, errOut := runCmd(t, "config", "check")
	if code != exitOK || !strings.Contains(out, "listen: inet:127.0.0.1:10025") || !strings.Contains(out, "name: gtube") {
		t.Errorf("default: %d %q %q", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - name: broken\n    if: 'lists.status =='\n    action: reject\n"), 0o644)
	code, _, errOut = runCmd(t, "config", "check", "-c", bad)
	if code != exitUsage || !strings.Contains(errOut, bad+":2:") || !strings.Contains(errOut, `rule "broken"`) {
		t.Errorf("bad rule: %d %q", code, errOut)
	}
}

// DMARC policy honouring reaches the reply, and a passing message carries
// one Authentication-Results header with every method.
func TestReplayDMARCReplyAndAuthResults(t *testing.T) {
	decode := func(args []string) map[string]any {
		t.Helper()
		code, out, errOut := runCmd(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := decode(caseArgs(t, caseDir("010-dmarc-reject"), "--json"))
	if r["action"] != "reject" || r["reply"] != "550 5.7.1 Email rejected per DMARC policy" {
		t.Errorf("p=reject failure: action %v reply %v", r["action"], r["reply"])
	}
	conf := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(conf, []byte("hostname: mx.example.org\n"), 0o644)
	r = decode(append([]string{"replay", "-c", conf}, caseArgs(t, caseDir("011-dkim-dmarc-pass"), "--json")[1:]...))
	var ar string
	for _, h := range r["headers"].([]any) {
		h := h.(map[string]any)
		if h["name"] == "Authentication-Results" {
			ar = h["value"].(string)
		}
	}
	for _, want := range []string{"mx.example.org;", "spf=none", "dkim=pass", "header.d=signed.example", "dmarc=pass", "header.from=signed.example"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results %q lacks %q", ar, want)
		}
	}
	r = decode(caseArgs(t, caseDir("012-dmarc-quarantine"), "--json"))
	if r["action"] != "quarantine" {
		t.Errorf("p=quarantine failure: %v", r["action"])
	}
}
