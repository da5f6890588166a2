package console

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"chainmail/checks"
	"chainmail/checks/history"
)

// In-memory collaborators of the console: the console is what is under
// test here; the real history, hold queue and learners are tested in
// their own packages.

type memHistory struct {
	mu      sync.Mutex
	recs    []*history.Record // any order
	queries []history.Query
	err     error
}

func (h *memHistory) Search(_ context.Context, q history.Query) ([]*history.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.queries = append(h.queries, q)
	if h.err != nil {
		return nil, h.err
	}
	var out []*history.Record
	for _, r := range h.recs {
		if q.Match(r) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Offset >= len(out) {
		return nil, nil
	}
	out = out[q.Offset:]
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (h *memHistory) Get(_ context.Context, id string) (*history.Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, errors.New("history: record not found")
}

func (h *memHistory) lastQuery() history.Query {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.queries[len(h.queries)-1]
}

type memQueue struct {
	mu       sync.Mutex
	held     map[string]Held
	msgs     map[string][]byte
	released []string
	deleted  []string
}

func (q *memQueue) List(context.Context) ([]Held, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Held
	for _, h := range q.held {
		out = append(out, h)
	}
	return out, nil
}

func (q *memQueue) Message(_ context.Context, id string) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m, ok := q.msgs[id]; ok {
		return m, nil
	}
	return nil, fmt.Errorf("holdqueue: %s: not in the hold queue", id)
}

func (q *memQueue) take(id string) error {
	if _, ok := q.held[id]; !ok {
		return fmt.Errorf("holdqueue: %s: not in the hold queue", id)
	}
	delete(q.held, id)
	return nil
}

func (q *memQueue) Release(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.released = append(q.released, id)
	return q.take(id)
}

func (q *memQueue) Delete(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleted = append(q.deleted, id)
	return q.take(id)
}

type learned struct {
	raw  string
	spam bool
}

type memLearner struct {
	mu      sync.Mutex
	learned []learned
	err     error
}

func (l *memLearner) Learn(_ context.Context, raw []byte, spam bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.learned = append(l.learned, learned{string(raw), spam})
	return nil
}

func (l *memLearner) Stats(context.Context) ([]LearnerStat, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []LearnerStat{{Check: "bayes", LearnedSpam: 120, LearnedHam: 340}, {Check: "reputation", LearnedSpam: 12, LearnedHam: 40}}
	for _, x := range l.learned {
		if x.spam {
			out[0].LearnedSpam++
		} else {
			out[0].LearnedHam++
		}
	}
	return out, nil
}

func (l *memLearner) calls() []learned {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]learned(nil), l.learned...)
}

// Secrets the status hands over (the caller should have hidden them; the
// console must hide them again).
const (
	redisPassword = "redis-pass-9f3a7c"
	apiKey        = "api-key-77d1e0"
)

type memStatus struct{}

func (memStatus) Status(context.Context) (StatusInfo, error) {
	return StatusInfo{
		Config: map[string]any{
			"milter": map[string]any{"listen": "inet:127.0.0.1:10025"},
			"store":  map[string]any{"backend": "redis", "redis": map[string]any{"addr": "127.0.0.1:6379", "password": redisPassword}},
			"checks": []any{map[string]any{"name": "uribl", "options": map[string]any{"api_key": apiKey, "lists": []any{"multi.uribl.com"}}}},
		},
		Checks:    []CheckState{{Name: "spf", State: "ok"}, {Name: "antivirus", State: "degraded", Detail: "clamd: connection refused"}},
		Suspended: []SuspendedList{{Name: "zen.spamhaus.org", Until: time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC), Reason: "open resolver refused (127.255.255.254)"}},
		Store:     StoreHealth{Backend: "redis", OK: true, Detail: "127.0.0.1:6379"},
		Version:   "test",
		Started:   time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC),
	}, nil
}

// sampleRecords are a day of verdicts; the newest (ID r0050) keeps its
// message.
func sampleRecords(now time.Time) []*history.Record {
	var recs []*history.Record
	acts := []string{"accept", "accept", "accept", "tag", "reject", "quarantine", "accept", "tempfail"}
	senders := []string{"alice@example.org", "bob@example.net", "spam@bulk.example.com", "news@lists.example.org"}
	for i := 0; i < 50; i++ {
		act := acts[i%len(acts)]
		score := float64(i%9) - 1
		r := &history.Record{
			ID:         fmt.Sprintf("r%04d", i+1),
			Time:       now.Add(-time.Duration(50-i) * 29 * time.Minute),
			Host:       "mx1",
			QueueID:    fmt.Sprintf("4Q%04dX", i+1),
			ClientIP:   "192.0.2.10",
			HELO:       "mail.example.org",
			MailFrom:   senders[i%len(senders)],
			Rcpts:      []string{"postmaster@example.com"},
			HeaderFrom: senders[i%len(senders)],
			Subject:    fmt.Sprintf("Message number %d", i+1),
			MessageID:  fmt.Sprintf("<%d@example.org>", i+1),
			Size:       int64(2000 + 100*i),
			Action:     act,
			Why:        "score",
			Score:      score,
			Required:   5,
			Took:       time.Duration(20+i) * time.Millisecond,
			Symbols:    []checks.Symbol{{Name: "SPF_PASS", Score: -0.1}},
			Results: []history.CheckRecord{
				{Check: "spf", Status: "ok", Score: -0.1, Symbols: []checks.Symbol{{Name: "SPF_PASS", Score: -0.1}}, Took: time.Duration(3+i%7) * time.Millisecond},
				{Check: "bayes", Status: "ok", Score: score, Reason: "spam probability", Took: time.Duration(1+i%3) * time.Millisecond},
			},
			Lines: []string{fmt.Sprintf("queue_id=4Q%04dX action=%s score=%.1f", i+1, act, score)},
		}
		if act == "reject" {
			r.Symbols = append(r.Symbols, checks.Symbol{Name: "BAYES_SPAM", Score: 5.5, Detail: "0.99"})
		}
		recs = append(recs, r)
	}
	recs[49].Message = []byte("From: news@lists.example.org\r\nSubject: Message number 50\r\n\r\nBuy now.\r\n")
	recs[49].Subject = "Cheap watches <b>now</b>"
	return recs
}
