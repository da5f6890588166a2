// Package checks holds the contracts every chainmail check is written
// against and the machinery that runs them.
//
// A Check looks at one Message and reports what it found as a Result: an
// RFC-vocabulary Status, symbols with scores, and facts for the policy. A
// check never decides what happens to the message. The Chain runs the
// configured checks (in order, independent ones in parallel, each with its
// own timeout and size limit) and hands the Results to the Policy, which
// turns score thresholds and named rules into one Verdict.
//
// This package imports none of its subpackages: the composition root
// (cmd/chainmail via checks/config) wires the concrete checks in.
package checks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/authres"
)

// Status is what a check found, in the vocabulary of the RFC that defines
// the check where there is one (RFC 7208 §2.6 for SPF, RFC 8601 for
// Authentication-Results) and in plain words otherwise.
type Status string

// Statuses shared by the checks.
const (
	StatusPass      Status = "pass"
	StatusFail      Status = "fail"
	StatusSoftfail  Status = "softfail"
	StatusNeutral   Status = "neutral"
	StatusNone      Status = "none"
	StatusTemperror Status = "temperror"
	StatusPermerror Status = "permerror"
	StatusListed    Status = "listed"
	StatusClean     Status = "clean"
	StatusInfected  Status = "infected"
	StatusBlocked   Status = "blocked"
	StatusSpam      Status = "spam"
	StatusHam       Status = "ham"
	// StatusTimeout: the check did not finish within its configured time.
	StatusTimeout Status = "timeout"
	// StatusError: the check failed internally (bug, panic, broken
	// dependency). The failure policy treats it as "not checked".
	StatusError Status = "error"
	// StatusSkipped: the check did not run (disabled for this message,
	// too big, or a decisive check ended the chain first).
	StatusSkipped Status = "skipped"
	// StatusUnscannable: the message could not be inspected (too big for
	// a security check's max_size, or the check's own limits).
	StatusUnscannable Status = "unscannable"
)

// Class is how a result classifies the message, for the "decisive" chain
// setting: a decisive check whose result is Spam (or Ham) ends the chain.
type Class int

// Classes.
const (
	ClassNone Class = iota
	ClassHam
	ClassSpam
)

func (c Class) String() string {
	switch c {
	case ClassHam:
		return "ham"
	case ClassSpam:
		return "spam"
	}
	return "none"
}

// Symbol is one named finding with its score, as rspamd and SpamAssassin
// print them (R_SPF_FAIL 1.00).
type Symbol struct {
	Name   string  `json:"name"`
	Score  float64 `json:"score"`
	Detail string  `json:"detail,omitempty"`
}

