package verdictlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
)

// fixed is the clock of every test logger: a single-digit day shows the
// space padding of the syslog timestamp.
var fixed = time.Date(2024, time.March, 5, 9, 7, 3, 123456789, time.UTC)

func testOptions(w *bytes.Buffer) []Option {
	return []Option{
		WithClock(func() time.Time { return fixed }),
		WithHostname("mx1"),
		WithPID(4242),
		WithStderr(w),
	}
}

func newTestLogger(t *testing.T, cfg Config, w *bytes.Buffer) *Logger {
	t.Helper()
	l, err := New(cfg, testOptions(w)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestStderrFraming(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLogger(t, Config{Tag: "MailScanner"}, &buf)
	m := msg("4XyZ", "192.0.2.7", "bob@sender.example", []string{"alice@example.com"}, "Hi")
	v := &checks.Verdict{Required: 5, Score: 1.5, Symbols: []checks.Symbol{{Name: "R_DKIM_NA", Score: 1.5}}}
	lines := l.Message(m, v)
	checkLines(t, lines, Lines(m, v))
	want := "Mar  5 09:07:03 mx1 MailScanner[4242]: Message 4XyZ from 192.0.2.7 (bob@sender.example) to example.com is not spam, chainmail (not cached, score=1.50, required 5.00, R_DKIM_NA 1.50)\n" +
		"Mar  5 09:07:03 mx1 MailScanner[4242]: Delivery of nonspam: message 4XyZ from bob@sender.example to alice@example.com with subject Hi\n"
	if got := buf.String(); got != want {
		t.Errorf("stderr:\n got: %q\nwant: %q", got, want)
	}
}

// TestEventMethods: each event method writes exactly its builder's line.
func TestEventMethods(t *testing.T) {
	const prefix = "Mar  5 09:07:03 mx1 chainmail[4242]: "
	dom := SDRDomains{HELO: "h.example", EnvFrom: "e.example", HeaderFrom: "f.example"}
	sdr := SDRVerdict{Verdict: "Poor", ThreatCategory: "Spam", SuspectedDomains: []string{"x.example"}, YoungestDomain: "x.example", AgeDays: 18, AgeKnown: true}
	q := QuotaEvent{Host: "192.0.2.7", HELO: "laptop", From: "alice@example.com", To: "bob@example.org",
		Policy: "p", Quota: "q", Limit: "l", Track: "SASLUsername:alice", Counter: "MessageCount", Current: 71.16, Max: 70}
	cases := []struct {
		name string
		call func(l *Logger)
		want string
	}{
		{"infected", func(l *Logger) { logEvent(l, "4XyZ", Infected("4XyZ", "192.0.2.7", "", "")) }, "Infected message 4XyZ came from 192.0.2.7"},
		{"filename", func(l *Logger) {
			logEvent(l, "4XyZ", Filename("4XyZ", FileHit{Filename: "a.exe", Text: "Windows executable"}))
		}, "Filename Checks: Windows executable (4XyZ a.exe)"},
		{"filetype", func(l *Logger) {
			logEvent(l, "4XyZ", Filetype("4XyZ", FileHit{Filename: "a.bin", Text: "ELF executable"}))
		}, "Filetype Checks: ELF executable (4XyZ a.bin)"},
		{"whaling", func(l *Logger) { logEvent(l, "4XyZ", Whaling("4XyZ", "John Doe", "john@example.com", "", "")) }, "Message 4XyZ has been blocked as Whaling attack to John Doe john@example.com"},
		{"sdr domains", func(l *Logger) { logSDRDomains(l, "4XyZ", dom) },
			"MID 4XyZ SDR: Domains for which SDR is requested: reverse DNS host: Not Present, helo: h.example, env-from: e.example, header-from: f.example, reply-to: Not Present"},
		{"sdr verdict", func(l *Logger) { logSDRVerdict(l, "4XyZ", sdr) }, sdrVerdictLine("4XyZ", sdr)},
		{"quota", func(l *Logger) { logQuota(l, q) }, "module=Quotas, action=defer, host=192.0.2.7, helo=laptop, from=alice@example.com, to=bob@example.org, reason=quota_match, policy=p, quota=q, limit=l, track=SASLUsername:alice, counter=MessageCount, quota=71.16/70 (101.7%)"},
		{"printf", func(l *Logger) { l.Printf("listening on %s", "127.0.0.1:10025") }, "listening on 127.0.0.1:10025"},
		{"errorf", func(l *Logger) { l.Errorf("config: %v", errors.New("bad\nvalue")) }, "config: bad value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newTestLogger(t, Config{}, &buf)
			c.call(l)
			if got := buf.String(); got != prefix+c.want+"\n" {
				t.Errorf("got  %q\nwant %q", got, prefix+c.want+"\n")
			}
		})
	}
}

// decodeJSONLines parses every line of b as one JSON object.
func decodeJSONLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, line)
		}
		out = append(out, obj)
	}
	return out
}

