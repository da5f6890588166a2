package greylist

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/store"
	"chainmail/store/bolt"
	"chainmail/store/redis"
	"chainmail/store/storetest"
)

// The fake clock and the round-trip counter are storetest's.
type (
	clock    = storetest.Clock
	counting = storetest.Counting
)

var newClock = storetest.NewClock

func boltStore(t testing.TB) store.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newCheck(t testing.TB, st store.Store, clk *clock, edit func(*Config)) *Check {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, Deps{Store: st, Now: clk.Now, Metrics: NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func env(ip, from string) *checks.Envelope {
	return &checks.Envelope{ClientIP: net.ParseIP(ip), HELO: "mail.example.net", MailFrom: from}
}

// rcpt asks the check and reports the action, failing on errors.
func rcpt(t *testing.T, c *Check, e *checks.Envelope, to string) checks.RcptResult {
	t.Helper()
	r := c.CheckRcpt(context.Background(), e, to)
	if r.Err != nil {
		t.Fatalf("CheckRcpt: %v", r.Err)
	}
	return r
}

func TestTriplet(t *testing.T) {
	clk := newClock()
	st := &counting{Store: boltStore(t)}
	c := newCheck(t, st, clk, nil)
	e := env("192.0.2.10", "alice@example.net")

	r := rcpt(t, c, e, "bob@example.org")
	if r.Action != checks.Tempfail || r.Code != "451" || r.Reply != "4.7.1 Greylisted: first attempt from an unknown sender, please try again in 300 seconds" {
		t.Fatalf("first attempt: %+v", r)
	}
	want := "module=Greylist, action=greylist, reason=new, client_address=192.0.2.10, client_net=192.0.2.0/24, helo=mail.example.net, sender=alice@example.net, recipient=bob@example.org"
	if len(r.Events) != 1 || r.Events[0].Line != want {
		t.Errorf("event %+v\nwant %s", r.Events, want)
	}
	clk.Add(2 * time.Minute)
	r = rcpt(t, c, e, "bob@example.org")
	if r.Action != checks.Tempfail || !strings.Contains(r.Reply, "in 180 seconds") || !strings.Contains(r.Events[0].Line, "reason=early-retry (180s missing)") {
		t.Fatalf("early retry: %+v", r)
	}
	// A retry from another host of the same /24 after the delay passes.
	clk.Add(3*time.Minute + time.Second)
	r = rcpt(t, c, env("192.0.2.77", "alice@example.net"), "bob@example.org")
	if r.Action != checks.Accept || len(r.Events) != 1 || !strings.Contains(r.Events[0].Line, "action=pass, reason=triplet found, delay=301") {
		t.Fatalf("retry after the delay: %+v", r)
	}
	// From now on the triplet passes at once, with one round trip.
	before := st.Trips.Load()
	clk.Add(24 * time.Hour)
	if r := rcpt(t, c, e, "bob@example.org"); r.Action != checks.Accept || len(r.Events) != 0 {
		t.Fatalf("known triplet: %+v", r)
	}
	if n := st.Trips.Load() - before; n != 1 {
		t.Errorf("%d round trips for a known triplet", n)
	}
	// Another recipient is another triplet.
	if r := rcpt(t, c, e, "carol@example.org"); r.Action != checks.Tempfail {
		t.Errorf("new recipient: %+v", r)
	}
	// Another network is another triplet.
	if r := rcpt(t, c, env("192.0.3.10", "alice@example.net"), "bob@example.org"); r.Action != checks.Tempfail {
		t.Errorf("other /24: %+v", r)
	}
}

func TestIPv6Network(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, nil)
	r := rcpt(t, c, env("2001:db8:5:6::1", "a@example.net"), "b@example.org")
	if !strings.Contains(r.Events[0].Line, "client_net=2001:db8:5:6::/64") {
		t.Errorf("%+v", r.Events)
	}
	clk.Add(6 * time.Minute)
	if r := rcpt(t, c, env("2001:db8:5:6:aaaa::2", "a@example.net"), "b@example.org"); r.Action != checks.Accept {
		t.Errorf("retry from the same /64: %+v", r)
	}
}

// Per-message sender tokens (VERP, BATV) do not make every retry new.
func TestSenderNormalisation(t *testing.T) {
	for in, want := range map[string]string{
		"Bounce-123-456@Lists.Example":           "bounce-#-#@lists.example",
		"prvs=1234abcd5=user@example.com":        "user@example.com",
		"SRS0=HhH1=2X=example.org=u@fwd.example": "srs#=hhh#=#x=example.org=u@fwd.example",
		"<plain@example.com>":                    "plain@example.com",
	} {
		if got := normSender(in); got != want {
			t.Errorf("normSender(%q) = %q, want %q", in, got, want)
		}
	}
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, nil)
	rcpt(t, c, env("192.0.2.1", "bounce-1001@lists.example"), "b@example.org")
	clk.Add(10 * time.Minute)
	if r := rcpt(t, c, env("192.0.2.1", "bounce-1002@lists.example"), "b@example.org"); r.Action != checks.Accept {
		t.Errorf("VERP retry: %+v", r)
	}
}

