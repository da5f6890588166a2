package dmarc

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Policy is a requested disposition (RFC 7489 §6.3 p= and sp=).
type Policy string

// Policies.
const (
	PolicyNone       Policy = "none"
	PolicyQuarantine Policy = "quarantine"
	PolicyReject     Policy = "reject"
)

// lower returns the next lower policy, as a message sampled out by pct
// gets (RFC 7489 §6.6.4): reject → quarantine, quarantine → none.
func (p Policy) lower() Policy {
	switch p {
	case PolicyReject:
		return PolicyQuarantine
	case PolicyQuarantine:
		return PolicyNone
	}
	return p
}

// Alignment is an identifier alignment mode (RFC 7489 §3.1, adkim= and
// aspf=).
type Alignment string

// Alignment modes.
const (
	Relaxed Alignment = "r"
	Strict  Alignment = "s"
)

// Record is a DMARC policy record (RFC 7489 §6.3).
type Record struct {
	Policy Policy // p
	// SubdomainPolicy is sp, "" when absent (p then applies to
	// subdomains too).
	SubdomainPolicy Policy
	ADKIM, ASPF     Alignment // default relaxed
	Percent         int       // pct, default 100
	RUA, RUF        []string  // report URIs as written (with any !size)
	FailureOptions  []string  // fo
	ReportFormat    []string  // rf
	ReportInterval  uint32    // ri, seconds, default 86400
	// FallbackNone is set when p= was missing or invalid, or sp= invalid,
	// and a syntactically valid rua= made the record count as "v=DMARC1;
	// p=none" (RFC 7489 §6.6.3 step 6.1).
	FallbackNone bool
	// Warnings lists malformed reporting tags (rua, ruf, fo, rf, ri) and
	// tag-specs that are not tag=value. They do not affect the policy:
	// chainmail sends no reports, and a broken report address must not
	// switch a domain's reject policy off.
	Warnings []string
}

// ErrNotDMARC is returned for a TXT record that does not start with
// "v=DMARC1": such records are discarded, not errors (RFC 7489 §6.6.3
// steps 2 and 4).
var ErrNotDMARC = errors.New("dmarc: not a DMARC record")

// ErrNoPolicy is wrapped by the SyntaxError for a record without p= and
// without a valid rua= to fall back on.
var ErrNoPolicy = errors.New("dmarc: record has no p= tag")

// SyntaxError is a DMARC record that cannot be used: RFC 7489 §6.6.3 step
// 6.2, "the Mail Receiver applies no DMARC processing to this message".
type SyntaxError struct {
	Tag, Value string
	Err        error
}

