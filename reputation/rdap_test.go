package reputation

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"chainmail/reputation/rdaptest"
)

func newTestRDAP(t *testing.T, srv *rdaptest.Server, timeout time.Duration) *RDAP {
	t.Helper()
	r, err := NewRDAP(RDAPConfig{BootstrapFile: srv.BootstrapFile(t, t.TempDir(), "test", "example"), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRDAPRegistered(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.SlowFor = 2 * time.Second
	reg := time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)
	srv.Register("young.test", reg)
	srv.Register("nodate.test", reg)
	srv.Fail("nodate.test", rdaptest.NoDate)
	for _, d := range []string{"limited.test", "broken.test", "slow.test", "garbage.test", "html.test"} {
		srv.Register(d, reg)
	}
	srv.Fail("limited.test", rdaptest.RateLimited)
	srv.Fail("broken.test", rdaptest.ServerError)
	srv.Fail("slow.test", rdaptest.Slow)
	srv.Fail("garbage.test", rdaptest.Garbage)
	srv.Fail("html.test", rdaptest.HTMLPage)
	r := newTestRDAP(t, srv, 300*time.Millisecond)
	ctx := context.Background()

	got, err := r.Registered(ctx, "young.test")
	if err != nil || !got.Equal(reg) {
		t.Fatalf("young.test: %v %v, want %v", got, err, reg)
	}
	for _, tc := range []struct {
		domain string
		want   error
	}{
		{"unknown.test", ErrRDAPNotFound},
		{"nodate.test", ErrRDAPNoDate},
		{"limited.test", ErrRDAPRateLimited},
		{"broken.test", ErrRDAPUnavailable},
		{"slow.test", ErrRDAPUnavailable},
		{"garbage.test", ErrRDAPGarbage},
		{"html.test", ErrRDAPGarbage},
		{"example.org", ErrRDAPNoServer},
	} {
		start := time.Now()
		_, err := r.Registered(ctx, tc.domain)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.domain, err, tc.want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s took %v", tc.domain, d)
		}
	}
	_, err = r.Registered(ctx, "limited.test")
	var re *RDAPError
	if !errors.As(err, &re) || re.RetryAfter != 120*time.Second {
		t.Errorf("429: %#v, want Retry-After 120s", err)
	}

	// Concurrent lookups share the client safely (go test -race).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Registered(ctx, "young.test"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	// Down: connection refused.
	srv.Close()
	if _, err := r.Registered(ctx, "young.test"); !errors.Is(err, ErrRDAPUnavailable) {
		t.Errorf("server down: %v", err)
	}
}

func TestRDAPServersOverrideAndBadBootstrap(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("a.example", time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC))
	r, err := NewRDAP(RDAPConfig{Servers: map[string]string{"example": srv.URL}, BootstrapURL: "http://127.0.0.1:1/dns.json"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Registered(context.Background(), "a.example"); err != nil || got.Year() != 2020 {
		t.Errorf("configured server: %v %v", got, err)
	}
	// No file, the bootstrap URL unreachable: unavailable, not a crash,
	// and not tried again for every message.
	if _, err := r.Registered(context.Background(), "b.test"); !errors.Is(err, ErrRDAPUnavailable) {
		t.Errorf("no bootstrap: %v", err)
	}
	at := r.failedAt
	if _, err := r.Registered(context.Background(), "c.test"); !errors.Is(err, ErrRDAPUnavailable) || !r.failedAt.Equal(at) {
		t.Errorf("second lookup: %v (fetched again: %v)", err, !r.failedAt.Equal(at))
	}
	bad := filepath.Join(t.TempDir(), "dns.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	if _, err := NewRDAP(RDAPConfig{BootstrapFile: bad}); err == nil {
		t.Error("a broken bootstrap file was accepted")
	}
	if _, err := NewRDAP(RDAPConfig{BootstrapFile: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Error("a missing bootstrap file was accepted")
	}
	if _, err := NewRDAP(RDAPConfig{Servers: map[string]string{"test": "ftp://x"}}); err == nil {
		t.Error("a non-http server URL was accepted")
	}
}

func TestRDAPBootstrapDownload(t *testing.T) {
	srv := rdaptest.Start(t)
	srv.Register("dl.test", time.Date(2021, 5, 6, 0, 0, 0, 0, time.UTC))
	p := srv.BootstrapFile(t, t.TempDir(), "test")
	b, _ := os.ReadFile(p)
	// The bootstrap document comes from a second server.
	r, err := NewRDAP(RDAPConfig{BootstrapURL: newStatic(t, b) + "/dns.json"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Registered(context.Background(), "dl.test"); err != nil || got.Year() != 2021 {
		t.Errorf("downloaded bootstrap: %v %v", got, err)
	}
}
