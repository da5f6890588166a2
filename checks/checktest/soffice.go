package checktest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Soffice returns the path of LibreOffice's soffice (Debian packages
// libreoffice-writer-nogui, -calc-nogui, -impress-nogui), the real
// application that proves a disarmed document still opens. Without it the
// test is skipped loudly, or fails when the CI variable is set.
func Soffice(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("soffice")
	if err == nil {
		return bin
	}
	for _, p := range []string{"/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice"} {
		if _, serr := os.Stat(p); serr == nil {
			return p
		}
	}
	msg := fmt.Sprintf("LibreOffice is not installed (%v); apt-get install libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui", err)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skipf("!!! SKIPPING %s: %s !!!", t.Name(), msg)
	return ""
}

// SofficeConvert runs one headless LibreOffice over inputs (paths) with
// the --convert-to filter, writing into outDir, with a private profile
// and a timeout. soffice exits 0 even when an input could not be opened:
// the caller looks for each output; an error is soffice itself failing.
// It may run on another goroutine than the test's.
func SofficeConvert(t testing.TB, soffice, filter, outDir string, inputs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	profile := "file://" + filepath.Join(t.TempDir(), "profile")
	args := append([]string{"--headless", "--norestore", "-env:UserInstallation=" + profile, "--convert-to", filter, "--outdir", outDir}, inputs...)
	cmd := exec.CommandContext(ctx, soffice, args...)
	cmd.WaitDelay = 5 * time.Second
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("soffice: timed out: %s", log.String())
	}
	if err != nil {
		return fmt.Errorf("soffice: %v: %s", err, log.String())
	}
	return nil
}

// WriterText opens one word-processing document (name gives LibreOffice
// its type) and returns its text, "" when LibreOffice could not open it.
func WriterText(t testing.TB, soffice, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, name)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := SofficeConvert(t, soffice, "txt:Text (encoded):UTF8", out, in); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(out, strings.TrimSuffix(name, filepath.Ext(name))+".txt"))
	return string(b)
}
