package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if v, err := ReadToken(write("good", "  0123456789abcdef\n")); err != nil || string(v) != "0123456789abcdef" {
		t.Errorf("16 characters with white space around: %q %v", v, err)
	}
	if _, err := ReadToken(write("short", "0123456789abcde\n")); err == nil || !strings.Contains(err.Error(), "at least 16 characters") {
		t.Errorf("15 characters: %v", err)
	}
	if _, err := ReadToken(write("empty", "\n")); err == nil {
		t.Error("an empty token was taken")
	}
	if _, err := ReadToken(filepath.Join(dir, "absent")); err == nil {
		t.Error("a missing file was taken")
	}
}
