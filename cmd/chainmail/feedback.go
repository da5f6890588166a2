package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"chainmail/checks"
	"chainmail/checks/bayes"
	"chainmail/checks/reputation"
	"chainmail/store"
)

// One report trains every learner (checks.Trainer) of the engine in
// force: the code here is shared by `chainmail learn` writing to the
// store itself and by serve's feedback endpoint.

// trainOutcome is what one report did to one learner.
type trainOutcome struct {
	Check   string `json:"check"`
	Outcome string `json:"outcome,omitempty"` // learned, already learned, moved
	Error   string `json:"error,omitempty"`
	// unavailable: the store could not be reached (the endpoint answers
	// 503 then).
	unavailable bool
}

// trainers returns the checks of eng that learn from reports.
func trainers(eng *checks.Engine) []checks.Check {
	var out []checks.Check
	if eng == nil || eng.Chain == nil {
		return nil
	}
	for _, s := range eng.Chain.Steps {
		if _, ok := s.Check.(checks.Trainer); ok {
			out = append(out, s.Check)
		}
	}
	return out
}

// trainAll gives m to every learner of eng as spam or ham.
func trainAll(ctx context.Context, eng *checks.Engine, m *checks.Message, spam bool) []trainOutcome {
	var out []trainOutcome
	for _, c := range trainers(eng) {
		o := trainOutcome{Check: c.Name()}
		got, err := c.(checks.Trainer).Train(ctx, m, spam)
		if err != nil {
			o.Error, o.unavailable = err.Error(), errors.Is(err, store.ErrUnavailable)
		} else {
			o.Outcome = string(got)
		}
		out = append(out, o)
	}
	return out
}

// reportMessage reads a reported message with its envelope as replay
// derives it (sidecar, when the path has one, over the header). A text
// without a single header field is not a message.
func reportMessage(raw []byte, sidecar string) (*checks.Message, error) {
	m, err := checks.ReadMessage(bytes.NewReader(skipMboxFrom(raw)), checks.NewSpool(0, ""))
	if err != nil {
		return nil, err
	}
	if len(m.Header) == 0 {
		return nil, errors.New("not a message: it starts with no header field")
	}
	env := envelopeFromMessage(m)
	if sidecar != "" {
		if err := applySidecar(&env, sidecar); err != nil {
			return nil, err
		}
	}
	m.Envelope = env
	return m, nil
}

// learnerStats is what one learner knows (learn --stats, GET
// /learn/stats). Reputation counts reported messages.
type learnerStats struct {
	Check       string `json:"check"`
	LearnedSpam int    `json:"learned_spam"`
	LearnedHam  int    `json:"learned_ham"`
	MinSpam     int    `json:"min_spam,omitempty"`
	MinHam      int    `json:"min_ham,omitempty"`
	Ready       *bool  `json:"ready,omitempty"`
	Error       string `json:"error,omitempty"`
}

func statsOf(ctx context.Context, eng *checks.Engine) []learnerStats {
	var out []learnerStats
	for _, c := range trainers(eng) {
		s := learnerStats{Check: c.Name()}
		switch c := c.(type) {
		case *bayes.Check:
			st, err := c.Stats(ctx)
			s.LearnedSpam, s.LearnedHam, s.MinSpam, s.MinHam = st.LearnedSpam, st.LearnedHam, st.MinSpam, st.MinHam
			ready := st.LearnedSpam >= st.MinSpam && st.LearnedHam >= st.MinHam
			s.Ready = &ready
			if err != nil {
				s.Error = err.Error()
			}
		case *reputation.Check:
			st, err := c.Stats(ctx)
			s.LearnedSpam, s.LearnedHam = st.Bad, st.Good
			if err != nil {
				s.Error = err.Error()
			}
		}
		out = append(out, s)
	}
	return out
}

// statsLine is one learner's line of learn --stats.
func (s learnerStats) line() string {
	if s.Error != "" {
		return fmt.Sprintf("%s: %s", s.Check, s.Error)
	}
	if s.Ready != nil {
		state := "ready"
		if !*s.Ready {
			state = "not ready: answers none until then"
		}
		return fmt.Sprintf("%s: learned %d spam and %d ham; needs %d and %d (min_spam, min_ham): %s", s.Check, s.LearnedSpam, s.LearnedHam, s.MinSpam, s.MinHam, state)
	}
	return fmt.Sprintf("%s: %d messages reported as spam, %d as ham", s.Check, s.LearnedSpam, s.LearnedHam)
}

// maxReportBytes caps a message posted to the endpoint.
const maxReportBytes = 32 << 20

// feedbackTarget is what the endpoint serves for: the engine in force
// and the token of its configuration ("" refuses every request).
type feedbackTarget struct {
	engine *checks.Engine
	token  string
}

