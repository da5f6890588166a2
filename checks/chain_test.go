package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fake is a check whose behaviour is a closure.
type fake struct {
	name string
	fn   func(ctx context.Context, m *Message, prior Results) Result
	runs atomic.Int32
}

func (f *fake) Name() string { return f.name }

func (f *fake) Check(ctx context.Context, m *Message, prior Results) Result {
	f.runs.Add(1)
	if f.fn == nil {
		return Result{Status: StatusPass}
	}
	return f.fn(ctx, m, prior)
}

// dependent is a fake that declares dependencies.
type dependent struct {
	fake
	deps []string
}

func (d *dependent) DependsOn() []string { return d.deps }

func newFake(name string, fn func(ctx context.Context, m *Message, prior Results) Result) *fake {
	return &fake{name: name, fn: fn}
}

// events is an ordered, concurrency-safe log of what the fakes did.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) index(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, v := range e.log {
		if v == s {
			return i
		}
	}
	return -1
}

func testMessage() *Message {
	return &Message{
		Header: []HeaderField{{Name: "From", Value: "a@example.com"}, {Name: "Subject", Value: "hi"}},
		Body:   bytesBody("hello\r\n"),
	}
}

// bytesBody is a Body over a string.
type bytesBody string

func (b bytesBody) ReadAt(p []byte, off int64) (int, error) {
	return strings.NewReader(string(b)).ReadAt(p, off)
}
func (b bytesBody) Size() int64 { return int64(len(b)) }

func statuses(rs Results) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.Check+"="+string(r.Status))
	}
	return strings.Join(parts, " ")
}

func TestChainResultsInConfiguredOrder(t *testing.T) {
	// Later steps finish first; results still come in step order.
	var steps []Step
	for i, d := range []time.Duration{40 * time.Millisecond, 20 * time.Millisecond, 0} {
		d := d
		steps = append(steps, Step{Check: newFake(fmt.Sprintf("c%d", i), func(ctx context.Context, _ *Message, _ Results) Result {
			time.Sleep(d)
			return Result{Status: StatusPass, Reason: d.String()}
		})})
	}
	rs := (&Chain{Steps: steps}).Run(context.Background(), testMessage())
	if got, want := statuses(rs), "c0=pass c1=pass c2=pass"; got != want {
		t.Fatalf("results %q, want %q", got, want)
	}
	if rs[0].Duration < 40*time.Millisecond {
		t.Errorf("c0 duration %v, want ≥ 40ms", rs[0].Duration)
	}
	if r, ok := rs.Get("c1"); !ok || r.Reason != "20ms" {
		t.Errorf("Get(c1) = %+v, %v", r, ok)
	}
	if _, ok := rs.Get("nope"); ok {
		t.Error("Get(nope) found something")
	}
}

func TestChainIndependentChecksRunInParallel(t *testing.T) {
	// Each check waits for the other's start: only parallel execution lets
	// both see it.
	startA, startB := make(chan struct{}), make(chan struct{})
	meet := func(mine, other chan struct{}) func(context.Context, *Message, Results) Result {
		return func(ctx context.Context, _ *Message, _ Results) Result {
			close(mine)
			select {
			case <-other:
				return Result{Status: StatusPass}
			case <-time.After(5 * time.Second):
				return Result{Status: StatusFail, Reason: "other check never started"}
			}
		}
	}
	c := &Chain{Steps: []Step{
		{Check: newFake("a", meet(startA, startB))},
		{Check: newFake("b", meet(startB, startA))},
	}}
	rs := c.Run(context.Background(), testMessage())
	if got, want := statuses(rs), "a=pass b=pass"; got != want {
		t.Fatalf("results %q, want %q (%s / %s)", got, want, rs[0].Reason, rs[1].Reason)
	}
}

