package milter_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"chainmail/milter"
	"chainmail/milter/miltertest"
)

// optneg is an MTA's option negotiation packet (protocol version 2).
func optneg() []byte {
	p := make([]byte, 4+13)
	binary.BigEndian.PutUint32(p, 13)
	p[4] = 'O'
	binary.BigEndian.PutUint32(p[5:], 2)
	binary.BigEndian.PutUint32(p[9:], 0x3f)
	binary.BigEndian.PutUint32(p[13:], 0)
	return p
}

// rawDial connects and, when negotiate is set, does the option
// negotiation, as an MTA does before going quiet.
func rawDial(t *testing.T, addr string, negotiate bool) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if negotiate {
		if _, err := c.Write(optneg()); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("no negotiation reply: %v", err)
		}
		if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint32(hdr))); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// closedByServer reports whether the server closes c (EOF or reset)
// within a generous bound; a hang is the failure.
func closedByServer(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(strings.ReplaceAll(format, "%", "")))
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// A connection that never sends its first packet, one that goes quiet
// between packets, and one that stops in the middle of a packet are each
// closed by their own timeout; the others are long, so only the one
// under test can close the connection.
func TestTimeoutsCloseStuckConnections(t *testing.T) {
	const short, long = 200 * time.Millisecond, time.Hour
	cases := []struct {
		name                   string
		connect, command, idle time.Duration
		negotiate              bool
		partial                []byte
		metric                 string
	}{
		{"connect", short, long, long, false, nil, "connect_timeout"},
		{"idle", long, long, short, true, nil, "idle_timeout"},
		// A packet that announces 100 bytes and sends 3.
		{"command", long, short, long, true, []byte{0, 0, 0, 100, 'C', 'x', 'y'}, "command_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			m := milter.NewMetrics(prometheus.NewRegistry())
			srv := miltertest.Start(t, newEngine(t, rec), func(o *milter.Options) {
				o.ConnectTimeout, o.CommandTimeout, o.IdleTimeout = tc.connect, tc.command, tc.idle
				o.Metrics = m
			})
			c := rawDial(t, srv.Addr, tc.negotiate)
			if tc.partial != nil {
				c.Write(tc.partial)
			}
			if err := closedByServer(c); err != nil {
				t.Fatalf("connection still open: %v", err)
			}
			if got := counterValue(m.Timeouts.WithLabelValues(tc.metric)); got != 1 {
				t.Errorf("%s count %v, want 1", tc.metric, got)
			}
			waitUntil(t, "session count back to 0", func() bool { return srv.Sessions() == 0 })
			// The server goes on serving.
			if out := srv.Send(t, clientEnv, "Subject: hi\r\n\r\nbody\r\n"); out.Action != "accept" {
				t.Errorf("after the timeout: %+v", out)
			}
		})
	}
}

// Connections beyond MaxConnections are closed at once, counted, and
// logged once; when one of the open ones ends, mail flows again.
func TestMaxConnectionsRefusesBeyond(t *testing.T) {
	rec := &recorder{}
	m := milter.NewMetrics(prometheus.NewRegistry())
	var logs logLines
	srv := miltertest.Start(t, newEngine(t, rec), func(o *milter.Options) {
		o.MaxConnections = 3
		o.Metrics = m
		o.Logf = logs.logf
	})
	var open []net.Conn
	for i := 0; i < 3; i++ {
		open = append(open, rawDial(t, srv.Addr, true))
	}
	for i := 0; i < 5; i++ {
		c := rawDial(t, srv.Addr, false)
		if err := closedByServer(c); err != nil {
			t.Fatalf("connection %d over the limit not closed: %v", 4+i, err)
		}
	}
	if got := counterValue(m.Refused); got != 5 {
		t.Errorf("refused %v, want 5", got)
	}
	if n := logs.count("refusing new ones"); n != 1 {
		t.Errorf("%d refusal lines, want 1 per minute", n)
	}
	if srv.Sessions() != 3 {
		t.Errorf("%d sessions, want 3", srv.Sessions())
	}
	open[0].Close()
	waitUntil(t, "a free slot", func() bool { return srv.Sessions() == 2 })
	if out := srv.Send(t, clientEnv, "Subject: hi\r\n\r\nbody\r\n"); out.Action != "accept" {
		t.Errorf("after a slot freed: %+v", out)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
