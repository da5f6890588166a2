package dns

import (
	"context"
	"errors"
	"net"
)

// Sentinel errors carried inside the *net.DNSError values the Client
// returns (as DNSError.UnwrapErr), so callers can tell the cases apart
// with errors.Is while code written for *net.Resolver (the SPF library,
// go-msgauth) keeps reading the IsNotFound / IsTemporary / IsTimeout flags.
var (
	// ErrNXDomain: the name does not exist (RCODE 3, RFC 1035 §4.1.1).
	ErrNXDomain = errors.New("dns: no such host")
	// ErrNoData: the name exists but has no records of the type asked
	// for (NOERROR with an empty answer, RFC 2308 §2.2).
	ErrNoData = errors.New("dns: no such record")
	// ErrBadName: the name cannot be put in a query (empty or over-long
	// label, name over 255 octets). Like *net.Resolver, the Client reports
	// it as not found: RFC 7208 §4.3 treats a malformed domain as "none".
	ErrBadName = errors.New("dns: invalid domain name")
	// ErrServFail: the server answered SERVFAIL (RCODE 2).
	ErrServFail = errors.New("dns: server failure")
	// ErrRefused: the server answered REFUSED (RCODE 5).
	ErrRefused = errors.New("dns: query refused")
	// ErrServer: the server answered with another error RCODE (FORMERR,
	// NOTIMP, …) or with a reply that does not match the query.
	ErrServer = errors.New("dns: server misbehaving")
	// ErrTimeout: no answer within the configured time, or the caller's
	// context ended first.
	ErrTimeout = errors.New("dns: i/o timeout")
	// ErrNetwork: the query could not be sent or the reply not read.
	ErrNetwork = errors.New("dns: network error")
	// ErrCNAMELoop: the answer's CNAME chain loops or is too long. This
	// is a publishing error of the domain, so it is permanent.
	ErrCNAMELoop = errors.New("dns: CNAME loop")
)

// errClass names an error class for metrics; it also decides the flags.
type errClass string

const (
	classNXDomain errClass = "nxdomain"
	classNoData   errClass = "nodata"
	classBadName  errClass = "badname"
	classServFail errClass = "servfail"
	classRefused  errClass = "refused"
	classServer   errClass = "server"
	classTimeout  errClass = "timeout"
	classNetwork  errClass = "network"
	classLoop     errClass = "loop"
	classCanceled errClass = "canceled"
)

var classErr = map[errClass]error{
	classNXDomain: ErrNXDomain,
	classNoData:   ErrNoData,
	classBadName:  ErrBadName,
	classServFail: ErrServFail,
	classRefused:  ErrRefused,
	classServer:   ErrServer,
	classTimeout:  ErrTimeout,
	classNetwork:  ErrNetwork,
	classLoop:     ErrCNAMELoop,
	classCanceled: context.Canceled,
}

// queryError is the failure of one exchange, before it is dressed as a
// *net.DNSError for the caller who asked for a particular name.
type queryError struct {
	class  errClass
	server string
	detail string // extra words for the message, may be empty
}

func (e *queryError) Error() string {
	s := classErr[e.class].Error()
	if e.detail != "" {
		s += " (" + e.detail + ")"
	}
	return s
}

// dnsError builds the *net.DNSError for a failed lookup of name. The flags
// follow RFC 7208 §4.4 and §5: NXDOMAIN and NODATA are "not found" (SPF
// none / no match), every other RCODE, a timeout and a network failure are
// temporary (SPF temperror, DKIM tempfail); a CNAME loop is permanent.
func dnsError(class errClass, name, server, detail string) *net.DNSError {
	msg := classErr[class].Error()
	if len(msg) > 5 && msg[:5] == "dns: " {
		msg = msg[5:]
	}
	if detail != "" {
		msg += " (" + detail + ")"
	}
	e := &net.DNSError{
		UnwrapErr: classErr[class],
		Err:       msg,
		Name:      name,
		Server:    server,
	}
	switch class {
	case classNXDomain, classNoData, classBadName:
		e.IsNotFound = true
	case classTimeout:
		e.IsTimeout = true
		e.IsTemporary = true
	case classServFail, classRefused, classServer, classNetwork, classCanceled:
		e.IsTemporary = true
	}
	return e
}

// IsNotFound reports whether err says the name or the record does not
// exist (NXDOMAIN or NODATA, or a name that cannot exist).
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// IsTemporary reports whether err is worth retrying later: a timeout,
// SERVFAIL, REFUSED or another server or network failure, or a context
// that ended before the answer came.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsTemporary || de.IsTimeout
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// IsTimeout reports whether err is a timeout (no answer in time).
func IsTimeout(err error) bool {
	if err == nil {
		return false
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.IsTimeout
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ErrText is a short description of a lookup error for log lines and
// symbol reasons: timeout, SERVFAIL, REFUSED, else the resolver's words.
func ErrText(err error) string {
	switch {
	case IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrServFail):
		return "SERVFAIL"
	case errors.Is(err, ErrRefused):
		return "REFUSED"
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.Err != "" {
		return de.Err
	}
	return err.Error()
}
