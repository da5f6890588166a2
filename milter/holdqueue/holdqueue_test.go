package holdqueue

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/milter/mtatest"
)

// holdSender is put on hold by the Postfix instances of these tests: the
// HOLD action of check_sender_access lands the message in the hold queue
// exactly as a milter's quarantine does.
const holdSender = "hold@example.net"

// startPostfix starts a private Postfix that holds mail from holdSender,
// and a Queue on its configuration directory with the real commands.
func startPostfix(t *testing.T, extra map[string]string) (*mtatest.Postfix, *Queue) {
	t.Helper()
	main := map[string]string{
		"smtpd_sender_restrictions": "check_sender_access inline:{" + holdSender + "=HOLD}",
	}
	for k, v := range extra {
		main[k] = v
	}
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Main: main})
	return pf, New(Config{ConfigDir: filepath.Join(pf.Dir(), "conf")})
}

// send submits msg and returns its queue id from the 250 reply.
func send(t *testing.T, pf *mtatest.Postfix, from string, to []string, msg []byte) string {
	t.Helper()
	c := pf.Dial(t)
	defer c.Quit()
	if r := c.Ehlo("client.example"); r.Code != 250 {
		t.Fatalf("EHLO: %v", r)
	}
	r := c.Send(from, to, msg)
	_, id, ok := strings.Cut(r.Text, "queued as ")
	if r.Code != 250 || !ok || !ValidID(id) {
		t.Fatalf("sending from %s: %v", from, r)
	}
	return id
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// messageA has everything that could go wrong on the way through the queue
// file: a folded header field, a line longer than Postfix's
// line_length_limit (stored as several records), 8-bit text, a line that
// starts with a dot, an empty line inside the body. Date and Message-ID are
// present so that Postfix adds nothing but its Received field.
func messageA() []byte {
	long := strings.Repeat("0123456789", 500) // 5000 characters
	return []byte("From: Quarantined <hold@example.net>\r\n" +
		"To: Bob <bob@example.org>, Carol <carol@example.org>\r\n" +
		"Subject: held for\r\n  review\r\n" +
		"Date: Mon, 7 Dec 2026 09:00:00 +0000\r\n" +
		"Message-ID: <held.a@example.net>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n" +
		"\r\n" +
		"Grüße aus Zürich.\r\n" +
		".a line with a leading dot\r\n" +
		"\r\n" +
		long + "\r\n" +
		"last line\r\n")
}

func messageB() []byte {
	return []byte("From: <hold@example.net>\r\nTo: <dave@example.org>\r\nSubject: second\r\n" +
		"Date: Mon, 7 Dec 2026 09:00:01 +0000\r\nMessage-ID: <held.b@example.net>\r\n\r\nDelete me.\r\n")
}

func plain(from, subject string) []byte {
	return []byte("From: <" + from + ">\r\nTo: <bob@example.org>\r\nSubject: " + subject +
		"\r\nDate: Mon, 7 Dec 2026 09:00:02 +0000\r\nMessage-ID: <" + subject + "@example.net>\r\n\r\nPlain.\r\n")
}

// lf is msg as Postfix stores it: LF line ends.
func lf(msg []byte) []byte { return bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")) }

// cutReceived splits off the first header field (Postfix's Received) with
// its continuation lines.
func cutReceived(t *testing.T, msg []byte) (received string, rest []byte) {
	t.Helper()
	if !bytes.HasPrefix(msg, []byte("Received: ")) {
		t.Fatalf("the queued message does not start with Postfix's Received field:\n%.300s", msg)
	}
	end := 0
	for {
		nl := bytes.IndexByte(msg[end:], '\n')
		if nl < 0 {
			t.Fatalf("unterminated Received field")
		}
		end += nl + 1
		if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
			return string(msg[:end]), msg[end:]
		}
	}
}

// The whole life of quarantined mail through a real Postfix: held messages
// are listed with their envelope, read back exactly as sent, released (and
// delivered at once) or deleted (and never delivered).
func TestHoldQueue(t *testing.T) {
	pf, q := startPostfix(t, nil)
	ctx := context.Background()

	start := time.Now()
	idA := send(t, pf, holdSender, []string{"bob@example.org", "carol@example.org"}, messageA())
	time.Sleep(1100 * time.Millisecond) // arrival times one second apart: a defined order
	idB := send(t, pf, holdSender, []string{"dave@example.org"}, messageB())
	send(t, pf, "ham@example.net", []string{"bob@example.org"}, plain("ham@example.net", "ham"))
	waitFor(t, "two messages in the hold queue", func() bool { return len(pf.HoldQueue(t)) == 2 })
	if got := pf.Delivered(t, 1, 20*time.Second); len(got) != 1 || got[0].Sender != "ham@example.net" {
		t.Fatalf("delivered before any release: %+v", got)
	}

	// List: both held messages, newest first, with their envelopes; the
	// delivered one is not there.
	t0 := time.Now()
	held, err := q.List(ctx)
	t.Logf("List took %v", time.Since(t0).Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || held[0].QueueID != idB || held[1].QueueID != idA {
		t.Fatalf("List = %+v, want %s then %s", held, idB, idA)
	}
	a, b := held[1], held[0]
	if a.Sender != holdSender || strings.Join(a.Rcpts, ",") != "bob@example.org,carol@example.org" {
		t.Errorf("held A envelope: %+v", a)
	}
	if b.Sender != holdSender || strings.Join(b.Rcpts, ",") != "dave@example.org" {
		t.Errorf("held B envelope: %+v", b)
	}
	for _, h := range held {
		if h.Arrival.Before(start.Add(-2*time.Second)) || h.Arrival.After(time.Now().Add(time.Second)) {
			t.Errorf("%s arrival %v, want between %v and now", h.QueueID, h.Arrival, start)
		}
	}
	// message_size counts header and body about as sent (CRLF), so it is
	// at least the message sent and at most that plus the Received field.
	if n := int64(len(messageA())); a.Size < n || a.Size > n+400 {
		t.Errorf("held A size %d, sent %d bytes", a.Size, n)
	}

	// Message: the message exactly as sent, under the Received field
	// Postfix added, which names the queue id.
	t0 = time.Now()
	msg, err := q.Message(ctx, idA)
	t.Logf("Message took %v (%d bytes)", time.Since(t0).Round(time.Millisecond), len(msg))
	if err != nil {
		t.Fatal(err)
	}
	received, rest := cutReceived(t, msg)
	if !strings.Contains(received, "id "+idA) {
		t.Errorf("Received field without the queue id: %q", received)
	}
	if !bytes.Equal(rest, lf(messageA())) {
		t.Errorf("queued message differs from the one sent:\n got %q\nwant %q", rest, lf(messageA()))
	}
	if bytes.Contains(msg, []byte("*** ")) {
		t.Errorf("postcat markers in the message: %q", msg)
	}

	// The size bound: a message over it is an error, not a truncated copy.
	small := New(Config{ConfigDir: q.configDir})
	small.maxMessage = 1000
	if _, err := small.Message(ctx, idA); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Message over the bound: %v, want ErrTooLarge", err)
	}
	if m, err := small.Message(ctx, idB); err != nil || !bytes.HasSuffix(m, lf(messageB())) {
		t.Errorf("Message under the bound: %v %q", err, m)
	}

	// Release: out of the hold queue and delivered at once, not at the next
	// queue run (queue_run_delay is 10 s in the harness).
	t0 = time.Now()
	if err := q.Release(ctx, idA); err != nil {
		t.Fatal(err)
	}
	got := pf.Delivered(t, 2, 20*time.Second) // ham, then A (both recipients in one transaction)
	t.Logf("Release took effect: delivered %v after the call", time.Since(t0).Round(time.Millisecond))
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("released message delivered after %v, want at once", d)
	}
	var rcpts []string
	for _, d := range got[1:] {
		if d.Sender != holdSender {
			t.Errorf("unexpected delivery from %s", d.Sender)
			continue
		}
		rcpts = append(rcpts, d.Rcpts...)
		// Postfix's smtp client breaks lines over smtp_line_length_limit
		// (998) with LF SPACE on the way out: undo that on both sides.
		_, body := cutReceived(t, lf(d.Data))
		unfold := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n "), nil) }
		if !bytes.Equal(unfold(body), unfold(lf(messageA()))) {
			t.Errorf("released message delivered changed:\n%q", body)
		}
	}
	if strings.Join(rcpts, ",") != "bob@example.org,carol@example.org" && strings.Join(rcpts, ",") != "carol@example.org,bob@example.org" {
		t.Errorf("released message delivered to %v", rcpts)
	}
	if err := q.Release(ctx, idA); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Release: %v, want ErrNotFound", err)
	}
	if held, err := q.List(ctx); err != nil || len(held) != 1 || held[0].QueueID != idB {
		t.Errorf("List after Release = %+v, %v; want only %s", held, err, idB)
	}

	// Delete: gone from the hold queue and never delivered.
	if err := q.Delete(ctx, idB); err != nil {
		t.Fatal(err)
	}
	if held, err := q.List(ctx); err != nil || len(held) != 0 {
		t.Errorf("List after Delete = %+v, %v; want none", held, err)
	}
	if ids := pf.HoldQueue(t); len(ids) != 0 {
		t.Errorf("hold queue directory after Delete: %v", ids)
	}
	if _, err := q.Message(ctx, idB); !errors.Is(err, ErrNotFound) {
		t.Errorf("Message of a deleted message: %v, want ErrNotFound", err)
	}
	for name, op := range map[string]func(context.Context, string) error{"Delete": q.Delete, "Release": q.Release} {
		if err := op(ctx, idB); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a deleted message: %v, want ErrNotFound", name, err)
		}
	}
	// Another message goes through: the queue manager ran, and B is not
	// among what it delivered.
	send(t, pf, "late@example.net", []string{"bob@example.org"}, plain("late@example.net", "late"))
	got = pf.Delivered(t, len(got)+1, 20*time.Second)
	for _, d := range got {
		if bytes.Contains(d.Data, []byte("held.b@example.net")) {
			t.Errorf("deleted message was delivered")
		}
	}
}

