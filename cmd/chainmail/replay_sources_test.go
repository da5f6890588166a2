package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayFlushesLearning: what reputation learned in one replay is in
// the state file for the next (before: the batched history was never
// written, and every run found the domain "never seen before").
func TestReplayFlushesLearning(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "chainmail.yaml")
	conf := fmt.Sprintf("state: {backend: bolt, path: %q}\nchecks:\n  - name: reputation\n    options: {rdap: {enabled: false}}\n", filepath.Join(dir, "state.db"))
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(dir, "m.eml")
	if err := os.WriteFile(eml, []byte("From: a@learned.example\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"replay", "-c", cfg, "--zone", emptyZone(t), "--client-ip", "192.0.2.9", eml}
	code, first, errOut := runCmd(t, args...)
	if code != exitOK || !strings.Contains(first, "learned.example never seen before") {
		t.Fatalf("first run: exit %d\n%s%s", code, first, errOut)
	}
	code, second, errOut := runCmd(t, args...)
	if code != exitOK {
		t.Fatalf("second run: exit %d\n%s", code, errOut)
	}
	if strings.Contains(second, "never seen before") || !strings.Contains(second, "SDR: Consolidated Sender Reputation") {
		t.Errorf("second run did not find the first run's history:\n%s", second)
	}
}

// TestReplayClientName: --client-name and the sidecar's client-name are
// the client's name as the MTA would pass it; without them the PTR is
// looked up and forward-confirmed (before: SDR's reverse DNS host was
// always Not Present, and there was no flag or key).
func TestReplayClientName(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "ptr.zone")
	eml := filepath.Join(dir, "m.eml")
	cfg := filepath.Join(dir, "chainmail.yaml")
	conf := fmt.Sprintf("state: {backend: bolt, path: %q}\nchecks:\n  - name: reputation\n    options: {rdap: {enabled: false}}\n", filepath.Join(dir, "state.db"))
	for p, body := range map[string]string{zone: parityZone, cfg: conf,
		eml: "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"} {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host := func(extra ...string) string {
		t.Helper()
		args := append([]string{"replay", "-c", cfg, "--zone", zone}, extra...)
		code, out, errOut := runCmd(t, append(args, eml)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", extra, code, errOut)
		}
		_, after, _ := strings.Cut(out, "reverse DNS host: ")
		h, _, _ := strings.Cut(after, ",")
		return h
	}
	if h := host("--client-ip", "198.51.100.20"); h != "mx.sender.example" {
		t.Errorf("looked up: %q, want mx.sender.example", h)
	}
	if h := host("--client-ip", "192.0.2.7"); h != "Not Present" {
		t.Errorf("no PTR: %q, want Not Present", h)
	}
	if h := host("--client-ip", "192.0.2.7", "--client-name", "relay.example.net"); h != "relay.example.net" {
		t.Errorf("--client-name: %q", h)
	}
	if err := os.WriteFile(eml+".envelope", []byte("client-ip: 198.51.100.20\nclient-name: sidecar.example.net\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h := host(); h != "sidecar.example.net" {
		t.Errorf("sidecar client-name: %q", h)
	}
}
