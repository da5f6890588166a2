package checktest

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestStrings decodes the test files of the shared corpus by name
// ("eicar.com", "eicar_com.zip", …), checking the MD5 where the corpus
// gives one. They are kept base64 there so that no file in the repository
// or the corpus is itself a test virus.
func TestStrings(t testing.TB) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(Corpus(t, "generated-test-strings"), "av-and-spam-test-strings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for k, rm := range m {
		var v struct {
			Base64 string `json:"base64"`
			MD5    string `json:"md5"`
		}
		if json.Unmarshal(rm, &v) != nil {
			continue // the note
		}
		if v.Base64 == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(v.Base64)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if v.MD5 != "" {
			if sum := md5.Sum(b); hex.EncodeToString(sum[:]) != v.MD5 {
				t.Fatalf("%s: md5 mismatch", k)
			}
		}
		out[k] = b
	}
	return out
}

// EICAR returns the EICAR test file of the shared corpus (TestStrings).
func EICAR(t testing.TB) []byte {
	t.Helper()
	b := TestStrings(t)["eicar.com"]
	if len(b) == 0 {
		t.Fatal("eicar.com: not in the corpus")
	}
	return b
}

// StartClamd runs clamd on a unix socket in a temporary directory with a
// one-line signature database matching sample (its MD5: no download, no
// freshclam) and returns the socket path. Each of extraConf is added to
// clamd.conf as a line of its own ("StreamMaxLength 1M"). The test is
// skipped when clamd is not installed.
func StartClamd(t testing.TB, sample []byte, extraConf ...string) string {
	t.Helper()
	bin, err := exec.LookPath("clamd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/clamd"); err2 != nil {
			t.Skip("!!! SKIPPING CLAMD TEST: clamd not installed (apt-get install clamav-daemon) !!!")
		}
		bin = "/usr/sbin/clamd"
	}
	dir, err := os.MkdirTemp("", "clamd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "db")
	os.Mkdir(db, 0o755)
	sum := md5.Sum(sample)
	sig := fmt.Sprintf("%s:%d:Chainmail.Test.EICAR\n", hex.EncodeToString(sum[:]), len(sample))
	if err := os.WriteFile(filepath.Join(db, "chainmail-test.hdb"), []byte(sig), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "clamd.sock")
	logFile := filepath.Join(dir, "clamd.log")
	conf := fmt.Sprintf("LocalSocket %s\nDatabaseDirectory %s\nTemporaryDirectory %s\nLogFile %s\nPidFile %s\nForeground yes\nMaxThreads 2\nBytecode no\nScanMail yes\nScanArchive yes\n",
		sock, db, dir, logFile, filepath.Join(dir, "clamd.pid"))
	for _, line := range extraConf {
		conf += line + "\n"
	}
	cf := filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+cf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("clamd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			logb, _ := os.ReadFile(logFile)
			t.Fatalf("clamd exited: %v\n%s\n%s", err, out.String(), logb)
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Write([]byte("zPING\x00"))
			buf := make([]byte, 8)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if string(bytes.TrimRight(buf[:n], "\x00\n")) == "PONG" {
				return sock
			}
		}
		if time.Now().After(deadline) {
			logb, _ := os.ReadFile(logFile)
			t.Fatalf("clamd did not answer PING within 60s\n%s\n%s", out.String(), logb)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
