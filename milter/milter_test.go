package milter_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"chainmail/checks"
	"chainmail/checks/verdictlog"
	"chainmail/milter"
	"chainmail/milter/miltertest"
)

// seen records what a check was given.
type seen struct {
	ClientIP   string
	ClientName string
	HELO       string
	From       string
	Rcpts      []string
	QueueID    string
	Auth       string
	Header     string
	BodySize   int64
	BodyHead   string
	Subject    string
	NumFields  int
}

// recorder is a check that records every message and classifies it by a
// keyword in the Subject.
type recorder struct {
	mu   sync.Mutex
	msgs []seen
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	head := make([]byte, 64)
	n, _ := io.ReadFull(m.BodyReader(), head)
	s := seen{
		ClientName: m.ClientName, HELO: m.HELO, From: m.MailFrom, Rcpts: m.Rcpts,
		QueueID: m.QueueID, Auth: m.AuthUser, Header: string(m.RawHeader()), Subject: m.Subject(),
		BodyHead: string(head[:n]), NumFields: len(m.Header),
	}
	if m.ClientIP != nil {
		s.ClientIP = m.ClientIP.String()
	}
	if m.Body != nil {
		s.BodySize = m.Body.Size()
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, s)
	r.mu.Unlock()
	subj := strings.ToLower(m.Subject())
	res := checks.Result{Status: checks.StatusNone}
	switch {
	case strings.Contains(subj, "panic"):
		panic("asked to")
	case strings.Contains(subj, "reject"):
		res.Symbols = []checks.Symbol{{Name: "TEST_REJECT", Score: 20}}
	case strings.Contains(subj, "quarantine"):
		res.Symbols = []checks.Symbol{{Name: "TEST_HOLD", Score: 11}}
	case strings.Contains(subj, "tag"):
		res.Symbols = []checks.Symbol{{Name: "TEST_TAG", Score: 6}}
	case strings.Contains(subj, "auth"):
		res.AuthResults = []authres.Result{&authres.SPFResult{Value: authres.ResultPass, From: "example.com"}}
	}
	return res
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.msgs...)
}

func newEngine(t testing.TB, rec *recorder, rules ...checks.Rule) *checks.Engine {
	t.Helper()
	p := checks.DefaultPolicy()
	p.Hostname = "mx.chainmail.test"
	p.SubjectTag = "***SPAM*** %s"
	p.Rules = rules
	if err := p.Compile([]string{"recorder"}); err != nil {
		t.Fatal(err)
	}
	return &checks.Engine{
		Chain:  &checks.Chain{Steps: []checks.Step{{Check: rec, Timeout: 5 * time.Second}}},
		Policy: p,
		Known:  []string{"recorder"},
	}
}

var clientEnv = checks.Envelope{
	ClientIP: net.ParseIP("192.0.2.10"), ClientName: "mail.example.com", ClientPort: 40000,
	HELO: "mail.example.com", MailFrom: "alice@example.com", Rcpts: []string{"bob@example.org"},
	QueueID: "4ABCDEF123",
}

func msg(subject string) string {
	return "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob.\r\n"
}

// Every message of one milter connection keeps the client address and
// HELO, whatever the verdict on the message before it (go-milter replaces
// the backend after accept, reject, tempfail and discard).
func TestConnectionFactsSurviveEveryVerdict(t *testing.T) {
	rec := &recorder{}
	eng := newEngine(t, rec, checks.Rule{Name: "drop", If: `envelope.from == "drop@example.com"`, Action: checks.Discard})
	srv := miltertest.Start(t, eng)
	sess := srv.Dial(t, clientEnv)

	steps := []struct {
		subject, from, want string
	}{
		{"plain", "alice@example.com", "accept"},
		{"please reject", "alice@example.com", "reject"},
		{"plain again", "alice@example.com", "accept"},
		{"bye", "drop@example.com", "discard"},
		{"hold quarantine", "alice@example.com", "quarantine"},
		{"tag me", "alice@example.com", "accept"},
		{"last", "alice@example.com", "accept"},
	}
	for i, st := range steps {
		env := clientEnv
		env.MailFrom = st.from
		env.QueueID = fmt.Sprintf("Q%d", i)
		out, err := sess.Send(env, strings.NewReader(msg(st.subject)))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if out.Action != st.want {
			t.Errorf("message %d (%s): action %s, want %s", i, st.subject, out.Action, st.want)
		}
	}
	got := rec.all()
	if len(got) != len(steps) {
		t.Fatalf("check saw %d messages, want %d", len(got), len(steps))
	}
	for i, s := range got {
		if s.ClientIP != "192.0.2.10" || s.HELO != "mail.example.com" || s.ClientName != "mail.example.com" {
			t.Errorf("message %d: client %q name %q helo %q; want 192.0.2.10 mail.example.com mail.example.com", i, s.ClientIP, s.ClientName, s.HELO)
		}
		if s.QueueID != fmt.Sprintf("Q%d", i) {
			t.Errorf("message %d: queue id %q", i, s.QueueID)
		}
	}
}