func TestChainDependentWaitsAndSeesPrior(t *testing.T) {
	ev := &events{}
	slow := func(name string, d time.Duration, st Status) *fake {
		return newFake(name, func(ctx context.Context, _ *Message, _ Results) Result {
			ev.add(name + " start")
			time.Sleep(d)
			ev.add(name + " end")
			return Result{Status: st}
		})
	}
	var sawPrior Results
	dmarc := &dependent{deps: []string{"spf", "dkim", "absent"}}
	dmarc.name = "dmarc"
	dmarc.fn = func(ctx context.Context, _ *Message, prior Results) Result {
		ev.add("dmarc start")
		sawPrior = prior
		return Result{Status: StatusPass}
	}
	// dmarc is configured first: it must still wait for spf and dkim.
	c := &Chain{Steps: []Step{
		{Check: dmarc},
		{Check: slow("spf", 30*time.Millisecond, StatusSoftfail)},
		{Check: slow("dkim", 60*time.Millisecond, StatusPass)},
		{Check: slow("other", 0, StatusNone)},
	}}
	rs := c.Run(context.Background(), testMessage())
	if got, want := statuses(rs), "dmarc=pass spf=softfail dkim=pass other=none"; got != want {
		t.Fatalf("results %q, want %q", got, want)
	}
	start := ev.index("dmarc start")
	for _, dep := range []string{"spf end", "dkim end"} {
		if i := ev.index(dep); i < 0 || i > start {
			t.Errorf("%q at %d, dmarc started at %d: %v", dep, i, start, ev.log)
		}
	}
	if got, want := statuses(sawPrior), "spf=softfail dkim=pass"; got != want {
		t.Errorf("dmarc's prior %q, want %q (configured order, unknown dependency ignored)", got, want)
	}
}

func TestChainPriorHoldsEachStepOnce(t *testing.T) {
	// A dependency that is also an earlier decisive step appears once.
	var sawPrior Results
	d := &dependent{deps: []string{"first"}}
	d.name = "second"
	d.fn = func(_ context.Context, _ *Message, prior Results) Result {
		sawPrior = prior
		return Result{Status: StatusPass}
	}
	c := &Chain{Steps: []Step{{Check: newFake("first", nil), Decisive: DecisiveBoth}, {Check: d}}}
	c.Run(context.Background(), testMessage())
	if got, want := statuses(sawPrior), "first=pass"; got != want {
		t.Errorf("prior %q, want %q", got, want)
	}
}

func TestChainNeverWaitsInACircle(t *testing.T) {
	run := func(t *testing.T, c *Chain) Results {
		t.Helper()
		c.Deadline = 5 * time.Second
		start := time.Now()
		rs := c.Run(context.Background(), testMessage())
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("run took %v: steps waited for each other", el)
		}
		return rs
	}
	t.Run("decisive step before its dependencies", func(t *testing.T) {
		// DMARC decisive and configured first: SPF (later in the order)
		// would wait for it, and it for SPF.
		var prior Results
		dmarc := &dependent{deps: []string{"spf"}}
		dmarc.name = "dmarc"
		dmarc.fn = func(_ context.Context, _ *Message, p Results) Result {
			prior = p
			return Result{Status: StatusFail, Class: ClassSpam}
		}
		rs := run(t, &Chain{Steps: []Step{
			{Check: dmarc, Decisive: DecisiveSpam},
			{Check: newFake("spf", func(context.Context, *Message, Results) Result { return Result{Status: StatusFail} })},
			{Check: newFake("rbl", nil)},
		}})
		if got, want := statuses(rs), "dmarc=fail spf=fail rbl=skipped"; got != want {
			t.Errorf("results %q, want %q", got, want)
		}
		if got := statuses(prior); got != "spf=fail" {
			t.Errorf("dmarc's prior %q", got)
		}
	})
	t.Run("dependencies in a circle", func(t *testing.T) {
		a := &dependent{deps: []string{"b"}}
		a.name = "a"
		b := &dependent{deps: []string{"a"}}
		b.name = "b"
		rs := run(t, &Chain{Steps: []Step{{Check: a}, {Check: b}}})
		if got, want := statuses(rs), "a=pass b=pass"; got != want {
			t.Errorf("results %q, want %q", got, want)
		}
	})
}

func TestChainDecisive(t *testing.T) {
	classed := func(c Class) func(context.Context, *Message, Results) Result {
		return func(context.Context, *Message, Results) Result { return Result{Status: StatusPass, Class: c} }
	}
	for _, tc := range []struct {
		decisive Decisive
		class    Class
		ends     bool
	}{
		{DecisiveNone, ClassSpam, false},
		{DecisiveNone, ClassHam, false},
		{DecisiveSpam, ClassSpam, true},
		{DecisiveSpam, ClassHam, false},
		{DecisiveSpam, ClassNone, false},
		{DecisiveHam, ClassHam, true},
		{DecisiveHam, ClassSpam, false},
		{DecisiveBoth, ClassSpam, true},
		{DecisiveBoth, ClassHam, true},
		{DecisiveBoth, ClassNone, false},
	} {
		t.Run(tc.decisive.String()+"/"+tc.class.String(), func(t *testing.T) {
			before := newFake("before", nil)
			first := newFake("first", classed(tc.class))
			later := newFake("later", nil)
			last := newFake("last", nil)
			c := &Chain{Steps: []Step{{Check: before}, {Check: first, Decisive: tc.decisive}, {Check: later}, {Check: last}}}
			rs := c.Run(context.Background(), testMessage())
			if rs[1].Decided() != tc.ends {
				t.Errorf("Decided() = %v, want %v", rs[1].Decided(), tc.ends)
			}
			if rs[0].Status != StatusPass || before.runs.Load() != 1 {
				t.Errorf("a step before the decisive one: %+v, runs %d", rs[0], before.runs.Load())
			}
			for i, f := range []*fake{later, last} {
				r := rs[i+2]
				if tc.ends {
					if r.Status != StatusSkipped || r.Reason != "decisive first" || f.runs.Load() != 0 {
						t.Errorf("%s: %s %q, runs %d; want skipped \"decisive first\", not run", r.Check, r.Status, r.Reason, f.runs.Load())
					}
				} else if r.Status != StatusPass || f.runs.Load() != 1 {
					t.Errorf("%s: %s, runs %d; want pass, run once", r.Check, r.Status, f.runs.Load())
				}
			}
		})
	}
}

