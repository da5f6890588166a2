package checks

// Decider is what kind of thing decided a verdict's action.
type Decider int

// Deciders, each with the way Why renders it.
const (
	ByScore     Decider = iota // "score": the score thresholds
	ByRule                     // "rule:<rule>"
	ByDecisive                 // "decisive:<check>"
	ByError                    // "error:<check>": a check failed (on_error)
	ByRuleError                // "error:rule:<rule>": a rule could not be evaluated
	ByTimeout                  // "timeout:<check>": a step ran out of time (on_timeout tempfail)
)

// Why names what decided a verdict's action (in monitor mode, what
// decided Would): the kind and the check's or rule's name. Policy code
// compares the fields; String is only for logs and headers.
type Why struct {
	By Decider
	// Name is the check or rule; empty for ByScore.
	Name string
}

// String renders w as logs and the X-Chainmail-Verdict header show it:
// "score", "rule:<name>", "decisive:<check>", "error:<check>",
// "error:rule:<name>", "timeout:<check>".
func (w Why) String() string {
	switch w.By {
	case ByRule:
		return "rule:" + w.Name
	case ByDecisive:
		return "decisive:" + w.Name
	case ByError:
		return "error:" + w.Name
	case ByRuleError:
		return "error:rule:" + w.Name
	case ByTimeout:
		return "timeout:" + w.Name
	}
	return "score"
}

// MarshalText implements encoding.TextMarshaler: JSON shows String.
func (w Why) MarshalText() ([]byte, error) { return []byte(w.String()), nil }