func wantField(t *testing.T, obj map[string]any, key string, want any) {
	t.Helper()
	gotJSON, _ := json.Marshal(obj[key])
	wantJSON, _ := json.Marshal(want)
	if _, ok := obj[key]; !ok || !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("%s: %s = %s, want %s", obj["event"], key, gotJSON, wantJSON)
	}
}

func TestJSONMessage(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLogger(t, Config{Format: "json"}, &buf)
	m := msg("4XyZ", "192.0.2.7", "", []string{"a@Example.com", "b@example.com"}, "Cheap <pills> & \"more\"\r\n")
	v := &checks.Verdict{Action: checks.Tag, Spam: true, Score: 12.4, Required: 5, Why: checks.Why{By: checks.ByScore},
		Symbols: []checks.Symbol{{Name: "R_SPF_FAIL", Score: 1}, {Name: "RBL_SPAMHAUS", Score: 4, Detail: "127.0.0.2"}},
		Listed:  []string{"ZEN"},
		Results: checks.Results{{Check: "rbl", Status: checks.StatusTimeout, Reason: "no answer within 2s"}}}
	lines := l.Message(m, v)
	if strings.Contains(buf.String(), `\u003c`) {
		t.Errorf("JSON escapes HTML: %s", buf.String())
	}
	objs := decodeJSONLines(t, buf.Bytes())
	if len(objs) != len(lines) {
		t.Fatalf("%d JSON objects for %d lines", len(objs), len(lines))
	}
	events := []string{"rbl", "message", "spam_actions", "delivery", "check"}
	for i, o := range objs {
		wantField(t, o, "line", lines[i])
		wantField(t, o, "event", events[i])
		wantField(t, o, "time", "2024-03-05T09:07:03.123456789Z")
		wantField(t, o, "host", "mx1")
		wantField(t, o, "tag", "chainmail")
		wantField(t, o, "pid", 4242)
		wantField(t, o, "queue_id", "4XyZ")
	}
	wantField(t, objs[0], "listed", []string{"ZEN"})
	msgObj := objs[1]
	wantField(t, msgObj, "client_ip", "192.0.2.7")
	wantField(t, msgObj, "from", "<>")
	wantField(t, msgObj, "rcpt", []string{"a@Example.com", "b@example.com"})
	wantField(t, msgObj, "rcpt_domains", []string{"example.com"})
	wantField(t, msgObj, "subject", `Cheap <pills> & "more"`)
	wantField(t, msgObj, "spam", true)
	wantField(t, msgObj, "action", "tag")
	wantField(t, msgObj, "why", "score")
	wantField(t, msgObj, "score", 12.4)
	wantField(t, msgObj, "required", 5)
	wantField(t, msgObj, "symbols", []map[string]any{{"name": "R_SPF_FAIL", "score": 1}, {"name": "RBL_SPAMHAUS", "score": 4}})
	wantField(t, msgObj, "listed", []string{"ZEN"})
	if _, ok := msgObj["monitor"]; ok {
		t.Errorf("monitor field without monitor mode")
	}
	wantField(t, objs[2], "action", "tag")
	wantField(t, objs[2], "actions", []string{"deliver", "header"})
	wantField(t, objs[3], "delivery", "delivery")
	wantField(t, objs[3], "spam", true)
	wantField(t, objs[3], "from", "<>")
	wantField(t, objs[3], "rcpt", []string{"a@Example.com", "b@example.com"})
	wantField(t, objs[4], "check", "rbl")
	wantField(t, objs[4], "status", "timeout")
	wantField(t, objs[4], "reason", "no answer within 2s")
}

