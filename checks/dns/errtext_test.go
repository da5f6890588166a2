package dns_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"chainmail/checks/dns"
)

// ErrText is the one wording of lookup errors the dnsbl and helo checks
// put in their reasons.
func TestErrText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "i/o timeout", IsTimeout: true}, "timeout"},
		{fmt.Errorf("lookup: %w", context.DeadlineExceeded), "timeout"},
		{&net.DNSError{Err: "server failure", UnwrapErr: dns.ErrServFail, IsTemporary: true}, "SERVFAIL"},
		{&net.DNSError{Err: "refused", UnwrapErr: dns.ErrRefused, IsTemporary: true}, "REFUSED"},
		{&net.DNSError{Err: "no such host", IsNotFound: true}, "no such host"},
		{errors.New("boom"), "boom"},
	} {
		if got := dns.ErrText(tc.err); got != tc.want {
			t.Errorf("ErrText(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
