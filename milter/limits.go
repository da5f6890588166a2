package milter

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Connection limits. Any local user can connect to the milter socket, so
// a connection that sends nothing, or stops in the middle of a packet,
// must not hold a descriptor forever, the number of connections is
// bounded, and running out of descriptors must never end the accept loop
// (go-milter's Serve returns on the first Accept error, and chainmail
// would exit with it).

// Defaults, in line with Postfix's milter timeouts (see Options).
const (
	defaultConnectTimeout = 30 * time.Second
	defaultCommandTimeout = 30 * time.Second
	defaultIdleTimeout    = 330 * time.Second
	defaultMaxConnections = 1000

	// Accept errors back off from acceptBackoffMin, doubling, to
	// acceptBackoffMax, like net/http's Server.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// Refusals and accept errors are logged at most once per logEvery.
	logEvery = time.Minute
)

// everyLog logs a line at most once per interval, with the number of
// events since the last line.
type everyLog struct {
	mu       sync.Mutex
	last     time.Time
	repeated int
}

// ok reports whether to log now, and how many events went unlogged.
func (e *everyLog) ok(now time.Time) (bool, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.last.IsZero() && now.Sub(e.last) < logEvery {
		e.repeated++
		return false, 0
	}
	n := e.repeated
	e.last, e.repeated = now, 0
	return true, n
}

// accept is the wrapping listener's accept loop: connections beyond
// MaxConnections are closed at once; errors other than a closed listener
// (EMFILE, ENFILE, ENOBUFS, ECONNABORTED, …) are survived with back-off.
func (l *listener) accept() (net.Conn, error) {
	s := l.s
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.draining.Load() {
				return nil, err
			}
			if m := s.opts.Metrics; m != nil && m.AcceptErrors != nil {
				m.AcceptErrors.Inc()
			}
			if delay == 0 {
				delay = acceptBackoffMin
			} else if delay *= 2; delay > acceptBackoffMax {
				delay = acceptBackoffMax
			}
			if ok, n := s.acceptLog.ok(time.Now()); ok {
				s.logf("milter: accept: %v; retrying in %v (%d more accept errors since the last line)", err, delay, n)
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.mu.Lock()
		full := len(s.sessions) >= s.opts.MaxConnections
		s.mu.Unlock()
		if full {
			c.Close()
			if m := s.opts.Metrics; m != nil && m.Refused != nil {
				m.Refused.Inc()
			}
			if ok, n := s.refuseLog.ok(time.Now()); ok {
				s.logf("milter: %d connections open (milter.max_connections): refusing new ones (%d more refused since the last line)", s.opts.MaxConnections, n)
			}
			continue
		}
		return c, nil
	}
}

// inbound tracks the packet framing of what go-milter has read, to know
// which read timeout applies.
type inbound struct {
	packets uint64 // complete packets read
	hdr     int    // length bytes of the current packet seen
	remain  uint32 // payload bytes of the current packet still to come
	lenBuf  [4]byte
}

func (in *inbound) consumed(b []byte) {
	for len(b) > 0 {
		if in.hdr < 4 {
			in.lenBuf[in.hdr] = b[0]
			in.hdr++
			b = b[1:]
			if in.hdr == 4 {
				in.remain = binary.BigEndian.Uint32(in.lenBuf[:])
				if in.remain == 0 {
					in.hdr = 0
					in.packets++
				}
			}
			continue
		}
		k := uint32(len(b))
		if k > in.remain {
			k = in.remain
		}
		in.remain -= k
		b = b[k:]
		if in.remain == 0 {
			in.hdr = 0
			in.packets++
		}
	}
}

// readTimeout is the timeout for the next read from the MTA and its name.
func (c *conn) readTimeout() (time.Time, string) {
	o := &c.sess.srv.opts
	switch {
	case c.in.packets == 0 && c.in.hdr == 0:
		return c.accepted.Add(o.ConnectTimeout), "connect_timeout"
	case c.in.hdr > 0:
		// The packet as a whole, not each read: a byte now and then
		// must not keep a packet coming for ever.
		return c.packetStart.Add(o.CommandTimeout), "command_timeout"
	}
	return time.Now().Add(o.IdleTimeout), "idle_timeout"
}

// writeDeadline is the deadline for a write to the MTA: every write that
// answers one packet (the end of message brings a modification per
// header removed or added, then the reply) shares one command_timeout,
// so an MTA side that reads a trickle at a time cannot keep a reply, and
// the message's evaluation, going for ever.
func (c *conn) writeDeadline() time.Time {
	if c.writeBy.IsZero() || c.writeFor != c.in.packets {
		c.writeFor = c.in.packets
		c.writeBy = time.Now().Add(c.sess.srv.opts.CommandTimeout)
	}
	return c.writeBy
}

// timedOut logs a read or write that ran out of time, once per connection.
func (c *conn) timedOut(err error, which string) {
	if !errors.Is(err, os.ErrDeadlineExceeded) || !c.timeoutLogged.CompareAndSwap(false, true) {
		return
	}
	s := c.sess.srv
	if m := s.opts.Metrics; m != nil && m.Timeouts != nil {
		m.Timeouts.WithLabelValues(which).Inc()
	}
	s.logf("milter: session %d: %s reached, closing the connection", c.sess.id, which)
}
