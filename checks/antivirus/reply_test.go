package antivirus

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"chainmail/checks"
)

// A reply cut short (no NUL terminator), or one that is not about the
// stream, is not a clean verdict.
func TestTruncatedOrOddReplyNotClean(t *testing.T) {
	for _, reply := range []string{"stream: OK", "OK\x00"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Read the whole stream (up to the zero-length chunk).
			br := bufio.NewReader(c)
			br.ReadString(0)
			for {
				var n [4]byte
				if _, err := io.ReadFull(br, n[:]); err != nil {
					break
				}
				k := int(n[0])<<24 | int(n[1])<<16 | int(n[2])<<8 | int(n[3])
				if k == 0 {
					break
				}
				io.CopyN(io.Discard, br, int64(k))
			}
			c.Write([]byte(reply))
			c.Close()
		}()
		chk, _ := New(Config{Address: "tcp:" + l.Addr().String(), Timeout: checks.Duration(time.Second)})
		r := chk.Check(context.Background(), mail("a.txt", []byte("x")), nil)
		if r.Status != checks.StatusTemperror {
			t.Errorf("reply %q: %s %q", reply, r.Status, r.Reason)
		}
		l.Close()
	}
}
