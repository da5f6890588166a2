package main

import (
	"time"

	"chainmail/checks"
	"chainmail/checks/history"
	"chainmail/checks/verdictlog"
)

// logObserver writes the verdict log of an engine.
type logObserver struct{ log *verdictlog.Logger }

func (logObserver) Step(checks.Result) {}

func (o logObserver) Verdict(m *checks.Message, v *checks.Verdict, _ time.Duration) []string {
	return o.log.Message(m, v)
}

func (o logObserver) Events(env *checks.Envelope, evs []checks.Event) {
	o.log.Events(env.QueueID, evs)
}

// observer is what serve tells of each message: the metrics, when there
// are any, then the verdict log.
func observer(lg *verdictlog.Logger, metrics checks.Observer) checks.Observer {
	if metrics == nil {
		return logObserver{lg}
	}
	return checks.Observers{metrics, logObserver{lg}}
}

// loggedHistory tells the console's history of each verdict with the
// lines the verdict log wrote for it (in the configured wording, made
// once), after the log and the metrics.
type loggedHistory struct {
	checks.Observer
	h *history.History
}

func (o loggedHistory) Verdict(m *checks.Message, v *checks.Verdict, took time.Duration) []string {
	lines := o.Observer.Verdict(m, v, took)
	o.h.Record(m, v, took, lines)
	return lines
}
