// Package verdictlog writes chainmail's verdict log: the lines a postmaster
// greps and a SIEM parses, one typed event per line.
//
// # The wording is a contract
//
// The lines keep MailScanner's words (and, for reputation and quotas, the
// words of Cisco's Sender Domain Reputation and of policyd's Quotas module)
// because parsers in the field match them with regular expressions. A line
// changes only when the design changes; the tests compare whole lines. For
// one message, Lines gives, in this order:
//
//	RBL checks: <id> found in <LIST, LIST>                       (only when listed)
//	Message <id> from <client-ip> (<env-from>) to <dom,dom> is spam, <LIST, LIST>, chainmail (not cached, score=12.40, required 5.00, R_SPF_FAIL 1.00, RBL_SPAMHAUS 4.00)
//	Spam Actions: message <id> actions are <deliver|deliver,header|store|defer|bounce|delete>   (spam only)
//	Monitor: message <id> would be <action> (<why>)               (monitor mode, when it held something back)
//	Delivery of nonspam: message <id> from <env-from> to <rcpt,rcpt> with subject <subject>
//	  … or "Delivery of spam: …" (accept, tag, monitor mode),
//	  "Non-delivery of spam: …" (quarantine, reject, discard; "of nonspam" when not spam),
//	  "Deferral of message: … with subject <subject> (<why>)" (tempfail)
//	Check <check> on message <id>: <error|timeout|skipped> (<reason>)   (one per check that gave no answer)
//
// <id> is the MTA queue id (NOQUEUE when there is none), <client-ip> is
// "unknown" when not known, the null sender is <>, the verdict line names
// the distinct recipient domains (lower-cased, first appearance first) and
// the delivery line the full addresses, both joined by "," without spaces;
// an empty recipient list is logged as "unknown". Scores have two
// decimals; symbols keep the verdict's order. The "<LIST, LIST>, " part of
// the verdict line is there only when the message was listed, as in
// MailScanner. The events checks report (Infected, Filename, Filetype,
// Whaling, SDRDomains.Event, QuotaEvent.Event, …; events.go) are built
// here too, each with its line and its JSON facts: a check hands over an
// event, never a line of its own.
//
// Every value that comes from a message or the network goes through
// Sanitize, so one event is always exactly one line.
//
// # Sinks and formats
//
// A Logger writes each line to its sinks: stderr and files get the line as
// syslogd would have written it to /var/log/mail.log
// ("Jan _2 15:04:05 host tag[pid]: line"), so maillog parsers work on
// them; syslog gets an RFC 3164 message over the local socket, UDP or TCP.
// With Format "json" each line becomes one JSON object with time, host,
// tag, pid, event (message, rbl, spam_actions, monitor, delivery, check,
// infected, filename, filetype, attachment, whaling, sdr_domains,
// sdr_verdict, sdr_evidence, rbl_fail, uribl_fail, quota, greylist, log),
// queue_id, the exact text line ("line"), and the event's facts as
// fields; inside syslog the object is the message text. The tag defaults to "chainmail"; "MailScanner"
// makes chainmail a drop-in for existing parsers. Config.Tags gives a
// family of events a tag of its own (quota lines as "cbpolicyd[PID]:"),
// and Config.Engine names the scanner in the verdict line ("SpamAssassin"
// for MailScanner parsers).
//
// A Logger is safe for concurrent use: the lines of one message are written
// together and never interleave with another's. Writes never block mail for
// long: a syslog write has a one-second deadline, and a line that cannot be
// written is dropped and counted (Dropped).
package verdictlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chainmail/checks"
)

// DefaultTag is the syslog tag (program name) when Config.Tag is empty.
const DefaultTag = "chainmail"