// feedbackHandler is the feedback endpoint, under /learn on serve's
// metrics listener (and learn --listen):
//
//	POST /learn?class=spam|ham   (verdict=bad|good is the older spelling)
//	GET  /learn/stats
//	Authorization: Bearer <token>
//
// A report trains every learner of the engine in force (current is asked
// per request, so a reload takes effect) and answers 200 with one
// outcome per learner as JSON ({"results":[{"check":"bayes","outcome":
// "learned"}, …]}); 400 for a request or message that cannot be read,
// 401 without the token, 403 for a client not on loopback, 404 when no
// learner is enabled, 503 when the store is unreachable.
func feedbackHandler(current func() feedbackTarget) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackClient(r.RemoteAddr) {
			http.Error(w, "feedback is taken on loopback only", http.StatusForbidden)
			return
		}
		tg := current()
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if tg.token == "" || !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(tg.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="chainmail"`)
			http.Error(w, "missing or wrong token", http.StatusUnauthorized)
			return
		}
		if len(trainers(tg.engine)) == 0 {
			http.Error(w, "no learner is enabled (bayes, reputation)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/learn/stats" {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", http.MethodGet)
				http.Error(w, "GET the stats", http.StatusMethodNotAllowed)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"learners": statsOf(r.Context(), tg.engine)})
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST a message", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		var spam bool
		switch {
		case q.Get("class") == "spam" || (q.Get("class") == "" && q.Get("verdict") == "bad"):
			spam = true
		case q.Get("class") == "ham" || (q.Get("class") == "" && q.Get("verdict") == "good"):
		default:
			http.Error(w, "class=spam or class=ham", http.StatusBadRequest)
			return
		}
		raw, err := io.ReadAll(io.LimitReader(r.Body, maxReportBytes+1))
		if err != nil {
			http.Error(w, "reading the message: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(raw) > maxReportBytes {
			http.Error(w, fmt.Sprintf("message over %d bytes", maxReportBytes), http.StatusRequestEntityTooLarge)
			return
		}
		m, err := reportMessage(raw, "")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := trainAll(r.Context(), tg.engine, m, spam)
		code := http.StatusOK
		for _, o := range res {
			if o.unavailable {
				code = http.StatusServiceUnavailable
			}
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"results": res})
	})
}

// checkLoopback refuses a listen address that is not a loopback IP: the
// feedback endpoint must not be reachable from outside.
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("feedback listen %q: %v", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("feedback listen %q: not a loopback address (127.0.0.1, [::1])", listen)
	}
	return nil
}

// loopbackClient reports whether a RemoteAddr is on 127.0.0.0/8 or ::1.
func loopbackClient(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// feedbackClient posts reports to an endpoint.
type feedbackClient struct {
	http     *http.Client
	endpoint string // …/learn
	token    string
}

func newFeedbackClient(endpoint, token string) *feedbackClient {
	return &feedbackClient{http: &http.Client{Timeout: 60 * time.Second}, endpoint: strings.TrimSuffix(endpoint, "/"), token: token}
}

func (c *feedbackClient) do(method, url string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "message/rfc822")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return out, resp.StatusCode, err
}

// report posts one message; an answer that is not 200 (or 204, from an
// older endpoint: one reputation learner) is the error of the message.
func (c *feedbackClient) report(raw []byte, spam bool) ([]trainOutcome, error) {
	class := "ham"
	if spam {
		class = "spam"
	}
	sep := "?"
	if strings.Contains(c.endpoint, "?") {
		sep = "&"
	}
	body, code, err := c.do(http.MethodPost, c.endpoint+sep+"class="+class, raw)
	switch {
	case err != nil:
		return nil, err
	case code == http.StatusNoContent:
		return []trainOutcome{{Check: "reputation", Outcome: string(checks.TrainedNew)}}, nil
	case code == http.StatusOK || code == http.StatusServiceUnavailable && bytes.HasPrefix(body, []byte("{")):
		var res struct{ Results []trainOutcome }
		if err := json.Unmarshal(body, &res); err != nil {
			return nil, fmt.Errorf("endpoint answer: %v", err)
		}
		return res.Results, nil
	}
	return nil, fmt.Errorf("%d %s: %s", code, http.StatusText(code), strings.TrimSpace(string(body)))
}

// stats reads GET …/learn/stats.
func (c *feedbackClient) stats() ([]learnerStats, error) {
	body, code, err := c.do(http.MethodGet, c.endpoint+"/stats", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%d %s: %s", code, http.StatusText(code), strings.TrimSpace(string(body)))
	}
	var res struct{ Learners []learnerStats }
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("endpoint answer: %v", err)
	}
	return res.Learners, nil
}
