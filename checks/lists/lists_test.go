package lists_test

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/lists"
)

// msg is a message from client ip with envelope sender from, recipients
// rcpts and one From header per entry of headerFrom.
func msg(ip, from string, rcpts []string, headerFrom ...string) *checks.Message {
	m := &checks.Message{Envelope: checks.Envelope{MailFrom: from, Rcpts: rcpts}}
	if ip != "" {
		m.ClientIP = net.ParseIP(ip)
	}
	for _, f := range headerFrom {
		m.Header = append(m.Header, checks.HeaderField{Name: "From", Value: f})
	}
	return m
}

func newCheck(t *testing.T, cfg lists.Config) *lists.Check {
	t.Helper()
	c, err := lists.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func deny(l lists.List) lists.Config {
	c := lists.DefaultConfig()
	c.Deny = l
	return c
}

func TestClients(t *testing.T) {
	c := newCheck(t, deny(lists.List{Clients: []string{
		"192.0.2.1",
		"198.51.100.0/24",
		"203.0.113.77/28", // host bits set: 203.0.113.64/28
		"2001:db8::/32",
		"2001:db8:ffff::1",
		"::ffff:192.0.2.200",
		"::ffff:100.64.0.0/106", // 100.64.0.0/10
	}}))
	for _, tc := range []struct {
		ip     string
		listed bool
	}{
		{"192.0.2.1", true},
		{"192.0.2.2", false},
		{"198.51.100.0", true},
		{"198.51.100.255", true},
		{"198.51.101.1", false},
		{"203.0.113.64", true},
		{"203.0.113.79", true},
		{"203.0.113.80", false},
		{"2001:db8:1::1", true},
		{"2001:DB8::abcd", true},
		{"2001:db9::1", false},
		{"::ffff:192.0.2.1", true}, // a v4-mapped client is its IPv4 address
		{"192.0.2.200", true},
		{"100.100.1.1", true},
		{"100.128.0.1", false},
		{"", false},
	} {
		r := c.Check(context.Background(), msg(tc.ip, "", nil), nil)
		if (r.Status == checks.StatusListed) != tc.listed {
			t.Errorf("client %q: %s %q, want listed=%v", tc.ip, r.Status, r.Reason, tc.listed)
		}
	}
	// A 4-byte net.IP works as well as the 16-byte form.
	m := msg("", "", nil)
	m.ClientIP = net.IPv4(192, 0, 2, 1).To4()
	if r := c.Check(context.Background(), m, nil); r.Status != checks.StatusListed {
		t.Errorf("4-byte IP: %s", r.Status)
	}
}

func TestSenders(t *testing.T) {
	c := newCheck(t, deny(lists.List{Senders: []string{
		"Spammer@Example.COM",
		"deny.example",
		"@at.example",
		"*@*.sub.example",
		"user?@glob.example",
		"*-bounce@*",
	}}))
	for _, tc := range []struct {
		from   string
		listed bool
	}{
		{"spammer@example.com", true},
		{"SPAMMER@EXAMPLE.COM", true},
		{"other@example.com", false},
		{"x@deny.example", true},
		{"X@Deny.Example", true},
		{"x@sub.deny.example", false}, // a bare domain is that domain only
		{"x@notdeny.example", false},
		{"a/b@deny.example", true}, // a slash in the local part is no way out
		{"x@at.example", true},
		{"x@a.sub.example", true},
		{"x@a.b.sub.example", true},
		{"x@sub.example", false},
		{"user1@glob.example", true},
		{"user@glob.example", false},
		{"user12@glob.example", false},
		{"list-bounce@lists.example", true},
		{"", false},
	} {
		r := c.Check(context.Background(), msg("", tc.from, nil), nil)
		if (r.Status == checks.StatusListed) != tc.listed {
			t.Errorf("envelope sender %q: %s %q, want listed=%v", tc.from, r.Status, r.Reason, tc.listed)
		}
	}
}

func TestHeaderFrom(t *testing.T) {
	c := newCheck(t, deny(lists.List{Senders: []string{"deny.example"}}))
	for _, tc := range []struct {
		name   string
		from   []string
		listed bool
	}{
		{"display name", []string{`"Big Boss" <Boss@Deny.Example>`}, true},
		{"encoded display name", []string{`=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= <boss@deny.example>`}, true},
		{"unknown charset in the display name", []string{`=?x-unknown?q?boss?= <boss@deny.example>`}, true},
		{"several addresses", []string{"friend@ok.example, boss@deny.example"}, true},
		{"several From fields", []string{"friend@ok.example", "boss@deny.example"}, true},
		{"folded", []string{"\"Boss\"\r\n <boss@deny.example>"}, true},
		{"unparseable with angle brackets", []string{`"unclosed <boss@deny.example>`}, true},
		{"unparseable without angle brackets", []string{`boss@deny.example (unclosed comment`}, true},
		{"unparseable, several", []string{`"x <friend@ok.example>, boss@deny.example (`}, true},
		{"group", []string{"undisclosed-recipients:;"}, false},
		{"clean", []string{`"Deny Example" <friend@ok.example>`}, false},
		{"garbage", []string{"<<<>>>"}, false},
	} {
		r := c.Check(context.Background(), msg("", "bounce@ok.example", nil, tc.from...), nil)
		if (r.Status == checks.StatusListed) != tc.listed {
			t.Errorf("%s: From %q: %s %q, want listed=%v", tc.name, tc.from, r.Status, r.Reason, tc.listed)
		}
	}
	// The null envelope sender: only the header counts.
	if r := c.Check(context.Background(), msg("", "", nil, "boss@deny.example"), nil); r.Status != checks.StatusListed {
		t.Errorf("null sender: %s", r.Status)
	}
}

func TestRecipients(t *testing.T) {
	c := newCheck(t, deny(lists.List{Recipients: []string{"abuse@example.org", "*@honeypot.example"}}))
	for _, tc := range []struct {
		rcpts  []string
		listed bool
	}{
		{[]string{"user@example.org"}, false},
		{[]string{"user@example.org", "ABUSE@Example.ORG"}, true},
		{[]string{"<abuse@example.org>"}, true},
		{[]string{"trap@honeypot.example"}, true},
		{nil, false},
	} {
		r := c.Check(context.Background(), msg("", "a@ok.example", tc.rcpts), nil)
		if (r.Status == checks.StatusListed) != tc.listed {
			t.Errorf("rcpts %q: %s, want listed=%v", tc.rcpts, r.Status, tc.listed)
		}
	}
}

func TestResults(t *testing.T) {
	cfg := lists.DefaultConfig()
	cfg.AllowSendersNeedAuth = false // auth_test.go tests it
	cfg.Allow = lists.List{Clients: []string{"192.0.2.0/24"}, Senders: []string{"friend@ok.example"}}
	cfg.Deny = lists.List{Senders: []string{"*@deny.example"}, Recipients: []string{"trap@example.org"}}
	c := newCheck(t, cfg)
	if c.Name() != "lists" {
		t.Errorf("Name() = %q", c.Name())
	}
	check := func(m *checks.Message) checks.Result {
		t.Helper()
		return c.Check(context.Background(), m, nil)
	}

	r := check(msg("192.0.2.9", "a@ok.example", []string{"u@example.org"}))
	want := checks.Result{
		Status:  checks.StatusPass,
		Class:   checks.ClassHam,
		Symbols: []checks.Symbol{{Name: "LISTS_ALLOW_CLIENT", Score: -20, Detail: "192.0.2.9"}},
		Reason:  "allow client 192.0.2.9 matches 192.0.2.0/24",
		Facts:   map[string]any{"list": "allow", "kind": "client", "value": "192.0.2.9", "pattern": "192.0.2.0/24"},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("allowed client:\n%+v\nwant\n%+v", r, want)
	}

	// Deny wins over allow, whatever matched on the allow side.
	r = check(msg("192.0.2.9", "x@deny.example", []string{"u@example.org"}, "friend@ok.example"))
	want = checks.Result{
		Status:  checks.StatusListed,
		Class:   checks.ClassSpam,
		Symbols: []checks.Symbol{{Name: "LISTS_DENY_SENDER", Score: 100, Detail: "x@deny.example"}},
		Reason:  "deny sender x@deny.example matches *@deny.example",
		Facts:   map[string]any{"list": "deny", "kind": "sender", "value": "x@deny.example", "pattern": "*@deny.example"},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("denied sender from an allowed client:\n%+v\nwant\n%+v", r, want)
	}

	for _, tc := range []struct {
		m      *checks.Message
		symbol string
	}{
		{msg("203.0.113.1", "Friend@OK.example", nil), "LISTS_ALLOW_SENDER"},
		{msg("192.0.2.9", "a@ok.example", []string{"Trap@example.org"}), "LISTS_DENY_RECIPIENT"},
	} {
		if r := check(tc.m); len(r.Symbols) != 1 || r.Symbols[0].Name != tc.symbol {
			t.Errorf("%+v: symbols %+v, want %s", tc.m.Envelope, r.Symbols, tc.symbol)
		}
	}

	r = check(msg("203.0.113.1", "a@ok.example", []string{"u@example.org"}, "b@ok.example"))
	if r.Status != checks.StatusNone || r.Class != checks.ClassNone || r.Symbols != nil || r.Facts != nil {
		t.Errorf("no match: %+v", r)
	}

	cfg.AllowScore, cfg.DenyScore = -5, 50
	c = newCheck(t, cfg)
	if r := check(msg("192.0.2.1", "", nil)); r.Symbols[0].Score != -5 {
		t.Errorf("allow_score: %+v", r.Symbols)
	}
	if r := check(msg("", "x@deny.example", nil)); r.Symbols[0].Score != 50 {
		t.Errorf("deny_score: %+v", r.Symbols)
	}
}

func TestNewRejectsBadPatterns(t *testing.T) {
	for _, tc := range []struct {
		cfg  lists.Config
		want string
	}{
		{lists.Config{Deny: lists.List{Clients: []string{"192.0.2.300"}}}, `deny.clients: "192.0.2.300"`},
		{lists.Config{Allow: lists.List{Clients: []string{"10.0.0.0/33"}}}, `allow.clients: "10.0.0.0/33"`},
		{lists.Config{Allow: lists.List{Clients: []string{"example.com"}}}, `allow.clients: "example.com"`},
		{lists.Config{Allow: lists.List{Clients: []string{""}}}, `allow.clients: ""`},
		{lists.Config{Deny: lists.List{Senders: []string{""}}}, `deny.senders: bad pattern ""`},
		{lists.Config{Deny: lists.List{Senders: []string{"   "}}}, `deny.senders: bad pattern "   "`},
		{lists.Config{Deny: lists.List{Senders: []string{"a b@example.com"}}}, `deny.senders: bad pattern "a b@example.com"`},
		{lists.Config{Deny: lists.List{Senders: []string{"user@"}}}, `deny.senders: bad pattern "user@"`},
		{lists.Config{Deny: lists.List{Senders: []string{"a@@example.com"}}}, `deny.senders: bad pattern "a@@example.com"`},
		{lists.Config{Allow: lists.List{Recipients: []string{"x@y@z"}}}, `allow.recipients: bad pattern "x@y@z"`},
		{lists.Config{Allow: lists.List{Recipients: []string{"bad\xffutf8"}}}, `allow.recipients: bad pattern`},
	} {
		_, err := lists.New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "lists: ") {
			t.Errorf("%+v: %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	// Padding is trimmed, not an error.
	c := newCheck(t, deny(lists.List{Clients: []string{" 192.0.2.1 "}, Senders: []string{" x@deny.example "}}))
	if r := c.Check(context.Background(), msg("192.0.2.1", "", nil), nil); r.Status != checks.StatusListed {
		t.Errorf("padded client: %s", r.Status)
	}
}

func TestEmptyListsMatchNothing(t *testing.T) {
	c := newCheck(t, lists.DefaultConfig())
	r := c.Check(context.Background(), msg("192.0.2.1", "a@example.com", []string{"b@example.org"}, "a@example.com"), nil)
	if r.Status != checks.StatusNone {
		t.Errorf("%+v", r)
	}
}

func TestLongGlobIsFast(t *testing.T) {
	// Backtracking over many stars must stay linear-ish.
	c := newCheck(t, deny(lists.List{Senders: []string{"*a*a*a*a*a*a*a*a*a*b@example.com"}}))
	from := strings.Repeat("a", 5000) + "@example.com"
	if r := c.Check(context.Background(), msg("", from, nil), nil); r.Status != checks.StatusNone {
		t.Errorf("%s", r.Status)
	}
}
