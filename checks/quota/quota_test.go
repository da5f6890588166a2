package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"chainmail/checks"
	"chainmail/checks/verdictlog"
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

func newCheck(t testing.TB, st store.Store, clk *clock, qs ...Quota) *Check {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Quotas = qs
	c, err := New(cfg, Deps{Store: st, Now: clk.Now, Metrics: NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func envelope(user, from string, ip string) *checks.Envelope {
	return &checks.Envelope{ClientIP: net.ParseIP(ip), HELO: "laptop", MailFrom: from, AuthUser: user, QueueID: "NOQUEUE"}
}

// send runs one message through the quota check as the milter does: a
// CheckRcpt per recipient, then Check with the accepted ones. It returns
// the RCPT answers and the end-of-message result (nil when no recipient
// was accepted).
func send(t testing.TB, c *Check, env checks.Envelope, size int, rcpts ...string) ([]checks.RcptResult, *checks.Result) {
	t.Helper()
	ctx := context.Background()
	env.Rcpts = nil
	var out []checks.RcptResult
	for _, r := range rcpts {
		res := c.CheckRcpt(ctx, &env, r)
		out = append(out, res)
		if res.Err != nil {
			t.Fatalf("CheckRcpt %s: %v", r, res.Err)
		}
		if res.Action == checks.Accept {
			env.Rcpts = append(env.Rcpts, r)
		}
	}
	if len(env.Rcpts) == 0 {
		return out, nil
	}
	m := &checks.Message{Envelope: env, Body: bodyOf(size)}
	res := c.Check(ctx, m, nil)
	return out, &res
}

type body int

func (b body) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(b) {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > int64(b)-off {
		n = int(int64(b) - off)
	}
	for i := range p[:n] {
		p[i] = 'x'
	}
	return n, nil
}
func (b body) Size() int64 { return int64(b) }

func bodyOf(size int) checks.Body {
	// The header block of an empty header is 2 bytes (the blank line).
	if size < 2 {
		size = 2
	}
	return body(size - 2)
}

// The case the issue is about: a stolen password starts a run; at the
// quota the account is deferred at RCPT with cbpolicyd's line; an hour on
// it may send again.
func TestCompromisedAccount(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, Quota{Name: "per-user-hour", Policy: "submission", Track: TrackSASLUser, Period: time.Hour, Messages: 5})
	env := *envelope("Alice", "alice@example.com", "192.0.2.7")
	for i := 1; i <= 5; i++ {
		rs, res := send(t, c, env, 1000, "bob@example.org")
		if rs[0].Action != checks.Accept || res == nil || res.Status != checks.StatusPass {
			t.Fatalf("message %d: %+v %+v", i, rs[0], res)
		}
		clk.Add(time.Minute)
	}
	rs, _ := send(t, c, env, 1000, "bob@example.org")
	r := rs[0]
	if r.Action != checks.Tempfail || r.Code != "451" || r.Reply != "4.7.1 Sending quota exceeded, try again later" {
		t.Fatalf("over quota: %+v", r)
	}
	want := "module=Quotas, action=defer, host=192.0.2.7, helo=laptop, from=alice@example.com, to=bob@example.org, reason=quota_match, policy=submission, quota=per-user-hour, limit=messages, track=SASLUsername:alice, counter=MessageCount, quota=6.00/5 (120.0%)"
	if len(r.Events) != 1 || r.Events[0].Line != want || r.Events[0].Name != "quota" {
		t.Fatalf("events %+v\nwant %s", r.Events, want)
	}
	if got := counter(t, c.metrics.Exceeded.WithLabelValues("per-user-hour", "defer")); got != 1 {
		t.Errorf("chainmail_quota_exceeded_total = %v", got)
	}
	// Refused attempts are not counted: the first message leaves the
	// window an hour after it was sent, and one more may go.
	clk.Add(55*time.Minute + 30*time.Second)
	if rs, _ := send(t, c, env, 1000, "bob@example.org"); rs[0].Action != checks.Accept {
		t.Fatalf("after the first message left the window: %+v", rs[0])
	}
	if rs, _ := send(t, c, env, 1000, "bob@example.org"); rs[0].Action != checks.Tempfail {
		t.Fatalf("right after: %+v", rs[0])
	}
	// Another user is not affected.
	if rs, _ := send(t, c, *envelope("carol", "carol@example.com", "192.0.2.7"), 1000, "bob@example.org"); rs[0].Action != checks.Accept {
		t.Errorf("another user: %+v", rs[0])
	}
}

// Recipients are tested and counted at RCPT: a message to five recipients
// under a limit of three gets three through.
func TestRecipientsLimit(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, Quota{Name: "rcpts", Track: TrackSender, Period: time.Hour, Recipients: 3, Action: ActionReject, Reply: "550 5.7.1 Too many recipients this hour"})
	rs, res := send(t, c, *envelope("", "news@example.com", "192.0.2.7"), 100, "a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example")
	for i, r := range rs {
		want := checks.Accept
		if i >= 3 {
			want = checks.Reject
		}
		if r.Action != want {
			t.Errorf("rcpt %d: %v, want %v", i, r.Action, want)
		}
	}
	if rs[3].Code != "550" || rs[3].Reply != "5.7.1 Too many recipients this hour" {
		t.Errorf("reply %s %s", rs[3].Code, rs[3].Reply)
	}
	if !strings.HasSuffix(rs[3].Events[0].Line, "track=Sender:news@example.com, counter=RecipientCount, quota=4.00/3 (133.3%)") || !strings.Contains(rs[3].Events[0].Line, "action=reject") {
		t.Errorf("line %q", rs[3].Events[0].Line)
	}
	if res == nil || res.Status != checks.StatusPass {
		t.Errorf("end of message: %+v", res)
	}
}

// Size is counted at the end of the message; once the period's bytes
// reach the limit the next message is deferred at RCPT.
func TestSizeLimit(t *testing.T) {
	clk := newClock()
	var size Amount
	if err := size.UnmarshalText([]byte("10KiB")); err != nil || size != 10240 {
		t.Fatalf("10KiB = %v %v", size, err)
	}
	c := newCheck(t, boltStore(t), clk, Quota{Name: "bytes", Track: TrackSenderDomain, Period: time.Hour, Size: size})
	env := *envelope("", "a@example.com", "192.0.2.7")
	for i := 0; i < 2; i++ {
		if rs, _ := send(t, c, env, 6144, "x@y.example"); rs[0].Action != checks.Accept {
			t.Fatalf("message %d: %+v", i, rs[0])
		}
	}
	env.MailFrom = "b@EXAMPLE.com" // same domain
	rs, _ := send(t, c, env, 10, "x@y.example")
	if rs[0].Action != checks.Tempfail || !strings.Contains(rs[0].Events[0].Line, "track=Sender:@example.com, counter=MessageCumulativeSize, quota=12288.00/10240 (120.0%)") {
		t.Fatalf("third: %+v", rs[0])
	}
}

// Client addresses count per network when a prefix is set; the null
// sender and a missing login skip the quotas that need them.
func TestTracks(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk,
		Quota{Name: "net", Track: TrackClientIP, IPv4Prefix: 24, Period: time.Hour, Messages: 2},
		Quota{Name: "user", Track: TrackSASLUser, Period: time.Hour, Messages: 1},
		Quota{Name: "sender", Track: TrackSender, Period: time.Hour, Messages: 1},
		Quota{Name: "to", Track: TrackRecipient, Period: time.Hour, Messages: 1},
	)
	// Bounces from two hosts of one /24 to two recipients: only "net"
	// and "to" apply.
	if rs, _ := send(t, c, *envelope("", "", "198.51.100.1"), 10, "a@x.example"); rs[0].Action != checks.Accept {
		t.Fatal(rs[0])
	}
	if rs, _ := send(t, c, *envelope("", "", "198.51.100.2"), 10, "b@x.example"); rs[0].Action != checks.Accept {
		t.Fatal(rs[0])
	}
	rs, _ := send(t, c, *envelope("", "", "198.51.100.3"), 10, "c@x.example")
	if rs[0].Action != checks.Tempfail || !strings.Contains(rs[0].Events[0].Line, "from=<>, to=c@x.example") || !strings.Contains(rs[0].Events[0].Line, "track=SenderIP:198.51.100.0/24") {
		t.Fatalf("third host of the /24: %+v", rs[0])
	}
	// Another network, the same recipient: "to" trips.
	rs, _ = send(t, c, *envelope("", "", "203.0.113.9"), 10, "a@x.example")
	if rs[0].Action != checks.Tempfail || !strings.Contains(rs[0].Events[0].Line, "track=Recipient:a@x.example") {
		t.Fatalf("second message to a@: %+v", rs[0])
	}
	// IPv6 /64 by default.
	c6 := newCheck(t, boltStore(t), clk, Quota{Name: "net6", Track: TrackClientIP, Period: time.Hour, Messages: 1})
	send(t, c6, *envelope("", "a@example.com", "2001:db8:1:2::1"), 10, "a@x.example")
	rs, _ = send(t, c6, *envelope("", "a@example.com", "2001:db8:1:2:ffff::9"), 10, "a@x.example")
	if rs[0].Action != checks.Tempfail || !strings.Contains(rs[0].Events[0].Line, "track=SenderIP:2001:db8:1:2::/64") {
		t.Fatalf("second host of the /64: %+v", rs[0])
	}
	// No quota applies: nothing is stored, the result says so.
	cu := newCheck(t, boltStore(t), clk, Quota{Name: "user", Track: TrackSASLUser, Period: time.Hour, Messages: 1})
	_, res := send(t, cu, *envelope("", "a@example.com", "192.0.2.1"), 10, "a@x.example")
	if res.Status != checks.StatusNone {
		t.Errorf("without a login: %+v", res)
	}
}

