package holdqueue

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/milter/miltertest"
	"chainmail/milter/mtatest"
)

// holdBySubject scores a message whose Subject says "hold" between the
// default policy's quarantine and reject thresholds.
type holdBySubject struct{}

func (holdBySubject) Name() string { return "lists" }
func (holdBySubject) Check(_ context.Context, m *checks.Message, _ checks.Results) checks.Result {
	if strings.Contains(m.Subject(), "hold") {
		return checks.Result{Status: checks.StatusNone, Symbols: []checks.Symbol{{Name: "HOLD_ME", Score: 12}}}
	}
	return checks.Result{Status: checks.StatusNone}
}

// chainmail's own milter quarantines (SMFIR_QUARANTINE), Postfix holds the
// message, and the hold queue shows it with chainmail's verdict headers;
// released, it is delivered at once.
func TestMilterQuarantine(t *testing.T) {
	p := checks.DefaultPolicy()
	p.Hostname = "mx.chainmail.test"
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: holdBySubject{}, Decisive: checks.DecisiveBoth, Timeout: 5 * time.Second}}}, Policy: p}
	srv := miltertest.Start(t, eng)
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + srv.Addr})
	q := New(Config{ConfigDir: filepath.Join(pf.Dir(), "conf")})
	ctx := context.Background()

	held := []byte("From: <mallory@example.net>\r\nTo: <bob@example.org>\r\nSubject: please hold\r\n" +
		"Date: Mon, 7 Dec 2026 09:00:00 +0000\r\nMessage-ID: <quarantined@example.net>\r\n\r\nSuspicious.\r\n")
	id := send(t, pf, "mallory@example.net", []string{"bob@example.org"}, held)
	send(t, pf, "ham@example.net", []string{"bob@example.org"}, plain("ham@example.net", "ham"))
	pf.Delivered(t, 1, 20*time.Second)
	waitFor(t, "the quarantined message in the hold queue", func() bool { return len(pf.HoldQueue(t)) == 1 })

	list, err := q.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].QueueID != id || list[0].Sender != "mallory@example.net" {
		t.Fatalf("List = %+v, want %s from mallory@example.net", list, id)
	}
	msg, err := q.Message(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(msg, []byte("\n\n"))
	if string(body) != "Suspicious.\n" || !bytes.Contains(head, []byte("\nX-Spam-Status: Yes")) || !bytes.Contains(head, []byte("\nSubject: please hold\n")) {
		t.Errorf("quarantined message as queued:\n%s", msg)
	}

	t0 := time.Now()
	if err := q.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	got := pf.Delivered(t, 2, 20*time.Second)
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("released after %v, want at once", d)
	}
	if got[1].Sender != "mallory@example.net" || got[1].Header("Message-ID") != "<quarantined@example.net>" {
		t.Errorf("delivered after release: %s %q", got[1].Sender, got[1].Data)
	}
}

// The privileges doc.go states, through a wrapper that changes user:
// postcat works as user postfix, postsuper refuses anyone but root and
// the error says so.
func TestPrivileges(t *testing.T) {
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		t.Skipf("!!! SKIPPING %s: no runuser (util-linux): %v !!!", t.Name(), err)
	}
	pf, q := startPostfix(t, nil)
	ctx := context.Background()
	id := send(t, pf, holdSender, []string{"bob@example.org"}, messageB())
	waitFor(t, "the message in the hold queue", func() bool { return len(pf.HoldQueue(t)) == 1 })

	asPostfix := New(Config{
		Postcat:   runuser + " -u postfix -- " + DefaultPostcat,
		Postsuper: runuser + " -u postfix -- " + DefaultPostsuper,
		ConfigDir: q.configDir,
	})
	msg, err := asPostfix.Message(ctx, id)
	if err != nil || !bytes.HasSuffix(msg, lf(messageB())) {
		t.Errorf("postcat as postfix: %v %q", err, msg)
	}
	err = asPostfix.Delete(ctx, id)
	if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "reserved for the superuser") {
		t.Errorf("postsuper as postfix: %v, want its refusal", err)
	}
	t.Logf("postsuper as postfix: %v", err)
	nobody := New(Config{Postcat: runuser + " -u nobody -- " + DefaultPostcat, ConfigDir: q.configDir})
	_, err = nobody.Message(ctx, id)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("postcat as nobody: %v, want a refusal", err)
	}
	t.Logf("postcat as nobody: %v", err)
	if ids := pf.HoldQueue(t); len(ids) != 1 {
		t.Errorf("hold queue after refused commands: %v", ids)
	}
}