func TestChainDecisiveIsDeterministic(t *testing.T) {
	// Two decisive steps that would both decide: the first one in
	// configured order always wins, whatever the timing.
	for i := 0; i < 30; i++ {
		jitter := time.Duration(i%3) * time.Millisecond
		c := &Chain{Steps: []Step{
			{Check: newFake("free", func(context.Context, *Message, Results) Result {
				time.Sleep(jitter)
				return Result{Status: StatusPass, Class: ClassSpam}
			})},
			{Check: newFake("d1", func(context.Context, *Message, Results) Result {
				time.Sleep(2*time.Millisecond - jitter)
				return Result{Status: StatusListed, Class: ClassSpam}
			}), Decisive: DecisiveSpam},
			{Check: newFake("d2", func(context.Context, *Message, Results) Result {
				return Result{Status: StatusPass, Class: ClassHam}
			}), Decisive: DecisiveBoth},
			{Check: newFake("tail", nil)},
		}}
		rs := c.Run(context.Background(), testMessage())
		if got, want := statuses(rs), "free=pass d1=listed d2=skipped tail=skipped"; got != want {
			t.Fatalf("run %d: %q, want %q", i, got, want)
		}
		if rs[0].Decided() {
			t.Fatalf("run %d: a non-decisive step decided", i)
		}
		if rs[2].Reason != "decisive d1" || rs[3].Reason != "decisive d1" {
			t.Fatalf("run %d: reasons %q %q", i, rs[2].Reason, rs[3].Reason)
		}
	}
}

func TestChainStepAfterDecisiveWaitsForIt(t *testing.T) {
	ev := &events{}
	c := &Chain{Steps: []Step{
		{Check: newFake("gate", func(context.Context, *Message, Results) Result {
			time.Sleep(30 * time.Millisecond)
			ev.add("gate end")
			return Result{Status: StatusPass}
		}), Decisive: DecisiveSpam},
		{Check: newFake("after", func(context.Context, *Message, Results) Result {
			ev.add("after start")
			return Result{Status: StatusPass}
		})},
	}}
	c.Run(context.Background(), testMessage())
	if g, a := ev.index("gate end"), ev.index("after start"); g < 0 || a < g {
		t.Errorf("events %v: a step after a decisive one started before it ended", ev.log)
	}
}

func TestChainTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for _, tc := range []struct {
		name string
		fn   func(ctx context.Context, _ *Message, _ Results) Result
	}{
		{"honours ctx", func(ctx context.Context, _ *Message, _ Results) Result {
			<-ctx.Done()
			// What a check returns once its time is up does not count.
			return Result{Status: StatusFail, Score: 3, Symbols: []Symbol{{Name: "LATE", Score: 3}}, Class: ClassSpam}
		}},
		{"ignores ctx", func(ctx context.Context, _ *Message, _ Results) Result {
			<-release
			return Result{Status: StatusFail, Score: 3}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Several runs: the check's late answer and the timeout race.
			for i := 0; i < 20; i++ {
				next := newFake("next", func(context.Context, *Message, Results) Result {
					return Result{Status: StatusPass, Symbols: []Symbol{{Name: "NEXT", Score: 1}}}
				})
				c := &Chain{Steps: []Step{
					{Check: newFake("slow", tc.fn), Timeout: 20 * time.Millisecond, Decisive: DecisiveSpam},
					{Check: next},
				}}
				start := time.Now()
				rs := c.Run(context.Background(), testMessage())
				if el := time.Since(start); el > 2*time.Second {
					t.Fatalf("run took %v", el)
				}
				r := rs[0]
				if r.Status != StatusTimeout || r.Score != 0 || r.Symbols != nil || r.Class != ClassNone || r.Decided() {
					t.Fatalf("run %d: slow = %+v, want timeout with score 0 and no class", i, r)
				}
				if !errors.Is(r.Err, ErrTimeout) || r.Reason != "no answer within 20ms" || r.Check != "slow" {
					t.Fatalf("run %d: err %v, reason %q, check %q", i, r.Err, r.Reason, r.Check)
				}
				if rs[1].Status != StatusPass || rs[1].Score != 1 {
					t.Fatalf("run %d: the chain did not go on: %+v", i, rs[1])
				}
			}
		})
	}
}

