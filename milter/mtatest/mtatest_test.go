package mtatest

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-milter"
)

// ---- a tiny milter that decides by Subject ----

// seen is what the test milter learnt about one message at end of body.
type seen struct {
	Subject     string
	QueueID     string // macro i at end of message
	ClientAddr  string // macro {client_addr} at MAIL
	ConnectAddr string // address given to Connect on this backend ("" if none)
}

type recorder struct {
	mu       sync.Mutex
	connects []string
	msgs     []seen
}

func (r *recorder) connectAddrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.connects...)
}

func (r *recorder) messages() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.msgs...)
}

// subjectMilter answers at end of body according to the Subject:
// "reject" → 550 5.7.1, "tempfail" → 451 4.7.1, "hold" → quarantine and
// accept, anything else → add "X-Test: yes" and accept.
type subjectMilter struct {
	milter.NoOpMilter
	rec         *recorder
	connectAddr string
	clientAddr  string
	subject     string
}

func (m *subjectMilter) Connect(host, family string, port uint16, addr net.IP, mod *milter.Modifier) (milter.Response, error) {
	m.connectAddr = addr.String()
	m.rec.mu.Lock()
	m.rec.connects = append(m.rec.connects, m.connectAddr)
	m.rec.mu.Unlock()
	return milter.RespContinue, nil
}

func (m *subjectMilter) MailFrom(from string, mod *milter.Modifier) (milter.Response, error) {
	m.subject = ""
	m.clientAddr = mod.Macros["{client_addr}"]
	return milter.RespContinue, nil
}

func (m *subjectMilter) Header(name, value string, mod *milter.Modifier) (milter.Response, error) {
	if strings.EqualFold(name, "Subject") {
		m.subject = strings.TrimSpace(value)
	}
	return milter.RespContinue, nil
}

func (m *subjectMilter) Headers(h textproto.MIMEHeader, mod *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}

func (m *subjectMilter) Body(mod *milter.Modifier) (milter.Response, error) {
	m.rec.mu.Lock()
	m.rec.msgs = append(m.rec.msgs, seen{
		Subject:     m.subject,
		QueueID:     mod.Macros["i"],
		ClientAddr:  m.clientAddr,
		ConnectAddr: m.connectAddr,
	})
	m.rec.mu.Unlock()
	switch m.subject {
	case "reject":
		return milter.NewResponseStr('y', "550 5.7.1 rejected by test"), nil
	case "tempfail":
		return milter.NewResponseStr('y', "451 4.7.1 tempfailed by test"), nil
	case "hold":
		if err := mod.Quarantine("test hold"); err != nil {
			return nil, err
		}
		return milter.RespAccept, nil
	default:
		if err := mod.AddHeader("X-Test", "yes"); err != nil {
			return nil, err
		}
		return milter.RespAccept, nil
	}
}

