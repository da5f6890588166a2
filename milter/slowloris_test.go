package milter_test

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chainmail/checks"
	"chainmail/milter"
	"chainmail/milter/miltertest"
)

// A client that dribbles a packet one byte at a time, each byte well
// inside command_timeout, is closed once the packet as a whole has taken
// longer than command_timeout (as Postfix's milter_command_timeout bounds
// a whole command): a byte now and then must not hold a connection, a
// descriptor and a session for ever.
func TestCommandTimeoutBoundsADribbledPacket(t *testing.T) {
	const command = 500 * time.Millisecond
	m := milter.NewMetrics(prometheus.NewRegistry())
	srv := miltertest.Start(t, newEngine(t, &recorder{}), func(o *milter.Options) {
		o.ConnectTimeout, o.CommandTimeout, o.IdleTimeout = time.Hour, command, time.Hour
		o.Metrics = m
	})
	c := rawDial(t, srv.Addr, true)
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(closed)
	}()
	// A connect packet announcing 200 bytes; 150 are sent, one every
	// 50 ms (7.5 s, 15 times command_timeout).
	if _, err := c.Write([]byte{0, 0, 0, 200, 'C'}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ {
		select {
		case <-closed:
			if got := counterValue(m.Timeouts.WithLabelValues("command_timeout")); got != 1 {
				t.Errorf("command_timeout count %v, want 1", got)
			}
			waitUntil(t, "session count back to 0", func() bool { return srv.Sessions() == 0 })
			return
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := c.Write([]byte{'x'}); err != nil {
			return // closed by the server
		}
	}
	t.Fatalf("connection still open after a packet dribbled over %d× command_timeout", 15)
}

// packet frames a milter command.
func packet(code byte, data ...string) []byte {
	body := []byte{code}
	for _, d := range data {
		body = append(body, d...)
	}
	p := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(p, uint32(len(body)))
	return append(p, body...)
}

func readPacket(t *testing.T, c net.Conn) (byte, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, p); err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	return p[0], p[1:]
}

// An MTA side that reads the end-of-message reply a trickle at a time,
// each write of the milter going through well inside command_timeout,
// is cut off once the reply as a whole has taken longer than
// command_timeout: a message whose reply is never read to its end must
// not hold its connection, its session and its evaluation for ever.
func TestCommandTimeoutBoundsATrickledReply(t *testing.T) {
	const command = 500 * time.Millisecond
	m := milter.NewMetrics(prometheus.NewRegistry())
	srv := milter.NewServer(milter.Options{
		Engine:         func() *checks.Engine { return newEngine(t, &recorder{}) },
		Logf:           t.Logf,
		ConnectTimeout: time.Hour, CommandTimeout: command, IdleTimeout: time.Hour,
		Metrics: m,
	})
	// A unix socket: fixed buffers, so the reply cannot all sit in them.
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "m.sock"))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(t.Context()) })
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.UnixConn).SetReadBuffer(4096)

	send := func(p []byte) {
		t.Helper()
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	send(optneg())
	readPacket(t, c)
	port := []byte{0x9c, 0x40}
	send(packet('C', "mail.example.com\x004", string(port), "192.0.2.10\x00"))
	readPacket(t, c)
	send(packet('H', "mail.example.com\x00"))
	readPacket(t, c)
	send(packet('M', "<alice@example.com>\x00"))
	readPacket(t, c)
	send(packet('R', "<bob@example.org>\x00"))
	readPacket(t, c)
	// 40 000 forged verdict fields: 40 000 removals in the reply.
	send(packet('L', "Subject\x00hello\x00"))
	readPacket(t, c)
	forged := packet('L', "X-Chainmail-Verdict\x00accept\x00")
	for i := 0; i < 40000; i++ {
		send(forged)
		readPacket(t, c)
	}
	send(packet('N'))
	readPacket(t, c)
	send(packet('B', "Hello.\r\n"))
	readPacket(t, c)
	send(packet('E'))

	// Read 512 bytes every 10 ms: every write of the reply goes through
	// well inside command_timeout, the whole reply (about 1.2 MB) would
	// take about half a minute.
	start := time.Now()
	buf := make([]byte, 512)
	var got strings.Builder
	for {
		time.Sleep(10 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break // closed by the server
		}
		if time.Since(start) > 20*command {
			t.Fatalf("reply still being written after %v (command_timeout %v), %d bytes read", time.Since(start), command, got.Len())
		}
	}
	if got := counterValue(m.Timeouts.WithLabelValues("command_timeout")); got != 1 {
		t.Errorf("command_timeout count %v, want 1", got)
	}
	waitUntil(t, "session count back to 0", func() bool { return srv.Sessions() == 0 })
}