// Quarantine and alert quotas let the message in and report it at the
// end: the fact quota.action drives a rule; the line is written.
func TestQuarantineAndAlert(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk,
		Quota{Name: "hold", Track: TrackSASLUser, Period: time.Hour, Messages: 2, Action: ActionQuarantine},
		Quota{Name: "watch", Track: TrackSASLUser, Period: time.Hour, Recipients: 3, Action: ActionAlert},
	)
	env := *envelope("mallory", "m@example.com", "192.0.2.66")
	p := checks.DefaultPolicy()
	p.Rules = []checks.Rule{{Name: "quota-quarantine", If: `quota.action == "quarantine"`, Action: checks.Quarantine}}
	if err := p.Compile([]string{"quota"}); err != nil {
		t.Fatal(err)
	}
	var actions []checks.Action
	var last *checks.Result
	for i := 0; i < 3; i++ {
		rs, res := send(t, c, env, 100, "a@x.example", "b@x.example")
		for _, r := range rs {
			if r.Action != checks.Accept {
				t.Fatalf("message %d refused at RCPT: %+v", i, r)
			}
		}
		m := &checks.Message{Envelope: env}
		v := p.Decide(m, checks.Results{*res}, []string{"quota"})
		actions = append(actions, v.Action)
		last = res
	}
	if fmt.Sprint(actions) != "[accept accept quarantine]" {
		t.Errorf("actions %v", actions)
	}
	if last.Status != "exceeded" || last.Facts["action"] != "quarantine" || len(last.Events) != 2 {
		t.Fatalf("third message: %+v", last)
	}
	lines := last.Events[0].Line + "\n" + last.Events[1].Line
	for _, want := range []string{
		"module=Quotas, action=quarantine, host=192.0.2.66, helo=laptop, from=m@example.com, to=a@x.example,b@x.example, reason=quota_match, policy=default, quota=hold, limit=messages, track=SASLUsername:mallory, counter=MessageCount, quota=3.00/2 (150.0%)",
		"module=Quotas, action=alert, host=192.0.2.66, helo=laptop, from=m@example.com, to=a@x.example,b@x.example, reason=quota_match, policy=default, quota=watch, limit=recipients, track=SASLUsername:mallory, counter=RecipientCount, quota=6.00/3 (200.0%)",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("missing line %s\nin %s", want, lines)
		}
	}
}

