package milter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chainmail/checks"
)

// Metrics are the Prometheus collectors of the milter and the chain.
type Metrics struct {
	Sessions     prometheus.Gauge
	Messages     *prometheus.CounterVec
	CheckStatus  *prometheus.CounterVec
	CheckLatency *prometheus.HistogramVec
	ChainLatency prometheus.Histogram
	// Waiting counts messages waiting for admission (Options.MaxConcurrent).
	Waiting prometheus.Gauge
	// Overrunning counts answered messages whose timed-out checks are
	// still running; each keeps its admission slot until they return.
	Overrunning prometheus.Gauge
	// Connection limits: connections closed at once over
	// max_connections, accept errors survived, timeouts by kind.
	Refused      prometheus.Counter
	AcceptErrors prometheus.Counter
	Timeouts     *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chainmail_milter_sessions", Help: "Open milter connections.",
		}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_messages_total", Help: "Messages by final action.",
		}, []string{"action"}),
		CheckStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_check_results_total", Help: "Check results by check and status.",
		}, []string{"check", "status"}),
		CheckLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chainmail_check_duration_seconds", Help: "Time one check took.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"check"}),
		ChainLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chainmail_chain_duration_seconds", Help: "Time the whole chain and policy took per message.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		Waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chainmail_messages_waiting", Help: "Messages waiting for admission to evaluation (milter.max_concurrent).",
		}),
		Overrunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chainmail_messages_overrunning", Help: "Answered messages whose timed-out checks still run; each keeps its admission slot until they return.",
		}),
		Refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chainmail_milter_refused_connections_total", Help: "Milter connections closed at once because milter.max_connections were open.",
		}),
		AcceptErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chainmail_milter_accept_errors_total", Help: "Failed accepts of milter connections (like too many open files), retried with back-off.",
		}),
		Timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_milter_timeouts_total", Help: "Milter connections closed by a timeout, by timeout.",
		}, []string{"timeout"}),
	}
	if reg != nil {
		reg.MustRegister(m.Sessions, m.Messages, m.CheckStatus, m.CheckLatency, m.ChainLatency, m.Waiting, m.Overrunning, m.Refused, m.AcceptErrors, m.Timeouts)
	}
	return m
}

// Metrics observe the engine (checks.Observer).
var _ checks.Observer = (*Metrics)(nil)

// Step records one check result.
func (m *Metrics) Step(r checks.Result) {
	m.CheckStatus.WithLabelValues(r.Check, string(r.Status)).Inc()
	m.CheckLatency.WithLabelValues(r.Check).Observe(r.Duration.Seconds())
}

// Verdict records one chain run.
func (m *Metrics) Verdict(_ *checks.Message, _ *checks.Verdict, took time.Duration) []string {
	m.ChainLatency.Observe(took.Seconds())
	return nil
}

// Events implements checks.Observer: RCPT-time events are not counted.
func (m *Metrics) Events(*checks.Envelope, []checks.Event) {}