// Separate connections never see each other's facts, even when they
// interleave.
func TestConcurrentConnectionsKeepTheirOwnFacts(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec))
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			env := clientEnv
			env.ClientIP = net.IPv4(198, 51, 100, byte(c+1))
			env.HELO = fmt.Sprintf("host%d.example", c)
			sess, err := srv.Client().Dial(env)
			if err != nil {
				errs <- err
				return
			}
			defer sess.Close()
			for i := 0; i < 5; i++ {
				env.MailFrom = fmt.Sprintf("c%d@example.com", c)
				subj := "plain"
				if i%2 == 1 {
					subj = "reject"
				}
				if _, err := sess.Send(env, strings.NewReader(msg(subj))); err != nil {
					errs <- err
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := rec.all()
	if len(got) != 40 {
		t.Fatalf("saw %d messages, want 40", len(got))
	}
	for _, s := range got {
		var c int
		fmt.Sscanf(s.From, "c%d@", &c)
		if want := fmt.Sprintf("198.51.100.%d", c+1); s.ClientIP != want || s.HELO != fmt.Sprintf("host%d.example", c) {
			t.Errorf("sender %s: client %s helo %s, want %s host%d.example", s.From, s.ClientIP, s.HELO, want, c)
		}
	}
}

func TestVerdictsBecomeMilterActions(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec))

	out := srv.Send(t, clientEnv, msg("reject this"))
	if out.Action != "reject" || out.Reply != "550 5.7.1 Message rejected as spam" {
		t.Errorf("reject: %+v", out)
	}
	out = srv.Send(t, clientEnv, msg("quarantine this"))
	if out.Action != "quarantine" || !strings.HasPrefix(out.Quarantine, "chainmail: held as suspected spam") || len(out.Quarantine) > 100 {
		t.Errorf("quarantine: %+v", out)
	}
	out = srv.Send(t, clientEnv, msg("tag this"))
	if out.Action != "accept" {
		t.Errorf("tag: %+v", out)
	}
	want := map[string]string{
		"X-Spam-Status": "Yes, score=6.00 required=5.00 tests=TEST_TAG",
		"Subject[1]":    "***SPAM*** tag this",
	}
	for _, h := range out.Headers {
		if w, ok := want[h.Name]; ok {
			if h.Value != w {
				t.Errorf("tag: header %s = %q, want %q", h.Name, h.Value, w)
			}
			delete(want, h.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("tag: headers missing: %v (got %+v)", want, out.Headers)
	}
	out = srv.Send(t, clientEnv, msg("panic please"))
	if out.Action != "tempfail" || out.Reply != "451 4.7.1 Temporary failure while checking the message, try again later" {
		t.Errorf("a panicking check must tempfail the message, got %+v", out)
	}
}

// The check sees the header block rebuilt in order, duplicates kept, and
// the body byte for byte; forged Authentication-Results with our
// authserv-id are removed from the highest index down.
func TestHeaderRebuildAndAuthResultsRemoval(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec))
	raw := "Received: from a by b\r\n\tid 1; Mon, 1 Jan 2024 00:00:00 +0000\r\n" +
		"Authentication-Results: mx.chainmail.test; spf=pass smtp.mailfrom=evil.example\r\n" +
		"Received: from c by d\r\n" +
		"Authentication-Results: other.example; dkim=pass\r\n" +
		"Authentication-Results: mx.chainmail.test (forged); dkim=pass\r\n" +
		"From: a@example.com\r\nSubject: auth\r\n\r\nbody line 1\r\nbody line 2\r\n"
	out := srv.Send(t, clientEnv, raw)
	got := rec.all()[0]
	wantHeader := raw[:strings.Index(raw, "\r\n\r\n")+4]
	if got.Header != wantHeader {
		t.Errorf("rebuilt header:\n%q\nwant\n%q", got.Header, wantHeader)
	}
	if got.BodyHead != "body line 1\r\nbody line 2\r\n" {
		t.Errorf("body %q", got.BodyHead)
	}
	var deletions []string
	var ar string
	for _, h := range out.Headers {
		if strings.HasPrefix(h.Name, "Authentication-Results[") && h.Value == "" {
			deletions = append(deletions, h.Name)
		}
		if h.Name == "Authentication-Results" {
			ar = h.Value
		}
	}
	if strings.Join(deletions, " ") != "Authentication-Results[3] Authentication-Results[1]" {
		t.Errorf("deletions %v, want indexes 3 then 1", deletions)
	}
	if !strings.HasPrefix(ar, "mx.chainmail.test;") || !strings.Contains(ar, "spf=pass") {
		t.Errorf("Authentication-Results %q", ar)
	}
}

