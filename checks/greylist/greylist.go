// Package greylist is the greylist check, postgrey's method at the RCPT
// stage: the first delivery attempt of a (client network, envelope
// sender, recipient) triplet is deferred with 451 4.7.1; a retry after
// Delay (default 5 minutes) and within RetryWindow (default 2 days)
// passes, and the triplet then passes at once for MaxAge (35 days, renewed
// while it is used). Real MTAs retry; most spamware does not.
//
// The client is taken as its /24 (IPv4) or /64 (IPv6) network, since big
// senders retry from another address of the same pool. The sender is
// normalised as postgrey does, so that per-message VERP, BATV and SRS
// tokens do not make every retry a new triplet: lower case, a BATV
// "prvs=…=" tag removed, every run of digits in the local part replaced
// by "#".
//
// A client network whose triplets passed after a retry AutoAllow times
// (default 5) is allow-listed for MaxAge: it has shown that it retries.
// Authenticated clients, the null sender (bounces: greylisting them
// delays delivery reports for nothing) and the configured client
// networks, senders and recipients (postmaster@ and abuse@ should never
// wait) are not greylisted.
//
// State is in the store: one key per triplet ("w <first seen>" while
// waiting, "p <last seen>" once passed) and one counter per client network.
// A decision is one store round trip (client counter and triplet read in
// one batch); the first attempt and the first pass write once more.
// Several MTAs sharing a Redis store share the triplets: a retry through
// another MTA passes.
//
// Clocks: entries carry the time of the MTA that wrote them. An entry from
// the future (a clock that went back, or another MTA's skewed clock) and
// one older than RetryWindow (a clock that jumped forward) both start the
// triplet over, so a clock jump costs a sender one more retry, never a
// permanent deferral.
//
// A store that cannot be reached lets the recipient through (the error is
// logged): greylisting is a filter for spamware, not a reason to delay
// mail.
package greylist

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chainmail/checks"
	"chainmail/checks/verdictlog"
	"chainmail/store"
)

// Config is the greylist check's configuration.
type Config struct {
	// Delay is how long a new triplet must wait before a retry passes.
	Delay time.Duration `yaml:"delay"`
	// RetryWindow is how long a new triplet waits for its retry.
	RetryWindow time.Duration `yaml:"retry_window"`
	// MaxAge is how long a passed triplet, and an allow-listed client,
	// are remembered since last seen.
	MaxAge time.Duration `yaml:"max_age"`
	// IPv4Prefix and IPv6Prefix are the client networks (24 and 64).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// AutoAllow allow-lists a client network after this many triplets
	// passed after a retry; 0 turns it off.
	AutoAllow int `yaml:"auto_allow"`
	// AllowClients are addresses or networks never greylisted.
	AllowClients []string `yaml:"allow_clients"`
	// AllowSenders are envelope senders (user@example.com) or domains
	// (example.com, @example.com) never greylisted.
	AllowSenders []string `yaml:"allow_senders"`
	// AllowRecipients are recipients (or recipient domains) for whom mail
	// is never greylisted.
	AllowRecipients []string `yaml:"allow_recipients"`
	// Authenticated greylists clients that authenticated (default false:
	// they skip it).
	Authenticated bool `yaml:"authenticated"`
	// Bounces greylists mail from the null sender (default false).
	Bounces bool `yaml:"bounces"`
	// Reply is the 451 answer; %s is replaced by the time left
	// ("300 seconds").
	Reply string `yaml:"reply"`
}

// DefaultConfig returns postgrey's defaults.
func DefaultConfig() Config {
	return Config{
		Delay:           5 * time.Minute,
		RetryWindow:     48 * time.Hour,
		MaxAge:          35 * 24 * time.Hour,
		IPv4Prefix:      24,
		IPv6Prefix:      64,
		AutoAllow:       5,
		AllowRecipients: []string{"postmaster", "abuse"},
		Reply:           "451 4.7.1 Greylisted: first attempt from an unknown sender, please try again in %s",
	}
}

// Deps are what the check needs besides its configuration.
type Deps struct {
	Store store.Store
	// Metrics (NewMetrics) may be nil.
	Metrics *Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Check is the greylist check.
type Check struct {
	cfg        Config
	st         store.Store
	metrics    *Metrics
	now        func() time.Time
	clients    []netip.Prefix
	senders    []string
	recipients []string
	code, text string
}

var (
	_ checks.Check       = (*Check)(nil)
	_ checks.RcptChecker = (*Check)(nil)
)

// New validates cfg.
func New(cfg Config, d Deps) (*Check, error) {
	if cfg.Delay < 0 || cfg.RetryWindow <= cfg.Delay {
		return nil, fmt.Errorf("greylist: retry_window (%v) must be longer than delay (%v)", cfg.RetryWindow, cfg.Delay)
	}
	if cfg.MaxAge <= 0 {
		return nil, fmt.Errorf("greylist: max_age must be positive")
	}
	if cfg.IPv4Prefix < 1 || cfg.IPv4Prefix > 32 || cfg.IPv6Prefix < 1 || cfg.IPv6Prefix > 128 {
		return nil, fmt.Errorf("greylist: ipv4_prefix must be 1-32 and ipv6_prefix 1-128")
	}
	if cfg.AutoAllow < 0 {
		return nil, fmt.Errorf("greylist: auto_allow must be 0 (off) or more")
	}
	c := &Check{cfg: cfg, st: d.Store, metrics: d.Metrics, now: d.Now}
	if c.now == nil {
		c.now = time.Now
	}
	for _, s := range cfg.AllowClients {
		p, err := checks.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("greylist: allow_clients: %v", err)
		}
		c.clients = append(c.clients, p)
	}
	for _, s := range cfg.AllowSenders {
		c.senders = append(c.senders, strings.ToLower(strings.TrimSpace(s)))
	}
	for _, s := range cfg.AllowRecipients {
		c.recipients = append(c.recipients, strings.ToLower(strings.TrimSpace(s)))
	}
	var err error
	if c.code, c.text, err = splitReply(cfg.Reply); err != nil {
		return nil, err
	}
	if d.Store == nil {
		return nil, fmt.Errorf("greylist: no state store")
	}
	return c, nil
}

