package verdictlog

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// DroppedMetric is the counter of verdict-log lines that could not be
// written, summed over the sinks (Logger.Dropped, for all loggers made
// with the same registerer).
const DroppedMetric = "chainmail_log_dropped_lines_total"

// WithRegisterer exports the dropped-line count as DroppedMetric in reg.
// Loggers made with the same reg (one per reload) share the counter, so
// the count goes on across reloads.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(l *Logger) { l.reg = reg }
}

// droppedCounter registers DroppedMetric in reg, or returns the one
// registered there by an earlier Logger.
func droppedCounter(reg prometheus.Registerer) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: DroppedMetric,
		Help: "Verdict-log lines that could not be written (a sink failed, a syslog daemon did not answer), summed over the sinks.",
	})
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(prometheus.Counter); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("verdictlog: %s: %w", DroppedMetric, err)
	}
	return c, nil
}
