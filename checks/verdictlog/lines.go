package verdictlog

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"chainmail/checks"
)

// NoQueueID stands for a queue id the MTA did not send.
const NoQueueID = "NOQUEUE"

// Sanitize makes s safe to put inside one log line: CR, LF and every other
// control character (C0, DEL, C1, and the Unicode line and paragraph
// separators U+2028/U+2029) become one space each, and every byte that is
// not part of valid UTF-8 becomes U+FFFD. Everything else is kept as it is,
// so a clean string comes back unchanged (and without an allocation).
//
// Every value that reaches a line from a message or the network goes
// through Sanitize: one event is always exactly one line, whatever a
// sender puts in its Subject (log injection).
func Sanitize(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case unsafeRune(r):
			b.WriteByte(' ')
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports whether r could break a line or hide part of it from
// a reader of the log.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// entry is one log line with what the JSON format says about it.
type entry struct {
	event   string // its name, which also gives its family (Family)
	queueID string
	line    string
	err     bool // written with severity err instead of info
	facts   any  // event-specific JSON fields, nil for none
}

// Lines returns the verdict lines for one message, without any prefix, in
// the order Logger.Message writes them. It is pure: the same message and
// verdict always give the same lines. A nil m or v counts as empty.
func Lines(m *checks.Message, v *checks.Verdict) []string {
	return Config{}.Lines(m, v)
}

// Lines is the package's Lines with c's wording (Engine), for `chainmail
// replay`, which prints what a Logger with c would write.
func (c Config) Lines(m *checks.Message, v *checks.Verdict) []string {
	es := messageEntries(m, v, c.Engine)
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.line
	}
	return out
}

