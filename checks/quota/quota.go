// Package quota is the quota check: limits on how much mail one SASL
// user, sender address, sender domain, client address or network, or
// recipient may send per period, in the manner of cbpolicyd's Quotas
// module, with the alerts a postmaster needs when a stolen password starts
// a spam run: the cbpolicyd log line, a Prometheus counter and a webhook.
//
// # Counting: a sliding window
//
// Each quota keeps, per tracked party and counter, a sliding window in
// the state store (store.WindowAdd): every message, recipient or byte is
// an event with its time, and the count is the sum of the events of the
// last Period. Of the three usual ways this is the one that says exactly
// what the configuration says, "no more than 70 messages in any hour":
// cbpolicyd's decaying counter lets the count leak away continuously (so
// a burst right after a quiet spell passes limits that look reached), and
// rspamd's token buckets allow a full bucket as a burst at any moment.
// For abuse control the burst is the case that matters. The window costs
// one stored event per message (bounded: refused events are not stored),
// and with Redis the test-and-add is one Lua script, so several MTAs
// sharing a quota never pass its limit together.
//
// # When what is counted and decided
//
// Recipients are the RCPT stage's: at each RCPT (CheckRcpt, one store
// round trip for all quotas, pipelined) a recipients limit tests and
// counts in one step (store.OpWindowAddCapped); a messages limit refuses
// when one more message would pass it, a size limit when the bytes of the
// period already reach it. A refused recipient is not counted, so a
// sender held at its limit gets through again as soon as the window
// moves. Messages and their sizes are counted at the end of the message
// (Check, when the size is known and the message really arrived: one
// round trip). Defer and reject act at RCPT, so a blocked sender never
// sends the body; quarantine and alert quotas let the message in and
// report it at the end of the message: Check sets the fact quota.action
// ("quarantine" or "alert") for the policy rule that holds the message,
// and both write the line.
//
// Quotas that skip the message: no {auth_authen} (track sasl_user), the
// null sender (sender, sender_domain: bounces are not a sender's mail), no
// client address (client_ip).
//
// A store that cannot be reached makes CheckRcpt return an error (the
// recipient is accepted and the error logged) and Check a temperror:
// mail flows, as the failure policy says.
package quota

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"chainmail/checks"
	"chainmail/checks/verdictlog"
	"chainmail/store"
)

