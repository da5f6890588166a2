// Package dns is chainmail's DNS layer: a narrow resolver interface with
// *net.Resolver's method signatures, so that the SPF library, go-msgauth
// and the checks can all take it.
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