// startTestMilter serves subjectMilter on 127.0.0.1:0 until t's cleanup and
// returns its port.
func startTestMilter(t *testing.T) (int, *recorder) {
	t.Helper()
	rec := &recorder{}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &milter.Server{
		NewMilter: func() milter.Milter { return &subjectMilter{rec: rec} },
		Actions:   milter.OptAddHeader | milter.OptChangeHeader | milter.OptQuarantine,
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	// Closing the listener ends Serve. go-milter's own Server.Close writes
	// a flag its accept loop reads unsynchronised (a data race under
	// -race), and only knows listeners Serve has registered.
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port, rec
}

func message(subject string) []byte {
	return []byte("From: Sender <sender@example.org>\r\n" +
		"To: rcpt@example.net\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.org>\r\n" +
		"\r\n" +
		"Hello.\r\n" +
		".leading dot survives\r\n")
}

func wantReply(t *testing.T, what string, got Reply, code int, enhanced string) {
	t.Helper()
	if got.Code != code || got.Enhanced != enhanced {
		t.Errorf("%s: got %v, want %d %s", what, got, code, enhanced)
	}
}

func checkAccepted(t *testing.T, d Delivered, subject string) {
	t.Helper()
	if got := d.Header("Subject"); got != subject {
		t.Errorf("delivered Subject %q, want %q", got, subject)
	}
	if got := d.Header("X-Test"); got != "yes" {
		t.Errorf("delivered X-Test %q, want \"yes\"; message:\n%s", got, d.Data)
	}
	if d.Sender != "sender@example.org" || len(d.Rcpts) != 1 || d.Rcpts[0] != "rcpt@example.net" {
		t.Errorf("delivered envelope %q → %q", d.Sender, d.Rcpts)
	}
	if !strings.Contains(string(d.Data), "\r\n.leading dot survives\r\n") {
		t.Errorf("dot-stuffing not undone end to end:\n%s", d.Data)
	}
}

// ---- Postfix ----

func TestPostfixVerdicts(t *testing.T) {
	port, rec := startTestMilter(t)
	pf := StartPostfix(t, PostfixOptions{Milter: fmt.Sprintf("inet:127.0.0.1:%d", port)})

	c := pf.Dial(t)
	if rep := c.Ehlo("client.example"); rep.Code != 250 {
		t.Fatalf("EHLO: %v", rep)
	}
	to := []string{"rcpt@example.net"}
	wantReply(t, "reject", c.Send("sender@example.org", to, message("reject")), 550, "5.7.1")
	wantReply(t, "tempfail", c.Send("sender@example.org", to, message("tempfail")), 451, "4.7.1")
	wantReply(t, "hold", c.Send("sender@example.org", to, message("hold")), 250, "2.0.0")
	wantReply(t, "accept", c.Send("sender@example.org", to, message("accept")), 250, "2.0.0")
	c.Quit()

	got := pf.Delivered(t, 1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("delivered %d messages, want only the accepted one", len(got))
	}
	checkAccepted(t, got[0], "accept")

	held := pf.HoldQueue(t)
	if len(held) != 1 {
		t.Fatalf("hold queue %q, want one message\n%s", held, pf.Log())
	}
	var holdID string
	for _, m := range rec.messages() {
		if m.Subject == "hold" {
			holdID = m.QueueID
		}
	}
	if holdID == "" || held[0] != holdID {
		t.Errorf("hold queue has %q; milter saw queue id (macro i) %q", held[0], holdID)
	}
	if !strings.Contains(pf.Log(), "milter-hold: END-OF-MESSAGE") {
		t.Errorf("maillog does not show the milter hold:\n%s", pf.Log())
	}
}

func TestPostfixXClientSession(t *testing.T) {
	port, rec := startTestMilter(t)
	pf := StartPostfix(t, PostfixOptions{Milter: fmt.Sprintf("inet:127.0.0.1:%d", port)})

	c := pf.Dial(t)
	if rep := c.Ehlo("client.example"); rep.Code != 250 {
		t.Fatalf("EHLO: %v", rep)
	}
	if rep := c.XClient("ADDR=192.0.2.10 NAME=mail.example.com HELO=mail.example.com"); rep.Code != 220 {
		t.Fatalf("XCLIENT: %v", rep)
	}
	subjects := []string{"first", "second", "third"}
	for _, s := range subjects {
		wantReply(t, s, c.Send("sender@example.org", []string{"rcpt@example.net"}, message(s)), 250, "2.0.0")
	}
	c.Quit()

	// Postfix delivers in parallel: arrival order need not be submission order.
	bySubject := map[string]Delivered{}
	for _, d := range pf.Delivered(t, len(subjects), 10*time.Second) {
		bySubject[d.Header("Subject")] = d
	}
	for _, s := range subjects {
		d, ok := bySubject[s]
		if !ok {
			t.Errorf("message %q not delivered", s)
			continue
		}
		checkAccepted(t, d, s)
	}
	if conns := rec.connectAddrs(); len(conns) == 0 || conns[len(conns)-1] != "192.0.2.10" {
		t.Errorf("milter Connect addresses %q, want the XCLIENT address 192.0.2.10 last", conns)
	}
	msgs := rec.messages()
	if len(msgs) != len(subjects) {
		t.Fatalf("milter saw %d messages, want %d: %+v", len(msgs), len(subjects), msgs)
	}
	ids := map[string]bool{}
	for i, m := range msgs {
		if m.Subject != subjects[i] || m.ClientAddr != "192.0.2.10" || m.QueueID == "" || ids[m.QueueID] {
			t.Errorf("message %d at the milter: %+v (want subject %q, {client_addr} 192.0.2.10, a new queue id)", i+1, m, subjects[i])
		}
		ids[m.QueueID] = true
		// go-milter hands messages 2.. to a fresh backend that never saw
		// Connect (DESIGN.md, "Milter facts"); chainmail's milter must cope.
		t.Logf("message %d: queue id %s, {client_addr} %s, Connect on this backend %q", i+1, m.QueueID, m.ClientAddr, m.ConnectAddr)
	}
}

func TestPostfixMilterDown(t *testing.T) {
	// A port nothing listens on: Postfix cannot reach the milter at all.
	down := fmt.Sprintf("inet:127.0.0.1:%d", freePort(t))

	t.Run("tempfail", func(t *testing.T) {
		t.Parallel()
		pf := StartPostfix(t, PostfixOptions{Milter: down, DefaultAction: "tempfail"})
		c := pf.Dial(t)
		c.Ehlo("client.example")
		rep := c.Send("sender@example.org", []string{"rcpt@example.net"}, message("accept"))
		wantReply(t, "milter down, tempfail", rep, 451, "4.7.1")
		c.Quit()
	})
	t.Run("accept", func(t *testing.T) {
		t.Parallel()
		pf := StartPostfix(t, PostfixOptions{Milter: down, DefaultAction: "accept"})
		c := pf.Dial(t)
		c.Ehlo("client.example")
		rep := c.Send("sender@example.org", []string{"rcpt@example.net"}, message("untouched"))
		wantReply(t, "milter down, accept", rep, 250, "2.0.0")
		c.Quit()
		d := pf.Delivered(t, 1, 10*time.Second)[0]
		if _, ok := d.HeaderOK("X-Test"); ok || d.Header("Subject") != "untouched" {
			t.Errorf("want the message delivered untouched, got:\n%s", d.Data)
		}
	})
}

// ---- sendmail ----

func TestSendmail(t *testing.T) {
	port, rec := startTestMilter(t)
	sm := StartSendmail(t, SendmailOptions{Milter: fmt.Sprintf("inet:127.0.0.1:%d", port)})

	c := sm.Dial(t)
	if rep := c.Ehlo("client.example"); rep.Code != 250 {
		t.Fatalf("EHLO: %v", rep)
	}
	to := []string{"rcpt@example.net"}
	wantReply(t, "reject", c.Send("sender@example.org", to, message("reject")), 550, "5.7.1")
	rep := c.Send("sender@example.org", to, message("accept"))
	if rep.Code != 250 {
		t.Errorf("accept: got %v, want 250", rep)
	}
	c.Quit()

	got := sm.Delivered(t, 1, 20*time.Second)
	if len(got) != 1 {
		t.Fatalf("delivered %d messages, want 1", len(got))
	}
	checkAccepted(t, got[0], "accept")
	for _, m := range rec.messages() {
		if m.ClientAddr != "127.0.0.1" || m.QueueID == "" {
			t.Errorf("sendmail gave the milter %+v, want {client_addr} 127.0.0.1 and a queue id", m)
		}
	}
}

// ---- pieces that need no MTA ----

func TestDotStuff(t *testing.T) {
	got := string(DotStuff([]byte("a\n.b\r\n..c\nlast")))
	want := "a\r\n..b\r\n...c\r\nlast\r\n.\r\n"
	if got != want {
		t.Errorf("DotStuff = %q, want %q", got, want)
	}
}

func TestSplitEnhanced(t *testing.T) {
	for _, tc := range []struct {
		code      int
		text, enh string
		rest      string
	}{
		{550, "5.7.1 rejected by test", "5.7.1", "rejected by test"},
		{451, "4.7.1 Service unavailable", "4.7.1", "Service unavailable"},
		{250, "mx.example ESMTP", "", "mx.example ESMTP"},
		{550, "4.7.1 class mismatch", "", "4.7.1 class mismatch"},
	} {
		enh, rest := splitEnhanced(tc.code, tc.text)
		if enh != tc.enh || rest != tc.rest {
			t.Errorf("splitEnhanced(%d, %q) = %q, %q", tc.code, tc.text, enh, rest)
		}
	}
}

func TestSendmailMilterSpec(t *testing.T) {
	for in, want := range map[string]string{
		"inet:127.0.0.1:10025": "inet:10025@127.0.0.1",
		"inet:10025@127.0.0.1": "inet:10025@127.0.0.1",
		"inet6:[::1]:10025":    "inet6:10025@::1",
		"unix:/run/m.sock":     "unix:/run/m.sock",
		"local:/run/m.sock":    "local:/run/m.sock",
		"/run/m.sock":          "unix:/run/m.sock",
	} {
		got, err := sendmailMilterSpec(in)
		if err != nil || got != want {
			t.Errorf("sendmailMilterSpec(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := sendmailMilterSpec("inet:nonsense"); err == nil {
		t.Error("sendmailMilterSpec accepted inet:nonsense")
	}
}