// messageEntries builds the per-message lines (see the package doc for the
// wording and the order). engine is the configured log.engine: when it is
// "", the verdict line names the scanner that scored the message
// (v.Engine, "SpamAssassin"), else DefaultEngine.
func messageEntries(m *checks.Message, v *checks.Verdict, engine string) []entry {
	if m == nil {
		m = &checks.Message{}
	}
	if v == nil {
		v = &checks.Verdict{}
	}
	if engine == "" {
		engine = Sanitize(v.Engine)
	}
	if engine == "" {
		engine = DefaultEngine
	}
	id := queueID(m.QueueID)
	ip := clientIP(m)
	from := envFrom(m.MailFrom)
	rcpts := make([]string, 0, len(m.Rcpts))
	for _, r := range m.Rcpts {
		rcpts = append(rcpts, Sanitize(stripBrackets(r)))
	}
	domains := rcptDomains(rcpts)
	listed := uniqueSanitized(v.Listed)
	subject := Sanitize(m.Subject())
	why := Sanitize(v.Why.String())

	var es []entry

	// 1. RBL checks
	if len(listed) > 0 {
		es = append(es, entry{
			event: "rbl", queueID: id,
			line:  "RBL checks: " + id + " found in " + strings.Join(listed, ", "),
			facts: rblFacts{Listed: listed},
		})
	}

	// Events the checks reported (attachments, antivirus, reputation…);
	// those that say the message was blocked only when it was.
	blocked := !v.Monitor && (v.Action == checks.Quarantine || v.Action == checks.Discard || v.Action == checks.Reject)
	for _, r := range v.Results {
		for _, ev := range r.Events {
			if ev.IfBlocked && !blocked {
				continue
			}
			ev = worded(ev)
			es = append(es, entry{event: ev.Name, queueID: id, line: Sanitize(ev.Line), facts: ev.Facts})
		}
	}

	// A message deferred because a check could not answer (DNS, clamd, the
	// state store down) was not judged: it is logged as not spam, without
	// Spam Actions, and its delivery line is the deferral, so an outage does
	// not count as a wave of spam. It is judged when the client retries.
	spam := v.Spam && !outage(v)

	// 2. The verdict line.
	var b strings.Builder
	b.WriteString("Message ")
	b.WriteString(id)
	b.WriteString(" from ")
	b.WriteString(ip)
	b.WriteString(" (")
	b.WriteString(from)
	b.WriteString(") to ")
	b.WriteString(orUnknown(strings.Join(domains, ",")))
	if spam {
		b.WriteString(" is spam, ")
	} else {
		b.WriteString(" is not spam, ")
	}
	if len(listed) > 0 {
		b.WriteString(strings.Join(listed, ", "))
		b.WriteString(", ")
	}
	b.WriteString(engine)
	b.WriteString(" (not cached, score=")
	b.WriteString(score(v.Score))
	b.WriteString(", required ")
	b.WriteString(score(v.Required))
	syms := make([]symbolFact, 0, len(v.Symbols))
	for _, s := range v.Symbols {
		name := Sanitize(s.Name)
		b.WriteString(", ")
		b.WriteString(name)
		b.WriteByte(' ')
		b.WriteString(score(s.Score))
		syms = append(syms, symbolFact{Name: name, Score: round2(s.Score)})
	}
	b.WriteByte(')')
	mf := messageFacts{
		ClientIP: ip, From: from, Rcpt: rcpts, RcptDomains: domains,
		Spam: spam, Action: v.Action.String(), Why: why,
		Score: round2(v.Score), Required: round2(v.Required),
		Symbols: syms, Listed: listed, Subject: subject,
	}
	if v.Monitor {
		mf.Monitor, mf.Would = true, v.Would.String()
	}
	es = append(es, entry{event: "message", queueID: id, line: b.String(), facts: mf})

	// 3. Spam actions, and what monitor mode held back.
	if spam {
		acts := spamActions(v)
		es = append(es, entry{
			event: "spam_actions", queueID: id,
			line:  "Spam Actions: message " + id + " actions are " + acts,
			facts: spamActionsFacts{Action: v.Action.String(), Actions: strings.Split(acts, ",")},
		})
	}
	if v.Monitor && (v.Spam || v.Would != checks.Accept) {
		es = append(es, entry{
			event: "monitor", queueID: id,
			line:  "Monitor: message " + id + " would be " + v.Would.String() + " (" + why + ")",
			facts: monitorFacts{Would: v.Would.String(), Why: why},
		})
	}

	// 4. Delivery.
	df := deliveryFacts{Spam: spam, From: from, Rcpt: rcpts, Subject: subject}
	tail := "message " + id + " from " + from + " to " + orUnknown(strings.Join(rcpts, ",")) + " with subject " + subject
	kind := "nonspam"
	if spam {
		kind = "spam"
	}
	var line string
	switch {
	case v.Monitor || v.Action == checks.Accept || v.Action == checks.Tag:
		df.Delivery = "delivery"
		line = "Delivery of " + kind + ": " + tail
	case v.Action == checks.Tempfail:
		df.Delivery, df.Why = "deferral", why
		line = "Deferral of message: " + tail + " (" + why + ")"
	default: // quarantine, reject, discard
		df.Delivery = "non-delivery"
		line = "Non-delivery of " + kind + ": " + tail
	}
	es = append(es, entry{event: "delivery", queueID: id, line: line, facts: df})

	// 5. Checks that did not give an answer.
	return append(es, checkEntries(id, v)...)
}

// outage reports whether v defers the message because a check could not
// answer: a tempfail (not in monitor mode) while a check failed, timed out
// or met a temporary error.
func outage(v *checks.Verdict) bool {
	if v.Monitor || v.Action != checks.Tempfail {
		return false
	}
	switch v.Why.By {
	case checks.ByError, checks.ByRuleError, checks.ByTimeout:
		return true
	}
	for _, r := range v.Results {
		switch r.Status {
		case checks.StatusError, checks.StatusTimeout, checks.StatusTemperror:
			return true
		}
	}
	return false
}

