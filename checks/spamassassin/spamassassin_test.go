package spamassassin_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/checks/spamassassin"
	"chainmail/checks/spamassassin/spamdtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	spamdtest.StopShared()
	os.Exit(code)
}

// GTUBE is SpamAssassin's test string: its rule GTUBE scores 1000.
const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

func gtubeMail() string {
	return "From: a@example.com\r\nTo: b@example.org\r\nSubject: test\r\nDate: Mon, 7 Dec 2026 06:00:00 +0000\r\nMessage-ID: <gtube@example.com>\r\n\r\n" + GTUBE + "\r\n"
}

func message(t testing.TB, raw string) *checks.Message {
	t.Helper()
	m, err := checks.ReadMessage(strings.NewReader(raw), checks.NewSpool(len(raw)+1, ""))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newCheck(t testing.TB, mod func(*spamassassin.Config)) *spamassassin.Check {
	t.Helper()
	cfg := spamassassin.DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	c, err := spamassassin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func symbolSum(r checks.Result) float64 {
	s := 0.0
	for _, y := range r.Symbols {
		s += y.Score
	}
	return s
}

// TestGTUBE: SpamAssassin's test string through the real spamd is spam,
// with SA's rule GTUBE at SA's score, SA's total as the check's score
// (its symbols sum to it), and the facts rules read.
func TestGTUBE(t *testing.T) {
	sd := spamdtest.Shared(t)
	for name, addr := range map[string]string{"tcp": sd.Addr, "unix socket": "unix:" + sd.Socket} {
		c := newCheck(t, func(c *spamassassin.Config) { c.Address = addr; c.User = "nobody" })
		r := c.Check(context.Background(), message(t, gtubeMail()), nil)
		if r.Status != checks.StatusSpam || r.Class != checks.ClassSpam || r.Engine != spamassassin.Engine {
			t.Fatalf("%s: %+v, want spam by SpamAssassin", name, r)
		}
		i := slices.IndexFunc(r.Symbols, func(s checks.Symbol) bool { return s.Name == "GTUBE" })
		if i < 0 || r.Symbols[i].Score != 1000 {
			t.Errorf("%s: symbols %+v, want GTUBE 1000", name, r.Symbols)
		}
		if r.Score < 1000 || abs(symbolSum(r)-r.Score) > 1e-6 || r.Facts["score"] != r.Score {
			t.Errorf("%s: score %v, symbols sum %v, fact %v", name, r.Score, symbolSum(r), r.Facts["score"])
		}
		if r.Facts["required"] != 5.0 || r.Facts["spam"] != true || !slices.Contains(r.Facts["rules"].([]string), "GTUBE") || r.Facts["truncated"] != false {
			t.Errorf("%s: facts %v", name, r.Facts)
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// TestHam: a ham of the SpamAssassin public corpus is ham to SpamAssassin,
// its score under the required score.
func TestHam(t *testing.T) {
	sd := spamdtest.Shared(t)
	dir := filepath.Join(checktest.Corpus(t, "spamassassin-public-corpus-sample"), "easy-ham-1")
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) < 3 {
		t.Fatalf("%s: %d messages", dir, len(files))
	}
	c := newCheck(t, func(c *spamassassin.Config) { c.Address = sd.Addr })
	for _, f := range files[:3] {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The corpus files start with an mbox "From " line, which no MTA
		// hands a milter (replay drops it too).
		if strings.HasPrefix(string(raw), "From ") {
			_, rest, _ := strings.Cut(string(raw), "\n")
			raw = []byte(rest)
		}
		r := c.Check(context.Background(), message(t, string(raw)), nil)
		if r.Status != checks.StatusHam || r.Class != checks.ClassHam || r.Facts["spam"] != false || r.Score >= 5 {
			t.Errorf("%s: %+v, want ham", filepath.Base(f), r)
		}
		if abs(symbolSum(r)-r.Score) > 1e-6 {
			t.Errorf("%s: symbols %+v do not sum to %v", filepath.Base(f), r.Symbols, r.Score)
		}
	}
}

// TestSpamdDown: a spamd that was stopped, a port nobody listens on and a
// socket path that does not exist are temperror: never spam, never ham,
// no score.
func TestSpamdDown(t *testing.T) {
	sd, err := spamdtest.Start()
	if err != nil {
		spamdtest.Shared(t) // skips loudly when spamd is absent
		t.Fatal(err)
	}
	addr, sock := sd.Addr, sd.Socket
	sd.Stop()
	for _, a := range []string{addr, "unix:" + sock, "unix:/nonexistent/spamd.sock"} {
		c := newCheck(t, func(c *spamassassin.Config) { c.Address = a })
		r := c.Check(context.Background(), message(t, gtubeMail()), nil)
		if r.Status != checks.StatusTemperror || r.Class != checks.ClassNone || len(r.Symbols) != 0 || r.Score != 0 || r.Engine != "" {
			t.Errorf("%s: %+v, want temperror", a, r)
		}
		if r.Facts["spam"] != false {
			t.Errorf("%s: facts %v", a, r.Facts)
		}
	}
}

// silentServer accepts connections and never answers; it reports each
// connection's bytes on got.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// garbageServer answers every connection with answer and closes it.
func garbageServer(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Write([]byte(answer))
			}()
		}
	}()
	return l.Addr().String()
}

// TestNoAnswer: a spamd that accepts the connection and never answers is
// a temperror once the check's timeout has passed.
func TestNoAnswer(t *testing.T) {
	c := newCheck(t, func(c *spamassassin.Config) {
		c.Address = silentServer(t)
		c.Timeout = checks.Duration(300 * time.Millisecond)
	})
	r := c.Check(context.Background(), message(t, gtubeMail()), nil)
	if r.Status != checks.StatusTemperror || !strings.Contains(r.Reason, "no answer within") {
		t.Errorf("%+v, want temperror: no answer", r)
	}
}

// TestGarbage: answers that are not spamd's protocol, or spamd's EX_*
// errors, are temperror.
func TestGarbage(t *testing.T) {
	for _, answer := range []string{
		"",
		"HTTP/1.1 200 OK\r\n\r\n",
		"SPAMD/1.0 76 Bad header line: (EOF)\r\n",
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 10\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 100\r\nSpam: True ; 6.5 / 5.0\r\n\r\nshort",
	} {
		c := newCheck(t, func(c *spamassassin.Config) { c.Address = garbageServer(t, answer) })
		r := c.Check(context.Background(), message(t, gtubeMail()), nil)
		if r.Status != checks.StatusTemperror || len(r.Symbols) != 0 {
			t.Errorf("%q: %+v, want temperror", answer, r)
		}
	}
}

// padded is a message of at least size bytes: the GTUBE string before
// the padding (front) or after it.
func padded(size int, front bool) string {
	head := "From: a@example.com\r\nTo: b@example.org\r\nSubject: padded\r\nDate: Mon, 7 Dec 2026 06:00:00 +0000\r\nMessage-ID: <pad@example.com>\r\n\r\n"
	var b strings.Builder
	b.WriteString(head)
	if front {
		b.WriteString(GTUBE + "\r\n")
	}
	line := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	if !front {
		b.WriteString(GTUBE + "\r\n")
	}
	return b.String()
}

// TestMaxScanSize: a message over max_scan_size is scanned truncated, as
// MailScanner does: the GTUBE string in its first bytes is found (padding
// does not take spam past SpamAssassin), one after the cut is not; the
// fact truncated says so.
func TestMaxScanSize(t *testing.T) {
	sd := spamdtest.Shared(t)
	c := newCheck(t, func(c *spamassassin.Config) { c.Address = sd.Addr; c.MaxScanSize = 64 << 10 })
	r := c.Check(context.Background(), message(t, padded(300<<10, true)), nil)
	if r.Status != checks.StatusSpam || r.Facts["truncated"] != true || !strings.Contains(r.Reason, "first ") {
		t.Errorf("GTUBE first: %+v, want spam, truncated", r)
	}
	r = c.Check(context.Background(), message(t, padded(300<<10, false)), nil)
	if r.Status != checks.StatusHam || r.Facts["truncated"] != true {
		t.Errorf("GTUBE after the cut: %+v, want ham, truncated", r)
	}
	// Under the limit the whole message goes: the GTUBE at the end is found.
	r = c.Check(context.Background(), message(t, padded(32<<10, false)), nil)
	if r.Status != checks.StatusSpam || r.Facts["truncated"] != false {
		t.Errorf("under the limit: %+v, want spam, not truncated", r)
	}
}

// TestConfig: bad settings are refused.
func TestConfig(t *testing.T) {
	for _, mod := range []func(*spamassassin.Config){
		func(c *spamassassin.Config) { c.Address = "localhost" },
		func(c *spamassassin.Config) { c.Address = "unix:relative.sock" },
		func(c *spamassassin.Config) { c.Address = ":783" },
		func(c *spamassassin.Config) { c.MaxScanSize = -1 },
		func(c *spamassassin.Config) { c.MaxScanSize = 0 },
		func(c *spamassassin.Config) { c.Timeout = -1 },
		func(c *spamassassin.Config) { c.User = "a\r\nSpam: yes" },
	} {
		cfg := spamassassin.DefaultConfig()
		mod(&cfg)
		if _, err := spamassassin.New(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	for _, a := range []string{"127.0.0.1:783", "tcp:[::1]:783", "unix:/run/spamd.sock", "/run/spamd.sock"} {
		cfg := spamassassin.DefaultConfig()
		cfg.Address = a
		if _, err := spamassassin.New(cfg); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}
