package checks

import (
	"context"
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
	// Log, when set, writes the verdict log lines and returns them.
	Log func(m *Message, v *Verdict) []string
	// Observe, when set, is told the verdict and the chain's duration.
	Observe func(v *Verdict, d time.Duration)
}

// Evaluate runs the chain and the policy on m and logs the verdict.
func (e *Engine) Evaluate(ctx context.Context, m *Message) (*Verdict, []string) {
	start := time.Now()
	rs := e.Chain.Run(ctx, m)
	v := e.Policy.Decide(m, rs, e.Known)
	if e.Observe != nil {
		e.Observe(v, time.Since(start))
	}
	var lines []string
	if e.Log != nil {
		lines = e.Log(m, v)
	}
	return v, lines
}