func splitReply(s string) (code, text string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", fmt.Errorf("greylist: empty reply")
	}
	code = "451"
	if len(s) >= 4 && s[3] == ' ' && s[0] >= '0' && s[0] <= '9' {
		code, s = s[:3], strings.TrimSpace(s[4:])
	}
	if code[0] != '4' {
		return "", "", fmt.Errorf("greylist: reply code %s must be 4xx (greylisting is a temporary failure)", code)
	}
	if !(len(s) > 2 && s[0] == '4' && s[1] == '.') {
		s = "4.7.1 " + s
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", "", fmt.Errorf("greylist: the reply must be one line")
	}
	return code, s, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return "greylist" }

// Check implements checks.Check: greylisting is decided at RCPT time;
// at the end of the message there is nothing left to do.
func (c *Check) Check(context.Context, *checks.Message, checks.Results) checks.Result {
	return checks.Result{Check: c.Name(), Status: checks.StatusNone, Reason: "decided at RCPT time"}
}

var (
	batv   = regexp.MustCompile(`^prvs=[0-9a-z]+=`)
	digits = regexp.MustCompile(`[0-9]+`)
)

// normSender is the sender as the triplet keeps it.
func normSender(s string) string {
	s = strings.ToLower(strings.Trim(s, "<> "))
	s = batv.ReplaceAllString(s, "")
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return digits.ReplaceAllString(s, "#")
	}
	return digits.ReplaceAllString(s[:at], "#") + s[at:]
}

// matches reports whether addr is one of pats: an address, a domain or
// @domain, or a bare local part (postmaster: at any domain).
func matches(addr string, pats []string) bool {
	addr = strings.ToLower(strings.Trim(addr, "<> "))
	at := strings.LastIndexByte(addr, '@')
	local, domain := addr, ""
	if at >= 0 {
		local, domain = addr[:at], addr[at+1:]
	}
	for _, p := range pats {
		switch {
		case p == addr:
			return true
		case strings.HasPrefix(p, "@") && p[1:] == domain:
			return true
		case strings.Contains(p, "."):
			if !strings.Contains(p, "@") && p == domain {
				return true
			}
		case !strings.Contains(p, "@") && p == local:
			return true
		}
	}
	return false
}

// Decisions, for the metric.
const (
	decGreylisted = "greylisted"
	decPassed     = "passed"
	decKnown      = "known"
	decAllowed    = "auto_allowed"
	decSkipped    = "skipped"
)

