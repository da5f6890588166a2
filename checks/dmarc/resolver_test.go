package dmarc

import (
	"context"
	"net"
	"strings"
	"sync"
)

// fakeResolver is DNS as data, in the manner of mox's dns mock: TXT answers
// by name and failures by name, so a test reads as its zone. Names are
// matched lower-cased without the trailing dot; a name in neither map does
// not exist (NXDOMAIN).
type fakeResolver struct {
	TXT  map[string][]string
	Fail map[string]error

	mu      sync.Mutex
	queries []string
}

// Failures spelled as data.
var (
	errServfail = &net.DNSError{Err: "server misbehaving", IsTemporary: true}
	errTimeout  = &net.DNSError{Err: "i/o timeout", IsTimeout: true}
)

func norm(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func (r *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.mu.Lock()
	r.queries = append(r.queries, norm(name))
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: name, IsTimeout: true}
	}
	if err, ok := r.Fail[norm(name)]; ok {
		if de, ok := err.(*net.DNSError); ok {
			c := *de
			c.Name = name
			return nil, &c
		}
		return nil, err
	}
	if txt, ok := r.TXT[norm(name)]; ok {
		return txt, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) Queries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...)
}

func (r *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *fakeResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

func (r *fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
