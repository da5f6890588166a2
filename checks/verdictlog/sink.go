package verdictlog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Syslog severities (RFC 3164 §4.1.1, table 2) the logger uses.
const (
	sevErr  = 3
	sevInfo = 6
)

// facilities are the RFC 3164 §4.1.1 facility codes by their usual names.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// DefaultSyslogAddress is the local syslog socket.
const DefaultSyslogAddress = "unix:/dev/log"

// writeTimeout bounds one write to a syslog connection, and
// retryInterval is how long a syslog sink that could not reconnect drops
// lines before it tries again: a dead syslog daemon must never hold mail.
const (
	writeTimeout  = time.Second
	retryInterval = time.Second
)

// record is one formatted event on its way to the sinks: msg is the bare
// text line or, in the JSON format, the JSON object.
type record struct {
	t   time.Time
	sev int
	msg string
	tag string // the event family's own tag (Config.Tags); "" for the sink's
}

// sink is one destination. write sends a batch of records (the lines of
// one event or one message, kept together) and returns how many it had to
// drop.
type sink interface {
	write(recs []record) (dropped int)
	reopen() error
	close() error
}

// framer formats a record the way syslogd would have written it to
// /var/log/mail.log, for the stderr and file sinks. In the JSON format the
// object stands alone on its line.
type framer struct {
	host string
	tag  string
	pid  int
	json bool
}

func (f framer) appendLine(b []byte, r record) []byte {
	if !f.json {
		b = r.t.AppendFormat(b, time.Stamp)
		b = append(b, ' ')
		b = append(b, f.host...)
		b = append(b, ' ')
		if r.tag != "" {
			b = append(b, r.tag...)
		} else {
			b = append(b, f.tag...)
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(f.pid), 10)
		b = append(b, "]: "...)
	}
	b = append(b, r.msg...)
	return append(b, '\n')
}

// writerSink writes framed lines to an io.Writer (stderr), one Write call
// per batch.
type writerSink struct {
	framer
	mu sync.Mutex
	w  io.Writer
}

func (s *writerSink) write(recs []record) int {
	var b []byte
	for _, r := range recs {
		b = s.appendLine(b, r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(b); err != nil {
		return len(recs)
	}
	return 0
}

func (s *writerSink) reopen() error { return nil }
func (s *writerSink) close() error  { return nil }

// fileSink appends framed lines to a file. The file is opened O_APPEND, so
// each batch lands whole even when another process appends too, and
// reopen starts a new file after logrotate moved the old one away.
type fileSink struct {
	framer
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLogFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

func (s *fileSink) write(recs []record) int {
	var b []byte
	for _, r := range recs {
		b = s.appendLine(b, r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return len(recs)
	}
	if _, err := s.f.Write(b); err != nil {
		return len(recs)
	}
	return 0
}

func (s *fileSink) reopen() error {
	f, err := openLogFile(s.path)
	if err != nil {
		return fmt.Errorf("verdictlog: reopen %s: %w", s.path, err)
	}
	s.mu.Lock()
	old := s.f
	s.f = f
	s.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

func (s *fileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// syslogSink sends RFC 3164 messages to a syslog daemon:
//
//	local socket: <PRI>Mmm dd hh:mm:ss TAG[PID]: MSG
//	udp, tcp:     <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
//
// The local daemon adds the hostname itself (as log/syslog relies on too);
// over the network RFC 3164 §4.1.2 wants it in the HEADER. Stream
// connections (tcp, a SOCK_STREAM /dev/log) end each message with LF, the
// non-transparent framing of RFC 6587 §3.4.2.
type syslogSink struct {
	network  string // "unix", "udp" or "tcp"
	addr     string
	facility int
	host     string
	tag      string
	pid      int

	mu      sync.Mutex
	conn    net.Conn
	stream  bool
	retryAt time.Time // no reconnect attempts before this (wall clock)
	closed  bool
}

// parseSyslogAddress splits "unix:/dev/log", "udp:HOST:PORT" or
// "tcp:HOST:PORT".
func parseSyslogAddress(a string) (network, addr string, err error) {
	if a == "" {
		a = DefaultSyslogAddress
	}
	network, addr, ok := strings.Cut(a, ":")
	if !ok {
		return "", "", fmt.Errorf("address %q: want unix:PATH, udp:HOST:PORT or tcp:HOST:PORT", a)
	}
	switch network {
	case "unix":
		if addr == "" {
			return "", "", fmt.Errorf("address %q: empty socket path", a)
		}
	case "udp", "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", "", fmt.Errorf("address %q: %v", a, err)
		}
		if host == "" || port == "" {
			return "", "", fmt.Errorf("address %q: want %s:HOST:PORT", a, network)
		}
	default:
		return "", "", fmt.Errorf("address %q: unknown network %q (want unix, udp or tcp)", a, network)
	}
	return network, addr, nil
}

// dial connects; for a local socket it tries datagram first, as syslogd's
// /dev/log usually is, then stream. Called with mu held (or before the
// sink is shared).
func (s *syslogSink) dial() error {
	if s.network == "unix" {
		c, err := net.DialTimeout("unixgram", s.addr, writeTimeout)
		if err == nil {
			s.conn, s.stream = c, false
			return nil
		}
		c, err2 := net.DialTimeout("unix", s.addr, writeTimeout)
		if err2 == nil {
			s.conn, s.stream = c, true
			return nil
		}
		return fmt.Errorf("dial %s: %w", s.addr, errors.Join(err, err2))
	}
	c, err := net.DialTimeout(s.network, s.addr, writeTimeout)
	if err != nil {
		return fmt.Errorf("dial %s %s: %w", s.network, s.addr, err)
	}
	s.conn, s.stream = c, s.network == "tcp"
	return nil
}

func (s *syslogSink) frame(b []byte, r record) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(s.facility*8+r.sev), 10)
	b = append(b, '>')
	b = r.t.AppendFormat(b, time.Stamp)
	b = append(b, ' ')
	if s.network != "unix" {
		b = append(b, s.host...)
		b = append(b, ' ')
	}
	if r.tag != "" {
		b = append(b, r.tag...)
	} else {
		b = append(b, s.tag...)
	}
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(s.pid), 10)
	b = append(b, "]: "...)
	b = append(b, r.msg...)
	if s.stream {
		b = append(b, '\n')
	}
	return b
}

// write sends each record as its own syslog message. A failed write closes
// the connection and is retried once on a fresh one; when that fails too
// the line is dropped and the sink drops lines without trying for
// retryInterval, so a dead daemon costs at most a few seconds once, not a
// second per message.
func (s *syslogSink) write(recs []record) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped := 0
	var buf []byte
	for _, r := range recs {
		ok := false
		for attempt := 0; attempt < 2 && !ok; attempt++ {
			if s.conn == nil {
				if s.closed || time.Now().Before(s.retryAt) {
					break
				}
				if err := s.dial(); err != nil {
					s.retryAt = time.Now().Add(retryInterval)
					break
				}
			}
			buf = s.frame(buf[:0], r)
			_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := s.conn.Write(buf); err != nil {
				s.conn.Close()
				s.conn = nil
				continue
			}
			ok = true
		}
		if !ok {
			dropped++
		}
	}
	return dropped
}

func (s *syslogSink) reopen() error { return nil }

func (s *syslogSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}
