package quota

import (
	"github.com/prometheus/client_golang/prometheus"

	"chainmail/store"
)

// Metrics are the quota check's Prometheus collectors.
type Metrics struct {
	// Exceeded counts limits passed, by quota and action.
	Exceeded *prometheus.CounterVec
	// Webhook counts alerts by outcome: sent, failed (after the retries),
	// dropped (queue full), suppressed (within the interval).
	Webhook *prometheus.CounterVec
	// StoreErrors counts decisions the state store could not serve.
	StoreErrors prometheus.Counter
}

// NewMetrics creates the collectors and registers them on reg (nil: not
// registered). Collectors registered before (a reload builds the check
// again) are reused, so counts go on.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Exceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_quota_exceeded_total", Help: "Quota limits passed, by quota and action (defer, reject, quarantine, alert).",
		}, []string{"quota", "action"}),
		Webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chainmail_quota_webhook_total", Help: "Quota alerts for the webhook by outcome (sent, failed, dropped, suppressed).",
		}, []string{"result"}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chainmail_quota_store_errors_total", Help: "Quota decisions skipped because the state store failed.",
		}),
	}
	m.Exceeded = store.Register(reg, m.Exceeded)
	m.Webhook = store.Register(reg, m.Webhook)
	m.StoreErrors = store.Register(reg, m.StoreErrors)
	return m
}

// Collectors returns every collector, for a caller that registers them
// itself.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Exceeded, m.Webhook, m.StoreErrors}
}

func (m *Metrics) exceeded(quota, action string) {
	if m != nil {
		m.Exceeded.WithLabelValues(quota, action).Inc()
	}
}

func (m *Metrics) webhook(result string) {
	if m != nil {
		m.Webhook.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) storeError() {
	if m != nil {
		m.StoreErrors.Inc()
	}
}
