// Package checktest holds helpers shared by chainmail's tests.
package checktest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// CorpusEnv names the environment variable that overrides where the
// shared public test corpus lives.
const CorpusEnv = "CHAINMAIL_CORPUS"

// CorpusRoot returns the directory of the shared corpus: $CHAINMAIL_CORPUS,
// else ../shared/corpus beside the repository root. It returns "" when
// neither exists.
func CorpusRoot() string {
	if d := os.Getenv(CorpusEnv); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	// file is <root>/checks/checktest/corpus.go
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	d := filepath.Join(root, "..", "shared", "corpus")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	return ""
}

// Corpus returns the path of one corpus folder (e.g. "openspf-rfc7208-tests").
// When the folder is absent the test is skipped with a loud message; CI
// always has it.
func Corpus(t testing.TB, name string) string {
	t.Helper()
	root := CorpusRoot()
	d := filepath.Join(root, name)
	if root == "" {
		d = name
	}
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		t.Skipf("!!! SKIPPING CONFORMANCE TEST: corpus folder %q not found (set %s to the shared corpus directory) !!!", d, CorpusEnv)
	}
	return d
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}
