package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"chainmail/checks/dns"
)

// health is one list's state: the outcomes of its last queries, whether it
// is suspended, and its probe.
type health struct {
	mu       sync.Mutex
	ring     []bool // true: that query failed
	next     int    // where the next outcome goes
	filled   int
	probed   bool // a probe has finished
	probedAt time.Time
	probing  chan struct{} // closed when the running probe ends; nil when none runs
	// suspended lists are not queried until retryAt.
	suspended bool
	reason    string
	retryAt   time.Time
}

func (h *health) reset() {
	clear(h.ring)
	h.next, h.filled = 0, 0
}

// failures is how many of the recorded outcomes failed.
func (h *health) failures() int {
	n := 0
	for i := 0; i < h.filled; i++ {
		if h.ring[i] {
			n++
		}
	}
	return n
}

// Health is a list's state as reported to callers.
type Health struct {
	Name      string
	Suspended bool
	Reason    string
	// Failures of the last Window queries.
	Failures, Window int
	Probed           bool
}

// Health returns the state of every list.
func (s *Set) Health() []Health {
	out := make([]Health, 0, len(s.Lists))
	for _, l := range s.Lists {
		h := &l.health
		h.mu.Lock()
		out = append(out, Health{Name: l.Name, Suspended: h.suspended, Reason: h.reason,
			Failures: h.failures(), Window: len(h.ring), Probed: h.probed})
		h.mu.Unlock()
	}
	return out
}

// ready tells whether l may be queried now, starting probes that are due.
// The first use of a list waits for its first probe (bounded by the probe
// timeout and ctx); later probes run in the background.
func (s *Set) ready(ctx context.Context, l *List) (bool, string) {
	h := &l.health
	probes := s.health.ProbeInterval > 0
	h.mu.Lock()
	if probes && !h.probed {
		done := s.startProbe(l)
		h.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return false, "health probe not finished"
		}
		h.mu.Lock()
	}
	now := s.opts.Now()
	if h.suspended && !now.Before(h.retryAt) {
		if probes {
			s.startProbe(l)
		} else {
			h.suspended, h.reason = false, ""
			h.reset()
		}
	} else if probes && !h.suspended && now.Sub(h.probedAt) >= s.health.ProbeInterval {
		s.startProbe(l)
	}
	defer h.mu.Unlock()
	if h.suspended {
		return false, "suspended: " + h.reason
	}
	return true, ""
}

// firstProbe starts l's first probe if it is due and returns a channel
// closed when it ends; nil when there is none to wait for.
func (s *Set) firstProbe(l *List) <-chan struct{} {
	if s.health.ProbeInterval <= 0 {
		return nil
	}
	h := &l.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.probed {
		return nil
	}
	return s.startProbe(l)
}

// startProbe starts l's probe unless one is running, and returns a channel
// closed when it ends. h.mu is held.
func (s *Set) startProbe(l *List) <-chan struct{} {
	h := &l.health
	if h.probing != nil {
		return h.probing
	}
	done := make(chan struct{})
	h.probing = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, s.health.ProbeTimeout)
		err := s.prober()(ctx, l)
		cancel()
		h.mu.Lock()
		defer h.mu.Unlock()
		now := s.opts.Now()
		h.probed, h.probedAt, h.probing = true, now, nil
		if err != nil {
			h.suspended, h.reason, h.retryAt = true, "health probe: "+err.Error(), now.Add(s.health.Retry)
		} else {
			h.suspended, h.reason = false, ""
			h.reset()
		}
		close(done)
	}()
	return done
}

func (s *Set) prober() func(context.Context, *List) error {
	if s.opts.Prober != nil {
		return s.opts.Prober
	}
	return s.Probe
}

// record notes the outcome of one query of l and suspends l when it has
// failed too often.
func (s *Set) record(l *List, failed bool) {
	h := &l.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.suspended {
		return
	}
	h.ring[h.next] = failed
	h.next = (h.next + 1) % len(h.ring)
	if h.filled < len(h.ring) {
		h.filled++
	}
	if n := h.failures(); n >= s.health.Failures {
		h.suspended = true
		h.reason = fmt.Sprintf("%d of the last %d queries failed", n, h.filled)
		h.retryAt = s.opts.Now().Add(s.health.Retry)
	}
}

// Errors of Probe.
var (
	ErrProbeNotListed = errors.New("dnsbl: the test entry is not listed")
	ErrProbeListed    = errors.New("dnsbl: the entry that must not be listed is listed")
)

// Probe is the RFC 5782 §5 health probe: the list must list its test entry
// (127.0.0.2 or "test") with an answer that is not an error answer, and
// must not list 127.0.0.1 (or "invalid"). A list that lists everything
// would otherwise mark every message; one that lists nothing, or refuses
// us, would silently check nothing.
func (s *Set) Probe(ctx context.Context, l *List) error {
	if l.ProbeListed != "-" {
		name, _ := l.probeName(l.ProbeListed)
		ans, err := s.resolve(ctx, name)
		switch {
		case err != nil && dns.IsNotFound(err):
			return fmt.Errorf("%w (%s)", ErrProbeNotListed, l.ProbeListed)
		case err != nil:
			return fmt.Errorf("%s: %s", l.ProbeListed, dns.ErrText(err))
		}
		if _, fail := l.classify(ans); fail != "" {
			return fmt.Errorf("%s: %s", l.ProbeListed, fail)
		}
	}
	if l.ProbeUnlisted != "-" {
		name, _ := l.probeName(l.ProbeUnlisted)
		ans, err := s.resolve(ctx, name)
		switch {
		case err == nil && len(ans) > 0:
			return fmt.Errorf("%w (%s answers %s)", ErrProbeListed, l.ProbeUnlisted, ans[0])
		case err != nil && !dns.IsNotFound(err):
			return fmt.Errorf("%s: %s", l.ProbeUnlisted, dns.ErrText(err))
		}
	}
	return nil
}

// resolve asks for the A records of name.
func (s *Set) resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	if lk, ok := s.r.(dns.IPLookuper); ok {
		ips, err := lk.LookupIP(ctx, "ip4", name)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, a.Unmap())
			}
		}
		return out, nil
	}
	addrs, err := s.r.LookupIPAddr(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, ip := range addrs {
		if a, ok := netip.AddrFromSlice(ip.IP); ok && a.Unmap().Is4() {
			out = append(out, a.Unmap())
		}
	}
	return out, nil
}