// Result is what one check reports about one message.
type Result struct {
	Check   string   `json:"check"`
	Status  Status   `json:"status"`
	Score   float64  `json:"score"`
	Symbols []Symbol `json:"symbols,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	// Class is the check's own classification (ClassNone for most checks).
	Class Class `json:"-"`
	// Listed names the lists the message was found on (RBL names); they
	// appear in the "is spam, <LIST>, …" log line.
	Listed []string `json:"listed,omitempty"`
	// Facts are extra named values exposed to policy rules as
	// <check>.<name>, e.g. dmarc.policy.
	Facts map[string]any `json:"facts,omitempty"`
	// AuthResults are the RFC 8601 method results this check adds to the
	// Authentication-Results header (DKIM: one per signature).
	AuthResults []authres.Result `json:"-"`
	// Auth is the typed result the checks after this one take (the
	// checks/auth SPF and DKIM values); nil for most checks.
	Auth any `json:"-"`
	// Err carries the underlying error, if any. It is never panicked or
	// returned separately.
	// NewBody, when set, is the message body this check wants delivered
	// instead of the original (an attachment removed and a note put in its
	// place). The policy passes it on for delivered messages; when several
	// checks set one, the last in chain order wins.
	NewBody Body `json:"-"`
	// Events are extra verdict-log lines the check reports for this
	// message (Filename Checks, Infected message, SDR, Whaling…), built by
	// the checks/verdictlog event constructors. They are written after the RBL
	// line and before the verdict line.
	Events   []Event       `json:"events,omitempty"`
	Err      error         `json:"-"`
	Duration time.Duration `json:"-"`
	// Engine names the scanner whose own score this result is (the
	// spamassassin check: "SpamAssassin"), set only when it scored the
	// message; the verdict line names it when log.engine is not set.
	Engine string `json:"-"`
	// decided is set by the chain when this result ended it.
	decided bool
	// timedOut is set by the chain when the step ran out of time and its
	// on_timeout setting tempfails the message.
	timedOut bool
	// alwaysRun is set by the chain for a step that a ham decision does
	// not switch off: its failures hold the message back even then.
	alwaysRun bool
}

// Decided reports whether this result ended the chain (its check is
// decisive for the class it found).
func (r Result) Decided() bool { return r.decided }

// Event is one extra verdict-log line.
type Event struct {
	// Name is the JSON event name ("filename", "infected", "whaling", …).
	Name string `json:"event"`
	// Line is the exact text line.
	Line string `json:"line"`
	// Facts are the event's JSON fields; nil for none.
	Facts any `json:"facts,omitempty"`
	// IfBlocked keeps the line only when the verdict blocks the message
	// (quarantine, discard or reject, not in monitor mode): a check that
	// finds an attack cannot know whether policy will stop it, and its
	// line says it was ("… has been blocked as Whaling attack …").
	// verdictlog, which knows the final action, does the filtering.
	IfBlocked bool `json:"-"`
}

// Check is one configurable test on a message.
type Check interface {
	// Name is the check's name in configuration, logs and metrics.
	Name() string
	// Check examines m. prior holds, in configured order, the results of
	// the steps this one waited for: the checks it depends on (see
	// Dependent) and every earlier decisive step. It must honour ctx.
	Check(ctx context.Context, m *Message, prior Results) Result
}

// Dependent is implemented by checks that need other checks' results
// (DMARC needs SPF and DKIM). The chain starts such a check only after the
// named checks have finished.
type Dependent interface {
	DependsOn() []string
}

// Aliased is implemented by checks that policy rules may also name by
// other words (the reputation check answers to "sdr", Cisco's name for
// it). Aliases must return constants: the configuration asks a zero
// value of the check's type, before any check is built.
type Aliased interface {
	Aliases() []string
}

// Factual is implemented by checks that declare their facts: the values
// are what rules see when the check did not run (skipped, disabled,
// timed out), so `sdr.age_days < 7` compiles and is false then instead
// of failing on a missing fact. Like Aliases, the result must be
// constant.
type Factual interface {
	Facts() map[string]any
}

// Learner is implemented by checks that learn from the final verdict
// (the reputation check keeps per-sender history). The engine calls Learn
// once per message after the verdict is logged; it must be quick (queue
// the work, don't do it) and must not change v.
type Learner interface {
	Learn(ctx context.Context, m *Message, v *Verdict)
}

// Trainer is implemented by checks that learn from a person's report
// that a message is spam or is not (chainmail learn, the feedback
// endpoint): the bayes classifier, the reputation history. One report
// trains every Trainer of the chain.
type Trainer interface {
	Train(ctx context.Context, m *Message, spam bool) (Trained, error)
}

// Trained says what one report did to one learner.
type Trained string

// What a report did.
const (
	// TrainedNew: the message was learned.
	TrainedNew Trained = "learned"
	// TrainedAlready: the message had been learned as this class before;
	// nothing changed (a message counts once).
	TrainedAlready Trained = "already learned"
	// TrainedMoved: the message had been learned as the other class; it
	// was moved (unlearned there, learned here).
	TrainedMoved Trained = "moved"
)

// Results is the set of results of one chain run, in configured order.
type Results []Result

// Get returns the result of the named check.
func (rs Results) Get(name string) (Result, bool) {
	for _, r := range rs {
		if r.Check == name {
			return r, true
		}
	}
	return Result{}, false
}

// Action is what happens to a message, ordered by severity so that
// merging two actions is max.
type Action int

// Actions. Discard sits beside Reject: both end delivery, reject tells the
// sender.
const (
	Accept Action = iota
	Tag
	Quarantine
	Tempfail
	Discard
	Reject
)

var actionNames = [...]string{"accept", "tag", "quarantine", "tempfail", "discard", "reject"}

func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return fmt.Sprintf("action(%d)", int(a))
	}
	return actionNames[a]
}

// ParseAction reads an action name.
func ParseAction(s string) (Action, error) {
	for i, n := range actionNames {
		if strings.EqualFold(s, n) {
			return Action(i), nil
		}
	}
	return 0, fmt.Errorf("checks: unknown action %q (want one of %s)", s, strings.Join(actionNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Max returns the more severe of a and b.
func Max(a, b Action) Action {
	if b > a {
		return b
	}
	return a
}

// Header is one header field to add to the message.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Verdict is the outcome of one chain run.
type Verdict struct {
	Action   Action  `json:"action"`
	Score    float64 `json:"score"`
	Required float64 `json:"required"`
	// Spam is true when the message counts as spam for logging (score at
	// or above a threshold that is on, a decisive spam result, or a rule
	// that did more than accept).
	Spam bool `json:"spam"`
	// Code and Reply are the SMTP reply for reject and tempfail:
	// Code "550", Reply "5.7.1 Message rejected as spam".
	Code  string `json:"-"`
	Reply string `json:"reply,omitempty"`
	// QuarantineReason is sent with a quarantine (at most 100 bytes).
	QuarantineReason string   `json:"quarantine_reason,omitempty"`
	Symbols          []Symbol `json:"symbols"`
	// Remove are the received fields to remove from delivered mail, in
	// removal order (ForgedHeaders), before Headers are added.
	Remove  []HeaderRef `json:"remove,omitempty"`
	Headers []Header    `json:"headers"`
	// Subject, when not empty, replaces the message's Subject.
	Subject string `json:"subject,omitempty"`
	// NewBody, when set, replaces the body of the delivered message.
	NewBody Body `json:"-"`
	// Why names what decided the action (in monitor mode, what decided
	// Would); JSON and logs show it as "score", "rule:<name>", ….
	Why Why `json:"why"`
	// Monitor is set when the policy only logs: Would holds what would
	// have happened and Action is Accept.
	Monitor bool    `json:"monitor,omitempty"`
	Would   Action  `json:"would,omitempty"`
	Results Results `json:"results"`
	// Listed collects the list names of all results.
	Listed []string `json:"listed,omitempty"`
	// Engine is the scanner that scored the message (a result's Engine,
	// the first in chain order), "" when only chainmail's checks did.
	Engine string `json:"engine,omitempty"`
}

// Decided is the action the policy decided: Action, or in monitor mode
// the action that would have been taken (Would). What learns from
// verdicts reads this one.
func (v *Verdict) Decided() Action {
	if v.Monitor {
		return v.Would
	}
	return v.Action
}

// SMTPReply returns the full reply line for reject/tempfail verdicts,
// e.g. "550 5.7.1 Message rejected as spam".
func (v *Verdict) SMTPReply() string {
	if v.Code == "" {
		return v.Reply
	}
	return v.Code + " " + v.Reply
}

// sortedSymbols returns all symbols of rs, highest absolute score first,
// then by name, so log lines are stable.
func sortedSymbols(rs Results) []Symbol {
	var out []Symbol
	for _, r := range rs {
		out = append(out, r.Symbols...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ai, aj := abs(out[i].Score), abs(out[j].Score)
		if ai != aj {
			return ai > aj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
