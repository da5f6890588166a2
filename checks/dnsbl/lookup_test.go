package dnsbl

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// slowResolver never answers for the zone "slow.test" (until the query's
// context ends) and answers NXDOMAIN at once for any other name, unless the
// query's context has already ended.
type slowResolver struct{}

func (slowResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if strings.HasSuffix(host, ".slow.test") {
		<-ctx.Done()
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true, IsTemporary: true}
	}
	if ctx.Err() != nil {
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true, IsTemporary: true}
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
func (slowResolver) LookupTXT(context.Context, string) ([]string, error)  { return nil, nil }
func (slowResolver) LookupMX(context.Context, string) ([]*net.MX, error)  { return nil, nil }
func (slowResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, nil }
func (slowResolver) LookupHost(context.Context, string) ([]string, error) { return nil, nil }

// A list whose queries waited for a worker until its deadline passed was
// never asked: the wait must not count against its health, or a slow list
// gets a healthy one suspended.
func TestQueuedQueriesNotHeldAgainstList(t *testing.T) {
	lists := []ListConfig{
		{Name: "slow", Zone: "slow.test", Timeout: 50 * time.Millisecond},
		{Name: "fast", Zone: "fast.test", Timeout: 50 * time.Millisecond},
	}
	s, err := NewSet(lists, []bool{true, true}, "RBL_", slowResolver{},
		HealthConfig{Failures: 7, Window: 10}, Options{Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	qs := []Query{{List: 0, Key: "1.2.0.192", Value: "192.0.2.1"}}
	for i := range 10 {
		v := "192.0.2." + strconv.Itoa(10+i)
		qs = append(qs, Query{List: 1, Key: "x" + strconv.Itoa(i), Value: v})
	}
	s.Lookup(context.Background(), qs)
	if h := s.Health()[1]; h.Failures != 0 || h.Suspended {
		t.Errorf("fast list held responsible for queries it never got: %+v", h)
	}
}

// Every 127.255.255.x answer says the query was not served (the failure
// policy), not only the three codes Spamhaus documents, even on a list with
// no codes, where any other 127/8 answer is a listing.
func TestErrorRange(t *testing.T) {
	l, err := compile(ListConfig{Name: "l", Zone: "l.test"}, true, "RBL_", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.255.255.250", "127.255.255.253", "127.255.255.0"} {
		if hits, fail := l.classify([]netip.Addr{netip.MustParseAddr(a)}); fail == "" || len(hits) > 0 {
			t.Errorf("%s: hits %v, fail %q; want a failure", a, hits, fail)
		}
	}
	if hits, fail := l.classify([]netip.Addr{netip.MustParseAddr("127.0.0.2")}); fail != "" || len(hits) != 1 {
		t.Errorf("127.0.0.2: hits %v, fail %q; want a listing", hits, fail)
	}
}