// Release and Delete act on the hold queue only: mail waiting in the
// deferred queue is neither released (it is not held) nor deleted.
func TestOtherQueuesUntouched(t *testing.T) {
	// defer_transports keeps everything for smtp in the deferred queue.
	pf, q := startPostfix(t, map[string]string{"defer_transports": "smtp"})
	ctx := context.Background()
	id := send(t, pf, "waiting@example.net", []string{"bob@example.org"}, plain("waiting@example.net", "waiting"))
	waitFor(t, "the message in the deferred queue", func() bool {
		ids := pf.Queue(t, "deferred")
		return len(ids) == 1 && ids[0] == id
	})
	if held, err := q.List(ctx); err != nil || len(held) != 0 {
		t.Errorf("List = %+v, %v; want no held message", held, err)
	}
	if err := q.Delete(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete of a deferred message: %v, want ErrNotFound", err)
	}
	if err := q.Release(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Release of a deferred message: %v, want ErrNotFound", err)
	}
	if ids := pf.Queue(t, "deferred"); len(ids) != 1 || ids[0] != id {
		t.Errorf("deferred queue after Delete: %v, want %s still there", ids, id)
	}
}

// A queue id from a real Postfix passes; everything else is refused.
func TestValidID(t *testing.T) {
	good := []string{
		"4jjc6T4ycdz1SD8x", // long, as the harness's Postfix made one
		"4jjc6T538Vz1SD4d",
		"4Y8q2M3ZlTzHx",
		"3F1A2B4C5D", // short
		"A0B1C2D3E4F5",
	}
	for _, id := range good {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	bad := []string{
		"", "ALL", "-d", "-", "hold", "../hold/x", "4jjc6T4ycdz1SD8x hold", "4jjc6T4ycdz1SD8x\n",
		"4jjc6T4ycd",        // long without the separator
		"4jjc6T4ycdz",       // nothing after it
		"4jjc6T4ycdz1SD8xz", // inode part ends in z
		"4jjc6T4ycdz1SA8x",  // a vowel
		"4jjc6Tz1SD8x",      // time part too short
		"3f1a2b4c5d",        // hex in lower case
		"3F1A",              // too short for a short id
		"４jjc6T4ycdz1SD8x",  // a full-width digit
		strings.Repeat("B", 41) + "z1",
	}
	for _, id := range bad {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}

// probe writes a script that records its arguments in a file and prints
// nothing; it stands in for a command only to show whether it ran.
func probe(t *testing.T) (cmd, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	cmd = filepath.Join(dir, "probe")
	script := "#!/bin/sh\necho \"$@\" >> " + log + "\n"
	if err := os.WriteFile(cmd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return cmd, log
}

// A bad id is refused before any command runs.
func TestBadIDRunsNothing(t *testing.T) {
	cmd, log := probe(t)
	q := New(Config{Postqueue: cmd, Postsuper: cmd, Postcat: cmd})
	ctx := context.Background()
	for _, id := range []string{"", "ALL", "-d ALL", "../../etc/passwd", "x;rm -rf /"} {
		if _, err := q.Message(ctx, id); !errors.Is(err, ErrBadID) {
			t.Errorf("Message(%q): %v, want ErrBadID", id, err)
		}
		if err := q.Release(ctx, id); !errors.Is(err, ErrBadID) {
			t.Errorf("Release(%q): %v, want ErrBadID", id, err)
		}
		if err := q.Delete(ctx, id); !errors.Is(err, ErrBadID) {
			t.Errorf("Delete(%q): %v, want ErrBadID", id, err)
		}
	}
	if b, err := os.ReadFile(log); !os.IsNotExist(err) {
		t.Errorf("a command ran for a bad id: %q %v", b, err)
	}
	// The probe does run for a good id, with the queue name after it; a
	// postsuper that reports no count is an error, not a success.
	err := q.Delete(ctx, "4jjc6T4ycdz1SD8x")
	if err == nil || !strings.Contains(err.Error(), "no \"Deleted\" count") {
		t.Errorf("Delete without postsuper's report: %v", err)
	}
	if b, _ := os.ReadFile(log); string(b) != "-d 4jjc6T4ycdz1SD8x hold\n" {
		t.Errorf("probe called with %q", b)
	}
}

// A command line with a wrapper is split on spaces; -c DIR comes after the
// whole command line, before the operation.
func TestWrapperCommandLine(t *testing.T) {
	cmd, log := probe(t)
	q := New(Config{Postqueue: "/usr/bin/env " + cmd, ConfigDir: "/etc/postfix-out"})
	if held, err := q.List(context.Background()); err != nil || len(held) != 0 {
		t.Fatalf("List = %v, %v", held, err)
	}
	if b, _ := os.ReadFile(log); string(b) != "-c /etc/postfix-out -j\n" {
		t.Errorf("postqueue called with %q", b)
	}
}

// A missing binary, a failing command and one that does not answer give
// clear errors, with what the command said.
func TestCommandErrors(t *testing.T) {
	ctx := context.Background()
	_, err := New(Config{Postqueue: "/nonexistent/postqueue"}).List(ctx)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/postqueue") || !strings.Contains(err.Error(), "cannot run it") {
		t.Errorf("missing postqueue: %v", err)
	}
	t.Logf("missing binary: %v", err)

	// The real postqueue with a configuration directory that does not
	// exist: it exits non-zero and says why on its standard error.
	if _, serr := os.Stat(DefaultPostqueue); serr == nil {
		_, err = New(Config{ConfigDir: "/nonexistent/postfix"}).List(ctx)
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/postfix/main.cf") {
			t.Errorf("postqueue without main.cf: %v", err)
		}
		t.Logf("failing command: %v", err)
	}

	dir := t.TempDir()
	slow := filepath.Join(dir, "slow")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\necho 'slow: thinking' >&2\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err = New(Config{Postqueue: slow}).List(tctx)
	if err == nil || !strings.Contains(err.Error(), "time limit") || !strings.Contains(err.Error(), "slow: thinking") {
		t.Errorf("slow postqueue: %v", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("slow postqueue took %v to give up", d)
	}

	// Output that is not postqueue's JSON is an error, not an empty list.
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("#!/bin/sh\necho 'Mail queue is empty'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if held, err := New(Config{Postqueue: garbage}).List(ctx); err == nil {
		t.Errorf("List of non-JSON output = %v, want an error", held)
	}
}

// With enable_long_queue_ids = no Postfix makes short, hexadecimal ids:
// they pass ValidID and every operation works with them.
func TestShortQueueIDs(t *testing.T) {
	pf, q := startPostfix(t, map[string]string{"enable_long_queue_ids": "no"})
	ctx := context.Background()
	id := send(t, pf, holdSender, []string{"dave@example.org"}, messageB())
	if !shortID.MatchString(id) {
		t.Fatalf("queue id %q is not a short one", id)
	}
	waitFor(t, "the message in the hold queue", func() bool { return len(pf.HoldQueue(t)) == 1 })
	if held, err := q.List(ctx); err != nil || len(held) != 1 || held[0].QueueID != id {
		t.Fatalf("List = %+v, %v; want %s", held, err, id)
	}
	if msg, err := q.Message(ctx, id); err != nil || !bytes.HasSuffix(msg, lf(messageB())) {
		t.Errorf("Message: %v %q", err, msg)
	}
	if err := q.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if ids := pf.HoldQueue(t); len(ids) != 0 {
		t.Errorf("hold queue after Delete: %v", ids)
	}
}