// Config configures a Logger.
type Config struct {
	// Tag is the syslog tag / program name, DefaultTag when empty.
	// "MailScanner" makes the log a drop-in for MailScanner parsers.
	Tag string `yaml:"tag"`
	// Format is "text" (default) or "json".
	Format string `yaml:"format"`
	// Sinks are where lines go; none means one stderr sink.
	Sinks []SinkConfig `yaml:"sinks"`
	// Engine is the scanner the verdict line names ("is spam, chainmail
	// (not cached, …"). When empty, the line names the scanner that
	// scored the message (Verdict.Engine: "SpamAssassin" when the
	// spamassassin check did), else DefaultEngine. Parsers written for
	// MailScanner expect "SpamAssassin".
	Engine string `yaml:"engine,omitempty"`
	// Tags gives a family of events (Families) a syslog tag of its own,
	// e.g. {quota: cbpolicyd} for parsers keyed on "cbpolicyd[PID]:".
	Tags map[string]string `yaml:"tags,omitempty"`
}

// DefaultEngine is the scanner named in the verdict line when
// Config.Engine is empty.
const DefaultEngine = "chainmail"

// Families are the families of events a tag can be set for (Config.Tags),
// each with its events: message (rbl, message, spam_actions, monitor,
// delivery, check), dnsbl (rbl_fail, uribl_fail, helo_fail, the lists'
// warnings), attachment (filename, filetype, attachment, quicksand, html), antivirus
// (infected), whaling, sdr (sdr_domains, sdr_verdict, sdr_evidence),
// quota, greylist and log (operational lines).
var Families = []string{"message", "dnsbl", "attachment", "antivirus", "whaling", "sdr", "quota", "greylist", "log"}

// Family is the family of the event named event (see Families).
func Family(event string) string {
	switch event {
	case "rbl", "message", "spam_actions", "monitor", "delivery", "check":
		return "message"
	case "filename", "filetype", "attachment", "quicksand", "html":
		return "attachment"
	case "infected":
		return "antivirus"
	}
	if strings.HasPrefix(event, "sdr_") {
		return "sdr"
	}
	if strings.HasSuffix(event, "_fail") {
		return "dnsbl"
	}
	return event
}

// Check validates the settings New does not need a system for: the
// engine and the tags. key names the setting at fault ("engine",
// "tags.quota").
func (c Config) Check() (key string, err error) {
	if c.Engine != "" {
		for _, r := range c.Engine {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
				return "engine", fmt.Errorf("%q: only letters, digits and - _ . are allowed", c.Engine)
			}
		}
	}
	for fam, tag := range c.Tags {
		if !contains(Families, fam) {
			return "tags." + fam, fmt.Errorf("unknown family of events %q (known: %s)", fam, strings.Join(Families, ", "))
		}
		if tag == "" {
			return "tags." + fam, errors.New("empty tag")
		}
		if err := checkTag(tag); err != nil {
			return "tags." + fam, err
		}
	}
	return "", nil
}

// SinkConfig is one destination of the log.
type SinkConfig struct {
	// Type is stderr, file or syslog.
	Type string `yaml:"type"`
	// Path is the file sink's file, opened for appending and opened again
	// by Logger.Reopen (logrotate).
	Path string `yaml:"path"`
	// Address is the syslog sink's daemon: "unix:/dev/log" (default),
	// "udp:HOST:PORT" or "tcp:HOST:PORT".
	Address string `yaml:"address"`
	// Facility is the syslog facility name, "mail" when empty.
	Facility string `yaml:"facility"`
}

// Option adjusts a Logger at New; tests and `chainmail replay` use them
// to fix what would otherwise come from the system.
type Option func(*Logger)

// WithClock sets the clock that stamps lines (default time.Now). The
// time's location is the one written, as syslogd writes local time.
func WithClock(now func() time.Time) Option { return func(l *Logger) { l.now = now } }

// WithHostname sets the hostname written in the lines (default: the
// system's, up to the first dot).
func WithHostname(h string) Option { return func(l *Logger) { l.host = h } }

// WithPID sets the process id written in the lines (default os.Getpid()).
func WithPID(pid int) Option { return func(l *Logger) { l.pid = pid } }

// WithStderr sets where stderr sinks write (default os.Stderr).
func WithStderr(w io.Writer) Option { return func(l *Logger) { l.stderr = w } }

