package checks

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/authres"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Rule is a named condition over the results with the action it asks for.
// The condition is an expr-lang expression compiled when the policy is
// compiled, e.g. `dmarc.policy == "reject" && dmarc.status == "fail"`.
type Rule struct {
	Name   string
	If     string
	Action Action
	// Code and Reply form the SMTP answer when the rule's action is
	// reject or tempfail; empty means the policy default.
	Code  string
	Reply string

	program *vm.Program
}

// HeaderMode says when X-Spam-Status is added.
type HeaderMode string

// Header modes.
const (
	HeadersAlways HeaderMode = "always"
	HeadersSpam   HeaderMode = "spam"
	HeadersNever  HeaderMode = "never"
)

// Policy turns results into a Verdict.
type Policy struct {
	// Hostname is the authserv-id of Authentication-Results.
	Hostname string
	// Score thresholds; a threshold of 0 or less is off. The lowest one
	// that is on (normally Tag) is the "required" score of the log line,
	// and a score that reaches any of them makes the message spam.
	Tag, Quarantine, Reject float64
	// DecisiveSpam is the action for a decisive spam result.
	DecisiveSpam Action
	// OnError is the action when a check failed internally (status
	// error): Tempfail by default, Accept to let such mail through.
	OnError Action
	// Monitor logs what would have happened and accepts everything.
	Monitor bool
	Rules   []Rule

	RejectCode, RejectReply     string
	TempfailCode, TempfailReply string
	ErrorCode, ErrorReply       string
	QuarantineReason            string
	// SubjectTag, when set, rewrites the Subject of tagged mail; %s is the
	// original subject.
	SubjectTag string
	Headers    HeaderMode
	// Aliases are other names rules may use for a check: alias → check
	// name (see Aliased). A rule sees the alias exactly as the check.
	Aliases map[string]string
	// Facts are the facts a check declares (see Factual), by check name:
	// a check's result starts from them, so a rule never meets a missing
	// fact.
	Facts map[string]map[string]any

	// known is what Compile compiled the rules against.
	known []string
}

// RuleError is a rule that does not compile.
type RuleError struct {
	// Index is the rule's index in Policy.Rules.
	Index int
	Name  string
	Err   error
}

