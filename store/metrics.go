package store

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of the state store, shared by
// both backends (label backend="bolt" or "redis").
type Metrics struct {
	// Up is 1 while the store answers, 0 while it is unreachable.
	Up *prometheus.GaugeVec
	// Unavailable counts calls that failed with ErrUnavailable.
	Unavailable *prometheus.CounterVec
	// Opens counts the times the breaker opened (outages seen).
	Opens *prometheus.CounterVec
	// Pending is the number of keys written but not yet committed to the
	// bbolt file.
	Pending prometheus.Gauge
	// Flushes observes the time of one bbolt commit (with its fsync).
	Flushes prometheus.Histogram
	// FlushErrors counts bbolt commits that failed (kept for the next).
	FlushErrors prometheus.Counter
}

// NewMetrics creates the collectors and registers them on reg (nil: not
// registered). A collector already registered under the same name (the
// store reopened on reload) is reused, so its counts go on.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chainmail_state_up", Help: "1 while the state store answers, 0 while it is unreachable.",
		}, []string{"backend"}),
		Unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_state_unavailable_total", Help: "State store calls that failed because the store was unreachable.",
		}, []string{"backend"}),
		Opens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_state_breaker_opens_total", Help: "Times the state store was found unreachable and its calls switched to failing at once.",
		}, []string{"backend"}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chainmail_state_pending_writes", Help: "Keys written to the bbolt state but not yet committed to its file.",
		}),
		Flushes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chainmail_state_flush_duration_seconds", Help: "Time of one bbolt state commit, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}),
		FlushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chainmail_state_flush_errors_total", Help: "bbolt state commits that failed (the writes are kept for the next one).",
		}),
	}
	m.Up = Register(reg, m.Up)
	m.Unavailable = Register(reg, m.Unavailable)
	m.Opens = Register(reg, m.Opens)
	m.Pending = Register(reg, m.Pending)
	m.Flushes = Register(reg, m.Flushes)
	m.FlushErrors = Register(reg, m.FlushErrors)
	return m
}

// Collectors returns every collector, for a caller that registers them
// itself.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Up, m.Unavailable, m.Opens, m.Pending, m.Flushes, m.FlushErrors}
}

// Register registers c on reg and returns it, or returns the collector of
// the same description registered before (a reload builds its checks
// again; their counters must go on). reg nil registers nothing.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
	}
	return c
}
