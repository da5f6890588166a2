package checks

import "time"

// Observer is told what the engine does: each step's result as it
// finishes, each message's verdict, and the events that happen outside a
// verdict (RCPT-time refusals and alerts). The verdict log and the
// metrics are observers; Observers joins several into one.
type Observer interface {
	// Step is called once per chain step with its result, from the
	// step's goroutine: implementations must be safe for concurrent use.
	Step(r Result)
	// Verdict is called once per message with its verdict and the time
	// the chain and the policy took. It returns the verdict-log lines it
	// wrote, if any (replay prints them).
	Verdict(m *Message, v *Verdict, took time.Duration) []string
	// Events is called with events outside a verdict (RCPT time).
	Events(env *Envelope, events []Event)
}

// Observers is an Observer that tells each of its members in order;
// Verdict returns the lines of all of them.
type Observers []Observer

// Step implements Observer.
func (os Observers) Step(r Result) {
	for _, o := range os {
		o.Step(r)
	}
}

// Verdict implements Observer.
func (os Observers) Verdict(m *Message, v *Verdict, took time.Duration) []string {
	var lines []string
	for _, o := range os {
		lines = append(lines, o.Verdict(m, v, took)...)
	}
	return lines
}

// Events implements Observer.
func (os Observers) Events(env *Envelope, events []Event) {
	for _, o := range os {
		o.Events(env, events)
	}
}

// VerdictFunc is an Observer of verdicts only: it is called with each
// verdict and returns the lines it wrote (verdictlog.Lines for replay).
type VerdictFunc func(m *Message, v *Verdict) []string

// Step implements Observer: steps are not observed.
func (VerdictFunc) Step(Result) {}

// Verdict implements Observer.
func (f VerdictFunc) Verdict(m *Message, v *Verdict, _ time.Duration) []string { return f(m, v) }

// Events implements Observer: events are not observed.
func (VerdictFunc) Events(*Envelope, []Event) {}