// One store round trip per RCPT whatever the number of quotas, one at
// the end of the message.
func TestRoundTrips(t *testing.T) {
	clk := newClock()
	st := &counting{Store: boltStore(t)}
	c := newCheck(t, st, clk,
		Quota{Name: "u", Track: TrackSASLUser, Period: time.Hour, Messages: 100, Recipients: 100, Size: 1 << 30},
		Quota{Name: "ip", Track: TrackClientIP, Period: time.Hour, Messages: 100},
		Quota{Name: "d", Track: TrackSenderDomain, Period: time.Hour, Size: 1 << 30, Action: ActionAlert},
	)
	send(t, c, *envelope("u", "u@example.com", "192.0.2.1"), 100, "a@x.example", "b@x.example", "c@x.example")
	if n := st.Trips.Load(); n != 4 {
		t.Errorf("%d round trips for 3 recipients and the end of message, want 4", n)
	}
}

// A thousand recipients: the limit holds, the time stays small.
func TestThousandRecipients(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, Quota{Name: "r", Track: TrackSASLUser, Period: time.Hour, Recipients: 100})
	rcpts := make([]string, 1000)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("r%d@x.example", i)
	}
	start := time.Now()
	rs, _ := send(t, c, *envelope("u", "u@example.com", "192.0.2.1"), 100, rcpts...)
	accepted := 0
	for _, r := range rs {
		if r.Action == checks.Accept {
			accepted++
		}
	}
	if accepted != 100 {
		t.Errorf("%d of 1000 recipients accepted under a limit of 100", accepted)
	}
	t.Logf("1000 RCPTs in %v", time.Since(start))
}

