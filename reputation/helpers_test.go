package reputation

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// newStatic serves body at any path and returns the base URL.
func newStatic(t *testing.T, body []byte) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	t.Cleanup(s.Close)
	return s.URL
}

// fakeResolver answers LookupHost from a map; missing names are NXDOMAIN,
// names mapped to "timeout" fail temporarily.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string]string
	asked   []string
}

func (f *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, host)
	a, ok := f.answers[strings.TrimSuffix(host, ".")]
	switch {
	case !ok:
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	case a == "timeout":
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true, IsTemporary: true}
	}
	return []string{a}, nil
}
