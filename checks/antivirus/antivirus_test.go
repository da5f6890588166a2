package antivirus

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
)

// testStrings decodes the EICAR files of the shared corpus (kept base64 so
// that no file in the repository or the corpus is itself a test virus).
func testStrings(t *testing.T) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(checktest.Corpus(t, "generated-test-strings"), "av-and-spam-test-strings.json"))
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

// clamd is a clamd process started by a test on a unix socket in a
// temporary directory, with a one-line signature database written by the
// test (the MD5 of the EICAR file: no download, no freshclam).
type clamd struct {
	Socket string
	cmd    *exec.Cmd
	log    string
}

func startClamd(t *testing.T, eicar []byte, extra string) *clamd {
	t.Helper()
	bin, err := exec.LookPath("clamd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/clamd"); err2 == nil {
			bin = "/usr/sbin/clamd"
		} else {
			t.Skip("!!! SKIPPING CLAMD TEST: clamd not installed (apt-get install clamav-daemon) !!!")
		}
	}
	dir, err := os.MkdirTemp("", "clamd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	db := filepath.Join(dir, "db")
	os.Mkdir(db, 0o755)
	sum := md5.Sum(eicar)
	sig := fmt.Sprintf("%s:%d:Chainmail.Test.EICAR\n", hex.EncodeToString(sum[:]), len(eicar))
	if err := os.WriteFile(filepath.Join(db, "chainmail-test.hdb"), []byte(sig), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &clamd{Socket: filepath.Join(dir, "clamd.sock"), log: filepath.Join(dir, "clamd.log")}
	conf := fmt.Sprintf(`LocalSocket %s
DatabaseDirectory %s
TemporaryDirectory %s
LogFile %s
PidFile %s
Foreground yes
MaxThreads 2
Bytecode no
ScanMail yes
ScanArchive yes
%s`, c.Socket, db, dir, c.log, filepath.Join(dir, "clamd.pid"), extra)
	cf := filepath.Join(dir, "clamd.conf")
	os.WriteFile(cf, []byte(conf), 0o644)
	c.cmd = exec.Command(bin, "--config-file="+cf)
	var out bytes.Buffer
	c.cmd.Stdout, c.cmd.Stderr = &out, &out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("clamd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-exited
	})
	chk, _ := New(Config{Address: "unix:" + c.Socket, Timeout: Duration(2 * time.Second)})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			logb, _ := os.ReadFile(c.log)
			t.Fatalf("clamd exited: %v\n%s\n%s", err, out.String(), logb)
		default:
		}
		if chk.Ping(context.Background()) == nil {
			return c
		}
		if time.Now().After(deadline) {
			logb, _ := os.ReadFile(c.log)
			t.Fatalf("clamd did not answer PING within 60s\n%s\n%s", out.String(), logb)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mail builds a message with one base64 attachment.
func mail(name string, data []byte) *checks.Message {
	var b bytes.Buffer
	b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n")
	fmt.Fprintf(&b, "Content-Type: application/octet-stream; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", name, name)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b--\r\n")
	body := checks.NewSpool(0, "")
	body.Write(b.Bytes())
	return &checks.Message{
		Envelope: checks.Envelope{ClientIP: net.ParseIP("192.0.2.7"), QueueID: "4AvTest01", MailFrom: "a@example.net", Rcpts: []string{"b@example.org"}},
		Header: []checks.HeaderField{
			{Name: "From", Value: "a@example.net"}, {Name: "To", Value: "b@example.org"}, {Name: "Subject", Value: "test"},
			{Name: "MIME-Version", Value: "1.0"}, {Name: "Content-Type", Value: `multipart/mixed; boundary="b"`},
		},
		Body: body,
	}
}

// A real clamd (Debian's clamav-daemon) finds EICAR in a plain attachment
// and in a zip inside a zip; a clean message is clean; clamd's own size
// refusal is a temperror, never clean.
func TestClamd(t *testing.T) {
	ts := testStrings(t)
	cd := startClamd(t, ts["eicar.com"], "StreamMaxLength 1M\n")
	chk, err := New(Config{Address: "unix:" + cd.Socket, Timeout: Duration(20 * time.Second), MaxSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct{ name, file string }{
		{"plain attachment", "eicar.com"},
		{"zip in a zip", "eicar_com_zip.zip"},
	} {
		r := chk.Check(ctx, mail(c.file, ts[c.file]), nil)
		if r.Status != checks.StatusInfected || !strings.Contains(r.Reason, "Chainmail.Test.EICAR") {
			t.Errorf("%s: %s %q %v", c.name, r.Status, r.Reason, r.Err)
			continue
		}
		if len(r.Events) != 1 || r.Events[0].Line != "Infected message 4AvTest01 came from 192.0.2.7" || r.Events[0].Name != "infected" {
			t.Errorf("%s: events %+v", c.name, r.Events)
		}
		if !strings.HasPrefix(r.Facts["virus"].(string), "Chainmail.Test.EICAR") || len(r.Symbols) != 1 || r.Symbols[0].Name != Symbol {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
	if r := chk.Check(ctx, mail("notes.txt", []byte("nothing to see\n")), nil); r.Status != checks.StatusClean {
		t.Errorf("clean message: %s %q", r.Status, r.Reason)
	}
	big := bytes.Repeat([]byte("abcdefgh"), 300<<10) // 2.4 MB, over clamd's 1M
	r := chk.Check(ctx, mail("big.bin", big), nil)
	if r.Status != checks.StatusTemperror || !errors.Is(r.Err, ErrUnavailable) {
		t.Errorf("over clamd's StreamMaxLength: %s %q", r.Status, r.Reason)
	}
}

// clamd down, or accepting and never answering: temperror within the
// timeout, never clean.
func TestClamdDownOrSlow(t *testing.T) {
	dir := t.TempDir()
	chk, _ := New(Config{Address: "unix:" + filepath.Join(dir, "nothing.sock"), Timeout: Duration(time.Second)})
	m := mail("a.txt", []byte("x"))
	if r := chk.Check(context.Background(), m, nil); r.Status != checks.StatusTemperror || !errors.Is(r.Err, ErrUnavailable) {
		t.Errorf("down: %s %q", r.Status, r.Reason)
	}
	// A server that reads everything and never answers.
	sock := filepath.Join(dir, "slow.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).WriteTo(discard{})
			}()
		}
	}()
	chk, _ = New(Config{Address: "unix:" + sock, Timeout: Duration(500 * time.Millisecond)})
	start := time.Now()
	r := chk.Check(context.Background(), m, nil)
	if r.Status != checks.StatusTemperror || time.Since(start) > 3*time.Second {
		t.Errorf("slow: %s %q after %v", r.Status, r.Reason, time.Since(start))
	}
	// A server that answers nonsense.
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l2.Close()
	go func() {
		c, err := l2.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("what?\x00"))
		c.Close()
	}()
	chk, _ = New(Config{Address: "tcp:" + l2.Addr().String(), Timeout: Duration(time.Second)})
	if r := chk.Check(context.Background(), m, nil); r.Status != checks.StatusTemperror {
		t.Errorf("nonsense: %s %q", r.Status, r.Reason)
	}
	// Too big to send: unscannable, not sent.
	chk, _ = New(Config{Address: "unix:" + sock, MaxSize: 100})
	if r := chk.Check(context.Background(), m, nil); r.Status != StatusUnscannable || !strings.HasPrefix(r.Reason, "too big for clamd") {
		t.Errorf("too big: %s %q", r.Status, r.Reason)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{
		"unix:/run/clamd.ctl": "unix /run/clamd.ctl", "/run/c.sock": "unix /run/c.sock",
		"tcp:127.0.0.1:3310": "tcp 127.0.0.1:3310", "inet:localhost:3310": "tcp localhost:3310",
	} {
		n, a, err := ParseAddress(in)
		if err != nil || n+" "+a != want {
			t.Errorf("%s: %s %s %v", in, n, a, err)
		}
	}
	for _, bad := range []string{"", "clamd", "tcp:nohost"} {
		if _, _, err := ParseAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
