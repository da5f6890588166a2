package checks

import (
	"fmt"
	"math"
	"sort"
	"strings"

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
	// Score thresholds; a threshold of 0 or less is off. Tag is also the
	// "required" score of the log line.
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
	ErrorReply                  string
	QuarantineReason            string
	// SubjectTag, when set, rewrites the Subject of tagged mail; %s is the
	// original subject.
	SubjectTag string
	Headers    HeaderMode
}

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
		ErrorReply:       "4.7.1 Temporary failure while checking the message, try again later",
		QuarantineReason: "chainmail: held as suspected spam",
		Headers:          HeadersAlways,
	}
}

// ruleEnv builds the variables a rule sees. Every check name in known is
// present (status "skipped" when it did not run), so rules can be
// type-checked at compile time and never fail on a missing check.
func ruleEnv(known []string, m *Message, rs Results, score, required float64) map[string]any {
	env := make(map[string]any, len(known)+4)
	for _, k := range known {
		env[k] = map[string]any{"status": string(StatusSkipped), "score": 0.0, "reason": "", "symbols": []string{}, "listed": []string{}, "class": "none"}
	}
	for _, r := range rs {
		syms := make([]string, 0, len(r.Symbols))
		for _, s := range r.Symbols {
			syms = append(syms, s.Name)
		}
		v := map[string]any{"status": string(r.Status), "score": r.Score, "reason": r.Reason, "symbols": syms, "listed": append([]string{}, r.Listed...), "class": r.Class.String()}
		for fk, fv := range r.Facts {
			v[fk] = fv
		}
		env[r.Check] = v
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
// An expression that does not compile, or that is not boolean, is an
// error naming the rule.
func (p *Policy) Compile(known []string) error {
	sample := ruleEnv(known, nil, nil, 0, 0)
	seen := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Name == "" {
			return fmt.Errorf("rule %d: no name", i+1)
		}
		if seen[r.Name] {
			return fmt.Errorf("rule %q: defined twice", r.Name)
		}
		seen[r.Name] = true
		// The map environment makes unknown top-level names (a misspelt
		// check) a compile error; fields of a check are open-ended.
		prog, err := expr.Compile(r.If, expr.Env(sample), expr.AsBool())
		if err != nil {
			return fmt.Errorf("rule %q: %v", r.Name, err)
		}
		r.program = prog
	}
	return nil
}

// Decide turns the results of one chain run into a Verdict.
func (p *Policy) Decide(m *Message, rs Results, known []string) *Verdict {
	v := &Verdict{Required: p.Tag, Results: rs, Why: "score"}
	for _, r := range rs {
		v.Score += r.Score
		v.Listed = append(v.Listed, r.Listed...)
	}
	v.Score = math.Round(v.Score*100) / 100
	v.Symbols = sortedSymbols(rs)

	reply := func(code, text string) { v.Code, v.Reply = code, text }
	raise := func(a Action, why string) bool {
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

	switch {
	case decided != nil && decided.Class == ClassHam:
		v.Why = "decisive:" + decided.Check
	case decided != nil && decided.Class == ClassSpam:
		v.Spam = true
		raise(p.DecisiveSpam, "decisive:"+decided.Check)
	default:
		if p.Tag > 0 && v.Score >= p.Tag {
			v.Spam = true
			raise(Tag, "score")
		}
		if p.Quarantine > 0 && v.Score >= p.Quarantine {
			raise(Quarantine, "score")
		}
		if p.Reject > 0 && v.Score >= p.Reject {
			raise(Reject, "score")
		}
	}

	for _, r := range rs {
		if r.Status == StatusError {
			if raise(p.OnError, "error:"+r.Check) || p.OnError == v.Action {
				if p.OnError == Tempfail {
					reply(p.TempfailCode, p.ErrorReply)
				}
			}
		}
	}

	if len(p.Rules) > 0 {
		env := ruleEnv(known, m, rs, v.Score, p.Tag)
		for i := range p.Rules {
			r := &p.Rules[i]
			if r.program == nil {
				continue
			}
			out, err := expr.Run(r.program, env)
			if err != nil {
				// A rule that cannot be evaluated must not let mail through
				// that it would have stopped: treat it like a check error.
				if raise(p.OnError, "error:rule:"+r.Name) && p.OnError == Tempfail {
					reply(p.TempfailCode, p.ErrorReply)
				}
				continue
			}
			if ok, _ := out.(bool); !ok {
				continue
			}
			if r.Action > Accept {
				v.Spam = true
			}
			if raise(r.Action, "rule:"+r.Name) {
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

	if p.Monitor {
		v.Monitor, v.Would = true, v.Action
		v.Action, v.Code, v.Reply, v.QuarantineReason = Accept, "", "", ""
		v.Headers = nil
		return v
	}

	if v.Action <= Quarantine {
		v.Headers = p.headers(v)
		if v.Action == Tag && p.SubjectTag != "" && m != nil {
			v.Subject = strings.ReplaceAll(p.SubjectTag, "%s", m.Subject())
		}
	}
	return v
}

func quarantineReason(p *Policy, v *Verdict) string {
	if strings.HasPrefix(v.Why, "rule:") {
		return "chainmail: " + v.Why
	}
	if p.QuarantineReason != "" {
		return fmt.Sprintf("%s (score %.2f)", p.QuarantineReason, v.Score)
	}
	return fmt.Sprintf("chainmail: score %.2f", v.Score)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Do not cut a UTF-8 sequence in half.
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
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
		if r.AuthResults != nil {
			ars = append(ars, r.AuthResults)
		}
	}
	if len(ars) == 0 {
		return ""
	}
	return authres.Format(p.Hostname, ars)
}
