package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DownError is the error of a call that the store could not serve
// because it is unreachable: it matches ErrUnavailable (errors.Is), is
// Temporary, and says Logged: the Breaker that made it logs the outage
// itself (once when it starts, at most once a minute while it lasts, once
// when it ends), so callers count it but need not log it per call.
type DownError struct {
	// Backend names the store ("redis 127.0.0.1:6379").
	Backend string
	// Cause is what the call or the last probe met.
	Cause error
	// Open is set when the call was not sent at all: the breaker was open.
	Open bool
}

func (e *DownError) Error() string {
	if e.Open {
		return fmt.Sprintf("store: unavailable: %s down, not asked until a probe sees it back (%v)", e.Backend, e.Cause)
	}
	return fmt.Sprintf("store: unavailable: %s: %v", e.Backend, e.Cause)
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *DownError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *DownError) Unwrap() error { return e.Cause }

// Temporary reports true: the store may be back any moment.
func (e *DownError) Temporary() bool { return true }

// Logged reports true: the outage is logged by the store, not per call.
func (e *DownError) Logged() bool { return true }

// Breaker is the circuit breaker of a store backend that talks to a
// server. While the server answers it is closed and calls go through.
// The first call that finds the server unreachable opens it: from then
// on Allow fails every call at once (a DownError with Open set) instead
// of letting each wait for the store's timeout, and a background probe
// (Probe, bounded by ProbeTimeout, with backoff from MinBackoff to
// MaxBackoff) closes it again when the server answers. It also keeps
// chainmail_state_up, counts failed calls and opened breakers, and logs
// the outage: once when it opens, at most once a minute while open (with
// the number of calls failed), once when it closes.
type Breaker struct {
	// Backend names the store in log lines and errors.
	Backend string
	// Label is the metrics' backend label ("redis").
	Label string
	// Probe asks the server whether it is there (a PING).
	Probe func(ctx context.Context) error
	// ProbeTimeout bounds one probe (the store's timeout).
	ProbeTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between probes.
	MinBackoff, MaxBackoff time.Duration
	// Metrics may be nil; Logf may not.
	Metrics *Metrics
	Logf    func(format string, args ...any)

	mu      sync.Mutex
	open    bool
	cause   error
	since   time.Time
	lastLog time.Time
	fails   int
	logged  int // fails at the last log line

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
}

// Start starts the probe; Stop ends it.
func (b *Breaker) Start() {
	b.startOnce.Do(func() {
		b.wake = make(chan struct{}, 1)
		b.stop = make(chan struct{})
		b.done = make(chan struct{})
		if b.MinBackoff <= 0 {
			b.MinBackoff = 100 * time.Millisecond
		}
		if b.MaxBackoff < b.MinBackoff {
			b.MaxBackoff = b.MinBackoff
		}
		if m := b.Metrics; m != nil {
			m.Up.WithLabelValues(b.Label).Set(1)
		}
		go b.probe()
	})
}

// Stop ends the probe and waits for it.
func (b *Breaker) Stop() {
	b.stopOnce.Do(func() {
		if b.stop == nil {
			return
		}
		close(b.stop)
		<-b.done
	})
}

// Open reports whether the breaker is open (the store known down).
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// Allow returns nil when a call may go to the server, else the DownError
// it fails with, at once.
func (b *Breaker) Allow() error {
	b.mu.Lock()
	if !b.open {
		b.mu.Unlock()
		return nil
	}
	b.fails++
	cause := b.cause
	b.maybeLogLocked(time.Now())
	b.mu.Unlock()
	if m := b.Metrics; m != nil {
		m.Unavailable.WithLabelValues(b.Label).Inc()
	}
	return &DownError{Backend: b.Backend, Cause: cause, Open: true}
}

// Failed records a call that found the server unreachable (cause), opens
// the breaker and returns the call's error.
func (b *Breaker) Failed(cause error) error {
	now := time.Now()
	b.mu.Lock()
	b.fails++
	opened := false
	if !b.open {
		b.open, b.cause, b.since, b.lastLog, b.fails, b.logged = true, cause, now, now, 1, 1
		opened = true
		b.Logf("state: %s unreachable: %v; calls fail at once (checks that need state let mail through) until a probe sees it back", b.Backend, cause)
	} else {
		b.cause = cause
		b.maybeLogLocked(now)
	}
	b.mu.Unlock()
	if m := b.Metrics; m != nil {
		m.Up.WithLabelValues(b.Label).Set(0)
		m.Unavailable.WithLabelValues(b.Label).Inc()
		if opened {
			m.Opens.WithLabelValues(b.Label).Inc()
		}
	}
	if opened {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	return &DownError{Backend: b.Backend, Cause: cause}
}

// Succeeded records an answer of the server: it closes an open breaker.
func (b *Breaker) Succeeded() {
	b.mu.Lock()
	if !b.open {
		b.mu.Unlock()
		return
	}
	b.open = false
	b.Logf("state: %s reachable again after %s (%d calls failed)", b.Backend, time.Since(b.since).Round(time.Millisecond), b.fails)
	b.mu.Unlock()
	if m := b.Metrics; m != nil {
		m.Up.WithLabelValues(b.Label).Set(1)
	}
}

// maybeLogLocked writes the once-a-minute line of a lasting outage.
func (b *Breaker) maybeLogLocked(now time.Time) {
	if now.Sub(b.lastLog) < time.Minute {
		return
	}
	b.Logf("state: %s still unreachable after %s: %d calls failed in the last %s (%d in all): %v",
		b.Backend, now.Sub(b.since).Round(time.Second), b.fails-b.logged, now.Sub(b.lastLog).Round(time.Second), b.fails, b.cause)
	b.lastLog, b.logged = now, b.fails
}

// probe waits while the breaker is closed; while it is open it probes,
// waiting MinBackoff, then twice as long each time up to MaxBackoff.
func (b *Breaker) probe() {
	defer close(b.done)
	wait := b.MinBackoff
	for {
		if !b.Open() {
			wait = b.MinBackoff
			select {
			case <-b.stop:
				return
			case <-b.wake:
				continue
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-b.stop:
			t.Stop()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.ProbeTimeout)
		err := b.Probe(ctx)
		cancel()
		if err == nil {
			b.Succeeded()
			continue
		}
		b.mu.Lock()
		if b.open {
			b.cause = err
			b.maybeLogLocked(time.Now())
		}
		b.mu.Unlock()
		if wait *= 2; wait > b.MaxBackoff {
			wait = b.MaxBackoff
		}
	}
}
