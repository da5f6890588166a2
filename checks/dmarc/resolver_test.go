package dmarc

import "chainmail/checks/checktest"

// fakeResolver is DNS as data (checktest.Resolver).
type fakeResolver = checktest.Resolver

// Failures spelled as data.
var (
	errServfail = checktest.ErrServfail
	errTimeout  = checktest.ErrTimeout
)