// After AutoAllow retried triplets the client network is trusted.
func TestAutoAllow(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, func(c *Config) { c.AutoAllow = 2 })
	e := env("198.51.100.5", "a@example.net")
	for _, to := range []string{"one@example.org", "two@example.org"} {
		rcpt(t, c, e, to)
		clk.Add(6 * time.Minute)
		if r := rcpt(t, c, e, to); r.Action != checks.Accept {
			t.Fatalf("retry to %s: %+v", to, r)
		}
	}
	if r := rcpt(t, c, env("198.51.100.200", "new@else.example"), "three@example.org"); r.Action != checks.Accept {
		t.Errorf("auto-allowed network: %+v", r)
	}
	if r := rcpt(t, c, env("198.51.101.5", "new@else.example"), "three@example.org"); r.Action != checks.Tempfail {
		t.Errorf("neighbouring network: %+v", r)
	}
}

func TestSkips(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, func(c *Config) {
		c.AllowClients = []string{"203.0.113.0/24", "2001:db8::1"}
		c.AllowSenders = []string{"partner.example", "boss@corp.example"}
	})
	auth := env("192.0.2.1", "a@example.net")
	auth.AuthUser = "alice"
	for name, tc := range map[string]struct {
		e  *checks.Envelope
		to string
	}{
		"authenticated":  {auth, "b@example.org"},
		"bounce":         {env("192.0.2.1", ""), "b@example.org"},
		"allowed client": {env("203.0.113.9", "a@example.net"), "b@example.org"},
		"allowed v6":     {env("2001:db8::1", "a@example.net"), "b@example.org"},
		"mapped v4":      {env("::ffff:203.0.113.9", "a@example.net"), "b@example.org"},
		"sender domain":  {env("192.0.2.1", "x@partner.example"), "b@example.org"},
		"sender address": {env("192.0.2.1", "boss@corp.example"), "b@example.org"},
		"postmaster":     {env("192.0.2.1", "a@example.net"), "postmaster@example.org"},
		"abuse":          {env("192.0.2.1", "a@example.net"), "<Abuse@example.org>"},
		"no client ip":   {&checks.Envelope{MailFrom: "a@example.net"}, "b@example.org"},
	} {
		if r := rcpt(t, c, tc.e, tc.to); r.Action != checks.Accept || len(r.Events) != 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := rcpt(t, c, env("192.0.2.1", "x@sub.partner.example"), "b@example.org"); r.Action != checks.Tempfail {
		t.Errorf("subdomain of an allowed domain: %+v", r)
	}
	// Bounces are greylisted when asked.
	cb := newCheck(t, boltStore(t), clk, func(c *Config) { c.Bounces = true })
	if r := rcpt(t, cb, env("192.0.2.1", ""), "b@example.org"); r.Action != checks.Tempfail || !strings.Contains(r.Events[0].Line, "sender=<>") {
		t.Errorf("bounce with bounces: true: %+v", r)
	}
}

