package attachments

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Memory is a budget of bytes shared by every scan of a process that
// holds it: the buffers that hold whole files (archives, documents, the
// members unpacked from them) and decompressor dictionaries are taken
// from it before they are allocated and given back when the file has
// been inspected. A scan that finds the budget spent waits, first come
// first served, for at most its wait; what it cannot get in time is not
// unpacked and reported unscannable ("limit-memory"), never skipped
// silently. Per-message limits (Options.MaxTotal) still apply.
type Memory struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	peak    int64
	holders int // scans holding some of it
	waiters []*memWaiter
}

type memWaiter struct {
	n       int64
	holding bool
	err     error
	ready   chan struct{}
}

// DefaultMemory is the budget a process gets when none is configured.
const DefaultMemory = 512 << 20

// NewMemory returns a budget of limit bytes (DefaultMemory when limit is
// not positive).
func NewMemory(limit int64) *Memory {
	m := &Memory{}
	m.SetLimit(limit)
	return m
}

// SetLimit changes the budget (a configuration reload): what is held
// stays held; waiters that now fit go on.
func (m *Memory) SetLimit(limit int64) {
	if limit <= 0 {
		limit = DefaultMemory
	}
	m.mu.Lock()
	m.limit = limit
	m.wake()
	m.mu.Unlock()
}

// Limit returns the budget.
func (m *Memory) Limit() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.limit
}

// Used returns the bytes held now, Peak the most held at once.
func (m *Memory) Used() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// Peak returns the most bytes held at once since the budget was made.
func (m *Memory) Peak() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peak
}

var errMemory = errors.New("attachments: memory budget spent")

// acquire takes n bytes, waiting up to wait (and no longer than ctx
// allows). holding says whether the scan asking holds some already.
//
// A scan that holds memory and needs more would deadlock with others
// doing the same, so: scans that hold memory go first, a scan that
// holds none starts only while the budget is at most half used (or
// empty, for a file larger than half), and when every scan that holds
// memory is waiting for more, the youngest request is refused at once
// instead of waiting out its time.
func (m *Memory) acquire(ctx context.Context, n int64, wait time.Duration, holding bool) error {
	if n <= 0 {
		return nil
	}
	m.mu.Lock()
	if n > m.limit {
		m.mu.Unlock()
		return errMemory
	}
	w := &memWaiter{n: n, holding: holding, ready: make(chan struct{})}
	if holding {
		// After the other holders, before the scans that hold nothing.
		i := 0
		for i < len(m.waiters) && m.waiters[i].holding {
			i++
		}
		m.waiters = append(m.waiters[:i], append([]*memWaiter{w}, m.waiters[i:]...)...)
	} else {
		m.waiters = append(m.waiters, w)
	}
	m.wake()
	m.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return w.err
	case <-t.C:
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-w.ready: // decided while giving up: keep it
		return w.err
	default:
	}
	for i, x := range m.waiters {
		if x == w {
			m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
			break
		}
	}
	m.wake() // the head may have been this one, blocking others that fit
	return errMemory
}

// release gives n bytes back; none says the scan holds nothing now.
func (m *Memory) release(n int64, none bool) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	if none {
		m.holders--
	}
	m.wake()
	m.mu.Unlock()
}

// wake grants waiters in order while they fit, and breaks a deadlock of
// holders (m.mu held).
func (m *Memory) wake() {
	for len(m.waiters) > 0 {
		w := m.waiters[0]
		fits := m.used+w.n <= m.limit
		if !w.holding {
			fits = m.used+w.n <= max(m.limit/2, w.n)
		}
		if fits {
			m.waiters = m.waiters[1:]
			m.used += w.n
			m.peak = max(m.peak, m.used)
			if !w.holding {
				m.holders++
			}
			close(w.ready)
			continue
		}
		waiting := 0
		last := -1
		for i, x := range m.waiters {
			if x.holding {
				waiting++
				last = i
			}
		}
		if waiting == 0 || waiting < m.holders {
			return
		}
		// Every holder waits for another: refuse the youngest.
		x := m.waiters[last]
		m.waiters = append(m.waiters[:last], m.waiters[last+1:]...)
		x.err = errMemory
		close(x.ready)
	}
}
