package checks

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// headerReader is a check that reads the raw header block, as the
// attachment, gtube, uribl and antivirus checks do.
type headerReader struct {
	name string
	mu   *sync.Mutex
	got  map[string][]byte
}

func (h headerReader) Name() string { return h.name }

func (h headerReader) Check(_ context.Context, m *Message, _ Results) Result {
	raw := m.RawHeader()
	h.mu.Lock()
	h.got[h.name] = raw
	h.mu.Unlock()
	return Result{Status: StatusNone}
}

// TestRawHeaderOncePerMessage: the checks of one chain run, in parallel,
// share one header block built once for the message; a header changed
// afterwards is never served stale.
func TestRawHeaderOncePerMessage(t *testing.T) {
	m := &Message{Header: []HeaderField{{Name: "From", Value: "a@example.com"}, {Name: "Subject", Value: "hi\n there"}}}
	want := "From: a@example.com\r\nSubject: hi\r\n there\r\n\r\n"
	var mu sync.Mutex
	got := map[string][]byte{}
	var c Chain
	for i := range 6 {
		c.Steps = append(c.Steps, Step{Check: headerReader{name: fmt.Sprintf("c%d", i), mu: &mu, got: got}})
	}
	c.Run(context.Background(), m)
	if len(got) != 6 {
		t.Fatalf("%d checks ran", len(got))
	}
	first := got["c0"]
	for name, raw := range got {
		if string(raw) != want {
			t.Errorf("%s: %q, want %q", name, raw, want)
		}
		if &raw[0] != &first[0] {
			t.Errorf("%s built its own header block", name)
		}
	}
	if n := testing.AllocsPerRun(10, func() { m.RawHeader() }); n != 0 {
		t.Errorf("RawHeader allocates %.0f times after the chain built it", n)
	}

	m.Header = append(m.Header, HeaderField{Name: "X-Added", Value: "1"})
	if got := string(m.RawHeader()); got != "From: a@example.com\r\nSubject: hi\r\n there\r\nX-Added: 1\r\n\r\n" {
		t.Errorf("after a header was added: %q", got)
	}
}
