// Package dnstest starts zone servers (checks/dns/zoneserver) for tests.
package dnstest

import (
	"testing"

	"chainmail/checks/dns/zoneserver"
)

// Start returns a listening server for the zone files; it fails t on any
// error and closes the server when the test ends.
func Start(t testing.TB, zoneFiles ...string) *zoneserver.Server {
	t.Helper()
	s, err := zoneserver.New(zoneFiles...)
	if err != nil {
		t.Fatalf("zoneserver: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("zoneserver: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