// checkEntries are the "Check … on message …" lines of the checks that
// did not give an answer.
func checkEntries(id string, v *checks.Verdict) []entry {
	var es []entry
	for _, r := range v.Results {
		if !diagnostic(r) {
			continue
		}
		reason := r.Reason
		if reason == "" && r.Err != nil {
			reason = r.Err.Error()
		}
		reason = Sanitize(reason)
		name, status := Sanitize(r.Check), Sanitize(string(r.Status))
		line := "Check " + name + " on message " + id + ": " + status
		if reason != "" {
			line += " (" + reason + ")"
		}
		es = append(es, entry{
			event: "check", queueID: id, line: line,
			facts: checkFacts{Check: name, Status: status, Reason: reason},
		})
	}
	return es
}

// diagnostic reports whether r gets a "Check … on message …" line: it
// failed, ran out of time, or was skipped because the message was too big.
func diagnostic(r checks.Result) bool {
	switch r.Status {
	case checks.StatusError, checks.StatusTimeout:
		return true
	case checks.StatusSkipped, checks.StatusUnscannable:
		// Over the step's max_size (a security check reports that as
		// unscannable); a check's own unscannable findings have lines of
		// their own.
		return strings.HasPrefix(r.Reason, "too big (")
	}
	return false
}

// spamActions names what happened to a spam message in MailScanner's
// "Spam Actions" words.
func spamActions(v *checks.Verdict) string {
	if v.Monitor {
		return "deliver"
	}
	switch v.Action {
	case checks.Accept:
		return "deliver"
	case checks.Tag:
		return "deliver,header"
	case checks.Quarantine:
		return "store"
	case checks.Tempfail:
		return "defer"
	case checks.Reject:
		return "bounce"
	case checks.Discard:
		return "delete"
	}
	return Sanitize(v.Action.String())
}

func queueID(id string) string {
	if id == "" {
		return NoQueueID
	}
	return Sanitize(id)
}

func clientIP(m *checks.Message) string {
	if len(m.ClientIP) == 0 {
		return "unknown"
	}
	return m.ClientIP.String()
}

// envFrom is the envelope sender as the lines show it: <> for the null
// sender.
func envFrom(s string) string {
	s = stripBrackets(s)
	if s == "" {
		return "<>"
	}
	return Sanitize(s)
}

// stripBrackets removes one pair of surrounding angle brackets, in case an
// MTA handed the address over as it appeared in the SMTP command.
func stripBrackets(s string) string {
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}