func (e *SyntaxError) Error() string {
	if e.Err == ErrNoPolicy {
		return e.Err.Error()
	}
	return fmt.Sprintf("dmarc: bad %s=%q: %v", e.Tag, clip(e.Value, 40), e.Err)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

var (
	errBadValue  = errors.New("invalid value")
	errDuplicate = errors.New("tag appears twice")
)

// ParseRecord parses one DMARC TXT record (the strings of one TXT RR
// joined).
//
//   - The first tag must be v=DMARC1, exactly (§6.3: "The value of this tag
//     MUST match precisely; if it does not or it is absent, the entire
//     retrieved record MUST be ignored. It MUST be the first tag in the
//     list."): otherwise ErrNotDMARC.
//   - Tag names are case-insensitive (RFC 5234 quoted strings), keyword
//     values too; unknown tags are ignored (§6.3, "unknown tags MUST be
//     ignored"); a known tag given twice is an error (RFC 6376 §3.2 tag-list
//     rule, which §6.4 adopts).
//   - p= missing or invalid, or sp= invalid: p=none when rua= holds a
//     syntactically valid URI (§6.6.3 step 6.1), else a SyntaxError.
//   - adkim=, aspf=, pct= invalid: a SyntaxError — they decide the
//     outcome, and guessing them would apply a policy the owner did not
//     publish.
//   - rua=, ruf=, fo=, rf=, ri= invalid: Record.Warnings only.
func ParseRecord(txt string) (*Record, error) {
	specs := strings.Split(txt, ";")
	first := true
	rec := &Record{ADKIM: Relaxed, ASPF: Relaxed, Percent: 100, ReportInterval: 86400}
	seen := map[string]bool{}
	var pErr, spErr *SyntaxError
	for _, spec := range specs {
		if strings.TrimSpace(spec) == "" {
			if first {
				return nil, ErrNotDMARC
			}
			continue
		}
		name, value, ok := strings.Cut(spec, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if first {
			if !ok || name != "v" || value != "DMARC1" {
				return nil, ErrNotDMARC
			}
			first = false
			continue
		}
		if !known[name] {
			if !ok {
				rec.Warnings = append(rec.Warnings, fmt.Sprintf("tag-spec %q is not tag=value", clip(strings.TrimSpace(spec), 20)))
			}
			continue // §6.3: unknown tags are ignored
		}
		if seen[name] {
			return nil, &SyntaxError{Tag: name, Value: value, Err: errDuplicate}
		}
		seen[name] = true
		if !ok {
			value = ""
		}
		switch name {
		case "p":
			if p, ok := parsePolicy(value); ok {
				rec.Policy = p
			} else {
				pErr = &SyntaxError{Tag: "p", Value: value, Err: errBadValue}
			}
		case "sp":
			if p, ok := parsePolicy(value); ok {
				rec.SubdomainPolicy = p
			} else {
				spErr = &SyntaxError{Tag: "sp", Value: value, Err: errBadValue}
			}
		case "adkim", "aspf":
			a := Alignment(strings.ToLower(value))
			if a != Relaxed && a != Strict {
				return nil, &SyntaxError{Tag: name, Value: value, Err: errBadValue}
			}
			if name == "adkim" {
				rec.ADKIM = a
			} else {
				rec.ASPF = a
			}
		case "pct":
			n, err := strconv.Atoi(value)
			if err != nil || !allDigits(value) || n < 0 || n > 100 {
				return nil, &SyntaxError{Tag: "pct", Value: value, Err: errBadValue}
			}
			rec.Percent = n
		case "rua", "ruf":
			uris, bad := parseURIs(value)
			if bad != "" {
				rec.Warnings = append(rec.Warnings, fmt.Sprintf("%s: %q is not a DMARC URI", name, clip(bad, 40)))
			}
			if name == "rua" {
				rec.RUA = uris
			} else {
				rec.RUF = uris
			}
		case "fo":
			for _, o := range strings.Split(value, ":") {
				o = strings.ToLower(strings.TrimSpace(o))
				if o != "0" && o != "1" && o != "d" && o != "s" {
					rec.Warnings = append(rec.Warnings, fmt.Sprintf("fo: unknown option %q", clip(o, 20)))
					continue
				}
				rec.FailureOptions = append(rec.FailureOptions, o)
			}
		case "rf":
			for _, f := range strings.Split(value, ":") {
				f = strings.ToLower(strings.TrimSpace(f))
				if f != "afrf" { // the one format IANA registers (§6.3, §11.5)
					rec.Warnings = append(rec.Warnings, fmt.Sprintf("rf: unknown format %q", clip(f, 20)))
					continue
				}
				rec.ReportFormat = append(rec.ReportFormat, f)
			}
		case "ri":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil || !allDigits(value) {
				rec.Warnings = append(rec.Warnings, fmt.Sprintf("ri: %q is not a number of seconds", clip(value, 20)))
				continue
			}
			rec.ReportInterval = uint32(n)
		}
	}
	if first {
		return nil, ErrNotDMARC
	}
	if !seen["p"] {
		pErr = &SyntaxError{Tag: "p", Err: ErrNoPolicy}
	}
	if pErr != nil || spErr != nil {
		if len(rec.RUA) > 0 {
			// §6.6.3 step 6.1: act as if "v=DMARC1; p=none" was retrieved.
			return &Record{Policy: PolicyNone, ADKIM: Relaxed, ASPF: Relaxed, Percent: 100, ReportInterval: 86400,
				RUA: rec.RUA, FallbackNone: true, Warnings: rec.Warnings}, nil
		}
		if pErr != nil {
			return nil, pErr
		}
		return nil, spErr
	}
	return rec, nil
}

var known = map[string]bool{"p": true, "sp": true, "adkim": true, "aspf": true, "pct": true,
	"rua": true, "ruf": true, "fo": true, "rf": true, "ri": true}

func parsePolicy(v string) (Policy, bool) {
	switch p := Policy(strings.ToLower(v)); p {
	case PolicyNone, PolicyQuarantine, PolicyReject:
		return p, true
	}
	return "", false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseURIs reads a comma-separated list of DMARC URIs (§6.4:
// dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]). It returns the
// valid ones and the first invalid one.
func parseURIs(v string) (valid []string, bad string) {
	for _, u := range strings.Split(v, ",") {
		u = strings.TrimSpace(u)
		if validURI(u) {
			valid = append(valid, u)
		} else if bad == "" {
			bad = u
		}
	}
	return valid, bad
}

func validURI(u string) bool {
	if i := strings.LastIndexByte(u, '!'); i >= 0 {
		size := strings.TrimRight(strings.ToLower(u[i+1:]), "kmgt")
		if len(u)-i-1-len(size) > 1 || !allDigits(size) {
			return false
		}
		u = u[:i]
	}
	if u == "" || strings.ContainsAny(u, " \t") {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && p.Scheme != "" && (p.Opaque != "" || p.Host != "" || p.Path != "")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