func (e *RuleError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("rule %d: %v", e.Index+1, e.Err)
	}
	return fmt.Sprintf("rule %q: %v", e.Name, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// DefaultPolicy returns the policy of the embedded default configuration.
func DefaultPolicy() *Policy {
	return &Policy{
		Hostname:         "localhost",
		Tag:              5,
		Quarantine:       10,
		Reject:           15,
		DecisiveSpam:     Reject,
		OnError:          Tempfail,
		RejectCode:       "550",
		RejectReply:      "5.7.1 Message rejected as spam",
		TempfailCode:     "451",
		TempfailReply:    "4.7.1 Message deferred, try again later",
		ErrorCode:        "451",
		ErrorReply:       "4.7.1 Temporary failure while checking the message, try again later",
		QuarantineReason: "chainmail: held as suspected spam",
		Headers:          HeadersAlways,
	}
}

// ruleEnv builds the variables a rule sees. Every check name in known is
// present (status "skipped" when it did not run), so rules can be
// type-checked at compile time and never fail on a missing check.
func ruleEnv(known []string, aliases map[string]string, facts map[string]map[string]any, m *Message, rs Results, score, required float64) map[string]any {
	env := make(map[string]any, len(known)+len(aliases)+4)
	for _, k := range known {
		v := map[string]any{"status": string(StatusSkipped), "score": 0.0, "reason": "", "symbols": []string{}, "listed": []string{}, "class": "none"}
		for fk, fv := range facts[k] {
			v[fk] = fv
		}
		env[k] = v
	}
	for _, r := range rs {
		syms := make([]string, 0, len(r.Symbols))
		for _, s := range r.Symbols {
			syms = append(syms, s.Name)
		}
		v := map[string]any{"status": string(r.Status), "score": r.Score, "reason": r.Reason, "symbols": syms, "listed": append([]string{}, r.Listed...), "class": r.Class.String()}
		for fk, fv := range facts[r.Check] {
			v[fk] = fv
		}
		for fk, fv := range r.Facts {
			v[fk] = fv
		}
		env[r.Check] = v
	}
	for alias, name := range aliases {
		if v, ok := env[name]; ok {
			env[alias] = v
		}
	}
	ip := ""
	if m != nil && m.ClientIP != nil {
		ip = m.ClientIP.String()
	}
	var e Envelope
	if m != nil {
		e = m.Envelope
	}
	env["envelope"] = map[string]any{"client_ip": ip, "client_name": e.ClientName, "helo": e.HELO, "from": e.MailFrom, "rcpt": append([]string{}, e.Rcpts...), "auth": e.AuthUser, "queue_id": e.QueueID}
	env["score"] = score
	env["required"] = required
	return env
}

// Compile compiles the rules against the names of the checks that exist.
// An expression that does not compile, that is not boolean, or that fails
// when the checks it names did not run (a non-boolean field used as a
// condition, like `lists.status`) is a *RuleError naming the rule.
func (p *Policy) Compile(known []string) error {
	p.known = append([]string(nil), known...)
	seen := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Name == "" {
			return &RuleError{Index: i, Err: fmt.Errorf("no name")}
		}
		if seen[r.Name] {
			return &RuleError{Index: i, Name: r.Name, Err: fmt.Errorf("defined twice")}
		}
		seen[r.Name] = true
		prog, err := compileRule(r.If, p.known, p.Aliases, p.Facts)
		if err != nil {
			return &RuleError{Index: i, Name: r.Name, Err: err}
		}
		r.program = prog
	}
	return nil
}

// compileRule compiles one condition and runs it once over results where
// no check ran: expr types the fields of a check as "any", so a condition
// like `lists.status` compiles and would fail on every message.
func compileRule(cond string, known []string, aliases map[string]string, facts map[string]map[string]any) (*vm.Program, error) {
	// SMTP always has a recipient: envelope.rcpt[0] must not fail here.
	sample := ruleEnv(known, aliases, facts, &Message{Envelope: Envelope{Rcpts: []string{"postmaster@example.invalid"}}}, nil, 0, 0)
	// The map environment makes unknown top-level names (a misspelt
	// check) a compile error; fields of a check are open-ended.
	prog, err := expr.Compile(cond, expr.Env(sample), expr.AsBool())
	if err != nil {
		return nil, err
	}
	if _, err := expr.Run(prog, sample); err != nil {
		return nil, fmt.Errorf("not a true/false condition, or fails when the checks it names did not run: %v", err)
	}
	return prog, nil
}

// names is known together with the names the rules were compiled with.
func (p *Policy) names(known []string) []string {
	if len(p.known) == 0 {
		return known
	}
	if len(known) == 0 {
		return p.known
	}
	out := append([]string(nil), p.known...)
	have := make(map[string]bool, len(out))
	for _, k := range out {
		have[k] = true
	}
	for _, k := range known {
		if !have[k] {
			out = append(out, k)
		}
	}
	return out
}

// required is the lowest threshold that is on, 0 when all are off.
func (p *Policy) required() float64 {
	req := 0.0
	for _, t := range []float64{p.Tag, p.Quarantine, p.Reject} {
		if t > 0 && (req == 0 || t < req) {
			req = t
		}
	}
	return req
}

