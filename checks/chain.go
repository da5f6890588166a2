package checks

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// Decisive says which of a check's classifications end the chain
// (MailCleaner's "decisive" module setting).
type Decisive int

// Decisive settings.
const (
	DecisiveNone Decisive = iota
	DecisiveSpam
	DecisiveHam
	DecisiveBoth
)

var decisiveNames = [...]string{"none", "spam", "ham", "both"}

func (d Decisive) String() string {
	if d < 0 || int(d) >= len(decisiveNames) {
		return fmt.Sprintf("decisive(%d)", int(d))
	}
	return decisiveNames[d]
}

// ParseDecisive reads none, spam, ham or both.
func ParseDecisive(s string) (Decisive, error) {
	for i, n := range decisiveNames {
		if strings.EqualFold(s, n) {
			return Decisive(i), nil
		}
	}
	return 0, fmt.Errorf("checks: unknown decisive value %q (want none, spam, ham or both)", s)
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Decisive) UnmarshalText(b []byte) error {
	v, err := ParseDecisive(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Decisive) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d Decisive) ends(c Class) bool {
	switch c {
	case ClassSpam:
		return d == DecisiveSpam || d == DecisiveBoth
	case ClassHam:
		return d == DecisiveHam || d == DecisiveBoth
	}
	return false
}

// Step is one check in the chain with its chain settings.
type Step struct {
	Check    Check
	Decisive Decisive
	// Timeout is the maximum check time; 0 means DefaultCheckTimeout.
	Timeout time.Duration
	// MaxSize skips the check for larger messages; 0 means no limit.
	MaxSize int64
	// Scores overrides symbol scores by symbol name.
	Scores map[string]float64
	// OnTimeout is what running out of time (the step's own timeout or
	// the chain deadline) does to the message; the zero value tempfails.
	OnTimeout OnTimeout
	// AlwaysRun keeps the step running when an earlier decisive step
	// classified the message ham (an allow list must not switch off the
	// attachment and antivirus checks).
	AlwaysRun bool
	// TooBigUnscannable: a message over MaxSize is not skipped but
	// reported unscannable (status unscannable, fact unscannable), so a
	// size limit on a security check holds the message as the check's own
	// limits do instead of letting it through unchecked.
	TooBigUnscannable bool
}

// DefaultCheckTimeout applies to steps without a timeout.
const DefaultCheckTimeout = 10 * time.Second

// DefaultDeadline bounds a whole chain run, far below Postfix's 300 s
// milter content timeout.
const DefaultDeadline = 60 * time.Second

// Chain runs steps in configured order. A step starts as soon as the
// checks it depends on and every earlier decisive step have finished, so
// independent checks run in parallel while a decisive verdict still
// stops everything configured after it (except the checks that decisive
// step itself depends on, which run before it whatever their order).
type Chain struct {
	Steps []Step
	// Deadline bounds the whole run; 0 means DefaultDeadline.
	Deadline time.Duration
}

// ErrPanic wraps a panic recovered inside a check.
var ErrPanic = errors.New("checks: check panicked")

// ErrTimeout is the error of a check that ran out of time.
var ErrTimeout = errors.New("checks: check timed out")

// Run runs the chain on m. It always returns one result per step, in step
// order.
func (c *Chain) Run(ctx context.Context, m *Message) Results { return c.run(ctx, m, nil) }