// bigBody produces n bytes of body lines without holding them in memory.
type bigBody struct{ left int }

func (b *bigBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	line := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"
	n := 0
	for n+len(line) <= len(p) && b.left > 0 {
		n += copy(p[n:], line)
		b.left -= len(line)
	}
	if n == 0 {
		n = copy(p, line[:min(len(p), len(line))])
		b.left -= n
	}
	return n, nil
}

// A 50 MB message is spooled to disk: the server's heap does not grow
// with the message.
func TestLargeMessageIsSpooled(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec), func(o *milter.Options) { o.SpoolThreshold = 1 << 20 })
	sess := srv.Dial(t, clientEnv)
	const size = 50 << 20
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := uint64(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak {
					peak = ms.HeapInuse
				}
			}
		}
	}()
	hdr := "From: a@example.com\r\nSubject: big\r\n\r\n"
	out, err := sess.Send(clientEnv, io.MultiReader(strings.NewReader(hdr), &bigBody{left: size}))
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if out.Action != "accept" {
		t.Errorf("action %s", out.Action)
	}
	got := rec.all()[0]
	if got.BodySize < size {
		t.Errorf("check saw %d body bytes, want >= %d", got.BodySize, size)
	}
	// Client and server share this process; both stream. Allow generous
	// slack for buffers, never the message itself.
	if growth := int64(peak) - int64(before.HeapInuse); growth > 24<<20 {
		t.Errorf("heap grew by %d MB while passing a 50 MB message", growth>>20)
	}
}

func TestManyHeadersAndRecipients(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec))
	var b strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: value %d\r\n", i, i)
	}
	b.WriteString("Subject: many\r\n\r\nbody\r\n")
	env := clientEnv
	env.Rcpts = nil
	for i := 0; i < 1000; i++ {
		env.Rcpts = append(env.Rcpts, fmt.Sprintf("user%d@example.org", i))
	}
	out := srv.Send(t, env, b.String())
	if out.Action != "accept" {
		t.Fatalf("action %s", out.Action)
	}
	got := rec.all()[0]
	if got.NumFields != 10001 || len(got.Rcpts) != 1000 || got.Subject != "many" {
		t.Errorf("fields %d rcpts %d subject %q", got.NumFields, len(got.Rcpts), got.Subject)
	}
}

// A header block over the limit is refused with a permanent error, never
// checked partially.
func TestHeaderOverLimitIsRejected(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec), func(o *milter.Options) { o.MaxHeaderBytes = 4096 })
	var b strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %s\r\n", i, strings.Repeat("x", 40))
	}
	b.WriteString("\r\nbody\r\n")
	out := srv.Send(t, clientEnv, b.String())
	if out.Action != "reject" || !strings.HasPrefix(out.Reply, "552 5.3.4") {
		t.Errorf("got %+v", out)
	}
	if len(rec.all()) != 0 {
		t.Errorf("a truncated message was checked")
	}
}

func TestMissingMacrosAndOddInput(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec))
	env := checks.Envelope{MailFrom: "", Rcpts: []string{"x@example.org"}} // no client, null sender
	raw := "Subject: caf\xe9 \xff\xfe invalid\r\nFrom: \x80\x81@example.com\r\n\r\n"
	out := srv.Send(t, env, raw)
	if out.Action != "accept" {
		t.Fatalf("action %s", out.Action)
	}
	got := rec.all()[0]
	if got.ClientIP != "" || got.From != "" || got.BodySize != 0 {
		t.Errorf("got %+v", got)
	}
	if !strings.Contains(got.Header, "Subject: caf\xe9 \xff\xfe invalid\r\n") {
		t.Errorf("8-bit header not kept byte for byte: %q", got.Header)
	}
}

