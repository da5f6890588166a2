package spf

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"

	"chainmail/checks/dns"
)

// recordResolver is the resolver the SPF library gets. It passes every
// lookup through, except that an SPF record that does not parse is turned
// into a *SyntaxError: the library then returns permerror for it, whether
// the record is the one checked or one reached by include: or redirect=,
// and wherever the error is in the record. The library alone stops at the
// first matching mechanism and so misses errors after it, which RFC 7208
// §4.6 forbids ("If there are any syntax errors anywhere in the record,
// check_host() returns immediately with the result "permerror", without
// further interpretation").
//
// DNS errors pass through untouched: the library reads them with type
// assertions on *net.DNSError, so they must not be wrapped.
type recordResolver struct {
	dns.Resolver
	// ip is the client address (4-byte form for IPv4), which decides the
	// address family LookupIPAddr asks for.
	ip net.IP
	// override serves, for a domain (lower case, no trailing dot),
	// this record text in place of the SPF record it publishes. The
	// explanation search uses it to take redirect= out of one record.
	override map[string]string
}

func (r recordResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := r.Resolver.LookupTXT(ctx, name)
	if err != nil {
		return nil, err
	}
	at, n := -1, 0
	for i, t := range txts {
		if isSPFRecord(t) {
			at, n = i, n+1
		}
	}
	if n != 1 {
		// None: the library says "none". Several: it says permerror
		// (§4.5) without reading them.
		return txts, nil
	}
	if o, ok := r.override[domainKey(name)]; ok {
		txts = slices.Clone(txts)
		txts[at] = o
	}
	if _, err := parseRecord(txts[at]); err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			se.Domain = strings.TrimSuffix(name, ".")
		}
		return nil, err
	}
	return txts, nil
}

// spfRecord returns the one SPF record of domain, parsed.
func (r recordResolver) spfRecord(ctx context.Context, domain string) (*record, error) {
	txts, err := r.LookupTXT(ctx, domain)
	if err != nil {
		return nil, err
	}
	var rec *record
	for _, t := range txts {
		if isSPFRecord(t) {
			if rec != nil {
				return nil, errors.New("spf: several SPF records")
			}
			if rec, err = parseRecord(t); err != nil {
				return nil, err
			}
		}
	}
	if rec == nil {
		return nil, errors.New("spf: no SPF record")
	}
	return rec, nil
}

func domainKey(d string) string { return strings.ToLower(strings.TrimSuffix(d, ".")) }

// LookupIPAddr serves the a, mx, exists and ptr mechanisms. Asking for A
// and AAAA together and keeping whatever came back (what *net.Resolver
// does) could turn a failed query into a "fail": an IPv6 client whose
// AAAA query timed out would be matched against the A records alone. So
// when the resolver can ask per family (dns.IPLookuper):
//
//   - an IPv4 client needs only the A records (§5.3, §5.4: "the A
//     records" for an IPv4 <ip>), so only A is asked for;
//   - an IPv6 client needs AAAA for a and mx and A for exists (§5.7), so
//     both are asked for and a temporary failure of either is returned.
func (r recordResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	l, ok := r.Resolver.(dns.IPLookuper)
	if !ok {
		return r.Resolver.LookupIPAddr(ctx, host)
	}
	if r.ip.To4() != nil {
		ips, err := l.LookupIP(ctx, "ip4", host)
		return ipAddrs(ips), err
	}
	var (
		wg    sync.WaitGroup
		v6    []net.IP
		v6err error
	)
	wg.Go(func() { v6, v6err = l.LookupIP(ctx, "ip6", host) })
	v4, v4err := l.LookupIP(ctx, "ip4", host)
	wg.Wait()
	for _, err := range []error{v4err, v6err} {
		if err != nil && !dns.IsNotFound(err) {
			return nil, err
		}
	}
	if addrs := ipAddrs(append(v4, v6...)); len(addrs) > 0 {
		return addrs, nil
	}
	if v4err != nil {
		return nil, v4err
	}
	return nil, v6err
}

func ipAddrs(ips []net.IP) []net.IPAddr {
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: ip}
	}
	return out
}
