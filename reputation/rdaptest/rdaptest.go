// Package rdaptest is an RDAP server on loopback for tests: it answers
// GET /domain/<name> with RFC 9083 domain objects shaped like a gTLD
// registry's (events, status, entities, links, notices), 404 error
// objects for unknown names, and the faults an RDAP client must survive
// (429 with Retry-After, 5xx, slowness, garbage). BootstrapFile writes an
// RFC 9224 dns.json pointing the given TLDs at it.
package rdaptest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is how the server misbehaves for one domain.
type Fault string

// Faults.
const (
	NotFound    Fault = "notfound"    // 404 with an RDAP error object
	RateLimited Fault = "ratelimited" // 429 with Retry-After: 120
	ServerError Fault = "servererror" // 503
	Slow        Fault = "slow"        // answers after the client gave up
	Garbage     Fault = "garbage"     // 200 with something that is not JSON
	NoDate      Fault = "nodate"      // a domain object without registration
	HTMLPage    Fault = "html"        // 200 with an HTML page
)

// Server is the test RDAP server.
type Server struct {
	*httptest.Server
	// SlowFor is how long a Slow answer takes.
	SlowFor time.Duration

	mu      sync.Mutex
	reg     map[string]time.Time
	faults  map[string]Fault
	queries atomic.Int64
	done    chan struct{}
}

// Start starts a server on 127.0.0.1; it stops with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{SlowFor: 3 * time.Second, reg: map[string]time.Time{}, faults: map[string]Fault{}, done: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.done)
		s.Close()
	})
	return s
}

// Register makes domain exist, registered at at.
func (s *Server) Register(domain string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reg[strings.ToLower(domain)] = at
	delete(s.faults, strings.ToLower(domain))
}

// Fail makes the server answer f for domain.
func (s *Server) Fail(domain string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[strings.ToLower(domain)] = f
}

// Queries is the number of domain queries answered so far.
func (s *Server) Queries() int64 { return s.queries.Load() }

// BootstrapFile writes an IANA-style dns.json into dir that maps tlds to
// this server and returns its path.
func (s *Server) BootstrapFile(t testing.TB, dir string, tlds ...string) string {
	t.Helper()
	doc := map[string]any{
		"version":     "1.0",
		"publication": "2026-11-01T00:00:00Z",
		"description": "RDAP bootstrap file for Domain Name System registrations (test)",
		"services":    [][][]string{{tlds, {s.URL + "/"}}},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	p := filepath.Join(dir, "dns.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/domain/")
	if !ok || r.Method != http.MethodGet {
		writeJSON(w, http.StatusBadRequest, errorObject(400, "Bad Request"))
		return
	}
	s.queries.Add(1)
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	s.mu.Lock()
	at, known := s.reg[name]
	fault := s.faults[name]
	s.mu.Unlock()
	switch fault {
	case NotFound:
		known = false
	case RateLimited:
		w.Header().Set("Retry-After", "120")
		writeJSON(w, http.StatusTooManyRequests, errorObject(429, "Too Many Requests"))
		return
	case ServerError:
		writeJSON(w, http.StatusServiceUnavailable, errorObject(503, "Service Unavailable"))
		return
	case Slow:
		select {
		case <-time.After(s.SlowFor):
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	case Garbage:
		w.Header().Set("Content-Type", "application/rdap+json")
		w.Write([]byte(`{"objectClassName": "domain", "events": [{"eventAction": "registration", "eventDate": `))
		return
	case HTMLPage:
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><body>Service temporarily unavailable</body></html>"))
		return
	}
	if !known {
		writeJSON(w, http.StatusNotFound, errorObject(404, "Not Found"))
		return
	}
	writeJSON(w, http.StatusOK, domainObject(s.URL, name, at, fault == NoDate))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/rdap+json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

var conformance = []string{"rdap_level_0", "icann_rdap_response_profile_0", "icann_rdap_technical_implementation_guide_0"}

func errorObject(code int, title string) map[string]any {
	return map[string]any{
		"rdapConformance": conformance,
		"errorCode":       code,
		"title":           title,
		"description":     []string{fmt.Sprintf("The server answered %d %s.", code, title)},
	}
}

// domainObject is a registry's answer in the shape gTLD registries give
// (RFC 9083 §5.3, ICANN RDAP response profile).
func domainObject(base, name string, registered time.Time, noDate bool) map[string]any {
	events := []map[string]any{
		{"eventAction": "expiration", "eventDate": registered.AddDate(1, 0, 0).UTC().Format(time.RFC3339)},
		{"eventAction": "last changed", "eventDate": registered.Add(2 * time.Hour).UTC().Format(time.RFC3339)},
		{"eventAction": "last update of RDAP database", "eventDate": time.Now().UTC().Format("2006-01-02T15:04:05.000Z")},
	}
	if !noDate {
		events = append([]map[string]any{{"eventAction": "registration", "eventDate": registered.UTC().Format(time.RFC3339)}}, events...)
	}
	self := base + "/domain/" + name
	return map[string]any{
		"objectClassName": "domain",
		"rdapConformance": conformance,
		"handle":          strings.ToUpper(strings.ReplaceAll(name, ".", "_")) + "-TEST",
		"ldhName":         strings.ToUpper(name),
		"status":          []string{"client transfer prohibited", "server hold"},
		"events":          events,
		"secureDNS":       map[string]any{"delegationSigned": false},
		"nameservers": []map[string]any{
			{"objectClassName": "nameserver", "ldhName": "NS1." + strings.ToUpper(name), "status": []string{"active"}},
			{"objectClassName": "nameserver", "ldhName": "NS2." + strings.ToUpper(name), "status": []string{"active"}},
		},
		"entities": []map[string]any{{
			"objectClassName": "entity",
			"handle":          "9999",
			"roles":           []string{"registrar"},
			"publicIds":       []map[string]any{{"type": "IANA Registrar ID", "identifier": "9999"}},
			"vcardArray":      []any{"vcard", [][]any{{"version", map[string]any{}, "text", "4.0"}, {"fn", map[string]any{}, "text", "Example Test Registrar, Inc."}}},
		}},
		"links": []map[string]any{{"value": self, "rel": "self", "href": self, "type": "application/rdap+json"}},
		"notices": []map[string]any{
			{"title": "Terms of Use", "description": []string{"Service subject to Terms of Use."}},
			{"title": "Status Codes", "description": []string{"For more information on domain status codes, please visit https://icann.org/epp"}},
		},
	}
}