// Malformed packets and vanishing clients end their own session only.
func TestBadClientsDoNotHurtOthers(t *testing.T) {
	rec := &recorder{}
	srv := miltertest.Start(t, newEngine(t, rec))
	inputs := [][]byte{
		{0, 0, 0, 0},                          // zero length
		{0xff, 0xff, 0xff, 0xff, 'O'},         // absurd length
		{0, 0, 0, 1, 'Z'},                     // unknown command
		{0, 0, 0, 2, 'C', 'x'},                // malformed connect
		{0, 0, 0, 1, 'M'},                     // MAIL before negotiation
		[]byte("EHLO this is not milter\r\n"), // wrong protocol
	}
	for _, in := range inputs {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(in)
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, c)
		c.Close()
	}
	// A client that vanishes in the middle of the body.
	sess := srv.Dial(t, clientEnv)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("Subject: cut\r\n\r\npartial body"))
		pw.CloseWithError(fmt.Errorf("client vanished"))
	}()
	if _, err := sess.Send(clientEnv, pr); err == nil {
		t.Fatal("send of a broken message succeeded")
	}
	sess.Close()

	out := srv.Send(t, clientEnv, msg("still alive"))
	if out.Action != "accept" {
		t.Fatalf("server unusable after bad clients: %+v", out)
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d messages checked, want only the good one", n)
	}
}

// Shutdown lets the message being checked finish and refuses new ones.
func TestShutdownFinishesInFlight(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	slow := checkFunc(func(ctx context.Context, m *checks.Message) checks.Result {
		close(started)
		<-release
		return checks.Result{Status: checks.StatusNone}
	})
	p := checks.DefaultPolicy()
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: slow}}}, Policy: p}
	srv := miltertest.Start(t, eng)
	sess := srv.Dial(t, clientEnv)
	res := make(chan *milter.Outcome, 1)
	go func() {
		out, err := sess.Send(clientEnv, strings.NewReader(msg("slow")))
		if err != nil {
			t.Error(err)
		}
		res <- out
	}()
	// The message is being evaluated (a fixed sleep here let Shutdown
	// come first on a loaded machine).
	<-started
	shut := shutdownInBackground(srv)
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
		t.Error("listener still accepting during shutdown")
	}
	close(release)
	out := <-res
	if out == nil || out.Action != "accept" {
		t.Errorf("in-flight message: %+v", out)
	}
	<-shut
}

type checkFunc func(ctx context.Context, m *checks.Message) checks.Result

func (f checkFunc) Name() string { return "func" }
func (f checkFunc) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	return f(ctx, m)
}

func TestParseAddr(t *testing.T) {
	for _, c := range []struct{ in, network, addr string }{
		{"inet:127.0.0.1:10025", "tcp", "127.0.0.1:10025"},
		{"inet:10025@127.0.0.1", "tcp", "127.0.0.1:10025"},
		{"inet6:[::1]:10025", "tcp", "[::1]:10025"},
		{"unix:/run/chainmail.sock", "unix", "/run/chainmail.sock"},
		{"local:/run/chainmail.sock", "unix", "/run/chainmail.sock"},
		{"127.0.0.1:10025", "tcp", "127.0.0.1:10025"},
	} {
		n, a, err := milter.ParseAddr(c.in)
		if err != nil || n != c.network || a != c.addr {
			t.Errorf("ParseAddr(%q) = %q %q %v, want %q %q", c.in, n, a, err, c.network, c.addr)
		}
	}
	for _, bad := range []string{"", "inet:", "inet:nohost", "unix:", "smtp:1.2.3.4:25"} {
		if _, _, err := milter.ParseAddr(bad); err == nil {
			t.Errorf("ParseAddr(%q) accepted", bad)
		}
	}
}

// rcptGate refuses recipients at RCPT time by their local part.
type rcptGate struct{}

func (g *rcptGate) Name() string { return "gate" }
func (g *rcptGate) Check(context.Context, *checks.Message, checks.Results) checks.Result {
	return checks.Result{Status: checks.StatusNone}
}

