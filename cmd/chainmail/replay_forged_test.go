package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks"
)

// replay --json lists the forged fields the milter removes, in the same
// "Name[index]" form as milter mode, on a path that ends the chain early
// (an allowed client), before the fields chainmail adds.
func TestReplayJSONForgedRemoved(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("hostname: mx.chainmail.test\nchecks:\n  - name: lists\n    decisive: both\n    options: {allow: {clients: [192.0.2.0/24]}}\n"), 0o644)
	eml := filepath.Join(dir, "m.eml")
	os.WriteFile(eml, []byte("Authentication-Results: other.example; dkim=pass\r\n"+
		"Authentication-Results: (c) \"MX.chainmail.test\"; dmarc=pass\r\nX-Spam-Status: No\r\n"+
		"From: a@example.net\r\nSubject: hi\r\n\r\nbody\r\n"), 0o644)
	code, out, errOut := runCmd(t, "replay", "-c", cfg, "--zone", emptyZone(t), "--client-ip", "192.0.2.5", "--json", eml)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		Action  string          `json:"action"`
		Headers []checks.Header `json:"headers"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var names []string
	for _, h := range r.Headers {
		names = append(names, h.Name)
	}
	if r.Action != "accept" || !strings.HasPrefix(strings.Join(names, " "), "Authentication-Results[2] X-Spam-Status[1] X-Spam-Status X-Chainmail-Verdict") {
		t.Errorf("action %s, headers %v", r.Action, names)
	}
}
