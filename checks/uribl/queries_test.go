package uribl

import (
	"context"
	"net"
	"testing"

	"chainmail/checks/dnsbl"
)

// addrResolver gives every name the address 192.0.2.1, unless the
// context has ended.
type addrResolver struct{}

func (addrResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if ctx.Err() != nil {
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true, IsTemporary: true}
	}
	return []net.IPAddr{{IP: net.ParseIP("192.0.2.1")}}, nil
}
func (addrResolver) LookupTXT(context.Context, string) ([]string, error)  { return nil, nil }
func (addrResolver) LookupMX(context.Context, string) ([]*net.MX, error)  { return nil, nil }
func (addrResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, nil }
func (addrResolver) LookupHost(context.Context, string) ([]string, error) { return nil, nil }

// Two resolved_ips lists with different sources: each is asked about the
// addresses of the domains of its own sources, not only of the first
// list's.
func TestResolvedIPsPerListSources(t *testing.T) {
	cfg := lists(
		ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "a.test"}, Lookup: []string{LookupResolvedIPs}, Sources: []string{"subject"}},
		ListConfig{ListConfig: dnsbl.ListConfig{Name: "B", Zone: "b.test"}, Lookup: []string{LookupResolvedIPs}, Sources: []string{"link"}},
	)
	c, err := New(cfg, addrResolver{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := &Found{Keys: []Key{{Host: host{name: "link.example"}, Value: "link.example", Origins: OriginLink}}}
	qs := c.queries(context.Background(), f)
	if len(qs) != 1 || qs[0].List != 1 || qs[0].Key != "1.2.0.192" {
		t.Errorf("queries %+v, want 1.2.0.192 of list B", qs)
	}
}

// timeout 0 means the default, for resolving URL domains as for the list
// queries (dnsbl): not a deadline that has already passed, which would
// silently leave resolved_ips lists unasked.
func TestResolvedIPsZeroTimeout(t *testing.T) {
	cfg := lists(ListConfig{ListConfig: dnsbl.ListConfig{Name: "A", Zone: "a.test"}, Lookup: []string{LookupResolvedIPs}})
	cfg.Timeout = 0
	c, err := New(cfg, addrResolver{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := &Found{Keys: []Key{{Host: host{name: "link.example"}, Value: "link.example", Origins: OriginLink}}}
	if qs := c.queries(context.Background(), f); len(qs) != 1 {
		t.Errorf("queries %+v, want one", qs)
	}
}