// A clock that goes back keeps what was counted; one that jumps forward
// by more than the period starts afresh (documented).
func TestClockJumps(t *testing.T) {
	clk := newClock()
	c := newCheck(t, boltStore(t), clk, Quota{Name: "u", Track: TrackSASLUser, Period: time.Hour, Messages: 2})
	env := *envelope("u", "u@example.com", "192.0.2.1")
	send(t, c, env, 10, "a@x.example")
	send(t, c, env, 10, "a@x.example")
	clk.Add(-3 * time.Hour)
	if rs, _ := send(t, c, env, 10, "a@x.example"); rs[0].Action != checks.Tempfail {
		t.Errorf("after the clock went back: %+v", rs[0])
	}
	clk.Add(5 * time.Hour)
	if rs, _ := send(t, c, env, 10, "a@x.example"); rs[0].Action != checks.Accept {
		t.Errorf("after the clock jumped forward: %+v", rs[0])
	}
}

// The store down: the recipient goes through with an error for the log,
// the end of message is a temperror (not an error: no tempfail by the
// failure policy), and nothing panics.
func TestStoreDown(t *testing.T) {
	clk := newClock()
	down := store.Unavailable(errors.New("connection refused"))
	c := newCheck(t, down, clk, Quota{Name: "u", Track: TrackSASLUser, Period: time.Hour, Messages: 1})
	env := envelope("u", "u@example.com", "192.0.2.1")
	r := c.CheckRcpt(context.Background(), env, "a@x.example")
	if r.Action != checks.Accept || !errors.Is(r.Err, store.ErrUnavailable) {
		t.Fatalf("CheckRcpt: %+v", r)
	}
	env.Rcpts = []string{"a@x.example"}
	res := c.Check(context.Background(), &checks.Message{Envelope: *env}, nil)
	if res.Status != checks.StatusTemperror || !errors.Is(res.Err, store.ErrUnavailable) {
		t.Fatalf("Check: %+v", res)
	}
	if got := counter(t, c.metrics.StoreErrors); got != 2 {
		t.Errorf("store errors %v", got)
	}
	// Through the engine: accepted, the error logged as an event.
	eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: c}}}, Policy: checks.DefaultPolicy()}
	out, evs := eng.CheckRcpt(context.Background(), env, "b@x.example")
	if out.Action != checks.Accept || len(evs) != 1 || !strings.Contains(verdictlog.Text(evs[0]), "store: unavailable") {
		t.Errorf("engine: %+v %+v", out, evs)
	}
}

