package checktest

import (
	"net"
	"testing"
)

// NotifySocket listens on addr (a path, or "@name" for Linux's abstract
// namespace) as systemd's notification socket does: every datagram sent
// to it (READY=1, STATUS=…) arrives on the channel, which is closed when
// the test ends.
func NotifySocket(t testing.TB, addr string) <-chan string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}
