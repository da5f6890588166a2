package verdictlog

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// listenUnixgram starts a datagram socket standing in for /dev/log.
func listenUnixgram(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readDatagram reads one datagram with a deadline.
func readDatagram(t *testing.T, c net.PacketConn) string {
	t.Helper()
	buf := make([]byte, 64*1024)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("reading syslog datagram: %v", err)
	}
	return string(buf[:n])
}

func syslogLogger(t *testing.T, cfg Config) *Logger {
	t.Helper()
	return newTestLogger(t, cfg, &bytes.Buffer{})
}

func TestSyslogUnixgram(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	srv := listenUnixgram(t, sock)
	l := syslogLogger(t, Config{Tag: "MailScanner", Sinks: []SinkConfig{{Type: "syslog", Address: "unix:" + sock}}})

	logEvent(l, "4XyZ", Infected("4XyZ", "192.0.2.7", "", ""))
	if got, want := readDatagram(t, srv), "<22>Mar  5 09:07:03 MailScanner[4242]: Infected message 4XyZ came from 192.0.2.7"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	l.Errorf("store unreachable")
	if got, want := readDatagram(t, srv), "<19>Mar  5 09:07:03 MailScanner[4242]: store unreachable"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestSyslogFacilityAndJSON(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	srv := listenUnixgram(t, sock)
	l := syslogLogger(t, Config{Format: "json", Sinks: []SinkConfig{{Type: "syslog", Address: "unix:" + sock, Facility: "local3"}}})
	l.Printf("ready")
	want := `<158>Mar  5 09:07:03 chainmail[4242]: {"time":"2024-03-05T09:07:03.123456789Z","host":"mx1","tag":"chainmail","pid":4242,"event":"log","line":"ready","level":"info"}`
	if got := readDatagram(t, srv); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSyslogUnixStream: a SOCK_STREAM /dev/log is used when datagrams are
// refused, with LF framing.
func TestSyslogUnixStream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 2)
	go acceptLines(ln, got)
	l := syslogLogger(t, Config{Sinks: []SinkConfig{{Type: "syslog", Address: "unix:" + sock}}})
	logEvent(l, "S1", Infected("S1", "192.0.2.1", "", ""))
	logEvent(l, "S2", Infected("S2", "192.0.2.2", "", ""))
	for _, want := range []string{
		"<22>Mar  5 09:07:03 chainmail[4242]: Infected message S1 came from 192.0.2.1",
		"<22>Mar  5 09:07:03 chainmail[4242]: Infected message S2 came from 192.0.2.2",
	} {
		if line := receive(t, got); line != want {
			t.Errorf("got  %q\nwant %q", line, want)
		}
	}
}

func TestSyslogUDP(t *testing.T) {
	srv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	l := syslogLogger(t, Config{Sinks: []SinkConfig{{Type: "syslog", Address: "udp:" + srv.LocalAddr().String(), Facility: "mail"}}})
	logEvent(l, "U1", Filename("U1", FileHit{Filename: "x.exe", Text: "Executable"}))
	if got, want := readDatagram(t, srv), "<22>Mar  5 09:07:03 mx1 chainmail[4242]: Filename Checks: Executable (U1 x.exe)"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// acceptLines accepts connections one after the other and sends every
// LF-terminated line it reads.
func acceptLines(ln net.Listener, out chan<- string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			out <- sc.Text()
		}
		c.Close()
	}
}

func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no syslog line received")
		return ""
	}
}

func TestSyslogTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 8)
	go acceptLines(ln, got)
	l := syslogLogger(t, Config{Tag: "MailScanner", Sinks: []SinkConfig{{Type: "syslog", Address: "tcp:" + ln.Addr().String(), Facility: "daemon"}}})
	m := msg("T1", "192.0.2.7", "a@b.example", []string{"c@d.example"}, "Hi")
	lines := l.Message(m, nil)
	for _, line := range lines {
		if g, want := receive(t, got), "<30>Mar  5 09:07:03 mx1 MailScanner[4242]: "+line; g != want {
			t.Errorf("got  %q\nwant %q", g, want)
		}
	}
}

// TestSyslogReconnect: when syslogd restarts (a new socket at the same
// path), the sink reconnects; while it is gone lines are dropped and
// counted, without waiting.
func TestSyslogReconnect(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	srv := listenUnixgram(t, sock)
	l := syslogLogger(t, Config{Sinks: []SinkConfig{{Type: "syslog", Address: "unix:" + sock}}})
	l.Printf("one")
	if got := readDatagram(t, srv); got != "<22>Mar  5 09:07:03 chainmail[4242]: one" {
		t.Fatalf("got %q", got)
	}

	// syslogd goes away.
	srv.Close()
	os.Remove(sock)
	start := time.Now()
	l.Printf("lost")
	l.Printf("lost too")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("writing to a dead syslog took %v", d)
	}
	if got := l.Dropped(); got != 2 {
		t.Errorf("Dropped = %d, want 2", got)
	}

	// syslogd is back; after the retry interval lines flow again.
	srv2 := listenUnixgram(t, sock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.Printf("back")
		_ = srv2.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 1024)
		n, _, err := srv2.ReadFrom(buf)
		if err == nil {
			if got := string(buf[:n]); got != "<22>Mar  5 09:07:03 chainmail[4242]: back" {
				t.Errorf("got %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sink did not reconnect")
		}
	}
}
