package reputation

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"chainmail/store"
)

func TestFeedbackHandler(t *testing.T) {
	var got []string
	fb := func(_ context.Context, raw []byte, good bool) error {
		if strings.Contains(string(raw), "store-down") {
			return fmt.Errorf("x: %w", store.ErrUnavailable)
		}
		got = append(got, fmt.Sprintf("%v %d", good, len(raw)))
		return nil
	}
	h := FeedbackHandler("s3cret", fb)
	do := func(method, target, remote, auth, body string) int {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.RemoteAddr = remote
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for _, tc := range []struct {
		method, target, remote, auth, body string
		want                               int
	}{
		{"POST", "/learn?verdict=bad", "127.0.0.1:5000", "Bearer s3cret", "From: a@b.test\r\n\r\nx", http.StatusNoContent},
		{"POST", "/learn?verdict=good", "[::1]:5000", "Bearer s3cret", "From: a@b.test\r\n\r\nx", http.StatusNoContent},
		{"POST", "/learn?verdict=bad", "192.0.2.1:5000", "Bearer s3cret", "x", http.StatusForbidden},
		{"POST", "/learn?verdict=bad", "127.0.0.1:5000", "Bearer wrong", "x", http.StatusUnauthorized},
		{"POST", "/learn?verdict=bad", "127.0.0.1:5000", "", "x", http.StatusUnauthorized},
		{"GET", "/learn?verdict=bad", "127.0.0.1:5000", "Bearer s3cret", "", http.StatusMethodNotAllowed},
		{"POST", "/learn?verdict=maybe", "127.0.0.1:5000", "Bearer s3cret", "x", http.StatusBadRequest},
		{"POST", "/learn?verdict=bad", "127.0.0.1:5000", "Bearer s3cret", "store-down", http.StatusServiceUnavailable},
		{"POST", "/learn?verdict=bad", "127.0.0.1:5000", "Bearer s3cret", strings.Repeat("x", MaxFeedbackBytes+1), http.StatusRequestEntityTooLarge},
	} {
		if code := do(tc.method, tc.target, tc.remote, tc.auth, tc.body); code != tc.want {
			t.Errorf("%s %s from %s auth %q: %d, want %d", tc.method, tc.target, tc.remote, tc.auth, code, tc.want)
		}
	}
	if strings.Join(got, ",") != "false 19,true 19" {
		t.Errorf("reports %q", got)
	}
	if code := func() int {
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/learn?verdict=bad", nil)
		req.RemoteAddr = "127.0.0.1:1"
		req.Header.Set("Authorization", "Bearer ")
		FeedbackHandler("", fb).ServeHTTP(w, req)
		return w.Code
	}(); code != http.StatusUnauthorized {
		t.Errorf("an empty token let a request in: %d", code)
	}
	for addr, ok := range map[string]bool{"127.0.0.1:9470": true, "[::1]:9470": true, "0.0.0.0:9470": false, "192.0.2.1:1": false, "localhost:1": false, "x": false} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}
