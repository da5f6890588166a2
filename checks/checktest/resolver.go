package checktest

import (
	"context"
	"net"
	"strings"
	"sync"
)

// Resolver is DNS as data for unit tests: TXT answers by name and
// failures by name, so a test reads as its zone. Names are matched
// lower-cased without the trailing dot; a name in neither map does not
// exist (NXDOMAIN). Only TXT has data; every other lookup is NXDOMAIN.
// End-to-end tests use checks/dns/dnstest instead.
type Resolver struct {
	TXT  map[string][]string
	Fail map[string]error

	mu      sync.Mutex
	queries []string
}

// Failures spelled as data, for Resolver.Fail.
var (
	ErrNXDOMAIN = &net.DNSError{Err: "no such host", IsNotFound: true}
	ErrServfail = &net.DNSError{Err: "server misbehaving", IsTemporary: true}
	ErrTimeout  = &net.DNSError{Err: "i/o timeout", IsTimeout: true}
)

func norm(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// LookupTXT implements dns.Resolver.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
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

// Queries returns the names asked so far, normalised, in order.
func (r *Resolver) Queries() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...)
}

// LookupIPAddr implements dns.Resolver: always NXDOMAIN.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// LookupMX implements dns.Resolver: always NXDOMAIN.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// LookupAddr implements dns.Resolver: always NXDOMAIN.
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

// LookupHost implements dns.Resolver: always NXDOMAIN.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
