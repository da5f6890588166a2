package milter

import (
	"context"
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// admission bounds the number of messages evaluated at once. Under load a
// message waits here, before its chain starts, instead of running with
// every other message and letting its checks run out of time: load makes
// mail slower, never unchecked. The MTA waits meanwhile, up to its own
// milter timeouts (Postfix: milter_content_timeout, 300 s). The check
// timeouts and the chain deadline start only once a message is admitted;
// the message's own deadline (Options.Timeout) covers the wait too.
//
// The admission belongs to the Server, which outlives configuration
// reloads: a reload never resets the count of messages in evaluation.
type admission struct {
	slots   chan struct{}
	waiting prometheus.Gauge
	// stopped is closed when the server shuts down: waiting messages are
	// then deferred at once instead of holding up the shutdown.
	stopped  chan struct{}
	stopOnce sync.Once
}

func newAdmission(n int, waiting prometheus.Gauge) *admission {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	return &admission{slots: make(chan struct{}, n), waiting: waiting, stopped: make(chan struct{})}
}

// stop makes every waiting and later admit return false.
func (a *admission) stop() { a.stopOnce.Do(func() { close(a.stopped) }) }

// admit waits for a free slot until ctx ends or the server shuts down. It
// returns the function that frees the slot, or false when it got none.
func (a *admission) admit(ctx context.Context) (release func(), ok bool) {
	select {
	case a.slots <- struct{}{}:
		return a.release, true
	default:
	}
	if a.waiting != nil {
		a.waiting.Inc()
		defer a.waiting.Dec()
	}
	select {
	case a.slots <- struct{}{}:
		return a.release, true
	case <-ctx.Done():
		return nil, false
	case <-a.stopped:
		return nil, false
	}
}

func (a *admission) release() { <-a.slots }