func TestJSONMonitorAndEmptyLists(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLogger(t, Config{Format: "JSON"}, &buf)
	v := &checks.Verdict{Monitor: true, Would: checks.Tempfail, Required: 5, Why: checks.Why{By: checks.ByError, Name: "spf"}, Action: checks.Accept}
	l.Message(msg("Q", "", "a@b.example", nil, ""), v)
	objs := decodeJSONLines(t, buf.Bytes())
	if len(objs) != 3 {
		t.Fatalf("got %d objects, want 3", len(objs))
	}
	wantField(t, objs[0], "monitor", true)
	wantField(t, objs[0], "would", "tempfail")
	wantField(t, objs[0], "client_ip", "unknown")
	wantField(t, objs[0], "rcpt", []string{})
	wantField(t, objs[0], "symbols", []string{})
	wantField(t, objs[0], "listed", []string{})
	wantField(t, objs[1], "event", "monitor")
	wantField(t, objs[1], "would", "tempfail")
	wantField(t, objs[1], "why", "error:spf")
	wantField(t, objs[2], "delivery", "delivery")
}

func TestJSONEvents(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLogger(t, Config{Format: "json", Tag: "MailScanner"}, &buf)
	logEvent(l, "I1", Infected("I1", "192.0.2.9", "", ""))
	logEvent(l, "I2", Filename("I2", FileHit{Filename: "a.exe", Text: "Executable"}))
	logEvent(l, "I3", Filetype("I3", FileHit{Filename: "b.bin", Text: "ELF"}))
	logEvent(l, "I4", Whaling("I4", " John Doe ", "<john@example.com>", "", ""))
	logSDRDomains(l, "I5", SDRDomains{HELO: "h.example", EnvFrom: "e.example"})
	logSDRVerdict(l, "I6", SDRVerdict{Verdict: "tainted", SuspectedDomains: []string{"s.example"}})
	logSDRVerdict(l, "I7", SDRVerdict{Verdict: "Good", AgeDays: 400, AgeKnown: true, YoungestDomain: "g.example"})
	logQuota(l, QuotaEvent{Host: "192.0.2.7", From: "a@b.example", Track: "SASLUsername:a", Counter: "MessageCount", Current: 71.16, Max: 70})
	logQuota(l, QuotaEvent{Current: 3})
	l.Printf("started")
	l.Errorf("broken")

	objs := decodeJSONLines(t, buf.Bytes())
	want := []struct {
		event, id string
		fields    map[string]any
	}{
		{"infected", "I1", map[string]any{"client_ip": "192.0.2.9"}},
		{"filename", "I2", map[string]any{"file": "a.exe", "log_text": "Executable"}},
		{"filetype", "I3", map[string]any{"file": "b.bin", "log_text": "ELF"}},
		{"whaling", "I4", map[string]any{"target": "John Doe", "target_address": "john@example.com"}},
		{"sdr_domains", "I5", map[string]any{"reverse_dns": "", "helo": "h.example", "env_from": "e.example", "header_from": "", "reply_to": ""}},
		{"sdr_verdict", "I6", map[string]any{"verdict": "tainted", "threat": "", "suspected": []string{"s.example"}, "age_days": -1}},
		{"sdr_verdict", "I7", map[string]any{"verdict": "Good", "youngest_domain": "g.example", "age_days": 400}},
		{"quota", "NOQUEUE", map[string]any{"action": "defer", "host": "192.0.2.7", "from": "a@b.example", "reason": "quota_match", "track": "SASLUsername:a", "counter": "MessageCount", "current": 71.16, "max": 70, "percent": 101.7}},
		{"quota", "NOQUEUE", map[string]any{"host": "unknown", "from": "<>", "percent": nil}},
		{"log", "", map[string]any{"level": "info"}},
		{"log", "", map[string]any{"level": "err"}},
	}
	if len(objs) != len(want) {
		t.Fatalf("got %d objects, want %d", len(objs), len(want))
	}
	for i, w := range want {
		o := objs[i]
		wantField(t, o, "event", w.event)
		wantField(t, o, "tag", "MailScanner")
		if w.id == "" {
			if _, ok := o["queue_id"]; ok {
				t.Errorf("%s: queue_id present: %v", w.event, o["queue_id"])
			}
		} else {
			wantField(t, o, "queue_id", w.id)
		}
		for k, v := range w.fields {
			wantField(t, o, k, v)
		}
	}
	// The "line" fields are the text lines.
	wantField(t, objs[0], "line", infectedLine("I1", "192.0.2.9"))
	wantField(t, objs[3], "line", whalingLine("I4", " John Doe ", "<john@example.com>"))
	wantField(t, objs[9], "line", "started")
}

