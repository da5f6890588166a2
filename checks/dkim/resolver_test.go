package dkim

import (
	"strings"

	"chainmail/checks/checktest"
)

// fakeResolver is DNS as data (checktest.Resolver).
type fakeResolver = checktest.Resolver

// Failures spelled as data.
var (
	errServfail = checktest.ErrServfail
	errTimeout  = checktest.ErrTimeout
)
var errNXDOMAIN = checktest.ErrNXDOMAIN

func norm(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }
