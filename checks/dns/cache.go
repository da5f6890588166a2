package dns

import (
	"container/list"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// Cache bounds. RFC 2308 §5 recommends one to three hours as the upper
// bound for negative answers; positive answers are held at most a day,
// like most recursive resolvers do.
const (
	maxPositiveTTL = 24 * time.Hour
	maxNegativeTTL = 3 * time.Hour
)

// answerKind says what an answer (cached or fresh) means.
type answerKind int

const (
	kindRecords  answerKind = iota // records of the asked type
	kindNXDomain                   // RCODE 3
	kindNoData                     // NOERROR, no records of the type
)

type cacheKey struct {
	name  string // canonical
	qtype uint16
}

// answer is the result of one successful exchange: records or a negative
// answer, with how long it may be kept.
type answer struct {
	kind    answerKind
	rrs     []mdns.RR // read-only once built
	server  string
	ttl     time.Duration
	expires time.Time // set when cached
}

// cache is a size-bounded LRU of answers that expire with their TTL.
// Entries past their TTL are dropped when met; the least recently used
// entry goes when the cache is full.
type cache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front = most recently used; values are *entry
	items map[cacheKey]*list.Element
}

type entry struct {
	key cacheKey
	ans *answer
}

func newCache(max int) *cache {
	return &cache{max: max, ll: list.New(), items: make(map[cacheKey]*list.Element)}
}

func (c *cache) get(k cacheKey, now time.Time) (*answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.ans.expires) {
		c.ll.Remove(el)
		delete(c.items, k)
		return nil, false
	}
	c.ll.MoveToFront(el)
	return e.ans, true
}

func (c *cache) put(k cacheKey, a *answer, now time.Time) {
	if a.ttl <= 0 {
		return
	}
	stored := *a
	stored.expires = now.Add(a.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*entry).ans = &stored
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&entry{key: k, ans: &stored})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*entry).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