func TestNilLogger(t *testing.T) {
	var l *Logger
	m := msg("Q", "192.0.2.1", "a@b.example", []string{"c@d.example"}, "s")
	v := &checks.Verdict{Required: 5}
	checkLines(t, l.Message(m, v), Lines(m, v))
	l.Printf("nothing")
	logEvent(l, "Q", Infected("Q", "192.0.2.1", "", ""))
	if err := l.Reopen(); err != nil {
		t.Error(err)
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	if l.Dropped() != 0 {
		t.Error("nil logger dropped lines")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"format", Config{Format: "xml"}, `verdictlog: unknown format "xml" (want text or json)`},
		{"type", Config{Sinks: []SinkConfig{{Type: "stderr"}, {Type: "kafka"}}}, `verdictlog: sink 2 (kafka): unknown sink type "kafka" (want stderr, file or syslog)`},
		{"facility", Config{Sinks: []SinkConfig{{Type: "syslog", Facility: "mial"}}}, `verdictlog: sink 1 (syslog): unknown syslog facility "mial"`},
		{"network", Config{Sinks: []SinkConfig{{Type: "syslog", Address: "http://x"}}}, `verdictlog: sink 1 (syslog): address "http://x": unknown network "http"`},
		{"no port", Config{Sinks: []SinkConfig{{Type: "syslog", Address: "udp:localhost"}}}, `verdictlog: sink 1 (syslog): address "udp:localhost": address localhost: missing port in address`},
		{"no colon", Config{Sinks: []SinkConfig{{Type: "syslog", Address: "/dev/log"}}}, `verdictlog: sink 1 (syslog): address "/dev/log": want unix:PATH`},
		{"no socket", Config{Sinks: []SinkConfig{{Type: "syslog", Address: "unix:" + filepath.Join(dir, "nosuch")}}}, `verdictlog: sink 1 (syslog): dial `},
		{"no path", Config{Sinks: []SinkConfig{{Type: "file"}}}, `verdictlog: sink 1 (file): file sink needs a path`},
		{"path on stderr", Config{Sinks: []SinkConfig{{Type: "stderr", Path: "/tmp/x"}}}, `verdictlog: sink 1 (stderr): path is for file sinks only`},
		{"facility on file", Config{Sinks: []SinkConfig{{Type: "file", Path: "x", Facility: "mail"}}}, `verdictlog: sink 1 (file): address and facility are for syslog sinks only`},
		{"unwritable file", Config{Sinks: []SinkConfig{{Type: "file", Path: filepath.Join(dir, "no", "such", "dir", "log")}}}, `verdictlog: sink 1 (file): open `},
		{"tag too long", Config{Tag: strings.Repeat("x", 33)}, `longer than 32 characters`},
		{"tag with colon", Config{Tag: "mail:scanner"}, `verdictlog: tag "mail:scanner": only letters, digits and - _ . / are allowed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := New(c.cfg, WithStderr(&bytes.Buffer{}))
			if err == nil {
				l.Close()
				t.Fatalf("New succeeded, want error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestFileSinkAppendAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	if err := os.WriteFile(path, []byte("existing line\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	l := newTestLogger(t, Config{Sinks: []SinkConfig{{Type: "file", Path: path}}}, &stderr)
	logEvent(l, "A1", Infected("A1", "192.0.2.1", "", ""))

	// logrotate: rename, then SIGHUP.
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	logEvent(l, "A2", Infected("A2", "192.0.2.2", "", "")) // still goes to the renamed file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	logEvent(l, "A3", Infected("A3", "192.0.2.3", "", ""))

	const p = "Mar  5 09:07:03 mx1 chainmail[4242]: "
	readFile := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got, want := readFile(rotated), "existing line\n"+p+"Infected message A1 came from 192.0.2.1\n"+p+"Infected message A2 came from 192.0.2.2\n"; got != want {
		t.Errorf("rotated file:\n got: %q\nwant: %q", got, want)
	}
	if got, want := readFile(path), p+"Infected message A3 came from 192.0.2.3\n"; got != want {
		t.Errorf("new file:\n got: %q\nwant: %q", got, want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr written with a file sink only: %q", stderr.String())
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logEvent(l, "A4", Infected("A4", "192.0.2.4", "", ""))
	if l.Dropped() != 1 {
		t.Errorf("Dropped = %d after a write past Close, want 1", l.Dropped())
	}
	if err := l.Reopen(); err == nil {
		t.Error("Reopen after Close succeeded")
	}
}

func TestFileSinkJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verdicts.json")
	l := newTestLogger(t, Config{Format: "json", Sinks: []SinkConfig{{Type: "file", Path: path}, {Type: "stderr"}}}, &bytes.Buffer{})
	logEvent(l, "W1", Whaling("W1", "Jane Roe", "jane@example.com", "", ""))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2024-03-05T09:07:03.123456789Z","host":"mx1","tag":"chainmail","pid":4242,"event":"whaling","queue_id":"W1","line":"Message W1 has been blocked as Whaling attack to Jane Roe jane@example.com","target":"Jane Roe","target_address":"jane@example.com","match":"","from":""}` + "\n"
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// TestJSONNaNScore: a score JSON cannot hold costs the facts, never the
// line.
func TestJSONNaNScore(t *testing.T) {
	var buf bytes.Buffer
	l := newTestLogger(t, Config{Format: "json"}, &buf)
	lines := l.Message(msg("N1", "192.0.2.1", "a@b.example", []string{"c@d.example"}, "s"), &checks.Verdict{Score: math.NaN(), Required: 5})
	objs := decodeJSONLines(t, buf.Bytes())
	wantField(t, objs[0], "line", lines[0])
	wantField(t, objs[0], "event", "message")
	if !strings.Contains(lines[0], "score=NaN") {
		t.Errorf("line %q", lines[0])
	}
}

// A family of events with a tag of its own (log.tags) goes out under it,
// in text and JSON; the other lines keep the logger's tag. The verdict
// line names log.engine.
func TestFamilyTagsAndEngine(t *testing.T) {
	q := QuotaEvent{Host: "192.0.2.7", HELO: "laptop", From: "alice@example.com", To: "bob@example.org",
		Policy: "p", Quota: "q", Limit: "l", Track: "SASLUsername:alice", Counter: "MessageCount", Current: 2, Max: 1}.Event()
	m := &checks.Message{Envelope: checks.Envelope{QueueID: "Q1", MailFrom: "a@example.com", Rcpts: []string{"b@example.org"}}}
	var buf bytes.Buffer
	l := newTestLogger(t, Config{Tag: "MailScanner", Engine: "SpamAssassin", Tags: map[string]string{"quota": "cbpolicyd"}}, &buf)
	l.Events("", []checks.Event{q})
	l.Message(m, &checks.Verdict{Required: 5})
	want := "Mar  5 09:07:03 mx1 cbpolicyd[4242]: " + q.Line + "\n" +
		"Mar  5 09:07:03 mx1 MailScanner[4242]: Message Q1 from unknown (a@example.com) to example.org is not spam, SpamAssassin (not cached, score=0.00, required 5.00)\n" +
		"Mar  5 09:07:03 mx1 MailScanner[4242]: Delivery of nonspam: message Q1 from a@example.com to b@example.org with subject \n"
	if buf.String() != want {
		t.Errorf("got\n%swant\n%s", buf.String(), want)
	}

	buf.Reset()
	l = newTestLogger(t, Config{Format: "json", Tags: map[string]string{"quota": "cbpolicyd"}}, &buf)
	l.Events("", []checks.Event{q})
	l.Message(m, &checks.Verdict{Required: 5})
	objs := decodeJSONLines(t, buf.Bytes())
	if len(objs) != 3 || objs[0]["tag"] != "cbpolicyd" || objs[1]["tag"] != "chainmail" {
		t.Errorf("JSON tags: %v", objs)
	}
}

func TestConfigCheck(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		key string
	}{
		{Config{Engine: "Spam Assassin"}, "engine"},
		{Config{Tags: map[string]string{"quotas": "x"}}, "tags.quotas"},
		{Config{Tags: map[string]string{"quota": ""}}, "tags.quota"},
		{Config{Tags: map[string]string{"quota": "a b"}}, "tags.quota"},
	} {
		if key, err := c.cfg.Check(); err == nil || key != c.key {
			t.Errorf("%+v: key %q, err %v; want an error about %s", c.cfg, key, err, c.key)
		}
		if _, err := New(c.cfg); err == nil {
			t.Errorf("New(%+v) accepted it", c.cfg)
		}
	}
	for _, fam := range Families {
		if key, err := (Config{Engine: "SpamAssassin", Tags: map[string]string{fam: "cbpolicyd"}}).Check(); err != nil {
			t.Errorf("family %s: %s: %v", fam, key, err)
		}
	}
}

// logEvent writes one event for the message with queue id id.
func logEvent(l *Logger, id string, ev checks.Event) { l.Events(id, []checks.Event{ev}) }

func logSDRDomains(l *Logger, id string, d SDRDomains) { logEvent(l, id, d.Event(id)) }

func logSDRVerdict(l *Logger, id string, v SDRVerdict) { logEvent(l, id, v.Event(id)) }

// logQuota writes a quota event; quota lines carry no queue id.
func logQuota(l *Logger, q QuotaEvent) { logEvent(l, "", q.Event()) }