// rcptDomains returns the distinct recipient domains, lower-cased, in the
// order they first appear. A recipient without @ counts as its own domain.
func rcptDomains(rcpts []string) []string {
	out := make([]string, 0, len(rcpts))
	seen := make(map[string]bool, len(rcpts))
	for _, r := range rcpts {
		d := r
		if i := strings.LastIndexByte(r, '@'); i >= 0 {
			d = r[i+1:]
		}
		d = strings.ToLower(d)
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	return out
}

// uniqueSanitized returns the non-empty names of in, sanitized, without
// repeats, in order.
func uniqueSanitized(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = Sanitize(s)
		if s == "" || contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orNotPresent(s string) string {
	if s == "" {
		return "Not Present"
	}
	return s
}

func orNA(s string) string {
	if s == "" {
		return "N/A"
	}
	return s
}

// score formats a score as the lines show it: two decimals, and never
// "-0.00".
func score(f float64) string {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	if s == "-0.00" {
		return "0.00"
	}
	return s
}

// round2 rounds to the two decimals the text line shows, so the JSON facts
// say the same.
func round2(f float64) float64 {
	r := math.Round(f*100) / 100
	if r == 0 {
		return 0 // no -0 in JSON
	}
	return r
}

// infectedLine is "Infected message <id> came from <client-ip>".
func infectedLine(id, clientIP string) string {
	return "Infected message " + queueID(id) + " came from " + orUnknown(Sanitize(clientIP))
}

// filenameCheckLine is "Filename Checks: <log text> (<id> <filename>)".
func filenameCheckLine(id, filename, logText string) string {
	return "Filename Checks: " + Sanitize(logText) + " (" + queueID(id) + " " + Sanitize(filename) + ")"
}

// filetypeCheckLine is "Filetype Checks: <log text> (<id> <filename>)".
func filetypeCheckLine(id, filename, logText string) string {
	return "Filetype Checks: " + Sanitize(logText) + " (" + queueID(id) + " " + Sanitize(filename) + ")"
}

// whalingLine is "Message <id> has been blocked as Whaling attack to
// <Full Name> <addr>" with the bare address, as Libraesva writes it, e.g.
// "… to John Doe john@example.com". Without a name the line ends "… to
// john@example.com"; without an address, "… to <unknown>".
func whalingLine(id, fullName, addr string) string {
	to := Sanitize(stripBrackets(addr))
	if to == "" {
		to = "<unknown>"
	}
	if n := strings.TrimSpace(Sanitize(fullName)); n != "" {
		to = n + " " + to
	}
	return "Message " + queueID(id) + " has been blocked as Whaling attack to " + to
}

// SDRDomains are the domains a Sender Domain Reputation query was made
// for. An empty field is logged as "Not Present".
type SDRDomains struct {
	ReverseDNS string `json:"reverse_dns"`
	HELO       string `json:"helo"`
	EnvFrom    string `json:"env_from"`
	HeaderFrom string `json:"header_from"`
	ReplyTo    string `json:"reply_to"`
}

func (d SDRDomains) sanitized() SDRDomains {
	return SDRDomains{
		ReverseDNS: Sanitize(d.ReverseDNS),
		HELO:       Sanitize(d.HELO),
		EnvFrom:    Sanitize(d.EnvFrom),
		HeaderFrom: Sanitize(d.HeaderFrom),
		ReplyTo:    Sanitize(d.ReplyTo),
	}
}

// sdrDomainsLine is "MID <id> SDR: Domains for which SDR is requested:
// reverse DNS host: <h|Not Present>, helo: <h>, env-from: <d>,
// header-from: <d>, reply-to: <d|Not Present>".
func sdrDomainsLine(id string, d SDRDomains) string {
	d = d.sanitized()
	return "MID " + queueID(id) + " SDR: Domains for which SDR is requested: reverse DNS host: " +
		orNotPresent(d.ReverseDNS) + ", helo: " + orNotPresent(d.HELO) +
		", env-from: " + orNotPresent(d.EnvFrom) + ", header-from: " + orNotPresent(d.HeaderFrom) +
		", reply-to: " + orNotPresent(d.ReplyTo)
}

// SDRVerdict is the consolidated sender-domain reputation of a message.
type SDRVerdict struct {
	// Verdict is one of Awful, Poor, Tainted, Weak, Unknown, Neutral,
	// Good; it is logged capitalised ("awful" → "Awful"), "" as Unknown.
	Verdict string
	// ThreatCategory is logged as N/A when empty.
	ThreatCategory string
	// SuspectedDomains are joined by ", " (N/A when there are none).
	SuspectedDomains []string
	// YoungestDomain is the youngest of the domains and AgeDays its age
	// in days; AgeKnown false logs the age as "unknown".
	YoungestDomain string
	AgeDays        int
	AgeKnown       bool
	// Trust is the sender's trust score and Evidence what it was made of
	// (the reputation check's evidence, as JSON facts).
	Trust    float64
	Evidence any
}

// sdrVerdictLine is "MID <id> SDR: Consolidated Sender Reputation:
// <Verdict>, Threat Category: <cat|N/A>, Suspected Domain(s) : <d, d>.
// Youngest Domain Age: <N days|unknown> for domain: <d>".
func sdrVerdictLine(id string, v SDRVerdict) string {
	f := sdrVerdictShown(v)
	age := "unknown"
	if f.AgeDays != nil {
		age = DomainAge(*f.AgeDays)
	}
	return "MID " + queueID(id) + " SDR: Consolidated Sender Reputation: " + f.Verdict +
		", Threat Category: " + orNA(f.ThreatCategory) +
		", Suspected Domain(s) : " + orNA(strings.Join(f.SuspectedDomains, ", ")) +
		". Youngest Domain Age: " + age + " for domain: " + orNA(f.YoungestDomain)
}

// sdrVerdictShown sanitises v into what the line shows.
func sdrVerdictShown(v SDRVerdict) sdrShown {
	f := sdrShown{
		Verdict:          capitalise(Sanitize(strings.TrimSpace(v.Verdict))),
		ThreatCategory:   Sanitize(v.ThreatCategory),
		SuspectedDomains: uniqueSanitized(v.SuspectedDomains),
		YoungestDomain:   Sanitize(v.YoungestDomain),
	}
	if f.Verdict == "" {
		f.Verdict = "Unknown"
	}
	if v.AgeKnown {
		n := v.AgeDays
		f.AgeDays = &n
	}
	return f
}

// DomainAge writes an age in days the way Cisco's SDR line does: years,
// months and days, the zero parts left out, singular for one ("1 day",
// "21 days", "6 months 29 days", "1 year 2 months"); a year is 365 days
// and a month 30. Zero days is "0 days".
func DomainAge(days int) string {
	if days <= 0 {
		return "0 days"
	}
	var parts []string
	add := func(n int, unit string) {
		if n == 0 {
			return
		}
		if n != 1 {
			unit += "s"
		}
		parts = append(parts, strconv.Itoa(n)+" "+unit)
	}
	add(days/365, "year")
	add(days%365/30, "month")
	add(days%365%30, "day")
	return strings.Join(parts, " ")
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + strings.ToLower(s[n:])
}

// QuotaEvent is one quota decision, logged in the words of policyd's
// Quotas module.
type QuotaEvent struct {
	// Action is what the quota asks for; "defer" when empty.
	Action string
	// Host is the client IP, HELO its greeting, From the envelope sender
	// ("" is logged as <>), To the recipient.
	Host, HELO, From, To string
	// Reason is "quota_match" when empty.
	Reason string
	// Policy, Quota and Limit name the policy, the quota and the limit
	// that matched.
	Policy, Quota, Limit string
	// Track is what the counter is kept for, e.g. "SASLUsername:alice".
	Track string
	// Counter is the counter type, e.g. "MessageCount".
	Counter string
	// Current is the counter's value after this message, Max the
	// limit's maximum: logged as quota=71.16/70 (101.7%).
	Current, Max float64
}

func (q QuotaEvent) sanitized() QuotaEvent {
	q.Action = Sanitize(q.Action)
	if q.Action == "" {
		q.Action = "defer"
	}
	q.Host = orUnknown(Sanitize(q.Host))
	q.HELO = Sanitize(q.HELO)
	q.From = envFrom(q.From)
	q.To = Sanitize(stripBrackets(q.To))
	q.Reason = Sanitize(q.Reason)
	if q.Reason == "" {
		q.Reason = "quota_match"
	}
	q.Policy, q.Quota, q.Limit = Sanitize(q.Policy), Sanitize(q.Quota), Sanitize(q.Limit)
	q.Track, q.Counter = Sanitize(q.Track), Sanitize(q.Counter)
	return q
}

// quotaLine is "module=Quotas, action=defer, host=<ip>, helo=<helo>,
// from=<sender>, to=<rcpt>, reason=quota_match, policy=<name>,
// quota=<name>, limit=<n>, track=SASLUsername:<user>,
// counter=MessageCount, quota=71.16/70 (101.7%)". With Max 0 the
// percentage is logged as (n/a).
func quotaLine(q QuotaEvent) string {
	q = q.sanitized()
	pct := "n/a"
	if q.Max > 0 {
		pct = strconv.FormatFloat(q.Current/q.Max*100, 'f', 1, 64) + "%"
	}
	return fmt.Sprintf("module=Quotas, action=%s, host=%s, helo=%s, from=%s, to=%s, reason=%s, policy=%s, quota=%s, limit=%s, track=%s, counter=%s, quota=%s/%s (%s)",
		q.Action, q.Host, q.HELO, q.From, q.To, q.Reason, q.Policy, q.Quota, q.Limit, q.Track, q.Counter,
		strconv.FormatFloat(q.Current, 'f', 2, 64), strconv.FormatFloat(q.Max, 'f', -1, 64), pct)
}

// round1 rounds to the one decimal of the quota percentage.
func round1(f float64) float64 { return math.Round(f*10) / 10 }
