package reputation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openrdap/rdap"
	"github.com/openrdap/rdap/bootstrap"
)

// Domain age comes from RDAP (RFC 7480–7484, RFC 9083): the registry's
// server for the domain's TLD, found through the IANA bootstrap registry
// (RFC 9224), answers GET <base>/domain/<name> with a JSON domain object
// whose events include "registration" (RFC 9083 §4.5).
//
// The client is github.com/openrdap/rdap: it parses the bootstrap
// registry (longest-match of labels), builds the request URLs with the
// escaping RFC 7482 §3 asks for, and decodes RDAP JSON into typed
// objects. Three of its habits are handled here: Client.Do fills unset
// fields on first use and a Request's URL() writes to the server URL it
// was given (so every request gets its own copy and the client is
// complete before it is shared), and it reads whole bodies (so the
// transport caps them).

// RDAP errors; every failure wraps one of them, so callers can use
// errors.Is and log the wrapped detail.
var (
	// ErrRDAPNotFound: the registry says the domain does not exist (404).
	ErrRDAPNotFound = errors.New("rdap: not found")
	// ErrRDAPRateLimited: the server answered 429 Too Many Requests.
	ErrRDAPRateLimited = errors.New("rdap: rate limited")
	// ErrRDAPUnavailable: no answer (connection refused, timeout, 5xx).
	ErrRDAPUnavailable = errors.New("rdap: server unavailable")
	// ErrRDAPGarbage: the answer is not an RDAP domain object.
	ErrRDAPGarbage = errors.New("rdap: unusable answer")
	// ErrRDAPNoServer: the bootstrap registry has no server for the TLD.
	ErrRDAPNoServer = errors.New("rdap: no server for this domain")
	// ErrRDAPNoDate: the domain object has no registration event.
	ErrRDAPNoDate = errors.New("rdap: no registration date")
)

// RDAPError is an RDAP failure with the wait the server asked for.
type RDAPError struct {
	Err error
	// RetryAfter is the server's Retry-After (429, 503), 0 when none.
	RetryAfter time.Duration
	Detail     string
}

func (e *RDAPError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + " (" + e.Detail + ")"
}

func (e *RDAPError) Unwrap() error { return e.Err }

// DefaultBootstrapURL is IANA's DNS bootstrap registry.
const DefaultBootstrapURL = "https://data.iana.org/rdap/dns.json"

// RDAPConfig configures domain-age lookups.
type RDAPConfig struct {
	// BootstrapFile is an IANA dns.json (RFC 9224) read at start: the
	// offline way. When empty, BootstrapURL is fetched at first use and
	// again each BootstrapRefresh.
	BootstrapFile    string
	BootstrapURL     string
	BootstrapRefresh time.Duration
	// Servers are base URLs by domain suffix ("test" → http://…/) that
	// win over the bootstrap registry.
	Servers map[string]string
	// Timeout bounds one lookup.
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// MaxBody caps an answer's size.
	MaxBody int64
	// Transport, when set, carries the requests (tests).
	Transport http.RoundTripper
}

// RDAP looks up registration dates. It is safe for concurrent use.
type RDAP struct {
	cfg    RDAPConfig
	client *rdap.Client
	http   *http.Client

	mu        sync.Mutex
	registry  *bootstrap.DNSRegistry
	fetchedAt time.Time
	// failedAt and failure: a fetch that failed is not tried again for
	// bootstrapRetry, so an unreachable IANA does not cost every message
	// a timeout.
	failedAt time.Time
	failure  string
	servers  map[string]*url.URL
}

// bootstrapRetry is how long a failed bootstrap fetch is not repeated.
const bootstrapRetry = time.Minute

// NewRDAP makes a client. A bootstrap file that cannot be read or parsed
// is an error here, not at the first message.
func NewRDAP(cfg RDAPConfig) (*RDAP, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.BootstrapURL == "" {
		cfg.BootstrapURL = DefaultBootstrapURL
	}
	if cfg.BootstrapRefresh <= 0 {
		cfg.BootstrapRefresh = 24 * time.Hour
	}
	tr := cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	hc := &http.Client{Transport: capBody{tr, cfg.MaxBody}}
	r := &RDAP{cfg: cfg, http: hc, servers: map[string]*url.URL{}}
	// Every field Do would fill on first use is set now: the client is
	// then only read.
	r.client = &rdap.Client{HTTP: hc, Bootstrap: &bootstrap.Client{HTTP: hc}, Verbose: func(string) {}, UserAgent: cfg.UserAgent}
	for suffix, base := range cfg.Servers {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("rdap: server %q for %q is not an http(s) URL", base, suffix)
		}
		r.servers[strings.Trim(strings.ToLower(suffix), ".")] = u
	}
	if cfg.BootstrapFile != "" {
		b, err := os.ReadFile(cfg.BootstrapFile)
		if err != nil {
			return nil, fmt.Errorf("rdap: bootstrap: %v", err)
		}
		reg, err := bootstrap.NewDNSRegistry(b)
		if err != nil {
			return nil, fmt.Errorf("rdap: bootstrap %s: %v", cfg.BootstrapFile, err)
		}
		r.registry = reg
	}
	return r, nil
}

// capBody limits the size of every response body.
type capBody struct {
	rt  http.RoundTripper
	max int64
}

func (c capBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, c.max), resp.Body}
	return resp, nil
}

