package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/store/storetest/memstore"
)

// The endpoint's contract: token, method, class, an unreadable message,
// and one outcome per learner (learned, already learned, moved).
func TestFeedbackEndpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state: {backend: bolt, path: %q}\nchecks:\n  - name: bayes\n    options: {min_spam: 1, min_ham: 1}\n  - name: gtube\n", filepath.Join(dir, "state.db"))), 0o644)
	eng, closeAll := testLearnEngine(t, cfg)
	defer closeAll()
	const token = "0123456789abcdef0123"
	var current *checks.Engine = eng
	h := feedbackHandler(func() feedbackTarget { return feedbackTarget{engine: current, token: token} })
	mux := http.NewServeMux()
	mux.Handle("/learn", h)
	mux.Handle("/learn/stats", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(method, path, tok, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	const msg = "From: Shop <deals@shop.test>\r\nSubject: cheap watches\r\n\r\nBuy cheap replica watches today, best prices online.\r\n"
	for _, c := range []struct {
		method, path, tok, body string
		code                    int
		want                    string
	}{
		{"POST", "/learn?class=spam", "", msg, 401, "missing or wrong token"},
		{"POST", "/learn?class=spam", "wrong-wrong-wrong-wrong", msg, 401, "missing or wrong token"},
		{"GET", "/learn?class=spam", token, "", 405, "POST a message"},
		{"POST", "/learn?class=maybe", token, msg, 400, "class=spam or class=ham"},
		{"POST", "/learn?class=spam", token, "just some words\nno header\n", 400, "not a message"},
		{"POST", "/learn?class=spam", token, msg, 200, `{"results":[{"check":"bayes","outcome":"learned"}]}`},
		{"POST", "/learn?verdict=bad", token, msg, 200, `{"results":[{"check":"bayes","outcome":"already learned"}]}`},
		{"POST", "/learn?class=ham", token, msg, 200, `{"results":[{"check":"bayes","outcome":"moved"}]}`},
		{"POST", "/learn/stats", token, "", 405, "GET the stats"},
	} {
		code, body := do(c.method, c.path, c.tok, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, code, body, c.code, c.want)
		}
	}
	code, body := do("GET", "/learn/stats", token, "")
	var st struct{ Learners []learnerStats }
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Learners) != 1 ||
		st.Learners[0].LearnedSpam != 0 || st.Learners[0].LearnedHam != 1 || st.Learners[0].Ready == nil || *st.Learners[0].Ready {
		t.Errorf("stats: %d %s (%v)", code, body, err)
	}
	// No learner in the engine in force (a reload took bayes out).
	current = &checks.Engine{Chain: &checks.Chain{}}
	if code, body := do("POST", "/learn?class=spam", token, msg); code != 404 || !strings.Contains(body, "no learner") {
		t.Errorf("without a learner: %d %s", code, body)
	}
}

// The endpoint refuses what does not come from loopback, an empty token,
// a message over the size limit, and answers 503 when the store is down;
// a listen address off loopback is refused before it is used.
func TestFeedbackEndpointRefusals(t *testing.T) {
	st := memstore.New()
	f := config.Default()
	f.Checks = []config.Check{{Name: "bayes"}}
	eng, err := f.Build(config.Deps{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	const token = "0123456789abcdef0123"
	tokenInForce := token
	h := feedbackHandler(func() feedbackTarget { return feedbackTarget{engine: eng, token: tokenInForce} })
	do := func(remote, auth, body string) (int, string) {
		req := httptest.NewRequest("POST", "/learn?class=spam", strings.NewReader(body))
		req.RemoteAddr = remote
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	const msg = "From: a@b.test\r\nSubject: x\r\n\r\nsome words to learn\r\n"
	for _, c := range []struct {
		remote, auth, body string
		code               int
	}{
		{"127.0.0.1:5000", "Bearer " + token, msg, 200},
		{"[::1]:5000", "Bearer " + token, msg, 200},
		{"192.0.2.1:5000", "Bearer " + token, msg, 403},
		{"127.0.0.1:5000", "Bearer " + token, "From: a@b.test\r\n\r\n" + strings.Repeat("x", maxReportBytes), 413},
	} {
		if code, body := do(c.remote, c.auth, c.body); code != c.code {
			t.Errorf("from %s: %d %s, want %d", c.remote, code, body, c.code)
		}
	}
	st.SetDown(true)
	if code, body := do("127.0.0.1:1", "Bearer "+token, msg); code != 503 {
		t.Errorf("store down: %d %s, want 503", code, body)
	}
	tokenInForce = ""
	if code, _ := do("127.0.0.1:1", "Bearer ", msg); code != 401 {
		t.Errorf("an empty token let a request in: %d", code)
	}
	for addr, ok := range map[string]bool{"127.0.0.1:9470": true, "[::1]:9470": true, "0.0.0.0:9470": false, "192.0.2.1:1": false, "localhost:1": false, "x": false} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v", addr, err)
		}
	}
}
