package checks

import (
	"context"
	"testing"
)

type panickyLearner struct{ learned bool }

func (p *panickyLearner) Name() string { return "learner" }
func (p *panickyLearner) Check(context.Context, *Message, Results) Result {
	return Result{Status: StatusNone, Symbols: []Symbol{{Name: "X", Score: 20}}}
}
func (p *panickyLearner) Learn(context.Context, *Message, *Verdict) {
	p.learned = true
	panic("learning failed")
}

// A Learner that panics after the verdict does not take the verdict away.
func TestEvaluateSurvivesLearnerPanic(t *testing.T) {
	l := &panickyLearner{}
	e := &Engine{Chain: &Chain{Steps: []Step{{Check: l}}}, Policy: DefaultPolicy()}
	v, _ := e.Evaluate(context.Background(), &Message{})
	if !l.learned || v == nil || v.Action != Reject {
		t.Fatalf("learned %v verdict %+v", l.learned, v)
	}
}
