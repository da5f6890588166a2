package dns

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Client's Prometheus collectors. They are created per
// Client and registered by the caller (Collectors), never globally.
type metrics struct {
	lookups   *prometheus.CounterVec // every question asked of the Client
	cacheHits *prometheus.CounterVec // answered from the cache
	shared    prometheus.Counter     // answered by a query shared with others
	queries   *prometheus.CounterVec // exchanges sent to a server
	errors    *prometheus.CounterVec // lookups that ended in an error
	latency   *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chainmail", Subsystem: "dns", Name: "lookups_total",
			Help: "DNS questions asked of the resolver, cached or not, by query type.",
		}, []string{"qtype"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chainmail", Subsystem: "dns", Name: "cache_hits_total",
			Help: "DNS questions answered from the cache (positive or negative), by query type.",
		}, []string{"qtype"}),
		shared: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "chainmail", Subsystem: "dns", Name: "shared_total",
			Help: "DNS questions answered by one query shared with identical concurrent questions (each sharer counts).",
		}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chainmail", Subsystem: "dns", Name: "queries_total",
			Help: "DNS queries sent to servers (each try and each TCP fallback), by query type.",
		}, []string{"qtype"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "chainmail", Subsystem: "dns", Name: "errors_total",
			Help: "DNS lookups that returned an error, by class (nxdomain, nodata, servfail, refused, timeout, …).",
		}, []string{"class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "chainmail", Subsystem: "dns", Name: "query_duration_seconds",
			Help:    "Time of one exchange with a server, answered or not.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"transport"}),
	}
	return m
}

// Collectors returns the Client's metrics for registration on a registry
// of the caller's choosing:
//
//	reg.MustRegister(client.Collectors()...)
func (c *Client) Collectors() []prometheus.Collector {
	size := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "chainmail", Subsystem: "dns", Name: "cache_entries",
		Help: "Answers held in the DNS cache.",
	}, func() float64 {
		if c.cache == nil {
			return 0
		}
		return float64(c.cache.len())
	})
	m := c.metrics
	return []prometheus.Collector{m.lookups, m.cacheHits, m.shared, m.queries, m.errors, m.latency, size}
}