// Several MTAs, one state: two checks (two chainmail processes) on one
// Redis trip the quota at the global count, and a Redis restart mid-run
// neither crashes nor stops mail; counting resumes.
func TestSharedRedis(t *testing.T) {
	srv := storetest.StartRedis(t)
	open := func() store.Store {
		s, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{srv.Addr()}, Prefix: "shared:"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	clk := newClock()
	q := Quota{Name: "per-user-hour", Track: TrackSASLUser, Period: time.Hour, Messages: 10}
	mtaA, mtaB := newCheck(t, open(), clk, q), newCheck(t, open(), clk, q)
	env := *envelope("alice", "alice@example.com", "192.0.2.7")
	accepted := 0
	for i := 0; i < 14; i++ {
		c := mtaA
		if i%2 == 1 {
			c = mtaB
		}
		rs, _ := send(t, c, env, 10, "bob@example.org")
		if rs[0].Action == checks.Accept {
			accepted++
		}
	}
	if accepted != 10 {
		t.Errorf("%d of 14 messages split across two MTAs accepted, want 10", accepted)
	}

	srv.Kill()
	r := mtaA.CheckRcpt(context.Background(), &env, "bob@example.org")
	if r.Action != checks.Accept || !errors.Is(r.Err, store.ErrUnavailable) {
		t.Errorf("Redis down: %+v", r)
	}
	srv.Restart() // empty: the window starts again
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Each store's breaker closes when its own probe sees Redis back.
		r = mtaB.CheckRcpt(context.Background(), &env, "bob@example.org")
		if r.Err == nil {
			if r = mtaA.CheckRcpt(context.Background(), &env, "bob@example.org"); r.Err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after the restart: %v", r.Err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	accepted = 0
	for i := 0; i < 12; i++ {
		rs, _ := send(t, []*Check{mtaA, mtaB}[i%2], env, 10, "bob@example.org")
		if rs[0].Action == checks.Accept {
			accepted++
		}
	}
	if accepted != 10 {
		t.Errorf("after the restart %d of 12 accepted, want 10", accepted)
	}
}

// The webhook gets the alert as JSON, once per interval per party, with
// retries; a slow or dead endpoint never holds up a decision.
func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "who are you", http.StatusForbidden)
			return
		}
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer srv.Close()
	clk := newClock()
	cfg := DefaultConfig()
	cfg.Quotas = []Quota{{Name: "u", Track: TrackSASLUser, Period: time.Hour, Messages: 1}}
	cfg.Webhook = Webhook{URL: srv.URL, Headers: map[string]checks.Secret{"Authorization": "Bearer s3cret"}, Retries: 3, Backoff: 10 * time.Millisecond, Interval: time.Minute}
	reg := prometheus.NewRegistry()
	c, err := New(cfg, Deps{Store: boltStore(t), Now: clk.Now, Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	env := *envelope("eve", "eve@example.com", "192.0.2.9")
	send(t, c, env, 10, "a@x.example")
	for i := 0; i < 5; i++ { // five refusals, one alert
		if rs, _ := send(t, c, env, 10, "a@x.example"); rs[0].Action != checks.Tempfail {
			t.Fatal(rs[0])
		}
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d alerts posted, want 1", len(got))
	}
	a := got[0]
	if a["event"] != "quota" || a["action"] != "defer" || a["quota"] != "u" || a["track"] != "SASLUsername:eve" || a["current"] != 2.0 || a["max"] != 1.0 || a["percent"] != 200.0 ||
		!strings.HasPrefix(a["line"].(string), "module=Quotas, action=defer, host=192.0.2.9") || a["time"] != "2030-05-06T07:00:00Z" {
		t.Errorf("alert %v", a)
	}
	if n := counter(t, c.metrics.Webhook.WithLabelValues("sent")); n != 1 {
		t.Errorf("sent %v", n)
	}
	if n := counter(t, c.metrics.Webhook.WithLabelValues("suppressed")); n != 4 {
		t.Errorf("suppressed %v", n)
	}
}

func TestWebhookNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	clk := newClock()
	cfg := DefaultConfig()
	cfg.Quotas = []Quota{{Name: "ip", Track: TrackClientIP, Period: time.Hour, Messages: 1}}
	cfg.Webhook = Webhook{URL: srv.URL, Queue: 2, Interval: 0, Timeout: 10 * time.Second, Retries: 0}
	c, err := New(cfg, Deps{Store: boltStore(t), Now: clk.Now, Metrics: NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 50; i++ {
		env := *envelope("", "a@example.com", fmt.Sprintf("192.0.2.%d", i))
		send(t, c, env, 10, "a@x.example")
		send(t, c, env, 10, "a@x.example") // over: an alert
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("100 messages with a hung webhook took %v", d)
	}
	if n := counter(t, c.metrics.Webhook.WithLabelValues("dropped")); n < 40 {
		t.Errorf("dropped %v, want most of 50 with a queue of 2", n)
	}
}

func TestConfig(t *testing.T) {
	st := boltStore(t)
	for _, tc := range []struct {
		q    Quota
		want string
	}{
		{Quota{Track: TrackSender, Period: time.Hour, Messages: 1}, "without a name"},
		{Quota{Name: "a b", Track: TrackSender, Period: time.Hour, Messages: 1}, "spaces"},
		{Quota{Name: "q", Period: time.Hour, Messages: 1}, "no track"},
		{Quota{Name: "q", Track: "ip", Period: time.Hour, Messages: 1}, `unknown track "ip"`},
		{Quota{Name: "q", Track: TrackSender, Messages: 1}, "period"},
		{Quota{Name: "q", Track: TrackSender, Period: time.Hour}, "no limit"},
		{Quota{Name: "q", Track: TrackSender, Period: time.Hour, Messages: -1}, "positive"},
		{Quota{Name: "q", Track: TrackSender, Period: time.Hour, Messages: 1, Action: "drop"}, `unknown action "drop"`},
		{Quota{Name: "q", Track: TrackSender, Period: time.Hour, Messages: 1, IPv4Prefix: 24}, "for track client_ip"},
		{Quota{Name: "q", Track: TrackClientIP, Period: time.Hour, Messages: 1, IPv4Prefix: 33}, "1-32"},
		{Quota{Name: "q", Track: TrackSender, Period: time.Hour, Messages: 1, Reply: "550 5.7.1 no"}, "does not fit action defer"},
		{Quota{Name: "q", Track: TrackSender, Period: time.Hour, Messages: 1, Action: ActionReject, Reply: "4.7.1 no"}, "does not fit reply code 550"},
	} {
		cfg := DefaultConfig()
		cfg.Quotas = []Quota{tc.q}
		_, err := New(cfg, Deps{Store: st})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.q, err, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Quotas = []Quota{{Name: "q", Track: TrackSender, Period: time.Hour, Messages: 1}, {Name: "q", Track: TrackSender, Period: time.Hour, Messages: 1}}
	if _, err := New(cfg, Deps{Store: st}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate: %v", err)
	}
	cfg = DefaultConfig()
	cfg.Webhook.URL = "ftp://x"
	if _, err := New(cfg, Deps{Store: st}); err == nil {
		t.Error("ftp webhook accepted")
	}
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("no store accepted")
	}
	var a Amount
	for in, want := range map[string]float64{"70": 70, "1.5KiB": 1536, "2 MB": 2 << 20, "1g": 1 << 30} {
		if err := a.UnmarshalText([]byte(in)); err != nil || float64(a) != want {
			t.Errorf("Amount %q = %v, %v", in, a, err)
		}
	}
	for _, in := range []string{"", "MiB", "5 parsecs"} {
		if err := a.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("Amount %q accepted", in)
		}
	}
}

// Metrics registered twice (a reload) are the same collectors.
func TestMetricsReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	if a.Exceeded != b.Exceeded || a.Webhook != b.Webhook {
		t.Error("a second NewMetrics on one registry made new collectors")
	}
}