// baseURLs returns the servers for domain: configured ones first, else
// the bootstrap registry's.
func (r *RDAP) baseURLs(ctx context.Context, domain string) ([]*url.URL, error) {
	for d := domain; ; {
		if u, ok := r.servers[d]; ok {
			return []*url.URL{u}, nil
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
	}
	reg, err := r.bootstrapRegistry(ctx)
	if err != nil {
		return nil, err
	}
	ans, err := reg.Lookup(&bootstrap.Question{RegistryType: bootstrap.DNS, Query: domain})
	if err != nil || ans == nil || len(ans.URLs) == 0 {
		return nil, &RDAPError{Err: ErrRDAPNoServer, Detail: domain}
	}
	return ans.URLs, nil
}

// bootstrapRegistry returns the registry, fetching it when there is no
// file and the copy is missing or old. An old copy is kept when a fetch
// fails.
func (r *RDAP) bootstrapRegistry(ctx context.Context) (*bootstrap.DNSRegistry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.registry != nil && (r.cfg.BootstrapFile != "" || time.Since(r.fetchedAt) < r.cfg.BootstrapRefresh) {
		return r.registry, nil
	}
	if time.Since(r.failedAt) < bootstrapRetry {
		if r.registry != nil {
			return r.registry, nil
		}
		return nil, &RDAPError{Err: ErrRDAPUnavailable, Detail: r.failure}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.BootstrapURL, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = r.http.Do(req); err == nil {
			var b []byte
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			if err == nil {
				var reg *bootstrap.DNSRegistry
				if reg, err = bootstrap.NewDNSRegistry(b); err == nil {
					r.registry, r.fetchedAt = reg, time.Now()
				}
			}
		}
	}
	if err != nil {
		r.failedAt, r.failure = time.Now(), "bootstrap "+r.cfg.BootstrapURL+": "+clip(err.Error(), 80)
	}
	if r.registry != nil {
		return r.registry, nil
	}
	return nil, &RDAPError{Err: ErrRDAPUnavailable, Detail: r.failure}
}

// Registered returns when domain (a registrable domain, A-labels) was
// registered.
func (r *RDAP) Registered(ctx context.Context, domain string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	bases, err := r.baseURLs(ctx, domain)
	if err != nil {
		return time.Time{}, err
	}
	var last error = &RDAPError{Err: ErrRDAPUnavailable}
	for _, base := range bases {
		u := *base // URL() writes to it
		req := rdap.NewDomainRequest(domain).WithContext(ctx).WithServer(&u)
		resp, err := r.client.Do(req)
		t, err := registration(resp, err)
		if err == nil {
			return t, nil
		}
		last = err
		if errors.Is(err, ErrRDAPNotFound) || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil && !errors.Is(last, ErrRDAPNotFound) {
		return time.Time{}, &RDAPError{Err: ErrRDAPUnavailable, Detail: "no answer within " + r.cfg.Timeout.String()}
	}
	return time.Time{}, last
}

// registration reads the registration event of a response, or says why
// there is none.
func registration(resp *rdap.Response, err error) (time.Time, error) {
	if err == nil && resp != nil {
		switch obj := resp.Object.(type) {
		case *rdap.Domain:
			for _, ev := range obj.Events {
				if !strings.EqualFold(ev.Action, "registration") {
					continue
				}
				t, perr := parseRDAPDate(ev.Date)
				if perr != nil {
					return time.Time{}, &RDAPError{Err: ErrRDAPGarbage, Detail: "registration date " + strconv.Quote(ev.Date)}
				}
				return t, nil
			}
			return time.Time{}, &RDAPError{Err: ErrRDAPNoDate}
		case *rdap.Error:
			if obj.ErrorCode != nil && *obj.ErrorCode == http.StatusNotFound {
				return time.Time{}, &RDAPError{Err: ErrRDAPNotFound}
			}
			return time.Time{}, &RDAPError{Err: ErrRDAPGarbage, Detail: "error object"}
		}
		return time.Time{}, &RDAPError{Err: ErrRDAPGarbage, Detail: fmt.Sprintf("%T", resp.Object)}
	}
	var ce *rdap.ClientError
	if errors.As(err, &ce) && ce.Type == rdap.ObjectDoesNotExist {
		return time.Time{}, &RDAPError{Err: ErrRDAPNotFound}
	}
	// Look at what the servers said.
	if resp != nil {
		for _, h := range resp.HTTP {
			if h.Response == nil {
				continue
			}
			switch code := h.Response.StatusCode; {
			case code == http.StatusTooManyRequests:
				return time.Time{}, &RDAPError{Err: ErrRDAPRateLimited, RetryAfter: retryAfter(h.Response.Header.Get("Retry-After")), Detail: "HTTP 429"}
			case code >= 500:
				return time.Time{}, &RDAPError{Err: ErrRDAPUnavailable, RetryAfter: retryAfter(h.Response.Header.Get("Retry-After")), Detail: "HTTP " + strconv.Itoa(code)}
			case code >= 200 && code < 300 && h.Error != nil:
				return time.Time{}, &RDAPError{Err: ErrRDAPGarbage, Detail: clip(h.Error.Error(), 80)}
			case code >= 300:
				return time.Time{}, &RDAPError{Err: ErrRDAPGarbage, Detail: "HTTP " + strconv.Itoa(code)}
			}
		}
		for _, h := range resp.HTTP {
			if h.Error != nil {
				return time.Time{}, &RDAPError{Err: ErrRDAPUnavailable, Detail: clip(h.Error.Error(), 80)}
			}
		}
	}
	if err == nil {
		err = errors.New("no answer")
	}
	return time.Time{}, &RDAPError{Err: ErrRDAPUnavailable, Detail: clip(err.Error(), 80)}
}

// parseRDAPDate reads an RFC 3339 date (RFC 9083 §4.5), with or without
// fractional seconds.
func parseRDAPDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an RFC 3339 date")
}

// retryAfter reads a Retry-After value in seconds or as an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
