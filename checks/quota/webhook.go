package quota

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"chainmail/checks/verdictlog"
	"chainmail/store"
)

// payload is the JSON body of one webhook POST: the quota event's fields,
// its time and its log line.
type payload struct {
	Event string `json:"event"`
	Time  string `json:"time"`
	verdictlog.QuotaFacts
	Line string `json:"line"`
}

// notifier posts alerts from a bounded queue. Mail never waits for it: a
// full queue drops the alert (counted, logged). Its one worker goroutine
// starts with the first alert and ends after a quiet minute, so a check
// replaced by a reload leaves nothing running once its queue is empty.
type notifier struct {
	cfg     Webhook
	st      store.Store
	metrics *Metrics
	logf    func(string, ...any)
	client  *http.Client
	queue   chan job
	running atomic.Bool
	idle    time.Duration

	mu       sync.Mutex
	recent   map[string]time.Time // alert key → when it may alert again
	lastDrop time.Time
}

type job struct {
	key  string
	body []byte
}

func newNotifier(cfg Webhook, st store.Store, m *Metrics, logf func(string, ...any)) (*notifier, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("quota: webhook url %q is not an http(s) URL", cfg.URL)
	}
	def := DefaultConfig().Webhook
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = def.Backoff
	}
	if cfg.Queue <= 0 {
		cfg.Queue = def.Queue
	}
	if cfg.Interval < 0 {
		cfg.Interval = 0
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &notifier{
		cfg: cfg, st: st, metrics: m, logf: logf,
		client: &http.Client{Timeout: cfg.Timeout},
		queue:  make(chan job, cfg.Queue),
		idle:   time.Minute,
		recent: map[string]time.Time{},
	}, nil
}

// notify queues one alert; key identifies the quota and tracked party
// for the interval between alerts.
func (n *notifier) notify(key string, p payload) {
	now := time.Now()
	n.mu.Lock()
	if until, ok := n.recent[key]; ok && now.Before(until) {
		n.mu.Unlock()
		n.metrics.webhook("suppressed")
		return
	}
	if n.cfg.Interval > 0 {
		if len(n.recent) > 10000 {
			for k, until := range n.recent {
				if now.After(until) {
					delete(n.recent, k)
				}
			}
		}
		n.recent[key] = now.Add(n.cfg.Interval)
	}
	n.mu.Unlock()
	body, err := json.Marshal(p)
	if err != nil {
		return
	}
	select {
	case n.queue <- job{key: key, body: body}:
	default:
		n.metrics.webhook("dropped")
		n.mu.Lock()
		if now.Sub(n.lastDrop) >= time.Minute {
			n.lastDrop = now
			n.logf("quota: webhook queue full (%d alerts waiting), alerts dropped", cap(n.queue))
		}
		n.mu.Unlock()
	}
	if n.running.CompareAndSwap(false, true) {
		go n.work()
	}
}

func (n *notifier) work() {
	t := time.NewTimer(n.idle)
	defer t.Stop()
	for {
		select {
		case j := <-n.queue:
			n.deliver(j)
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			t.Reset(n.idle)
		case <-t.C:
			n.running.Store(false)
			// An alert queued between the timeout and the Store above
			// found the worker running: take it on.
			if len(n.queue) > 0 && n.running.CompareAndSwap(false, true) {
				t.Reset(n.idle)
				continue
			}
			return
		}
	}
}

// deliver posts one alert, at most once per interval across every MTA
// sharing the store, with retries.
func (n *notifier) deliver(j job) {
	if n.cfg.Interval > 0 && n.st != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		first, err := store.SetNX(ctx, n.st, "quota:alerted:"+j.key, []byte("1"), n.cfg.Interval)
		cancel()
		if err == nil && !first {
			n.metrics.webhook("suppressed")
			return
		}
	}
	backoff := n.cfg.Backoff
	var err error
	for attempt := 0; attempt <= n.cfg.Retries; attempt++ {
		if attempt > 0 {
			time.Sleep(backoff)
			if backoff *= 2; backoff > time.Minute {
				backoff = time.Minute
			}
		}
		var permanent bool
		if permanent, err = n.post(j.body); err == nil {
			n.metrics.webhook("sent")
			return
		} else if permanent {
			break
		}
	}
	n.metrics.webhook("failed")
	n.logf("quota: webhook %s: alert not delivered: %v", redactedURL(n.cfg.URL), err)
}

// post sends one request; permanent is true for answers that retrying
// will not change (4xx other than 408 and 429).
func (n *notifier) post(body []byte) (permanent bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chainmail-quota")
	for k, v := range n.cfg.Headers {
		req.Header.Set(k, string(v))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return false, errors.New(resp.Status)
	}
	return true, errors.New(resp.Status)
}

// redactedURL hides the password of a URL (user:password@host) for logs.
func redactedURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}