// CheckRcpt decides one recipient.
func (c *Check) CheckRcpt(ctx context.Context, env *checks.Envelope, rcpt string) checks.RcptResult {
	if (env.AuthUser != "" && !c.cfg.Authenticated) || (env.MailFrom == "" && !c.cfg.Bounces) ||
		matches(env.MailFrom, c.senders) || matches(rcpt, c.recipients) {
		c.metrics.decision(decSkipped)
		return checks.RcptResult{}
	}
	ip, ok := netip.AddrFromSlice(env.ClientIP)
	if !ok {
		c.metrics.decision(decSkipped)
		return checks.RcptResult{}
	}
	ip = ip.Unmap()
	for _, p := range c.clients {
		if p.Contains(ip) {
			c.metrics.decision(decSkipped)
			return checks.RcptResult{}
		}
	}
	bits := c.cfg.IPv6Prefix
	if ip.Is4() {
		bits = c.cfg.IPv4Prefix
	}
	network := netip.PrefixFrom(ip, bits).Masked().String()
	sender := normSender(env.MailFrom)
	recipient := strings.ToLower(strings.Trim(rcpt, "<> "))
	clientKey := "greylist:c:" + network
	tripletKey := "greylist:t:" + network + "|" + sender + "|" + recipient

	now := c.now()
	get := &store.Op{Kind: store.OpGet, Key: tripletKey}
	ops := []*store.Op{get}
	var client *store.Op
	if c.cfg.AutoAllow > 0 {
		client = &store.Op{Kind: store.OpGet, Key: clientKey}
		ops = append(ops, client)
	}
	if err := c.st.Do(ctx, ops...); err != nil {
		c.metrics.storeError()
		return checks.RcptResult{Err: fmt.Errorf("greylist: %w", err)}
	}
	if client != nil && client.OK {
		if n, err := strconv.ParseFloat(string(client.Out), 64); err == nil && n >= float64(c.cfg.AutoAllow) {
			c.metrics.decision(decAllowed)
			return checks.RcptResult{}
		}
	}
	line := func(action, reason string) checks.Event {
		return verdictlog.Greylist{Action: action, Reason: reason, ClientAddress: ip.String(), ClientNet: network,
			HELO: env.HELO, Sender: env.MailFrom, Recipient: recipient}.Event()
	}
	state, at := parseEntry(get.Out, get.OK)
	switch state {
	case 'p':
		// Known triplet: renew it once a day, not at every message.
		if now.Sub(at) > 24*time.Hour || at.After(now.Add(time.Hour)) {
			store.Set(ctx, c.st, tripletKey, entry('p', now), c.cfg.MaxAge)
		}
		c.metrics.decision(decKnown)
		return checks.RcptResult{}
	case 'w':
		waited := now.Sub(at)
		switch {
		case waited < 0 || waited > c.cfg.RetryWindow:
			// A clock jump (or an entry the store has not expired yet):
			// start over.
		case waited < c.cfg.Delay:
			c.metrics.decision(decGreylisted)
			return c.deferral(c.cfg.Delay-waited, line("greylist", fmt.Sprintf("early-retry (%ds missing)", int((c.cfg.Delay-waited).Seconds()+0.999))))
		default:
			pass := []*store.Op{{Kind: store.OpSet, Key: tripletKey, Val: entry('p', now), TTL: c.cfg.MaxAge}}
			if c.cfg.AutoAllow > 0 {
				pass = append(pass, &store.Op{Kind: store.OpIncrBy, Key: clientKey, N: 1, TTL: c.cfg.MaxAge})
			}
			c.st.Do(ctx, pass...) // a failure here costs one more retry at worst
			c.metrics.decision(decPassed)
			return checks.RcptResult{Events: []checks.Event{line("pass", fmt.Sprintf("triplet found, delay=%d", int(waited.Seconds())))}}
		}
		if err := store.Set(ctx, c.st, tripletKey, entry('w', now), c.cfg.RetryWindow); err != nil {
			return checks.RcptResult{Err: fmt.Errorf("greylist: %w", err)}
		}
	default:
		if _, err := store.SetNX(ctx, c.st, tripletKey, entry('w', now), c.cfg.RetryWindow); err != nil {
			c.metrics.storeError()
			return checks.RcptResult{Err: fmt.Errorf("greylist: %w", err)}
		}
		// SetNX false: another session (or MTA) saw the triplet a moment
		// ago; the answer is the same.
	}
	c.metrics.decision(decGreylisted)
	return c.deferral(c.cfg.Delay, line("greylist", "new"))
}

func (c *Check) deferral(left time.Duration, ev checks.Event) checks.RcptResult {
	secs := int(left.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	text := strings.Replace(c.text, "%s", strconv.Itoa(secs)+" seconds", 1)
	return checks.RcptResult{Action: checks.Tempfail, Code: c.code, Reply: text, Events: []checks.Event{ev}}
}

// entry is a triplet's stored value: state and unix time in milliseconds.
func entry(state byte, t time.Time) []byte {
	return []byte(string(state) + " " + strconv.FormatInt(t.UnixMilli(), 10))
}

func parseEntry(b []byte, ok bool) (byte, time.Time) {
	if !ok || len(b) < 3 || b[1] != ' ' || (b[0] != 'w' && b[0] != 'p') {
		return 0, time.Time{}
	}
	ms, err := strconv.ParseInt(string(b[2:]), 10, 64)
	if err != nil {
		return 0, time.Time{}
	}
	return b[0], time.UnixMilli(ms)
}

// Metrics are the greylist check's Prometheus collectors.
type Metrics struct {
	// Decisions counts RCPT decisions: greylisted, passed (a retry after
	// the delay), known (a passed triplet), auto_allowed, skipped.
	Decisions *prometheus.CounterVec
	// StoreErrors counts decisions the state store could not serve (the
	// recipient was let through).
	StoreErrors prometheus.Counter
}

// NewMetrics creates the collectors and registers them on reg (nil: not
// registered), reusing those a previous configuration registered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_greylist_decisions_total", Help: "Greylisting decisions at RCPT (greylisted, passed, known, auto_allowed, skipped).",
		}, []string{"decision"}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chainmail_greylist_store_errors_total", Help: "Greylisting decisions skipped because the state store failed.",
		}),
	}
	m.Decisions = store.Register(reg, m.Decisions)
	m.StoreErrors = store.Register(reg, m.StoreErrors)
	return m
}

// Collectors returns every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Decisions, m.StoreErrors}
}

func (m *Metrics) decision(d string) {
	if m != nil {
		m.Decisions.WithLabelValues(d).Inc()
	}
}

func (m *Metrics) storeError() {
	if m != nil {
		m.StoreErrors.Inc()
	}
}
