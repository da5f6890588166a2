package milter_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"

	"chainmail/checks"
	"chainmail/milter/miltertest"
)

// verdictOf is a decisive check that classifies by a word in the Subject
// and, for "auth", reports an SPF result for Authentication-Results.
type verdictOf struct{}

func (verdictOf) Name() string { return "lists" }
func (verdictOf) Check(_ context.Context, m *checks.Message, _ checks.Results) checks.Result {
	s := m.Subject()
	switch {
	case strings.Contains(s, "allow"):
		return checks.Result{Status: checks.StatusPass, Class: checks.ClassHam, Symbols: []checks.Symbol{{Name: "LISTS_ALLOW_SENDER", Score: -20}}}
	case strings.Contains(s, "hold"):
		return checks.Result{Status: checks.StatusNone, Symbols: []checks.Symbol{{Name: "HOLD", Score: 12}}}
	case strings.Contains(s, "tag"):
		return checks.Result{Status: checks.StatusNone, Symbols: []checks.Symbol{{Name: "TAG", Score: 6}}}
	case strings.Contains(s, "auth"):
		return checks.Result{Status: checks.StatusPass, AuthResults: []authres.Result{&authres.SPFResult{Value: authres.ResultPass, From: "example.com"}}}
	}
	return checks.Result{Status: checks.StatusNone}
}

// forgedHeader carries every form of a forged Authentication-Results with
// our authserv-id (RFC 8601 §2.2: CFWS before it, a quoted-string, a
// version after it, any case, folded) among two that are not ours, and
// forged spam verdict fields.
const forgedHeader = "Authentication-Results: mx.chainmail.test; dkim=pass header.d=example.com\r\n" + // 1
	"Authentication-Results: other.example; dkim=pass\r\n" + // 2 kept
	"Authentication-Results: (comment) mx.chainmail.test; dmarc=pass\r\n" + // 3
	"Authentication-Results: \"mx.chainmail.test\"; dmarc=pass\r\n" + // 4
	"Authentication-Results: MX.Chainmail.TEST 1; dkim=pass\r\n" + // 5
	"Authentication-Results:\r\n\tmx.chainmail.test;\r\n\tdkim=pass\r\n" + // 6
	"authentication-results: (nested (\\) comment)) \"MX.chainmail.test\" ; dmarc=pass\r\n" + // 7
	"Authentication-Results: mx.chainmail.test.evil.example; dkim=pass\r\n" + // 8 kept
	"X-Spam-Status: No, score=-10.00 required=5.00 tests=none\r\n" +
	"X-Spam-Flag: NO\r\n" +
	"X-Spam-Score: -10\r\n" +
	"X-Chainmail-Verdict: accept; score=-10.00; why=score\r\n" +
	"x-chainmail-anything: 1\r\n"

const wantRemoved = "authentication-results[7] authentication-results[6] authentication-results[5] authentication-results[4] authentication-results[3] authentication-results[1] " +
	"x-chainmail-anything[1] x-chainmail-verdict[1] x-spam-flag[1] x-spam-score[1] x-spam-status[1]"

// On every delivering verdict path (a decisive allow that ends the chain
// early, plain accept with and without our Authentication-Results, tag,
// quarantine, monitor, headers: never) every forged field claiming our
// authserv-id or our verdict is removed, over the milter protocol, before
// ours are added.
func TestForgedHeadersRemovedOnEveryPath(t *testing.T) {
	for _, tc := range []struct {
		name, subject string
		policy        func(*checks.Policy)
		action        string
	}{
		{"allow ends chain", "allow", nil, "accept"},
		{"accept no auth", "plain", nil, "accept"},
		{"accept with auth", "auth", nil, "accept"},
		{"tag", "tag", nil, "accept"},
		{"quarantine", "hold", nil, "quarantine"},
		{"monitor", "hold", func(p *checks.Policy) { p.Monitor = true }, "accept"},
		{"headers never", "plain", func(p *checks.Policy) { p.Headers = checks.HeadersNever }, "accept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := checks.DefaultPolicy()
			p.Hostname = "mx.chainmail.test"
			if tc.policy != nil {
				tc.policy(p)
			}
			eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: verdictOf{}, Decisive: checks.DecisiveBoth, Timeout: 5 * time.Second}}}, Policy: p}
			srv := miltertest.Start(t, eng)
			raw := forgedHeader + "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: " + tc.subject + "\r\n\r\nHello.\r\n"
			out := srv.Send(t, clientEnv, raw)
			if out.Action != tc.action {
				t.Fatalf("action %s, want %s", out.Action, tc.action)
			}
			var removed, added []string
			for _, h := range out.Headers {
				if strings.Contains(h.Name, "[") {
					if h.Value != "" {
						t.Errorf("change %s: %q, want a removal", h.Name, h.Value)
					}
					if len(added) > 0 {
						t.Errorf("removal %s after an addition", h.Name)
					}
					removed = append(removed, strings.ToLower(h.Name))
				} else {
					added = append(added, h.Name+": "+h.Value)
				}
			}
			// Removal order only matters per name (highest index first).
			sorted := append([]string(nil), removed...)
			sort.SliceStable(sorted, func(i, j int) bool {
				a, b := sorted[i][:strings.IndexByte(sorted[i], '[')], sorted[j][:strings.IndexByte(sorted[j], '[')]
				return a < b
			})
			if got := strings.Join(sorted, " "); got != wantRemoved {
				t.Errorf("removed\n  %s\nwant\n  %s", got, wantRemoved)
			}
			for _, a := range added {
				if strings.HasPrefix(a, "Authentication-Results: ") && !strings.HasPrefix(a, "Authentication-Results: mx.chainmail.test;") {
					t.Errorf("added %q", a)
				}
			}
		})
	}
}