func TestChainPanic(t *testing.T) {
	d := &dependent{deps: []string{"boom"}}
	d.name = "after"
	var prior Results
	d.fn = func(_ context.Context, _ *Message, p Results) Result {
		prior = p
		return Result{Status: StatusPass}
	}
	c := &Chain{Steps: []Step{
		{Check: newFake("boom", func(context.Context, *Message, Results) Result { panic("kaboom") }), Decisive: DecisiveBoth},
		{Check: newFake("other", nil)},
		{Check: d},
	}}
	rs := c.Run(context.Background(), testMessage())
	r := rs[0]
	if r.Status != StatusError || !errors.Is(r.Err, ErrPanic) || r.Check != "boom" || !strings.Contains(r.Reason, "kaboom") || r.Score != 0 {
		t.Fatalf("panicking check: %+v", r)
	}
	if got, want := statuses(rs), "boom=error other=pass after=pass"; got != want {
		t.Errorf("results %q, want %q", got, want)
	}
	if got, want := statuses(prior), "boom=error"; got != want {
		t.Errorf("dependent's prior %q, want %q", got, want)
	}
}

func TestChainMaxSize(t *testing.T) {
	m := testMessage()
	size := m.Size()
	if want := int64(len(m.RawHeader())) + 7; size != want {
		t.Fatalf("Size() = %d, want %d", size, want)
	}
	big := newFake("big", nil)
	exact := newFake("exact", nil)
	c := &Chain{Steps: []Step{
		{Check: big, MaxSize: size - 1},
		{Check: exact, MaxSize: size},
		{Check: newFake("nolimit", nil)},
	}}
	rs := c.Run(context.Background(), m)
	if want := fmt.Sprintf("too big (%d > %d)", size, size-1); rs[0].Status != StatusSkipped || rs[0].Reason != want {
		t.Errorf("big: %s %q, want skipped %q", rs[0].Status, rs[0].Reason, want)
	}
	if big.runs.Load() != 0 {
		t.Error("a check over its max_size ran")
	}
	if rs[1].Status != StatusPass || rs[2].Status != StatusPass {
		t.Errorf("results %s", statuses(rs))
	}
}

func TestChainDeadline(t *testing.T) {
	block := func(ctx context.Context, _ *Message, _ Results) Result {
		<-ctx.Done()
		return Result{Status: StatusTemperror}
	}
	d := &dependent{deps: []string{"stuck"}}
	d.name = "waiter"
	d.fn = block
	c := &Chain{Deadline: 50 * time.Millisecond, Steps: []Step{
		{Check: newFake("stuck", block), Timeout: 10 * time.Second},
		{Check: d, Timeout: 10 * time.Second},
		{Check: newFake("quick", nil)},
	}}
	start := time.Now()
	rs := c.Run(context.Background(), testMessage())
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("chain ran %v past a 50ms deadline", el)
	}
	if got, want := statuses(rs), "stuck=timeout waiter=timeout quick=pass"; got != want {
		t.Fatalf("results %q, want %q", got, want)
	}
	if rs[0].Reason != "chain deadline reached" || !errors.Is(rs[0].Err, ErrTimeout) {
		t.Errorf("stuck: reason %q, err %v", rs[0].Reason, rs[0].Err)
	}
	if !strings.HasPrefix(rs[1].Reason, "chain deadline reached") {
		t.Errorf("waiter: reason %q", rs[1].Reason)
	}

	// A caller's cancelled context ends the run the same way.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rs = (&Chain{Steps: []Step{{Check: newFake("stuck", block)}}}).Run(ctx, testMessage())
	if rs[0].Status != StatusTimeout {
		t.Errorf("cancelled context: %+v", rs[0])
	}
}

