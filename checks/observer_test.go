package checks

import (
	"context"
	"sync"
	"testing"
	"time"
)

// funcObserver observes through the functions that are set.
type funcObserver struct {
	step    func(Result)
	verdict func(*Message, *Verdict, time.Duration) []string
	events  func(*Envelope, []Event)
}

func (o funcObserver) Step(r Result) {
	if o.step != nil {
		o.step(r)
	}
}

func (o funcObserver) Verdict(m *Message, v *Verdict, took time.Duration) []string {
	if o.verdict != nil {
		return o.verdict(m, v, took)
	}
	return nil
}

func (o funcObserver) Events(env *Envelope, evs []Event) {
	if o.events != nil {
		o.events(env, evs)
	}
}

// gate refuses one recipient at RCPT time, with an event.
type gate struct{ *fake }

func (gate) CheckRcpt(_ context.Context, _ *Envelope, rcpt string) RcptResult {
	if rcpt == "full@example.org" {
		return RcptResult{Action: Tempfail, Events: []Event{{Name: "quota", Line: "over quota: " + rcpt}}}
	}
	return RcptResult{}
}

// TestEngineObserver: one Observer hears everything the engine does —
// each step, the verdict with its lines, and the RCPT-time events, which
// the engine reports itself (no caller has to remember to log them).
// Observers tells each member in order.
func TestEngineObserver(t *testing.T) {
	var mu sync.Mutex
	var got []string
	record := func(name string) funcObserver {
		return funcObserver{
			step: func(r Result) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, name+" step "+r.Check)
			},
			verdict: func(m *Message, v *Verdict, _ time.Duration) []string {
				got = append(got, name+" verdict "+v.Action.String())
				return []string{name + " line"}
			},
			events: func(env *Envelope, evs []Event) {
				for _, e := range evs {
					got = append(got, name+" event "+e.Line)
				}
			},
		}
	}
	e := &Engine{
		Chain:    &Chain{Steps: []Step{{Check: gate{newFake("gate", nil)}}}},
		Policy:   DefaultPolicy(),
		Observer: Observers{record("a"), record("b")},
	}
	out, _ := e.CheckRcpt(context.Background(), &Envelope{}, "full@example.org")
	if out.Action != Tempfail {
		t.Errorf("full recipient: %v", out.Action)
	}
	e.CheckRcpt(context.Background(), &Envelope{}, "bob@example.org")
	_, lines := e.Evaluate(context.Background(), testMessage())
	want := []string{
		"a event over quota: full@example.org", "b event over quota: full@example.org",
		"a step gate", "b step gate",
		"a verdict accept", "b verdict accept",
	}
	if len(got) != len(want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("observed %q, want %q", got, want)
			break
		}
	}
	if len(lines) != 2 || lines[0] != "a line" || lines[1] != "b line" {
		t.Errorf("lines %q", lines)
	}
}
