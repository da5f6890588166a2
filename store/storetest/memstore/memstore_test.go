package memstore_test

import (
	"testing"

	"chainmail/store"
	"chainmail/store/storetest"
	"chainmail/store/storetest/memstore"
)

// The in-memory store passes the backends' conformance suite, so tests
// on it mean what they would on bbolt or Redis.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
}