// Decide turns the results of one chain run into a Verdict. The most
// severe of the score thresholds, a decisive spam result (DecisiveSpam),
// a failed check (OnError) and the matching rules wins. A decisive ham
// result sets no threshold action and ignores failed checks (the message
// was decided without them); rules still apply.
func (p *Policy) Decide(m *Message, rs Results, known []string) *Verdict {
	v := &Verdict{Required: p.required(), Results: rs}
	for _, r := range rs {
		v.Score += r.Score
		v.Listed = append(v.Listed, r.Listed...)
		if v.Engine == "" && (r.Status == StatusSpam || r.Status == StatusHam) {
			v.Engine = r.Engine
		}
	}
	v.Score = math.Round(v.Score*100) / 100
	v.Symbols = sortedSymbols(rs)

	reply := func(code, text string) { v.Code, v.Reply = code, text }
	raise := func(a Action, why Why) bool {
		if a > v.Action {
			v.Action, v.Why = a, why
			return true
		}
		return false
	}

	var decided *Result
	for i := range rs {
		if rs[i].decided {
			decided = &rs[i]
			break
		}
	}
	// A check a ham decision does not switch off (always_run) still
	// decides spam: an allow list does not overrule what it found.
	if decided != nil && decided.Class == ClassHam {
		for i := range rs {
			if rs[i].decided && rs[i].alwaysRun && rs[i].Class == ClassSpam {
				decided = &rs[i]
				break
			}
		}
	}

	ham := decided != nil && decided.Class == ClassHam
	switch {
	case ham:
		v.Why = Why{ByDecisive, decided.Check}
	case decided != nil && decided.Class == ClassSpam:
		v.Spam = true
		raise(p.DecisiveSpam, Why{ByDecisive, decided.Check})
	default:
		for _, t := range []struct {
			min float64
			a   Action
		}{{p.Tag, Tag}, {p.Quarantine, Quarantine}, {p.Reject, Reject}} {
			if t.min > 0 && v.Score >= t.min {
				v.Spam = true
				raise(t.a, Why{By: ByScore})
			}
		}
	}

	// A message a decisive check classified ham was decided without the
	// checks that failed: their errors do not hold it back, except those
	// of the checks a ham decision does not switch off (always_run).
	for _, r := range rs {
		if r.Status == StatusError && (!ham || r.alwaysRun) {
			if raise(p.OnError, Why{ByError, r.Check}) || p.OnError == v.Action {
				if p.OnError == Tempfail {
					reply(p.ErrorCode, p.ErrorReply)
				}
			}
		}
	}
	// A step that ran out of time with on_timeout tempfail did not check
	// the message: it is deferred, whatever else was decided.
	for _, r := range rs {
		if r.timedOut && raise(Tempfail, Why{ByTimeout, r.Check}) {
			reply(p.ErrorCode, p.ErrorReply)
		}
	}

	if len(p.Rules) > 0 {
		// Every check that ran is a name too, even when the caller does
		// not know it.
		names := append([]string(nil), p.names(known)...)
		for _, r := range rs {
			names = append(names, r.Check)
		}
		env := ruleEnv(names, p.Aliases, p.Facts, m, rs, v.Score, p.required())
		for i := range p.Rules {
			r := &p.Rules[i]
			prog := r.program
			var err error
			if prog == nil {
				// Not compiled (Compile was not called): compile it here
				// rather than skip a rule that may stop mail.
				prog, err = compileRule(r.If, names, p.Aliases, p.Facts)
			}
			var out any
			if err == nil {
				out, err = expr.Run(prog, env)
			}
			if err != nil {
				// A rule that cannot be evaluated must not let mail through
				// that it would have stopped: treat it like a check error.
				if raise(p.OnError, Why{ByRuleError, r.Name}) && p.OnError == Tempfail {
					reply(p.ErrorCode, p.ErrorReply)
				}
				continue
			}
			if ok, _ := out.(bool); !ok {
				continue
			}
			if r.Action > Accept {
				v.Spam = true
			}
			// The most severe action wins; at equal severity a rule wins
			// over a threshold, a decisive check or an error (it is the
			// more specific), and the first matching rule over later ones.
			take := r.Action > v.Action ||
				(r.Action == v.Action && r.Action > Accept && v.Why.By != ByRule)
			if take {
				v.Action, v.Why = r.Action, Why{ByRule, r.Name}
				if r.Reply != "" {
					reply(r.Code, r.Reply)
				} else {
					v.Code, v.Reply = "", ""
				}
			}
		}
	}

	// Default replies for the final action.
	switch v.Action {
	case Reject:
		if v.Code == "" {
			v.Code = p.RejectCode
		}
		if v.Reply == "" {
			v.Reply = p.RejectReply
		}
	case Tempfail:
		if v.Code == "" {
			v.Code = p.TempfailCode
		}
		if v.Reply == "" {
			v.Reply = p.TempfailReply
		}
	case Quarantine:
		v.Code, v.Reply = "", ""
		v.QuarantineReason = truncate(quarantineReason(p, v), 100)
	default:
		v.Code, v.Reply = "", ""
	}

	// Forged fields go on every path that delivers (monitor mode too).
	if m != nil {
		v.Remove = ForgedHeaders(m.Header, p.Hostname)
	}
	if p.Monitor {
		v.Monitor, v.Would = true, v.Action
		v.Action, v.Code, v.Reply, v.QuarantineReason = Accept, "", "", ""
		v.Headers = nil
		return v
	}

	if v.Action <= Quarantine {
		for _, r := range rs {
			if r.NewBody != nil {
				v.NewBody = r.NewBody
			}
		}
		v.Headers = p.headers(v)
		if v.Action == Tag && p.SubjectTag != "" && m != nil {
			// The Subject as received (encoded words kept): the milter
			// writes Verdict.Subject into the header as it is.
			v.Subject = strings.ReplaceAll(p.SubjectTag, "%s", m.Get("Subject"))
		}
	}
	return v
}