// run is Run telling step, when set, each step's result as it finishes.
func (c *Chain) run(ctx context.Context, m *Message, step func(Result)) Results {
	deadline := c.Deadline
	if deadline <= 0 {
		deadline = DefaultDeadline
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	n := len(c.Steps)
	results := make(Results, n)
	done := make([]chan struct{}, n)
	for i := range c.Steps {
		done[i] = make(chan struct{})
	}
	waits := c.plan()
	size := m.Size()
	if m.work == nil {
		m.work = &work{}
	}
	m.prepareRaw()

	for i := range c.Steps {
		go func(i int) {
			defer close(done[i])
			r := c.runAt(ctx, m, i, size, waits[i], results, done)
			results[i] = r
			if step != nil {
				step(r)
			}
		}(i)
	}
	for i := range done {
		<-done[i]
	}
	return results
}

// plan returns, for each step i, the steps it waits for (waits[i][j]):
// the checks it depends on and every earlier decisive step. A wait that
// would close a cycle is left out, so a run never hangs until the
// deadline: dependencies are planned first, then the decisive waits, each
// in step order. A decisive step configured before the checks it depends
// on (DMARC before SPF) thus lets them run first.
func (c *Chain) plan() [][]bool {
	n := len(c.Steps)
	index := make(map[string]int, n)
	for i, s := range c.Steps {
		if _, dup := index[s.Check.Name()]; !dup {
			index[s.Check.Name()] = i
		}
	}
	waits := make([][]bool, n)
	for i := range waits {
		waits[i] = make([]bool, n)
	}
	// reaches reports whether from waits for to, directly or not.
	reaches := func(from, to int) bool {
		seen := make([]bool, n)
		stack := []int{from}
		for len(stack) > 0 {
			k := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if k == to {
				return true
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			for j, w := range waits[k] {
				if w {
					stack = append(stack, j)
				}
			}
		}
		return false
	}
	add := func(i, j int) {
		if i != j && !waits[i][j] && !reaches(j, i) {
			waits[i][j] = true
		}
	}
	for i, s := range c.Steps {
		if d, ok := s.Check.(Dependent); ok {
			for _, dep := range d.DependsOn() {
				if j, ok := index[dep]; ok {
					add(i, j)
				}
			}
		}
	}
	for i := range c.Steps {
		for j := 0; j < i; j++ {
			if c.Steps[j].Decisive != DecisiveNone {
				add(i, j)
			}
		}
	}
	return waits
}

// runAt runs step i once the steps it waits for have finished. results[j]
// may only be read after done[j] is closed.
func (c *Chain) runAt(ctx context.Context, m *Message, i int, size int64, waits []bool, results Results, done []chan struct{}) Result {
	step := c.Steps[i]
	name := step.Check.Name()
	// prior is in configured order, each waited-for step once.
	var prior Results
	for j, w := range waits {
		if !w {
			continue
		}
		select {
		case <-done[j]:
		case <-ctx.Done():
			r := Result{Check: name, Status: StatusTimeout, Reason: "chain deadline reached before start", Err: ErrTimeout}
			r.timedOut = step.OnTimeout == TimeoutTempfail
			return r
		}
		prior = append(prior, results[j])
	}
	// The first earlier decisive step that decided ends the chain for this
	// one; a later step this one depends on never does. A ham decision
	// does not end an always-run step.
	for j := 0; j < i; j++ {
		if waits[j] && results[j].decided {
			if step.AlwaysRun && results[j].Class == ClassHam {
				break
			}
			return Result{Check: name, Status: StatusSkipped, Reason: "decisive " + results[j].Check}
		}
	}
	if step.MaxSize > 0 && size > step.MaxSize {
		r := Result{Check: name, Status: StatusSkipped, Reason: fmt.Sprintf("too big (%d > %d)", size, step.MaxSize)}
		if step.TooBigUnscannable {
			r.Status, r.Facts = StatusUnscannable, map[string]any{"unscannable": true}
			r.alwaysRun = step.AlwaysRun
		}
		return r
	}
	r := runStep(ctx, step, m, prior)
	r.decided = step.Decisive.ends(r.Class)
	r.timedOut = r.Status == StatusTimeout && step.OnTimeout == TimeoutTempfail
	r.alwaysRun = step.AlwaysRun
	return r
}

// runStep runs one check with its timeout and panic recovery and applies
// its score overrides.
func runStep(ctx context.Context, step Step, m *Message, prior Results) Result {
	name := step.Check.Name()
	timeout := step.Timeout
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	start := time.Now()
	ch := make(chan Result, 1)
	m.work.start()
	go func() {
		defer m.work.done()
		defer func() {
			if v := recover(); v != nil {
				ch <- Result{Status: StatusError, Reason: fmt.Sprintf("panic: %v", v),
					Err: fmt.Errorf("%w: %v\n%s", ErrPanic, v, debug.Stack())}
			}
		}()
		ch <- step.Check.Check(cctx, m, prior)
	}()
	timedOut := func() Result {
		if ctx.Err() != nil {
			return Result{Status: StatusTimeout, Reason: "chain deadline reached", Err: ErrTimeout}
		}
		return Result{Status: StatusTimeout, Reason: fmt.Sprintf("no answer within %s", timeout), Err: ErrTimeout}
	}
	var r Result
	select {
	case r = <-ch:
		// A check that honours ctx returns as soon as its time is up; what
		// it returns then is a timeout whichever channel select saw first.
		if cctx.Err() != nil && r.Status != StatusError {
			r = timedOut()
		}
	case <-cctx.Done():
		r = timedOut()
	}
	r.Check = name
	r.Duration = time.Since(start)
	if r.Status == "" {
		r.Status = StatusNone
	}
	if r.Status == StatusTimeout || r.Status == StatusError || r.Status == StatusSkipped {
		// A check that did not finish scores nothing (DESIGN failure policy).
		r.Symbols, r.Score, r.Class = nil, 0, ClassNone
		return r
	}
	if len(r.Symbols) > 0 {
		// The check may return a slice it shares between messages: the
		// overrides go into a copy.
		r.Symbols = append([]Symbol(nil), r.Symbols...)
		r.Score = 0
		for k := range r.Symbols {
			if s, ok := step.Scores[r.Symbols[k].Name]; ok {
				r.Symbols[k].Score = s
			}
			r.Score += r.Symbols[k].Score
		}
	}
	return r
}
