package dnsbl

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"chainmail/store"
)

// SuspendedMetric is the gauge chainmail_dnsbl_list_suspended{check,
// list}: 1 while a list is suspended (its health probe failed, or too
// many of its last queries did), 0 while it is asked. It reads the
// lists' health when scraped; a reload's new Set replaces the old one of
// the same check.
type SuspendedMetric struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	sets map[string]*Set
}

// NewSuspendedMetric creates the collector and registers it on reg (nil:
// not registered); one registered before is returned instead, so that
// the checks of every configuration report through one collector.
func NewSuspendedMetric(reg prometheus.Registerer) *SuspendedMetric {
	m := &SuspendedMetric{
		desc: prometheus.NewDesc("chainmail_dnsbl_list_suspended",
			"1 while a DNS list is suspended (not asked: its health probe or too many queries failed), 0 while it is asked.",
			[]string{"check", "list"}, nil),
		sets: map[string]*Set{},
	}
	return store.Register(reg, m)
}

// Track reports s's lists under check from now on, in place of the Set
// tracked before under that name. Closing s stops it.
func (m *SuspendedMetric) Track(check string, s *Set) {
	if m == nil || s == nil {
		return
	}
	m.mu.Lock()
	m.sets[check] = s
	m.mu.Unlock()
	s.untrack = func() {
		m.mu.Lock()
		if m.sets[check] == s {
			delete(m.sets, check)
		}
		m.mu.Unlock()
	}
}

// Describe implements prometheus.Collector.
func (m *SuspendedMetric) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

// Collect implements prometheus.Collector.
func (m *SuspendedMetric) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for check, s := range m.sets {
		for _, h := range s.Health() {
			v := 0.0
			if h.Suspended {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, v, check, h.Name)
		}
	}
}