func counter(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkRcpt(b *testing.B) {
	for _, backend := range []string{"bolt", "redis"} {
		b.Run(backend, func(b *testing.B) {
			var st store.Store
			if backend == "bolt" {
				st = boltStore(b)
			} else {
				srv := storetest.StartRedis(b)
				s, err := redis.Open(redis.Options{Settings: redis.Settings{Addrs: []string{srv.Addr()}}})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				st = s
			}
			cfg := DefaultConfig()
			cfg.Quotas = []Quota{
				{Name: "u", Track: TrackSASLUser, Period: time.Hour, Messages: 1e9, Size: 1e15},
				{Name: "ip", Track: TrackClientIP, Period: time.Hour, Recipients: 1e9},
			}
			c, err := New(cfg, Deps{Store: st})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					env := envelope(fmt.Sprintf("user%d", i%100), "u@example.com", fmt.Sprintf("192.0.2.%d", i%250))
					if r := c.CheckRcpt(context.Background(), env, "a@x.example"); r.Err != nil {
						b.Fatal(r.Err)
					}
					env.Rcpts = []string{"a@x.example"}
					if r := c.Check(context.Background(), &checks.Message{Envelope: *env, Body: bodyOf(10000)}, nil); r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			})
		})
	}
}

// A webhook that cannot be reached is logged without the password of its
// URL.
func TestWebhookLogHidesURLPassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	cfg := DefaultConfig()
	cfg.Quotas = []Quota{{Name: "ip", Track: TrackClientIP, Period: time.Hour, Messages: 1}}
	cfg.Webhook = Webhook{URL: strings.Replace(srv.URL, "http://", "http://alerts:pw-s3cret@", 1), Retries: 0, Interval: 0}
	c, err := New(cfg, Deps{Store: boltStore(t), Now: newClock().Now, Metrics: NewMetrics(nil), Logf: logf})
	if err != nil {
		t.Fatal(err)
	}
	env := *envelope("", "a@example.com", "192.0.2.1")
	send(t, c, env, 10, "a@x.example")
	send(t, c, env, 10, "a@x.example") // over: an alert
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(lines) > 0 })
	mu.Lock()
	defer mu.Unlock()
	for _, l := range lines {
		if strings.Contains(l, "s3cret") || !strings.Contains(l, "not delivered") {
			t.Errorf("log line %q", l)
		}
	}
}
