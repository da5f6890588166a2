package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/store"
	"chainmail/store/bolt"
)

// corruptStateFile writes a real state file and overwrites the starts of
// its data pages (bbolt panicked at start on such a file: a goroutine
// trace and exit 2).
func corruptStateFile(t *testing.T, path string) {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		store.Set(context.Background(), s, fmt.Sprintf("key-%05d", i), []byte(strings.Repeat("v", 40)), time.Hour)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := int64(os.Getpagesize())
	for pg := int64(2); pg < 12; pg++ {
		f.WriteAt([]byte(strings.Repeat("\x5a\xa5", 32)), pg*page)
	}
}

func TestServeCorruptState(t *testing.T) {
	bin := buildBinary(t)
	state := filepath.Join(t.TempDir(), "state.db")
	corruptStateFile(t, state)
	conf := func(mode string) string {
		return fmt.Sprintf(`state: {backend: bolt, path: %q, on_corrupt: %s}
checks:
  - name: quota
    options:
      quotas:
        - {name: per-sender, track: sender, period: 1h, messages: 5}
`, state, mode)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "chainmail.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: inet:%s\nmetrics: {listen: \"\"}\n%s", freePort(t), conf("refuse"))), 0o644)
	cmd := exec.Command(bin, "serve", "-c", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("serve on a corrupt state file: %v, want exit %d\n%s", err, exitUsage, stderr.String())
	}
	out := strings.TrimSpace(stderr.String())
	if strings.Contains(out, "\n") || strings.Contains(out, "goroutine") || !strings.Contains(out, state+" is corrupt") || !strings.Contains(out, "on_corrupt: reset") {
		t.Errorf("stderr is not one line naming the file and the way out:\n%s", out)
	}

	d := startDaemon(t, bin, conf("reset"))
	aside, _ := filepath.Glob(state + ".corrupt-*")
	if len(aside) != 1 {
		t.Errorf("files moved aside: %q", aside)
	}
	d.Stop()
	if !strings.Contains(d.stderr.String()+d.Log(), "starting with EMPTY state") {
		t.Errorf("reset not logged loudly:\n%s\n%s", d.stderr.String(), d.Log())
	}
}