// Logger writes verdict lines to its sinks. A nil *Logger is valid: it
// writes nothing, and Message still returns the lines.
type Logger struct {
	tag    string
	tags   map[string]string // family → tag, from Config.Tags
	engine string
	json   bool
	now    func() time.Time
	host   string
	pid    int
	stderr io.Writer

	sinks   []sink
	dropped atomic.Uint64
	reg     prometheus.Registerer // WithRegisterer; nil: no metric
	metric  prometheus.Counter    // DroppedMetric, nil without reg

	mu     sync.RWMutex // guards closed against writes racing Close
	closed bool
}

// New validates cfg and opens its sinks. Syslog sinks connect at once, so
// a wrong socket path or an unreachable daemon is reported here; later
// failures only drop lines.
func New(cfg Config, opts ...Option) (*Logger, error) {
	l := &Logger{tag: cfg.Tag, now: time.Now, pid: os.Getpid(), stderr: os.Stderr}
	for _, o := range opts {
		o(l)
	}
	if l.tag == "" {
		l.tag = DefaultTag
	}
	if err := checkTag(l.tag); err != nil {
		return nil, err
	}
	if key, err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("verdictlog: %s: %w", key, err)
	}
	l.engine = cfg.Engine
	if l.reg != nil {
		c, err := droppedCounter(l.reg)
		if err != nil {
			return nil, err
		}
		l.metric = c
	}
	l.tags = make(map[string]string, len(cfg.Tags))
	for fam, tag := range cfg.Tags {
		l.tags[fam] = tag
	}
	switch strings.ToLower(cfg.Format) {
	case "", "text":
	case "json":
		l.json = true
	default:
		return nil, fmt.Errorf("verdictlog: unknown format %q (want text or json)", cfg.Format)
	}
	if l.host == "" {
		l.host = shortHostname()
	}
	// The hostname is one field of the syslog HEADER: no spaces.
	l.host = strings.ReplaceAll(Sanitize(l.host), " ", "-")
	sinks := cfg.Sinks
	if len(sinks) == 0 {
		sinks = []SinkConfig{{Type: "stderr"}}
	}
	fr := framer{host: l.host, tag: l.tag, pid: l.pid, json: l.json}
	for i, sc := range sinks {
		s, err := l.newSink(sc, fr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("verdictlog: sink %d (%s): %w", i+1, sc.Type, err)
		}
		l.sinks = append(l.sinks, s)
	}
	return l, nil
}

func (l *Logger) newSink(sc SinkConfig, fr framer) (sink, error) {
	typ := strings.ToLower(sc.Type)
	if typ != "syslog" && (sc.Address != "" || sc.Facility != "") {
		return nil, fmt.Errorf("address and facility are for syslog sinks only")
	}
	if typ != "file" && sc.Path != "" {
		return nil, fmt.Errorf("path is for file sinks only")
	}
	switch typ {
	case "stderr":
		return &writerSink{framer: fr, w: l.stderr}, nil
	case "file":
		if sc.Path == "" {
			return nil, fmt.Errorf("file sink needs a path")
		}
		f, err := openLogFile(sc.Path)
		if err != nil {
			return nil, err
		}
		return &fileSink{framer: fr, path: sc.Path, f: f}, nil
	case "syslog":
		fac := strings.ToLower(sc.Facility)
		if fac == "" {
			fac = "mail"
		}
		code, ok := facilities[fac]
		if !ok {
			return nil, fmt.Errorf("unknown syslog facility %q (want mail, daemon, user, local0…local7, …)", sc.Facility)
		}
		network, addr, err := parseSyslogAddress(sc.Address)
		if err != nil {
			return nil, err
		}
		s := &syslogSink{network: network, addr: addr, facility: code, host: l.host, tag: l.tag, pid: l.pid}
		if err := s.dial(); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown sink type %q (want stderr, file or syslog)", sc.Type)
}

// checkTag enforces RFC 3164 §4.1.3: at most 32 characters, and nothing
// that would end the TAG early or confuse a parser.
func checkTag(tag string) error {
	if len(tag) > 32 {
		return fmt.Errorf("verdictlog: tag %q longer than 32 characters (RFC 3164)", tag)
	}
	for _, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)) {
			return fmt.Errorf("verdictlog: tag %q: only letters, digits and - _ . / are allowed", tag)
		}
	}
	return nil
}

