package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks/checktest"
	"chainmail/store/bolt"
)

// Next to a running daemon that holds the state file, replay still runs
// the message: it says why in one line, and the checks that keep state
// (bayes in the default configuration) answer temperror, as they would
// in the daemon with its store down — no verdict is made up.
func TestReplayBesideRunningDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	path := filepath.Join(dir, "state.db")
	if err := os.WriteFile(cfg, []byte("state: {path: "+path+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := bolt.Open(path, bolt.Options{}) // the daemon
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	msg := filepath.Join(checktest.RepoRoot(), "testdata", "cases", "002-ham", "message.eml")
	code, stdout, stderr := runCmd(t, "replay", "-c", cfg, "--zone", emptyZone(t), "--json", msg)
	if code != exitOK || !strings.Contains(stderr, "is locked by another process") || !strings.Contains(stderr, "answer temperror") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	var r replayResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	found := false
	for _, c := range r.Results {
		if c.Check == "bayes" {
			found = true
			if c.Status != "temperror" {
				t.Errorf("bayes: %s, want temperror", c.Status)
			}
		}
	}
	if !found || r.Action != "accept" {
		t.Errorf("action %s, bayes in results: %v\n%s", r.Action, found, stdout)
	}
}
