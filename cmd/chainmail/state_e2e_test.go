package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/milter/mtatest"
	"chainmail/store"
	"chainmail/store/bolt"
	"chainmail/store/storetest"
)

// Quotas and greylisting through a real Postfix, with the state in a
// bbolt file and, for several MTAs, in one real redis-server.
func TestPostfixState(t *testing.T) {
	bin := buildBinary(t)

	// The quota's reply and line, as a postmaster sees them.
	const quotaChecks = `checks:
  - name: quota
    options:
      quotas:
        - name: per-user-hour
          policy: submission
          track: sasl_user
          period: 1h
          messages: 3
          action: defer
          reply: "451 4.7.1 You have sent too much mail this hour, try again later"
`
	// XCLIENT LOGIN= makes Postfix treat the session as authenticated
	// (smtpd_sasl_auth_enable must be on for it to pass {auth_authen}).
	saslMain := map[string]string{"smtpd_sasl_auth_enable": "yes"}

	t.Run("quota", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "state.db")
		d := startDaemon(t, bin, fmt.Sprintf("state: {backend: bolt, path: %q, flush_interval: 100ms}\n%s", state, quotaChecks))
		pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr, Main: saslMain})
		c := pf.Dial(t)
		c.Ehlo("laptop.example")
		if r := c.XClient("ADDR=192.0.2.7 NAME=[UNAVAILABLE] HELO=laptop LOGIN=alice"); r.Code != 220 {
			t.Fatalf("XCLIENT: %v", r)
		}
		for i := 1; i <= 3; i++ {
			if r := c.Send("alice@example.com", []string{"bob@example.org"}, e2eMessage(fmt.Sprintf("burst %d", i), "x")); r.Code != 250 {
				t.Fatalf("message %d: %v\n%s", i, r, pf.Log())
			}
		}
		// The fourth is deferred at RCPT, before the body is sent.
		if r := c.Mail("alice@example.com"); r.Code != 250 {
			t.Fatalf("MAIL: %v", r)
		}
		r := c.Rcpt("bob@example.org")
		if r.Code != 451 || !strings.Contains(r.String(), "4.7.1 You have sent too much mail this hour") {
			t.Fatalf("RCPT over quota: %v", r)
		}
		c.Quit()
		d.waitLog(t, "module=Quotas, action=defer, host=192.0.2.7, helo=laptop, from=alice@example.com, to=bob@example.org, reason=quota_match, policy=submission, quota=per-user-hour, limit=messages, track=SASLUsername:alice, counter=MessageCount, quota=4.00/3 (133.3%)")
		if got := pf.Delivered(t, 3, 30*time.Second); len(got) != 3 {
			t.Errorf("delivered %d, want 3", len(got))
		}
	})

	t.Run("greylist", func(t *testing.T) {
		state := filepath.Join(t.TempDir(), "state.db")
		d := startDaemon(t, bin, fmt.Sprintf(`state: {backend: bolt, path: %q}
checks:
  - name: greylist
    options:
      delay: 2s
`, state))
		pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr})
		try := func() mtatest.Reply {
			c := pf.Dial(t)
			defer c.Quit()
			c.Ehlo("mx.sender.example")
			c.XClient("ADDR=198.51.100.20 NAME=mx.sender.example HELO=mx.sender.example")
			return c.Send("news@sender.example", []string{"carol@example.org"}, e2eMessage("greylisted", "Hello."))
		}
		r := try()
		if r.Code != 451 || !strings.Contains(r.String(), "4.7.1 Greylisted") {
			t.Fatalf("first attempt: %v", r)
		}
		d.waitLog(t, "module=Greylist, action=greylist, reason=new, client_address=198.51.100.20, client_net=198.51.100.0/24")
		if r := try(); r.Code != 451 {
			t.Fatalf("retry before the delay: %v", r)
		}
		time.Sleep(2100 * time.Millisecond)
		if r := try(); r.Code != 250 {
			t.Fatalf("retry after the delay: %v", r)
		}
		d.waitLog(t, "module=Greylist, action=pass, reason=triplet found")
		if got := pf.Delivered(t, 1, 30*time.Second); len(got) != 1 {
			t.Errorf("delivered %d", len(got))
		}
	})

	// Two MTAs, each with its own chainmail, one Redis: a burst split
	// across both trips the quota at the global count; a triplet
	// greylisted through one passes through the other.
	t.Run("shared-redis", func(t *testing.T) {
		srv := storetest.StartRedis(t)
		conf := fmt.Sprintf(`state:
  backend: redis
  redis: {addrs: [%q]}
checks:
  - name: quota
    options:
      quotas:
        - name: per-user-hour
          track: sasl_user
          period: 1h
          messages: 4
  - name: greylist
    options:
      delay: 1s
`, srv.Addr())
		var mtas []*mtatest.Postfix
		var daemons []*daemon
		for i := 0; i < 2; i++ {
			d := startDaemon(t, bin, conf)
			daemons = append(daemons, d)
			mtas = append(mtas, mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + d.Addr, Main: saslMain}))
		}
		accepted, deferred := 0, 0
		for i := 0; i < 6; i++ {
			c := mtas[i%2].Dial(t)
			c.Ehlo("laptop.example")
			c.XClient("ADDR=192.0.2.8 NAME=[UNAVAILABLE] HELO=laptop LOGIN=bob")
			r := c.Send("bob@example.com", []string{"x@example.org"}, e2eMessage(fmt.Sprintf("shared %d", i), "x"))
			c.Quit()
			switch r.Code {
			case 250:
				accepted++
			case 451:
				deferred++
			default:
				t.Fatalf("message %d: %v", i, r)
			}
		}
		if accepted != 4 || deferred != 2 {
			t.Errorf("across two MTAs: %d accepted, %d deferred; want 4 and 2", accepted, deferred)
		}
		daemons[0].waitLog(t, "track=SASLUsername:bob")
		daemons[1].waitLog(t, "track=SASLUsername:bob")

		try := func(pf *mtatest.Postfix) mtatest.Reply {
			c := pf.Dial(t)
			defer c.Quit()
			c.Ehlo("mx.sender.example")
			c.XClient("ADDR=203.0.113.30 NAME=mx.sender.example HELO=mx.sender.example")
			return c.Send("news@sender.example", []string{"dave@example.org"}, e2eMessage("greylisted", "Hello."))
		}
		if r := try(mtas[0]); r.Code != 451 {
			t.Fatalf("first attempt through MTA 1: %v", r)
		}
		time.Sleep(1100 * time.Millisecond)
		if r := try(mtas[1]); r.Code != 250 {
			t.Fatalf("retry through MTA 2: %v", r)
		}

		// Redis restarted: mail flows while it is down (the failure
		// policy), and counting resumes (an empty Redis: a fresh window).
		srv.Kill()
		c := mtas[0].Dial(t)
		c.Ehlo("laptop.example")
		c.XClient("ADDR=192.0.2.9 NAME=[UNAVAILABLE] HELO=laptop LOGIN=carol")
		if r := c.Send("carol@example.com", []string{"x@example.org"}, e2eMessage("redis down", "x")); r.Code != 250 {
			t.Errorf("with Redis down: %v", r)
		}
		c.Quit()
		daemons[0].waitLog(t, "unreachable")
		srv.Restart()
		// The daemon's probe notices the return without mail.
		daemons[0].waitLog(t, "reachable again")
		deferred = 0
		for i := 0; i < 6; i++ {
			c := mtas[i%2].Dial(t)
			c.Ehlo("laptop.example")
			c.XClient("ADDR=192.0.2.9 NAME=[UNAVAILABLE] HELO=laptop LOGIN=dan")
			if r := c.Send("dan@example.com", []string{"x@example.org"}, e2eMessage(fmt.Sprintf("after %d", i), "x")); r.Code == 451 {
				deferred++
			}
			c.Quit()
		}
		if deferred != 2 {
			t.Errorf("after the restart %d of 6 deferred, want 2", deferred)
		}
	})
}

