package dnsbl

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"chainmail/checks/dns"
)

// Query is one key to look up in one list.
type Query struct {
	// List is the index of the list in Set.Lists.
	List int
	// Key is the label put before the zone: a reversed address
	// (ReverseIP) or a domain.
	Key string
	// Value is what the key stands for, as shown in details and logs:
	// "192.0.2.1", "example.com". Hashed lists hash the Value.
	Value string
	// Source says where the value came from ("client", "received",
	// "helo", "url", "email", …); it ends up in symbol details.
	Source string
}

// State is the outcome of one query.
type State int

// States.
const (
	// NotListed: NXDOMAIN, no A record, or codes the list does not count.
	NotListed State = iota
	// Listed: at least one Hit.
	Listed
	// Failed: a timeout, a server failure or an error answer.
	Failed
	// Skipped: not asked (list suspended, or the key cannot be queried).
	Skipped
)

func (s State) String() string {
	return [...]string{"not listed", "listed", "failed", "skipped"}[s]
}

// Outcome is what one Query found.
type Outcome struct {
	Query
	State   State
	Hits    []Hit
	Answers []netip.Addr
	// Reason says why a query failed or was skipped.
	Reason string
	Err    error
}

// Lookup runs the queries in parallel, each bounded by its list's timeout,
// and returns their outcomes in the same order. The same key asked twice of
// one list is asked once. Suspended lists are not asked: their queries come
// back Skipped.
func (s *Set) Lookup(ctx context.Context, qs []Query) []Outcome {
	out := make([]Outcome, len(qs))
	// The first probes of lists never used before run together, and
	// the queries wait for them.
	var pending []<-chan struct{}
	started := map[int]bool{}
	for _, q := range qs {
		if q.List >= 0 && q.List < len(s.Lists) && !started[q.List] {
			started[q.List] = true
			if done := s.firstProbe(s.Lists[q.List]); done != nil {
				pending = append(pending, done)
			}
		}
	}
	for _, done := range pending {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	// Which lists are usable now.
	usable := make(map[int]string, len(s.Lists))
	for _, q := range qs {
		if _, seen := usable[q.List]; seen {
			continue
		}
		if q.List < 0 || q.List >= len(s.Lists) {
			usable[q.List] = "no such list"
			continue
		}
		if ok, why := s.ready(ctx, s.Lists[q.List]); ok {
			usable[q.List] = ""
		} else {
			usable[q.List] = why
		}
	}
	type job struct {
		name string
		idx  []int
	}
	first := map[string]*job{}
	var jobs []*job
	for i, q := range qs {
		out[i].Query = q
		if why := usable[q.List]; why != "" {
			out[i].State, out[i].Reason = Skipped, why
			continue
		}
		l := s.Lists[q.List]
		name, ok := queryName(l.keyFor(q.Key, q.Value), l.Zone)
		if !ok {
			out[i].State, out[i].Reason = Skipped, "cannot be queried"
			continue
		}
		k := strconv.Itoa(q.List) + " " + strings.ToLower(name)
		if j, ok := first[k]; ok {
			j.idx = append(j.idx, i)
			continue
		}
		j := &job{name: name, idx: []int{i}}
		first[k] = j
		jobs = append(jobs, j)
	}

	// Each list's queries share one deadline, the list's timeout from
	// now; a fixed pool of workers asks them (a goroutine per query
	// would cost more than a cached answer).
	lctx := make(map[int]context.Context)
	for _, j := range jobs {
		li := out[j.idx[0]].List
		if _, ok := lctx[li]; ok {
			continue
		}
		timeout := s.Lists[li].Timeout
		if timeout <= 0 {
			timeout = s.opts.Timeout
		}
		c, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		lctx[li] = c
	}
	work := make(chan *job, len(jobs))
	for _, j := range jobs {
		work <- j
	}
	close(work)
	var wg sync.WaitGroup
	for range min(s.opts.Parallel, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				li := out[j.idx[0]].List
				var o Outcome
				select {
				case s.inflight <- struct{}{}:
					if err := lctx[li].Err(); err != nil {
						// select picks at random when both are ready:
						// a deadline that passed while the job waited
						// for a worker is not the list's fault either.
						o = Outcome{State: Failed, Reason: "timeout", Err: err}
					} else {
						o = s.one(ctx, lctx[li], s.Lists[li], j.name)
					}
					<-s.inflight
				case <-lctx[li].Done():
					// Out of time before a slot was free: the list
					// never got the question, so it is not held
					// against it.
					o = Outcome{State: Failed, Reason: "timeout", Err: lctx[li].Err()}
				}
				for _, i := range j.idx {
					q := out[i].Query
					out[i] = o
					out[i].Query = q
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// one asks one name of one list; qctx carries the list's deadline, ctx
// the message's.
func (s *Set) one(ctx, qctx context.Context, l *List, name string) Outcome {
	ans, err := s.resolve(qctx, name)
	var o Outcome
	switch {
	case err == nil:
		o.Answers = ans
		hits, fail := l.classify(ans)
		if fail != "" {
			o.State, o.Reason = Failed, fail
		} else if len(hits) > 0 {
			o.State, o.Hits = Listed, hits
		}
	case dns.IsNotFound(err):
		o.State = NotListed
	default:
		o.State, o.Reason, o.Err = Failed, dns.ErrText(err), err
		if ctx.Err() != nil {
			// The message ran out of time, not the list: do not hold it
			// against the list.
			return o
		}
	}
	s.record(l, o.State == Failed)
	return o
}
