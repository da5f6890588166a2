package checks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Engine is one loaded configuration: the chain, the policy and where
// verdicts are logged. Sessions take the current Engine at the start of
// each message, so a reload never changes the rules under a message.
type Engine struct {
	Chain  *Chain
	Policy *Policy
	// Known lists every check name rules may refer to.
	Known []string
	// Observer, when set, is told every step's result, every verdict
	// and the RCPT-time events (the verdict log, the metrics).
	Observer Observer
}

// Evaluate runs the chain and the policy on m, logs the verdict and tells
// the checks that learn (Learner) what was decided.
func (e *Engine) Evaluate(ctx context.Context, m *Message) (*Verdict, []string) {
	start := time.Now()
	var step func(Result)
	if e.Observer != nil {
		step = e.Observer.Step
	}
	rs := e.Chain.run(ctx, m, step)
	v := e.Policy.Decide(m, rs, e.Known)
	var lines []string
	if e.Observer != nil {
		lines = e.Observer.Verdict(m, v, time.Since(start))
	}
	for _, s := range e.Chain.Steps {
		if l, ok := s.Check.(Learner); ok {
			learn(ctx, l, m, v)
		}
	}
	return v, lines
}

// learn runs one Learner; a panic there must not cost the message its
// verdict, which is already decided and logged.
func learn(ctx context.Context, l Learner, m *Message, v *Verdict) {
	defer func() { _ = recover() }()
	l.Learn(ctx, m, v)
}

// RcptChecker is implemented by checks that act at RCPT time, before the
// body is sent (quotas, greylisting): a refused recipient never gets to
// send data. The chain's position, enabled flag and timeout apply; size
// limits do not (there is no message yet).
type RcptChecker interface {
	CheckRcpt(ctx context.Context, env *Envelope, rcpt string) RcptResult
}

// RcptResult is what an RcptChecker decides for one recipient.
type RcptResult struct {
	// Action is Accept (go on), Tempfail or Reject; anything else counts
	// as Accept at this stage.
	Action Action
	// Code and Reply form the SMTP answer ("451", "4.7.1 …"); empty means
	// the policy's tempfail or reject reply.
	Code, Reply string
	// Events are verdict-log lines to write (quota alerts).
	Events []Event
	// Err is set when the check could not decide (state store down); the
	// recipient is then accepted and the error logged, so mail keeps
	// flowing (DESIGN failure policy).
	Err error
}

// CheckRcpt asks every RCPT-time check about rcpt, in chain order, and
// returns the first refusal. In monitor mode the answer is logged but
// the recipient accepted. The events it returns are already reported to
// the Observer.
func (e *Engine) CheckRcpt(ctx context.Context, env *Envelope, rcpt string) (RcptResult, []Event) {
	var out RcptResult
	var events []Event
	for _, s := range e.Chain.Steps {
		rc, ok := s.Check.(RcptChecker)
		if !ok {
			continue
		}
		timeout := s.Timeout
		if timeout <= 0 {
			timeout = DefaultCheckTimeout
		}
		r := runRcpt(ctx, rc, env, rcpt, timeout)
		events = append(events, r.Events...)
		if r.Err != nil {
			if !loggedElsewhere(r.Err) {
				events = append(events, Event{Name: "log", Facts: RcptError{Check: s.Check.Name(), Rcpt: rcpt, Err: r.Err}})
			}
			continue
		}
		if r.Action != Tempfail && r.Action != Reject {
			continue
		}
		// The first refusal answers: the checks after it are not asked, so
		// a recipient refused by one never counts against another's quota.
		out = r
		break
	}
	if out.Action == Reject && out.Code == "" {
		out.Code, out.Reply = e.Policy.RejectCode, e.Policy.RejectReply
	}
	if out.Action == Tempfail && out.Code == "" {
		out.Code, out.Reply = e.Policy.TempfailCode, e.Policy.TempfailReply
	}
	if e.Policy.Monitor && out.Action != Accept {
		events = append(events, Event{Name: "monitor", Facts: RcptMonitor{Rcpt: rcpt, Code: out.Code, Reply: out.Reply}})
		out = RcptResult{}
	}
	out.Events = nil
	if len(events) > 0 && e.Observer != nil {
		e.Observer.Events(env, events)
	}
	return out, events
}

// loggedElsewhere reports whether err says (a Logged method, like the
// state store's outage errors) that its cause is logged where it happens,
// once and then at most once a minute: one line per recipient would
// flood the log during an outage.
func loggedElsewhere(err error) bool {
	var l interface{ Logged() bool }
	return errors.As(err, &l) && l.Logged()
}

func runRcpt(ctx context.Context, rc RcptChecker, env *Envelope, rcpt string, timeout time.Duration) (r RcptResult) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ch := make(chan RcptResult, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				ch <- RcptResult{Err: fmt.Errorf("%w: %v", ErrPanic, v)}
			}
		}()
		ch <- rc.CheckRcpt(ctx, env, rcpt)
	}()
	select {
	case r = <-ch:
	case <-ctx.Done():
		r = RcptResult{Err: ErrTimeout}
	}
	return r
}