// shortHostname is the system's host name up to the first dot, as syslogd
// writes it (RFC 3164 §4.1.2: no domain name).
func shortHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

// Close closes the sinks. Lines written afterwards are dropped.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, s := range l.sinks {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

// Reopen opens the file sinks' files again, for SIGHUP after logrotate
// moved them away. A file that cannot be opened keeps its old descriptor.
func (l *Logger) Reopen() error {
	if l == nil {
		return nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return errors.New("verdictlog: reopen after close")
	}
	var errs []error
	for _, s := range l.sinks {
		errs = append(errs, s.reopen())
	}
	return errors.Join(errs...)
}

// Dropped is the number of lines, summed over the sinks, that could not be
// written by this Logger (DroppedMetric, with WithRegisterer, counts them
// across reloads).
func (l *Logger) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// emit writes entries to every sink, together.
func (l *Logger) emit(es ...entry) {
	if l == nil || len(es) == 0 {
		return
	}
	t := l.now()
	recs := make([]record, len(es))
	for i, e := range es {
		sev := sevInfo
		if e.err {
			sev = sevErr
		}
		tag := l.tags[Family(e.event)]
		msg := e.line
		if l.json {
			jt := tag
			if jt == "" {
				jt = l.tag
			}
			msg = string(encodeJSON(e, t, l.host, jt, l.pid))
		}
		recs[i] = record{t: t, sev: sev, msg: msg, tag: tag}
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.drop(len(recs) * len(l.sinks))
		return
	}
	for _, s := range l.sinks {
		if n := s.write(recs); n > 0 {
			l.drop(n)
		}
	}
}

// drop counts n lines that could not be written.
func (l *Logger) drop(n int) {
	l.dropped.Add(uint64(n))
	if l.metric != nil {
		l.metric.Add(float64(n))
	}
}

// Message writes the verdict lines of one message and returns them as
// Lines does, so `chainmail replay` prints exactly what serve logs.
func (l *Logger) Message(m *checks.Message, v *checks.Verdict) []string {
	engine := ""
	if l != nil {
		engine = l.engine
	}
	es := messageEntries(m, v, engine)
	l.emit(es...)
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.line
	}
	return out
}

// Events writes events reported outside a verdict (RCPT-time refusals,
// quota alerts) for the message with queue id id.
func (l *Logger) Events(id string, evs []checks.Event) {
	es := make([]entry, 0, len(evs))
	for _, ev := range evs {
		ev = worded(ev)
		es = append(es, entry{event: ev.Name, queueID: queueID(id), line: Sanitize(ev.Line), facts: ev.Facts})
	}
	l.emit(es...)
}

// Event is the quota line (see quotaLine); Facts is a QuotaFacts. Quota
// lines carry no queue id: policyd logs them before there is one.
func (q QuotaEvent) Event() checks.Event {
	s := q.sanitized()
	f := QuotaFacts{
		Action: s.Action, Host: s.Host, HELO: s.HELO, From: s.From, To: s.To, Reason: s.Reason,
		Policy: s.Policy, Quota: s.Quota, Limit: s.Limit, Track: s.Track, Counter: s.Counter,
		Current: s.Current, Max: s.Max,
	}
	if s.Max > 0 {
		p := round1(s.Current / s.Max * 100)
		f.Percent = &p
	}
	return checks.Event{Name: "quota", Line: quotaLine(q), Facts: f}
}

// Printf logs an operational message (startup, reload, trouble) to the
// same sinks, with severity info.
func (l *Logger) Printf(format string, args ...any) {
	l.emit(entry{event: "log", line: Sanitize(fmt.Sprintf(format, args...)), facts: logFacts{Level: "info"}})
}

// Errorf logs an operational error to the same sinks, with severity err.
func (l *Logger) Errorf(format string, args ...any) {
	l.emit(entry{event: "log", line: Sanitize(fmt.Sprintf(format, args...)), err: true, facts: logFacts{Level: "err"}})
}