// The state store lives as long as the daemon: a reload keeps it (and the
// counts; a bbolt file cannot be opened twice), SIGTERM commits what the
// flush interval had not yet, and `config check` never touches the file.
func TestServeStateLifecycle(t *testing.T) {
	bin := buildBinary(t)
	state := filepath.Join(t.TempDir(), "state.db")
	conf := func(limit int) string {
		return fmt.Sprintf(`state: {backend: bolt, path: %q, flush_interval: 1h}
checks:
  - name: quota
    options:
      quotas:
        - {name: per-sender, track: sender, period: 1h, messages: %d}
`, state, limit)
	}
	d := startDaemon(t, bin, conf(2))
	deferred := func() bool {
		out := sendOne(t, d.Addr, "alice@example.com", hamMsg)
		return len(out.Refused) > 0 && strings.Contains(out.Refused[0], "451 4.7.1 Sending quota exceeded")
	}
	for i, want := range []bool{false, false, true} {
		if got := deferred(); got != want {
			t.Fatalf("message %d: deferred %v", i+1, got)
		}
	}

	// config check while the daemon holds the file.
	cfgPath := filepath.Join(filepath.Dir(d.LogFile), "chainmail.yaml")
	out, err := exec.Command(bin, "config", "check", "-c", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backend: bolt") {
		t.Fatalf("config check next to the daemon: %v\n%s", err, out)
	}

	// Reload with a limit of 3: the two messages counted are still there.
	full, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(full), "messages: 2", "messages: 3", 1)), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "configuration reloaded")
	for i, want := range []bool{false, true} {
		if got := deferred(); got != want {
			t.Fatalf("after the reload, message %d: deferred %v\n%s", i+1, got, d.Log())
		}
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.exited <- err
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	s, err := bolt.Open(state, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum, err := store.WindowSum(context.Background(), s, "quota:per-sender:messages:alice@example.com", time.Now(), time.Hour)
	if err != nil || sum != 3 {
		t.Errorf("after shutdown the file holds %v messages (%v), want 3", sum, err)
	}
}