func (g *rcptGate) CheckRcpt(ctx context.Context, env *checks.Envelope, rcpt string) checks.RcptResult {
	switch {
	case strings.HasPrefix(rcpt, "full@"):
		return checks.RcptResult{Action: checks.Tempfail, Code: "451", Reply: "4.2.2 Mailbox over quota",
			Events: []checks.Event{{Name: "quota", Line: "quota hit for " + rcpt + " from " + env.ClientIP.String()}}}
	case strings.HasPrefix(rcpt, "gone@"):
		return checks.RcptResult{Action: checks.Reject}
	case strings.HasPrefix(rcpt, "broken@"):
		return checks.RcptResult{Err: fmt.Errorf("store down")}
	}
	return checks.RcptResult{}
}

// RCPT-time checks refuse single recipients before any data is sent; the
// message goes on to the others, and a check that cannot decide lets the
// recipient through.
func TestRcptTimeRefusal(t *testing.T) {
	g := &rcptGate{}
	rec := &recorder{}
	eng := newEngine(t, rec)
	eng.Chain.Steps = append(eng.Chain.Steps, checks.Step{Check: g})
	var mu sync.Mutex
	var logged []string
	eng.Observer = eventsFunc(func(env *checks.Envelope, evs []checks.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			logged = append(logged, verdictlog.Text(e))
		}
	})
	srv := miltertest.Start(t, eng)
	env := clientEnv
	env.Rcpts = []string{"full@example.org", "bob@example.org", "gone@example.org", "broken@example.org"}
	out := srv.Send(t, env, msg("hello"))
	if out.Action != "accept" {
		t.Fatalf("%+v", out)
	}
	want := []string{"full@example.org: 451 4.2.2 Mailbox over quota", "gone@example.org: 550 5.7.1 Message rejected as spam"}
	if strings.Join(out.Refused, "|") != strings.Join(want, "|") {
		t.Errorf("refused %q, want %q", out.Refused, want)
	}
	got := rec.all()
	if len(got) != 1 || strings.Join(got[0].Rcpts, ",") != "bob@example.org,broken@example.org" {
		t.Errorf("the message was checked with recipients %v", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 2 || logged[0] != "quota hit for full@example.org from 192.0.2.10" || !strings.Contains(logged[1], "store down") {
		t.Errorf("events %q", logged)
	}
	env.Rcpts = []string{"gone@example.org"}
	if out := srv.Send(t, env, msg("x")); out.Stage != "rcpt" || out.Action != "reject" {
		t.Errorf("all recipients refused: %+v", out)
	}
}

// bodyRewriter replaces the body with a long multi-packet one.
type bodyRewriter struct{ body []byte }

func (b *bodyRewriter) Name() string { return "rewriter" }
func (b *bodyRewriter) Check(context.Context, *checks.Message, checks.Results) checks.Result {
	sp := checks.NewSpool(0, "")
	sp.Write(b.body)
	return checks.Result{Status: checks.StatusNone, NewBody: sp}
}

// A replacement body reaches the MTA whole, across several packets, with
// no line end broken at a packet boundary.
func TestBodyReplacement(t *testing.T) {
	var body bytes.Buffer
	for i := 0; body.Len() < 200000; i++ {
		fmt.Fprintf(&body, "line %d of the replacement body, long enough to cross packets\r\n", i)
	}
	p := checks.DefaultPolicy()
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: &bodyRewriter{body.Bytes()}}}}, Policy: p}
	srv := miltertest.Start(t, eng)
	out := srv.Send(t, clientEnv, msg("rewrite"))
	want := strings.ReplaceAll(body.String(), "\r\n", "\n")
	if out.Action != "accept" || string(out.Body) != want {
		t.Fatalf("action %s, body %d bytes (CR count %d), want %d bytes", out.Action, len(out.Body), bytes.Count(out.Body, []byte("\r")), len(want))
	}
}

// shutdownInBackground starts srv's shutdown (10 s grace) and returns a
// channel closed when it has returned.
func shutdownInBackground(srv *miltertest.Server) <-chan struct{} {
	shut := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(shut)
	}()
	return shut
}

// eventsFunc observes the engine's RCPT-time events only.
type eventsFunc func(*checks.Envelope, []checks.Event)

func (eventsFunc) Step(checks.Result) {}

func (eventsFunc) Verdict(*checks.Message, *checks.Verdict, time.Duration) []string { return nil }

func (f eventsFunc) Events(env *checks.Envelope, evs []checks.Event) { f(env, evs) }
