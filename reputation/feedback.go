package reputation

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"chainmail/store"
)

// FeedbackFunc records one report: raw is the message as submitted
// (header block and body), good says which way.
type FeedbackFunc func(ctx context.Context, raw []byte, good bool) error

// MaxFeedbackBytes caps a submitted message: the report needs the header.
const MaxFeedbackBytes = 4 << 20

// FeedbackHandler is the "submit as good/bad" endpoint:
//
//	POST /learn?verdict=good|bad
//	Authorization: Bearer <token>
//	<the message>
//
// It answers 204 when the report was stored, 400 for a bad request, 401
// without the token, 403 for a client not on loopback, 405 for a method
// other than POST, 503 when the store is unreachable. The token is
// compared in constant time; an empty token refuses every request.
func FeedbackHandler(token string, fb FeedbackFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopback(r.RemoteAddr) {
			http.Error(w, "feedback is taken on loopback only", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" || !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chainmail"`)
			http.Error(w, "missing or wrong token", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a message", http.StatusMethodNotAllowed)
			return
		}
		var good bool
		switch r.URL.Query().Get("verdict") {
		case "good":
			good = true
		case "bad":
		default:
			http.Error(w, "verdict=good or verdict=bad", http.StatusBadRequest)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, MaxFeedbackBytes+1))
		if err != nil {
			http.Error(w, "reading the message: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(raw) > MaxFeedbackBytes {
			http.Error(w, fmt.Sprintf("message over %d bytes", MaxFeedbackBytes), http.StatusRequestEntityTooLarge)
			return
		}
		if err := fb(r.Context(), raw, good); err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, store.ErrUnavailable) {
				code = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// loopback reports whether a RemoteAddr is on 127.0.0.0/8 or ::1.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckLoopback refuses a listen address that is not a loopback IP: the
// feedback endpoint must not be reachable from outside.
func CheckLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("feedback listen %q: %v", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("feedback listen %q: not a loopback address (127.0.0.1, [::1])", listen)
	}
	return nil
}
