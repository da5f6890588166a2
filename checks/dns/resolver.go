// Package dns is chainmail's DNS layer: a narrow resolver interface with
// *net.Resolver's method signatures, so that the SPF library, go-msgauth
// and the checks can all take it, and Client, the implementation the
// daemon uses.
//
// Client is a caching stub resolver on miekg/dns. A question is answered
// from a size-bounded LRU cache that keeps positive answers for their TTL
// and NXDOMAIN/NODATA for the SOA's negative TTL (RFC 2308 §5); else
// identical questions in flight share one query (singleflight); else the
// configured servers are asked in turn over UDP, each try bounded by a
// timeout, with a TCP retry when the answer comes back truncated.
//
// Errors are *net.DNSError, never wrapped, with the flags set the way the
// SPF library and go-msgauth read them: IsNotFound for NXDOMAIN and NODATA
// (SPF "none" or no match, RFC 7208 §4.3, §5), IsTemporary for SERVFAIL,
// REFUSED, any other error RCODE and network failures, IsTimeout (and
// IsTemporary) for timeouts (SPF temperror, DKIM tempfail, RFC 7208 §4.4).
// The sentinels of errors.go tell the cases apart with errors.Is.
package dns

import (
	"context"
	"net"
)

// Resolver is the subset of *net.Resolver the checks use. *net.Resolver
// implements it.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// IPLookuper is implemented by resolvers that can ask for one address
// family at a time, as *net.Resolver and *Client do. Callers that care
// which family failed (SPF: an IPv4 client needs only the A records, and
// a failed A query must give temperror, RFC 7208 §5.3) use it when the
// Resolver they were given has it.
type IPLookuper interface {
	// LookupIP looks up host for network "ip" (A and AAAA), "ip4" (A)
	// or "ip6" (AAAA).
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
}

var _ IPLookuper = (*net.Resolver)(nil)
