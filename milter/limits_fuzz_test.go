package milter

import (
	"encoding/binary"
	"testing"
)

// FuzzInboundFraming: the read-side framing that picks the read timeout
// counts the same packets however the bytes are split across reads, and
// the same as a direct parse of the stream.
func FuzzInboundFraming(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 'A', 0, 0, 0, 2, 'H', 'x'}, uint16(3))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}, uint16(1))
	f.Add([]byte{0, 0, 0, 100, 'C', 'x'}, uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		var whole, parts inbound
		whole.consumed(data)
		k := int(split) % (len(data) + 1)
		parts.consumed(data[:k])
		parts.consumed(data[k:])
		if whole != parts {
			t.Fatalf("split at %d: %+v, whole %+v", k, parts, whole)
		}
		// Reference: walk the length prefixes.
		var n uint64
		b := data
		for len(b) >= 4 {
			l := binary.BigEndian.Uint32(b)
			if uint64(len(b)-4) < uint64(l) {
				break
			}
			b = b[4+l:]
			n++
		}
		if whole.packets != n {
			t.Fatalf("%d packets, reference %d", whole.packets, n)
		}
		if mid := whole.hdr > 0; mid != (len(b) > 0) {
			t.Fatalf("mid-packet %v with %d bytes of a partial packet left", mid, len(b))
		}
	})
}
