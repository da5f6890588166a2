package bolt

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"strconv"
)

// kind is what a key holds.
type kind byte

const (
	kindBytes  kind = 1 // Get/Set/SetNX; IncrBy keeps numbers as text, as Redis does
	kindWindow kind = 2 // WindowAdd/WindowSum
	kindSet    kind = 3 // SetAdd/SetHas/SetLen
	kindList   kind = 4 // ListPush/ListRange: the list's bounds; the items are apart (see listItem)
)

func (k kind) String() string {
	switch k {
	case kindBytes:
		return "value"
	case kindWindow:
		return "window"
	case kindSet:
		return "set"
	case kindList:
		return "list"
	}
	return "kind " + strconv.Itoa(int(k))
}

// event is one weight in a sliding window.
type event struct {
	t int64 // unix nanoseconds
	w float64
}

// record is the value of one key. On disk it is
//
//	kind (1 byte) | expiry, unix ns, 0 = never (8 bytes, big-endian) | payload
//
// where the payload is the bytes themselves, or a uvarint count followed
// by (time 8 bytes, weight 8 bytes) events in time order, or by
// (uvarint length, bytes) set members, or for a list the sequence
// numbers of its oldest item and of the next one pushed (8 bytes each,
// big-endian; the items themselves are in bucket "list", see listItem).
type record struct {
	kind kind
	exp  int64
	val  []byte
	win  []event
	set  map[string]struct{}
	// tail and head are a list's bounds: its items are tail..head-1, the
	// newest at head-1.
	tail, head uint64
}

const headerLen = 9

var errCorrupt = errors.New("store: bolt: corrupt record")

func (r *record) expired(now int64) bool { return r.exp != 0 && now >= r.exp }

// clone returns a copy that can be changed without touching r.
func (r *record) clone() *record {
	c := &record{kind: r.kind, exp: r.exp, tail: r.tail, head: r.head}
	switch r.kind {
	case kindBytes:
		c.val = append([]byte(nil), r.val...)
	case kindWindow:
		c.win = append([]event(nil), r.win...)
	case kindSet:
		c.set = make(map[string]struct{}, len(r.set))
		for m := range r.set {
			c.set[m] = struct{}{}
		}
	}
	return c
}

func (r *record) encode() []byte {
	n := headerLen
	switch r.kind {
	case kindBytes:
		n += len(r.val)
	case kindWindow:
		n += binary.MaxVarintLen64 + 16*len(r.win)
	case kindSet:
		n += binary.MaxVarintLen64
		for m := range r.set {
			n += binary.MaxVarintLen64 + len(m)
		}
	case kindList:
		n += 16
	}
	b := make([]byte, headerLen, n)
	b[0] = byte(r.kind)
	binary.BigEndian.PutUint64(b[1:], uint64(r.exp))
	switch r.kind {
	case kindBytes:
		b = append(b, r.val...)
	case kindWindow:
		b = binary.AppendUvarint(b, uint64(len(r.win)))
		for _, e := range r.win {
			b = binary.BigEndian.AppendUint64(b, uint64(e.t))
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.w))
		}
	case kindSet:
		members := make([]string, 0, len(r.set))
		for m := range r.set {
			members = append(members, m)
		}
		sort.Strings(members) // stable bytes on disk
		b = binary.AppendUvarint(b, uint64(len(members)))
		for _, m := range members {
			b = binary.AppendUvarint(b, uint64(len(m)))
			b = append(b, m...)
		}
	case kindList:
		b = binary.BigEndian.AppendUint64(b, r.tail)
		b = binary.BigEndian.AppendUint64(b, r.head)
	}
	return b
}

// expiryOf reads the expiry from an encoded record.
func expiryOf(b []byte) int64 {
	if len(b) < headerLen {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b[1:headerLen]))
}

// decode parses an encoded record, copying everything out of b (bbolt's
// memory is only valid inside its transaction).
func decode(b []byte) (*record, error) {
	if len(b) < headerLen {
		return nil, errCorrupt
	}
	r := &record{kind: kind(b[0]), exp: int64(binary.BigEndian.Uint64(b[1:headerLen]))}
	p := b[headerLen:]
	switch r.kind {
	case kindBytes:
		r.val = append([]byte{}, p...)
	case kindWindow:
		n, k := binary.Uvarint(p)
		if k <= 0 || (len(p)-k)%16 != 0 || uint64(len(p)-k)/16 != n { // n*16 could overflow
			return nil, errCorrupt
		}
		p = p[k:]
		r.win = make([]event, n)
		for i := range r.win {
			r.win[i] = event{t: int64(binary.BigEndian.Uint64(p)), w: math.Float64frombits(binary.BigEndian.Uint64(p[8:]))}
			p = p[16:]
		}
	case kindSet:
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)) {
			return nil, errCorrupt
		}
		p = p[k:]
		r.set = make(map[string]struct{}, n)
		for i := uint64(0); i < n; i++ {
			l, k := binary.Uvarint(p)
			if k <= 0 || l > uint64(len(p)-k) {
				return nil, errCorrupt
			}
			r.set[string(p[k:k+int(l)])] = struct{}{}
			p = p[k+int(l):]
		}
		if len(p) != 0 {
			return nil, errCorrupt
		}
	case kindList:
		if len(p) != 16 {
			return nil, errCorrupt
		}
		r.tail, r.head = binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
		if r.tail > r.head {
			return nil, errCorrupt
		}
	default:
		return nil, errCorrupt
	}
	return r, nil
}

// trim drops the events at or before cutoff (they left the window) and
// returns the sum of the rest.
func (r *record) trim(cutoff int64) float64 {
	i := sort.Search(len(r.win), func(i int) bool { return r.win[i].t > cutoff })
	if i > 0 {
		r.win = append(r.win[:0], r.win[i:]...)
	}
	sum := 0.0
	for _, e := range r.win {
		sum += e.w
	}
	return sum
}

// sumAfter is trim without changing r.
func (r *record) sumAfter(cutoff int64) float64 {
	sum := 0.0
	for i := len(r.win) - 1; i >= 0 && r.win[i].t > cutoff; i-- {
		sum += r.win[i].w
	}
	return sum
}

// Granules is how many slices a window is cut into for merging events
// (see store.Store's WindowAdd).
const Granules = 1024

// granule is the merge granularity of a window, at least 1ns.
func granule(window int64) int64 {
	if g := window / Granules; g > 0 {
		return g
	}
	return 1
}

// insert adds an event, keeping time order (a clock that went back puts
// it before later ones). An event in the same granule as the newest one
// is merged into it, with the later of the two times.
func (r *record) insert(e event, g int64) {
	if n := len(r.win); n > 0 {
		last := &r.win[n-1]
		if floorDiv(last.t, g) == floorDiv(e.t, g) {
			last.w += e.w
			if e.t > last.t {
				last.t = e.t
			}
			return
		}
	}
	i := len(r.win)
	for i > 0 && r.win[i-1].t > e.t {
		i--
	}
	r.win = append(r.win, event{})
	copy(r.win[i+1:], r.win[i:])
	r.win[i] = e
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// listItem is the key of a list's item in bucket "list": the list's key
// with its length before it (so no key's items run into another's) and
// the item's sequence number after it, big-endian, so that a list's items
// sort oldest first.
func listItem(key string, seq uint64) string {
	b := make([]byte, 0, binary.MaxVarintLen64+len(key)+8)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return string(binary.BigEndian.AppendUint64(b, seq))
}
