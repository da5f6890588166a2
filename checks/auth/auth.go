// Package auth holds what the sender-authentication checks found, as the
// checks after them take it: the spf check's SPF, the dkim check's DKIM
// with one Signature per DKIM-Signature field. The checks that build on
// them (dmarc, lists, reputation) read these typed values from the prior
// results (SPFOf, DKIMOf, and DMARCOf for the dmarc check's verdict),
// never facts by name: a renamed field is a
// compile error, not a silently lost pass.
//
// The facts policy rules see (spf.domain, dkim.domains_pass, …) are
// derived from these values by the checks and keep their names.
package auth

import "chainmail/checks"

// Names of the checks whose results this package reads.
const (
	SPFCheck   = "spf"
	DKIMCheck  = "dkim"
	DMARCCheck = "dmarc"
)

// Identity is the SPF identity checked (RFC 7208 §2.3, §2.4).
type Identity string

// Identities.
const (
	IdentityMailFrom Identity = "mailfrom"
	IdentityHELO     Identity = "helo"
)

// SPF is the spf check's result.
type SPF struct {
	// Status is the RFC 7208 §2.6 result, or timeout, error, skipped when
	// the check did not finish.
	Status checks.Status
	// Identity is what was checked: the MAIL FROM domain, or the HELO
	// name for a null reverse-path (or when HELO alone was checked).
	Identity Identity
	// Domain is the identity's domain as the check evaluated it; empty
	// when the check did not finish.
	Domain string
}

// StatusPolicy is a DKIM signature refused by local policy (RFC 8601
// §2.7.1): rsa-sha1, a key size out of bounds, an l= tag.
const StatusPolicy checks.Status = "policy"

// Signature is one DKIM-Signature field and what verifying it gave.
type Signature struct {
	// Domain is d= (lower case), Selector s=, Algorithm a=, Identifier i=
	// as written; empty when the field could not be parsed.
	Domain     string
	Selector   string
	Algorithm  string
	Identifier string
	// Status is pass, fail, policy, neutral, temperror or permerror.
	Status checks.Status
	Reason string
	// KeyBits is the RSA key size when the key was fetched.
	KeyBits int
	// UnsignedBytes is how much of the canonicalized body an l= tag
	// leaves unsigned.
	UnsignedBytes int64
}

// DKIM is the dkim check's result.
type DKIM struct {
	// Status is the aggregate (pass when any signature passed, …), or
	// timeout, error, skipped when the check did not finish.
	Status checks.Status
	// Signatures are in header order.
	Signatures []Signature
}

// Domains returns the d= of the signatures whose status is one of
// statuses (every signature's when none is given), each once, in
// header order; never nil.
func (d DKIM) Domains(statuses ...checks.Status) []string {
	out := []string{}
	for _, s := range d.Signatures {
		if s.Domain == "" || !match(s.Status, statuses) {
			continue
		}
		seen := false
		for _, x := range out {
			seen = seen || x == s.Domain
		}
		if !seen {
			out = append(out, s.Domain)
		}
	}
	return out
}

func match(s checks.Status, statuses []checks.Status) bool {
	if len(statuses) == 0 {
		return true
	}
	for _, x := range statuses {
		if s == x {
			return true
		}
	}
	return false
}

// SPFOf returns the spf result among rs; ok is false when there is none.
// A result without a typed value (the check timed out, failed or was
// skipped) gives its status alone.
func SPFOf(rs checks.Results) (s SPF, ok bool) {
	r, ok := rs.Get(SPFCheck)
	if !ok {
		return SPF{}, false
	}
	if v, typed := r.Auth.(SPF); typed {
		s = v
	}
	s.Status = r.Status
	return s, true
}

// DKIMOf returns the dkim result among rs; ok is false when there is
// none. A result without a typed value gives its status alone.
func DKIMOf(rs checks.Results) (d DKIM, ok bool) {
	r, ok := rs.Get(DKIMCheck)
	if !ok {
		return DKIM{}, false
	}
	if v, typed := r.Auth.(DKIM); typed {
		d = v
	}
	d.Status = r.Status
	return d, true
}

// DMARC is the dmarc check's result.
type DMARC struct {
	// Status is the strictest outcome over the author domains, or
	// timeout, error, skipped when the check did not finish.
	Status checks.Status
	// Domains are the author (From) domains evaluated, normalized.
	Domains []string
}

// DMARCOf returns the dmarc result among rs; ok is false when there is
// none. A result without a typed value gives its status alone.
func DMARCOf(rs checks.Results) (d DMARC, ok bool) {
	r, ok := rs.Get(DMARCCheck)
	if !ok {
		return DMARC{}, false
	}
	if v, typed := r.Auth.(DMARC); typed {
		d = v
	}
	d.Status = r.Status
	return d, true
}
