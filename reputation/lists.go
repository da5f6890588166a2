package reputation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Resolver is the DNS lookup domain lists need; chainmail's dns.Client
// and *net.Resolver implement it. Errors are *net.DNSError with
// IsNotFound set for NXDOMAIN and NODATA.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// List is a DNS domain list (RFC 5782 §2.2: the domain is listed when
// <domain>.<zone> has an A record).
type List struct {
	// Name is how the list is named in the log ("NRD", "DBL").
	Name string `yaml:"name"`
	Zone string `yaml:"zone"`
	// Kind is "block" (a domain blocklist: the listing is a threat) or
	// "new" (a newly-registered-domain list: the listing is an age).
	Kind string `yaml:"kind"`
	// Threat is the threat category of a block listing ("Malicious" when
	// empty).
	Threat string `yaml:"threat"`
}

// List kinds.
const (
	ListBlock = "block"
	ListNew   = "new"
)

func (l List) validate() error {
	if l.Zone == "" {
		return fmt.Errorf("list %q: no zone", l.Name)
	}
	if l.Kind != ListBlock && l.Kind != ListNew {
		return fmt.Errorf("list %q: kind %q (want block or new)", l.Name, l.Kind)
	}
	return nil
}

// errListRefused: the list answered with its "query refused" codes
// (127.255.255.x; 127.0.1.255 is Spamhaus' "blocked"), which must not
// count as a listing.
var errListRefused = errors.New("list refused the query")

// listed asks one list about domain.
func listed(ctx context.Context, r Resolver, l List, domain string) (bool, error) {
	addrs, err := r.LookupHost(ctx, domain+"."+strings.Trim(l.Zone, "."))
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return false, nil
		}
		return false, err
	}
	for _, a := range addrs {
		ip := net.ParseIP(a).To4()
		if ip == nil || ip[0] != 127 {
			continue
		}
		if (ip[1] == 255 && ip[2] == 255) || (ip[1] == 0 && ip[2] == 1 && ip[3] == 255) {
			return false, errListRefused
		}
		return true, nil
	}
	return false, nil
}