func TestChainScoreOverrides(t *testing.T) {
	shared := []Symbol{{Name: "A", Score: 1}, {Name: "B", Score: 2}}
	c := &Chain{Steps: []Step{
		{Check: newFake("syms", func(context.Context, *Message, Results) Result {
			return Result{Status: StatusFail, Score: 99, Symbols: shared}
		}), Scores: map[string]float64{"A": 5, "UNUSED": 7}},
		{Check: newFake("plain", func(context.Context, *Message, Results) Result {
			return Result{Status: StatusNeutral, Score: 1.5}
		})},
		{Check: newFake("empty", func(context.Context, *Message, Results) Result { return Result{} })},
	}}
	rs := c.Run(context.Background(), testMessage())
	if r := rs[0]; r.Score != 7 || r.Symbols[0].Score != 5 || r.Symbols[1].Score != 2 {
		t.Errorf("overridden: score %v, symbols %+v; want 7 = A 5 + B 2", r.Score, r.Symbols)
	}
	if shared[0].Score != 1 {
		t.Errorf("the override changed the check's own symbol slice: %+v", shared)
	}
	if rs[1].Score != 1.5 {
		t.Errorf("a result without symbols keeps its score: %v", rs[1].Score)
	}
	if rs[2].Status != StatusNone {
		t.Errorf("an empty status becomes none: %q", rs[2].Status)
	}
}

func TestChainObserveOncePerStep(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	obs := funcObserver{step: func(r Result) {
		mu.Lock()
		seen[r.Check+"="+string(r.Status)]++
		mu.Unlock()
	}}
	c := &Chain{
		Steps: []Step{
			{Check: newFake("ok", nil)},
			{Check: newFake("big", nil), MaxSize: 1},
			{Check: newFake("boom", func(context.Context, *Message, Results) Result { panic("x") })},
			{Check: newFake("slow", func(ctx context.Context, _ *Message, _ Results) Result {
				<-ctx.Done()
				return Result{}
			}), Timeout: 10 * time.Millisecond},
			{Check: newFake("decider", func(context.Context, *Message, Results) Result {
				return Result{Status: StatusListed, Class: ClassSpam}
			}), Decisive: DecisiveSpam},
			{Check: newFake("skipped", nil)},
		},
	}
	e := &Engine{Chain: c, Policy: DefaultPolicy(), Observer: obs}
	e.Evaluate(context.Background(), testMessage())
	want := map[string]int{"ok=pass": 1, "big=skipped": 1, "boom=error": 1, "slow=timeout": 1, "decider=listed": 1, "skipped=skipped": 1}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("observed %v, want %v", seen, want)
	}
}

func TestParseDecisive(t *testing.T) {
	for s, want := range map[string]Decisive{"none": DecisiveNone, "spam": DecisiveSpam, "HAM": DecisiveHam, "Both": DecisiveBoth} {
		got, err := ParseDecisive(s)
		if err != nil || got != want {
			t.Errorf("ParseDecisive(%q) = %v, %v", s, got, err)
		}
		var d Decisive
		if err := d.UnmarshalText([]byte(s)); err != nil || d != want {
			t.Errorf("UnmarshalText(%q) = %v, %v", s, d, err)
		}
		if b, _ := want.MarshalText(); !strings.EqualFold(string(b), s) {
			t.Errorf("MarshalText(%v) = %q", want, b)
		}
	}
	d := DecisiveSpam
	if err := d.UnmarshalText([]byte("sometimes")); err == nil || d != DecisiveSpam {
		t.Errorf("UnmarshalText(sometimes): %v, value %v (want error, value unchanged)", err, d)
	}
	if s := Decisive(9).String(); s != "decisive(9)" {
		t.Errorf("out of range String() = %q", s)
	}
}

func TestActions(t *testing.T) {
	order := []Action{Accept, Tag, Quarantine, Tempfail, Discard, Reject}
	for i, a := range order {
		got, err := ParseAction(strings.ToUpper(a.String()))
		if err != nil || got != a {
			t.Errorf("ParseAction(%v) = %v, %v", a, got, err)
		}
		if i > 0 && Max(order[i-1], a) != a || Max(a, Accept) != a {
			t.Errorf("Max is not ordered by severity at %v", a)
		}
	}
	if _, err := ParseAction("bounce"); err == nil || !strings.Contains(err.Error(), `"bounce"`) {
		t.Errorf("ParseAction(bounce) = %v", err)
	}
	if s := Action(42).String(); s != "action(42)" {
		t.Errorf("Action(42) = %q", s)
	}
	var a Action
	if err := a.UnmarshalText([]byte("quarantine")); err != nil || a != Quarantine {
		t.Errorf("UnmarshalText = %v, %v", a, err)
	}
}