// A triplet not retried within the window starts over; clock jumps cost
// one more retry, never a permanent deferral.
func TestExpiryAndClockJumps(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, nil)
	e := env("192.0.2.1", "a@example.net")
	rcpt(t, c, e, "late@example.org")
	clk.Add(49 * time.Hour)
	if r := rcpt(t, c, e, "late@example.org"); r.Action != checks.Tempfail || !strings.Contains(r.Events[0].Line, "reason=new") {
		t.Errorf("retry after the window: %+v", r)
	}
	clk.Add(6 * time.Minute)
	if r := rcpt(t, c, e, "late@example.org"); r.Action != checks.Accept {
		t.Errorf("retry after starting over: %+v", r)
	}

	rcpt(t, c, e, "back@example.org")
	clk.Add(-2 * time.Hour) // the entry is now from the future
	if r := rcpt(t, c, e, "back@example.org"); r.Action != checks.Tempfail || !strings.Contains(r.Events[0].Line, "reason=new") {
		t.Errorf("after the clock went back: %+v", r)
	}
	clk.Add(6 * time.Minute)
	if r := rcpt(t, c, e, "back@example.org"); r.Action != checks.Accept {
		t.Errorf("retry after the clock went back: %+v", r)
	}
}

func TestStoreDown(t *testing.T) {
	c := newCheck(t, store.Unavailable(errors.New("refused")), newClock(), nil)
	r := c.CheckRcpt(context.Background(), env("192.0.2.1", "a@example.net"), "b@example.org")
	if r.Action != checks.Accept || !errors.Is(r.Err, store.ErrUnavailable) {
		t.Errorf("%+v", r)
	}
	if got := c.Check(context.Background(), &checks.Message{}, nil); got.Status != checks.StatusNone {
		t.Errorf("Check: %+v", got)
	}
}

// Two MTAs sharing Redis: greylisted through one, the retry through the
// other passes.
func TestSharedRedis(t *testing.T) {
	srv := storetest.StartRedis(t)
	open := func() store.Store {
		s, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{srv.Addr()}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	clk := newClock()
	a, b := newCheck(t, open(), clk, nil), newCheck(t, open(), clk, nil)
	e := env("192.0.2.1", "a@example.net")
	if r := rcpt(t, a, e, "b@example.org"); r.Action != checks.Tempfail {
		t.Fatalf("first through A: %+v", r)
	}
	clk.Add(5 * time.Minute)
	if r := rcpt(t, b, e, "b@example.org"); r.Action != checks.Accept {
		t.Fatalf("retry through B: %+v", r)
	}
}

func TestConfig(t *testing.T) {
	st := boltStore(t)
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.RetryWindow = time.Minute }, "retry_window"},
		{func(c *Config) { c.MaxAge = 0 }, "max_age"},
		{func(c *Config) { c.IPv4Prefix = 0 }, "ipv4_prefix"},
		{func(c *Config) { c.AutoAllow = -1 }, "auto_allow"},
		{func(c *Config) { c.AllowClients = []string{"300.1.1.1"} }, "allow_clients"},
		{func(c *Config) { c.Reply = "550 5.7.1 go away" }, "must be 4xx"},
		{func(c *Config) { c.Reply = "" }, "empty reply"},
	} {
		cfg := DefaultConfig()
		tc.edit(&cfg)
		if _, err := New(cfg, Deps{Store: st}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("no store accepted")
	}
	cfg := DefaultConfig()
	cfg.Reply = "Come back later"
	c, err := New(cfg, Deps{Store: st})
	if err != nil || c.code != "451" || c.text != "4.7.1 Come back later" {
		t.Errorf("plain reply: %v %q %q", err, c.code, c.text)
	}
}

// An IPv4-mapped prefix in allow_clients covers the IPv4 clients it names,
// as it does in the lists check (one parser for both).
func TestAllowClientsMappedPrefix(t *testing.T) {
	c := newCheck(t, boltStore(t), newClock(), func(c *Config) {
		c.AllowClients = []string{"::ffff:198.51.100.0/120"}
	})
	if r := rcpt(t, c, env("198.51.100.7", "a@example.net"), "b@example.org"); r.Action != checks.Accept || len(r.Events) != 0 {
		t.Errorf("client in ::ffff:198.51.100.0/120 greylisted: %+v", r)
	}
}
