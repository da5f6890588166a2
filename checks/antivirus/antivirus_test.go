package antivirus

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
)

// mail builds a message with one base64 attachment.
func mail(name string, data []byte) *checks.Message {
	var b bytes.Buffer
	b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n")
	fmt.Fprintf(&b, "Content-Type: application/octet-stream; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", name, name)
	b.WriteString(checktest.Base64Lines(data) + "--b--\r\n")
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
	ts := checktest.TestStrings(t)
	sock := checktest.StartClamd(t, ts["eicar.com"], "StreamMaxLength 1M")
	chk, err := New(Config{Address: "unix:" + sock, Timeout: checks.Duration(20 * time.Second), StreamMaxLength: 8 << 20})
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
	chk, _ := New(Config{Address: "unix:" + filepath.Join(dir, "nothing.sock"), Timeout: checks.Duration(time.Second)})
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
	chk, _ = New(Config{Address: "unix:" + sock, Timeout: checks.Duration(500 * time.Millisecond)})
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
	chk, _ = New(Config{Address: "tcp:" + l2.Addr().String(), Timeout: checks.Duration(time.Second)})
	if r := chk.Check(context.Background(), m, nil); r.Status != checks.StatusTemperror {
		t.Errorf("nonsense: %s %q", r.Status, r.Reason)
	}
	// Too big to send: unscannable, not sent.
	chk, _ = New(Config{Address: "unix:" + sock, StreamMaxLength: 100})
	if r := chk.Check(context.Background(), m, nil); r.Status != StatusUnscannable || !strings.HasPrefix(r.Reason, "too big for clamd") {
		t.Errorf("too big: %s %q", r.Status, r.Reason)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