func quarantineReason(p *Policy, v *Verdict) string {
	if v.Why.By == ByRule {
		return "chainmail: " + v.Why.String()
	}
	if p.QuarantineReason != "" {
		return fmt.Sprintf("%s (score %.2f)", p.QuarantineReason, v.Score)
	}
	return fmt.Sprintf("chainmail: score %.2f", v.Score)
}

// truncate cuts s to at most n bytes, never inside a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// s[n] is the first byte left out. If a multi-byte sequence starts at
	// most 3 bytes before it and runs past it, the cut moves back to where
	// the sequence starts. Bytes that are not UTF-8 are cut anywhere.
	for j := n; j >= 0 && j > n-utf8.UTFMax; j-- {
		if utf8.RuneStart(s[j]) {
			if _, size := utf8.DecodeRuneInString(s[j:]); size > 1 && j+size > n {
				return s[:j]
			}
			break
		}
	}
	return s[:n]
}

// headers returns the header fields added to delivered mail.
func (p *Policy) headers(v *Verdict) []Header {
	var out []Header
	if ar := p.authResults(v.Results); ar != "" {
		out = append(out, Header{Name: "Authentication-Results", Value: ar})
	}
	if p.Headers == HeadersNever || (p.Headers == HeadersSpam && !v.Spam) {
		return out
	}
	names := make([]string, 0, len(v.Symbols))
	for _, s := range v.Symbols {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	yes := "No"
	if v.Spam {
		yes = "Yes"
	}
	tests := strings.Join(names, ",")
	if tests == "" {
		tests = "none"
	}
	out = append(out,
		Header{Name: "X-Spam-Status", Value: fmt.Sprintf("%s, score=%.2f required=%.2f tests=%s", yes, v.Score, v.Required, tests)},
		Header{Name: "X-Chainmail-Verdict", Value: fmt.Sprintf("%s; score=%.2f; why=%s", v.Action, v.Score, v.Why)},
	)
	return out
}

// authResults formats one Authentication-Results value from every result
// that carries one (RFC 8601).
func (p *Policy) authResults(rs Results) string {
	var ars []authres.Result
	for _, r := range rs {
		ars = append(ars, r.AuthResults...)
	}
	if len(ars) == 0 {
		return ""
	}
	return authres.Format(p.Hostname, ars)
}