// Deps are what the check needs besides its configuration.
type Deps struct {
	Store store.Store
	// Metrics (NewMetrics) may be nil.
	Metrics *Metrics
	// Logf is told about webhook trouble; nil is quiet.
	Logf func(format string, args ...any)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Check is the quota check.
type Check struct {
	quotas  []quota
	st      store.Store
	metrics *Metrics
	hook    *notifier
	now     func() time.Time
}

type quota struct {
	Quota
	code, reply string
}

var (
	_ checks.Check       = (*Check)(nil)
	_ checks.RcptChecker = (*Check)(nil)
)

// New validates cfg.
func New(cfg Config, d Deps) (*Check, error) {
	c := &Check{st: d.Store, metrics: d.Metrics, now: d.Now}
	if c.now == nil {
		c.now = time.Now
	}
	seen := map[string]bool{}
	for _, q := range cfg.Quotas {
		if err := q.validate(); err != nil {
			return nil, err
		}
		if seen[q.Name] {
			return nil, fmt.Errorf("quota %q defined twice", q.Name)
		}
		seen[q.Name] = true
		code, reply, err := q.reply()
		if err != nil {
			return nil, err
		}
		c.quotas = append(c.quotas, quota{Quota: q, code: code, reply: reply})
	}
	if d.Store == nil {
		return nil, fmt.Errorf("quota: no state store")
	}
	if cfg.Webhook.URL != "" {
		h, err := newNotifier(cfg.Webhook, d.Store, d.Metrics, d.Logf)
		if err != nil {
			return nil, err
		}
		c.hook = h
	}
	return c, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return "quota" }

// Facts declares the facts rules may use (checks.Factual), with their
// values when no quota was passed: quota.action ("quarantine", "alert"
// or "") and quota.quotas (the names of the quotas passed).
func (*Check) Facts() map[string]any {
	return map[string]any{"action": "", "quotas": []string{}}
}

// Counters, as cbpolicyd names them in its log line.
const (
	counterMessages   = "MessageCount"
	counterRecipients = "RecipientCount"
	counterSize       = "MessageCumulativeSize"
)

// limit is one counter of one quota for one tracked party.
type limit struct {
	q       *quota
	name    string // messages | recipients | size
	counter string
	max     float64
	track   string // SASLUsername:alice
	key     string // store key
	to      string // logged recipient(s)
	op      *store.Op
}

// party is the tracked value of q for env (and rcpt, for track
// recipient): its log form and its key part; ok false when the quota does
// not apply.
func (q *quota) party(env *checks.Envelope, rcpt string) (track, key string, ok bool) {
	switch q.Track {
	case TrackSASLUser:
		u := strings.ToLower(strings.TrimSpace(env.AuthUser))
		return "SASLUsername:" + u, u, u != ""
	case TrackSender:
		a := strings.ToLower(strings.Trim(env.MailFrom, "<> "))
		return "Sender:" + a, a, a != ""
	case TrackSenderDomain:
		a := strings.ToLower(strings.Trim(env.MailFrom, "<> "))
		at := strings.LastIndexByte(a, '@')
		if at < 0 || at == len(a)-1 {
			return "", "", false
		}
		return "Sender:@" + a[at+1:], a[at+1:], true
	case TrackClientIP:
		ip, ok := netip.AddrFromSlice(env.ClientIP)
		if !ok {
			return "", "", false
		}
		ip = ip.Unmap()
		bits := q.IPv6Prefix
		if ip.Is4() {
			bits = q.IPv4Prefix
		}
		p := netip.PrefixFrom(ip, bits).Masked()
		if bits == ip.BitLen() {
			return "SenderIP:" + ip.String(), ip.String(), true
		}
		return "SenderIP:" + p.String(), p.String(), true
	case TrackRecipient:
		r := strings.ToLower(strings.Trim(rcpt, "<> "))
		return "Recipient:" + r, r, r != ""
	}
	return "", "", false
}

func (q *quota) limit(name, counter string, max float64, track, key, to string) *limit {
	return &limit{q: q, name: name, counter: counter, max: max, track: track, to: to,
		key: "quota:" + q.Name + ":" + name + ":" + key}
}

// CheckRcpt decides one recipient: one store round trip for all quotas.
func (c *Check) CheckRcpt(ctx context.Context, env *checks.Envelope, rcpt string) checks.RcptResult {
	now := c.now()
	var ls []*limit
	for i := range c.quotas {
		q := &c.quotas[i]
		track, key, ok := q.party(env, rcpt)
		if !ok {
			continue
		}
		if q.Recipients > 0 {
			l := q.limit("recipients", counterRecipients, q.Recipients, track, key, rcpt)
			if q.blocking() {
				l.op = &store.Op{Kind: store.OpWindowAddCapped, Key: l.key, At: now, N: 1, TTL: q.Period, Max: q.Recipients}
			} else {
				l.op = &store.Op{Kind: store.OpWindowAdd, Key: l.key, At: now, N: 1, TTL: q.Period}
			}
			ls = append(ls, l)
		}
		if !q.blocking() {
			continue // messages and size of these are judged at the end
		}
		if q.Messages > 0 {
			l := q.limit("messages", counterMessages, q.Messages, track, key, rcpt)
			l.op = &store.Op{Kind: store.OpWindowSum, Key: l.key, At: now, TTL: q.Period}
			ls = append(ls, l)
		}
		if q.Size > 0 {
			l := q.limit("size", counterSize, float64(q.Size), track, key, rcpt)
			l.op = &store.Op{Kind: store.OpWindowSum, Key: l.key, At: now, TTL: q.Period}
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		return checks.RcptResult{}
	}
	ops := make([]*store.Op, len(ls))
	for i, l := range ls {
		ops[i] = l.op
	}
	if err := c.st.Do(ctx, ops...); err != nil {
		c.metrics.storeError()
		return checks.RcptResult{Err: fmt.Errorf("quota: %w", err)}
	}

	var out checks.RcptResult
	var worst *limit
	for _, l := range ls {
		if !l.q.blocking() {
			continue
		}
		over, cur := false, 0.0
		switch l.name {
		case "recipients":
			over, cur = !l.op.OK, l.op.Num+1
		case "messages":
			over, cur = l.op.Num+1 > l.max, l.op.Num+1
		case "size":
			over, cur = l.op.Num >= l.max, l.op.Num
		}
		if !over {
			continue
		}
		out.Events = append(out.Events, c.alert(l, env, cur, now))
		if worst == nil || l.q.Action == ActionReject && worst.q.Action != ActionReject {
			worst = l
		}
	}
	if worst == nil {
		return out
	}
	// The recipient is refused: take back the recipients counted for it
	// by the quotas that had room (one more round trip, on refusals only).
	var undo []*store.Op
	for _, l := range ls {
		if l.name == "recipients" && (l.op.OK || l.op.Kind == store.OpWindowAdd) {
			undo = append(undo, &store.Op{Kind: store.OpWindowAdd, Key: l.key, At: now, N: -1, TTL: l.q.Period})
		}
	}
	if len(undo) > 0 {
		c.st.Do(ctx, undo...)
	}
	out.Action = checks.Tempfail
	if worst.q.Action == ActionReject {
		out.Action = checks.Reject
	}
	out.Code, out.Reply = worst.q.code, worst.q.reply
	return out
}

// Check counts the message (once, with its size) for every quota and
// reports quarantine and alert quotas that it took over their limit.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	res := checks.Result{Check: c.Name(), Status: checks.StatusPass}
	now := c.now()
	env := &m.Envelope
	var ls []*limit
	size := -1.0
	applies := false
	for i := range c.quotas {
		q := &c.quotas[i]
		parties := []string{""}
		if q.Track == TrackRecipient {
			parties = env.Rcpts
		}
		seen := map[string]bool{}
		for _, rcpt := range parties {
			track, key, ok := q.party(env, rcpt)
			if !ok || seen[key] {
				continue
			}
			seen[key] = true
			applies = true
			to := rcpt
			if to == "" {
				to = strings.Join(env.Rcpts, ",")
			}
			if q.Messages > 0 {
				l := q.limit("messages", counterMessages, q.Messages, track, key, to)
				l.op = &store.Op{Kind: store.OpWindowAdd, Key: l.key, At: now, N: 1, TTL: q.Period}
				ls = append(ls, l)
			}
			if q.Size > 0 {
				if size < 0 {
					size = float64(m.Size())
				}
				l := q.limit("size", counterSize, float64(q.Size), track, key, to)
				l.op = &store.Op{Kind: store.OpWindowAdd, Key: l.key, At: now, N: size, TTL: q.Period}
				ls = append(ls, l)
			}
			if q.Recipients > 0 && !q.blocking() {
				l := q.limit("recipients", counterRecipients, q.Recipients, track, key, to)
				l.op = &store.Op{Kind: store.OpWindowSum, Key: l.key, At: now, TTL: q.Period}
				ls = append(ls, l)
			}
		}
	}
	if !applies {
		res.Status = checks.StatusNone
		res.Reason = "no quota applies"
		return res
	}
	if len(ls) == 0 {
		return res // counted at RCPT
	}
	ops := make([]*store.Op, len(ls))
	for i, l := range ls {
		ops[i] = l.op
	}
	if err := c.st.Do(ctx, ops...); err != nil {
		c.metrics.storeError()
		res.Status, res.Err, res.Reason = checks.StatusTemperror, err, "state store: "+err.Error()
		return res
	}
	action := ""
	var names []string
	for _, l := range ls {
		if l.q.blocking() || l.op.Num <= l.max {
			continue
		}
		res.Events = append(res.Events, c.alert(l, env, l.op.Num, now))
		names = append(names, l.q.Name)
		if l.q.Action == ActionQuarantine || action == "" {
			action = l.q.Action
		}
	}
	if action != "" {
		res.Status = "exceeded"
		res.Reason = "over quota " + strings.Join(names, ", ")
		res.Symbols = []checks.Symbol{{Name: "QUOTA_" + strings.ToUpper(action), Detail: strings.Join(names, ",")}}
		res.Facts = map[string]any{"action": action, "quotas": names}
	}
	return res
}

// alert builds the log event of one limit passed, counts it and queues
// the webhook.
func (c *Check) alert(l *limit, env *checks.Envelope, current float64, now time.Time) checks.Event {
	ip := ""
	if env.ClientIP != nil {
		ip = env.ClientIP.String()
	}
	ev := verdictlog.QuotaEvent{
		Action: l.q.Action, Host: ip, HELO: env.HELO, From: env.MailFrom, To: l.to,
		Policy: l.q.Policy, Quota: l.q.Name, Limit: l.name, Track: l.track, Counter: l.counter,
		Current: current, Max: l.max,
	}
	event := ev.Event()
	c.metrics.exceeded(l.q.Name, l.q.Action)
	if c.hook != nil {
		c.hook.notify(l.q.Name+"\x00"+l.track, payload{Event: "quota", Time: now.UTC().Format(time.RFC3339), Line: event.Line, QuotaFacts: event.Facts.(verdictlog.QuotaFacts)})
	}
	return event
}
