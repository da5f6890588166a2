package checks

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/authres"
)

var knownChecks = []string{"lists", "gtube", "spf", "dkim", "dmarc", "sdr", "rbl"}

// res is a result with symbols; its score is their sum.
func res(check string, st Status, syms ...Symbol) Result {
	r := Result{Check: check, Status: st, Symbols: syms}
	for _, s := range syms {
		r.Score += s.Score
	}
	return r
}

func sym(name string, score float64) Symbol { return Symbol{Name: name, Score: score} }

// decidedResult is what the chain makes of a decisive step's result.
func decidedResult(check string, c Class) Result {
	st := StatusListed
	if c == ClassHam {
		st = StatusPass
	}
	return Result{Check: check, Status: st, Class: c, decided: true}
}

func policyMessage() *Message {
	return &Message{
		Envelope: Envelope{ClientIP: net.ParseIP("192.0.2.1"), HELO: "mx.example.com", MailFrom: "a@example.com", Rcpts: []string{"b@example.org"}, QueueID: "4Q1"},
		Header:   []HeaderField{{Name: "Subject", Value: "hello =?UTF-8?Q?w=C3=B6rld?="}},
	}
}

func header(v *Verdict, name string) (string, bool) {
	for _, h := range v.Headers {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

func TestPolicyThresholds(t *testing.T) {
	decide := func(t *testing.T, p *Policy, score float64) *Verdict {
		t.Helper()
		return p.Decide(policyMessage(), Results{res("x", StatusFail, sym("X", score))}, knownChecks)
	}
	p := DefaultPolicy()
	for _, tc := range []struct {
		score float64
		want  Action
		spam  bool
	}{
		{-3, Accept, false}, {0, Accept, false}, {4.99, Accept, false}, {5, Tag, true}, {9.99, Tag, true},
		{10, Quarantine, true}, {14.99, Quarantine, true}, {15, Reject, true}, {1000, Reject, true},
		// The score is rounded to what the log line shows before it is
		// compared: 4.999 shows as 5.00 and is tagged.
		{4.999, Tag, true},
	} {
		v := decide(t, p, tc.score)
		if v.Action != tc.want || v.Spam != tc.spam || v.Required != 5 {
			t.Errorf("score %v: %v spam=%v required=%v, want %v spam=%v required=5", tc.score, v.Action, v.Spam, v.Required, tc.want, tc.spam)
		}
		if tc.want != Accept && v.Why.String() != "score" {
			t.Errorf("score %v: why %q", tc.score, v.Why)
		}
	}

	// A threshold of 0 is off.
	p = DefaultPolicy()
	p.Tag, p.Reject = 0, 0
	if v := decide(t, p, 7); v.Action != Accept || v.Spam {
		t.Errorf("tag off, score 7: %v spam=%v", v.Action, v.Spam)
	}
	v := decide(t, p, 100)
	if v.Action != Quarantine || !v.Spam || v.Required != 10 {
		t.Errorf("tag and reject off, score 100: %v spam=%v required=%v; want quarantine, spam, required 10", v.Action, v.Spam, v.Required)
	}
	p.Quarantine = 0
	if v := decide(t, p, 100); v.Action != Accept || v.Spam || v.Required != 0 {
		t.Errorf("all thresholds off: %v spam=%v required=%v", v.Action, v.Spam, v.Required)
	}
}

func TestPolicyDecisive(t *testing.T) {
	p := DefaultPolicy()
	v := p.Decide(nil, Results{decidedResult("lists", ClassSpam), res("gtube", StatusSkipped)}, knownChecks)
	if v.Action != Reject || !v.Spam || v.Why.String() != "decisive:lists" || v.SMTPReply() != "550 5.7.1 Message rejected as spam" {
		t.Errorf("decisive spam: %v spam=%v why=%q reply=%q", v.Action, v.Spam, v.Why, v.SMTPReply())
	}
	p.DecisiveSpam = Quarantine
	if v := p.Decide(nil, Results{decidedResult("lists", ClassSpam)}, knownChecks); v.Action != Quarantine || !v.Spam {
		t.Errorf("decisive spam with decisive_spam quarantine: %v spam=%v", v.Action, v.Spam)
	}

	// Decisive ham accepts, whatever the score and the errors of checks
	// that ran beside it.
	p = DefaultPolicy()
	rs := Results{res("rbl", StatusListed, sym("RBL", 50)), {Check: "broken", Status: StatusError, Err: ErrPanic}, decidedResult("lists", ClassHam)}
	v = p.Decide(nil, rs, knownChecks)
	if v.Action != Accept || v.Spam || v.Why.String() != "decisive:lists" || v.Code != "" {
		t.Errorf("decisive ham: %v spam=%v why=%q code=%q", v.Action, v.Spam, v.Why, v.Code)
	}

	// A class without the decisive flag decides nothing.
	rs = Results{{Check: "lists", Status: StatusListed, Class: ClassSpam}}
	if v := p.Decide(nil, rs, knownChecks); v.Action != Accept || v.Spam {
		t.Errorf("class without decided: %v spam=%v", v.Action, v.Spam)
	}
}

func TestPolicyDecisiveThroughChain(t *testing.T) {
	c := &Chain{Steps: []Step{
		{Check: newFake("lists", func(context.Context, *Message, Results) Result {
			return Result{Status: StatusListed, Class: ClassSpam, Symbols: []Symbol{sym("LISTS_DENY_SENDER", 100)}}
		}), Decisive: DecisiveBoth},
		{Check: newFake("gtube", nil)},
	}}
	rs := c.Run(context.Background(), policyMessage())
	v := DefaultPolicy().Decide(policyMessage(), rs, knownChecks)
	if v.Action != Reject || v.Why.String() != "decisive:lists" || !v.Spam || v.Score != 100 {
		t.Errorf("%v why=%q spam=%v score=%v", v.Action, v.Why, v.Spam, v.Score)
	}
}

func TestPolicyOnError(t *testing.T) {
	broken := Result{Check: "spf", Status: StatusError, Err: ErrPanic}
	p := DefaultPolicy()
	p.ErrorCode, p.ErrorReply = "452", "4.3.0 try later"
	v := p.Decide(nil, Results{res("a", StatusPass), broken}, knownChecks)
	if v.Action != Tempfail || v.Why.String() != "error:spf" || v.Code != "452" || v.Reply != "4.3.0 try later" {
		t.Errorf("error: %v why=%q %q", v.Action, v.Why, v.SMTPReply())
	}
	if len(v.Headers) != 0 {
		t.Errorf("tempfail adds headers: %v", v.Headers)
	}

	// A more severe score wins over the error.
	v = p.Decide(nil, Results{res("a", StatusFail, sym("A", 20)), broken}, knownChecks)
	if v.Action != Reject || v.Code != "550" {
		t.Errorf("error and reject score: %v %q", v.Action, v.SMTPReply())
	}

	// on_error: accept lets the message through.
	p.OnError = Accept
	if v := p.Decide(nil, Results{broken}, knownChecks); v.Action != Accept || v.Code != "" {
		t.Errorf("on_error accept: %v %q", v.Action, v.SMTPReply())
	}

	// A timeout is not an error.
	p = DefaultPolicy()
	if v := p.Decide(nil, Results{{Check: "spf", Status: StatusTimeout, Err: ErrTimeout}}, knownChecks); v.Action != Accept {
		t.Errorf("timeout: %v", v.Action)
	}
}

func TestPolicyCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		cond, want string
	}{
		{`lists.status`, "true/false"},
		{`lists.score + 1`, "true/false"},
		{`lists.listed[0] == "ZEN"`, "did not run"}, // fails on every message lists did not list
		{`score`, "expected bool"},
		{`1`, "expected bool"},
		{`lists.status ==`, "unexpected token"},
		{`dmrac.status == "fail"`, "unknown name dmrac"},
		{``, "unexpected token"},
	} {
		p := DefaultPolicy()
		p.Rules = []Rule{{Name: "ok", If: `lists.status == "listed"`, Action: Reject}, {Name: "bad-rule", If: tc.cond, Action: Reject}}
		err := p.Compile(knownChecks)
		var re *RuleError
		if !errors.As(err, &re) || re.Index != 1 || re.Name != "bad-rule" {
			t.Errorf("%q: %v, want a RuleError for rule 2", tc.cond, err)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, `rule "bad-rule": `) || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: %q, want it to name the rule and say %q", tc.cond, msg, tc.want)
		}
	}
	for _, rules := range [][]Rule{
		{{Name: "", If: "true"}},
		{{Name: "a", If: "true"}, {Name: "a", If: "false"}},
	} {
		p := DefaultPolicy()
		p.Rules = rules
		if err := p.Compile(knownChecks); err == nil {
			t.Errorf("%+v compiled", rules)
		}
	}
	p := DefaultPolicy()
	p.Rules = []Rule{
		{Name: "dmarc", If: `dmarc.policy == "reject" && dmarc.status == "fail"`},
		{Name: "sdr", If: `sdr.verdict in ["awful","poor"] && !sdr.excepted`},
		{Name: "env", If: `envelope.client_ip startsWith "192.0.2." && score >= required`},
		{Name: "lists", If: `"X" in lists.symbols || len(lists.listed) > 0`},
		{Name: "rcpt", If: `envelope.rcpt[0] endsWith "@example.org"`},
	}
	if err := p.Compile(knownChecks); err != nil {
		t.Errorf("good rules: %v", err)
	}
}

func TestPolicyRules(t *testing.T) {
	decide := func(t *testing.T, p *Policy, rs Results) *Verdict {
		t.Helper()
		if err := p.Compile(knownChecks); err != nil {
			t.Fatal(err)
		}
		return p.Decide(policyMessage(), rs, knownChecks)
	}
	dmarcRule := Rule{Name: "dmarc-reject", If: `dmarc.policy == "reject" && dmarc.status == "fail"`, Action: Reject, Code: "550", Reply: "5.7.1 Email rejected per DMARC policy"}
	dmarcFail := Result{Check: "dmarc", Status: StatusFail, Facts: map[string]any{"policy": "reject"}}

	t.Run("reject rule wins with its reply", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{dmarcRule}
		v := decide(t, p, Results{dmarcFail, res("rbl", StatusListed, sym("RBL", 6))})
		if v.Action != Reject || v.Why.String() != "rule:dmarc-reject" || v.SMTPReply() != "550 5.7.1 Email rejected per DMARC policy" || !v.Spam {
			t.Errorf("%v why=%q reply=%q spam=%v", v.Action, v.Why, v.SMTPReply(), v.Spam)
		}
	})
	t.Run("a rule wins a tie with a decisive check and with the score", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{{Name: "deny-list", If: `lists.status == "listed"`, Action: Reject, Code: "550", Reply: "5.7.1 Message rejected by local policy"}}
		for _, rs := range []Results{
			{decidedResult("lists", ClassSpam)},
			{{Check: "lists", Status: StatusListed, Symbols: []Symbol{sym("LISTS_DENY_SENDER", 100)}, Score: 100}},
		} {
			v := decide(t, p, rs)
			if v.Action != Reject || v.Why.String() != "rule:deny-list" || v.SMTPReply() != "550 5.7.1 Message rejected by local policy" {
				t.Errorf("%v why=%q reply=%q", v.Action, v.Why, v.SMTPReply())
			}
		}
	})
	t.Run("a rule over a check that did not run", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{dmarcRule, {Name: "skipped", If: `dmarc.status == "skipped"`, Action: Tag}}
		v := decide(t, p, Results{res("spf", StatusPass)})
		if v.Action != Tag || v.Why.String() != "rule:skipped" {
			t.Errorf("%v why=%q, want the skipped rule to fire and the DMARC one not", v.Action, v.Why)
		}
	})
	t.Run("most severe wins", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{
			{Name: "q", If: `spf.status == "fail"`, Action: Quarantine},
			{Name: "t", If: `spf.status == "fail"`, Action: Tag},
		}
		v := decide(t, p, Results{res("spf", StatusFail, sym("R_SPF_FAIL", 6))})
		if v.Action != Quarantine || v.Why.String() != "rule:q" {
			t.Errorf("rule quarantine over score tag: %v why=%q", v.Action, v.Why)
		}
		v = decide(t, p, Results{res("spf", StatusFail, sym("R_SPF_FAIL", 20))})
		if v.Action != Reject || v.Why.String() != "score" || v.SMTPReply() != "550 5.7.1 Message rejected as spam" {
			t.Errorf("score reject over rule quarantine: %v why=%q %q", v.Action, v.Why, v.SMTPReply())
		}
		p.Rules = []Rule{
			{Name: "first", If: `spf.status == "fail"`, Action: Reject, Reply: "5.7.1 first"},
			{Name: "second", If: `spf.status == "fail"`, Action: Reject, Reply: "5.7.1 second"},
			{Name: "discard", If: `spf.status == "fail"`, Action: Discard},
		}
		v = decide(t, p, Results{res("spf", StatusFail)})
		if v.Action != Reject || v.Why.String() != "rule:first" || v.SMTPReply() != "550 5.7.1 first" {
			t.Errorf("two reject rules: %v why=%q %q (the first wins, with the default code)", v.Action, v.Why, v.SMTPReply())
		}
	})
	t.Run("tempfail rule", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{{Name: "dmarc-temp", If: `dmarc.status == "temperror"`, Action: Tempfail}}
		v := decide(t, p, Results{{Check: "dmarc", Status: StatusTemperror}})
		if v.Action != Tempfail || v.SMTPReply() != "451 4.7.1 Message deferred, try again later" || !v.Spam {
			t.Errorf("%v %q spam=%v", v.Action, v.SMTPReply(), v.Spam)
		}
	})
	t.Run("accept rule changes nothing", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{{Name: "ok", If: `true`, Action: Accept}}
		v := decide(t, p, Results{res("spf", StatusPass)})
		if v.Action != Accept || v.Spam || v.Why.String() != "score" {
			t.Errorf("%v spam=%v why=%q", v.Action, v.Spam, v.Why)
		}
	})
	t.Run("envelope, score and facts", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{{Name: "env", If: `envelope.client_ip == "192.0.2.1" && "b@example.org" in envelope.rcpt && envelope.helo == "mx.example.com" && score > 1 && required == 5 && "RBL" in rbl.symbols && rbl.zone == "zen"`, Action: Quarantine}}
		rbl := res("rbl", StatusListed, sym("RBL", 2))
		rbl.Facts = map[string]any{"zone": "zen"}
		v := decide(t, p, Results{rbl})
		if v.Action != Quarantine || v.Why.String() != "rule:env" {
			t.Errorf("%v why=%q", v.Action, v.Why)
		}
	})
	t.Run("a rule failing at run time counts as an error", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{{Name: "sloppy", If: `lists.status == "listed" && lists.score`, Action: Reject}}
		v := decide(t, p, Results{res("lists", StatusListed, sym("L", 1))})
		if v.Action != Tempfail || v.Why.String() != "error:rule:sloppy" || v.Code != "451" || v.Reply != DefaultPolicy().ErrorReply {
			t.Errorf("%v why=%q %q", v.Action, v.Why, v.SMTPReply())
		}
	})
	t.Run("rules apply without Compile", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{dmarcRule}
		v := p.Decide(policyMessage(), Results{dmarcFail}, nil)
		if v.Action != Reject || v.Why.String() != "rule:dmarc-reject" {
			t.Errorf("uncompiled rule: %v why=%q", v.Action, v.Why)
		}
	})
	t.Run("names compiled with are present at run time", func(t *testing.T) {
		p := DefaultPolicy()
		p.Rules = []Rule{dmarcRule}
		if err := p.Compile(knownChecks); err != nil {
			t.Fatal(err)
		}
		// The caller passes no names and DMARC did not run.
		v := p.Decide(policyMessage(), Results{res("spf", StatusPass)}, nil)
		if v.Action != Accept || v.Why.String() != "score" {
			t.Errorf("%v why=%q", v.Action, v.Why)
		}
	})
}

func TestPolicyMonitor(t *testing.T) {
	p := DefaultPolicy()
	p.Monitor = true
	p.SubjectTag = "***SPAM*** %s"
	for _, tc := range []struct {
		rs    Results
		would Action
	}{
		{Results{res("a", StatusFail, sym("A", 20))}, Reject},
		{Results{res("a", StatusFail, sym("A", 12))}, Quarantine},
		{Results{res("a", StatusFail, sym("A", 6))}, Tag},
		{Results{{Check: "a", Status: StatusError}}, Tempfail},
		{Results{res("a", StatusPass)}, Accept},
	} {
		v := p.Decide(policyMessage(), tc.rs, knownChecks)
		if v.Action != Accept || !v.Monitor || v.Would != tc.would {
			t.Errorf("would %v: action %v monitor=%v would=%v", tc.would, v.Action, v.Monitor, v.Would)
		}
		if v.Code != "" || v.Reply != "" || v.QuarantineReason != "" || v.Subject != "" || len(v.Headers) != 0 {
			t.Errorf("would %v: monitor changes the message: %+v", tc.would, v)
		}
	}
}

func TestPolicySubjectTag(t *testing.T) {
	p := DefaultPolicy()
	p.SubjectTag = "***SPAM*** %s"
	tagged := Results{res("a", StatusFail, sym("A", 6))}
	v := p.Decide(policyMessage(), tagged, knownChecks)
	// The Subject goes back into the header as it came, encoded words
	// and all.
	if v.Subject != "***SPAM*** hello =?UTF-8?Q?w=C3=B6rld?=" {
		t.Errorf("Subject %q", v.Subject)
	}
	m := policyMessage()
	m.Header = []HeaderField{{Name: "subject", Value: "folded\r\n line"}}
	if v := p.Decide(m, tagged, knownChecks); v.Subject != "***SPAM*** folded line" {
		t.Errorf("folded Subject %q", v.Subject)
	}
	if v := p.Decide(policyMessage(), Results{res("a", StatusFail, sym("A", 12))}, knownChecks); v.Subject != "" {
		t.Errorf("quarantined mail got Subject %q", v.Subject)
	}
	if v := p.Decide(policyMessage(), Results{res("a", StatusPass)}, knownChecks); v.Subject != "" {
		t.Errorf("clean mail got Subject %q", v.Subject)
	}
	p.SubjectTag = ""
	if v := p.Decide(policyMessage(), tagged, knownChecks); v.Subject != "" {
		t.Errorf("no subject_tag, Subject %q", v.Subject)
	}
}

func TestPolicyQuarantineReason(t *testing.T) {
	q := Results{res("a", StatusFail, sym("A", 12))}
	p := DefaultPolicy()
	if v := p.Decide(nil, q, knownChecks); v.Action != Quarantine || v.QuarantineReason != "chainmail: held as suspected spam (score 12.00)" || v.Code != "" {
		t.Errorf("%v %q %q", v.Action, v.QuarantineReason, v.Code)
	}
	p.Rules = []Rule{{Name: "hold", If: "true", Action: Quarantine}}
	if v := p.Decide(nil, Results{res("a", StatusPass)}, knownChecks); v.QuarantineReason != "chainmail: rule:hold" {
		t.Errorf("rule reason %q", v.QuarantineReason)
	}
	// Long reasons with multi-byte characters at every offset of the cut.
	for pad := 0; pad < 8; pad++ {
		p := DefaultPolicy()
		p.QuarantineReason = strings.Repeat("x", 80+pad) + strings.Repeat("€ö😀", 10)
		v := p.Decide(nil, q, knownChecks)
		r := v.QuarantineReason
		if len(r) > 100 || len(r) < 97 || !utf8.ValidString(r) || !strings.HasPrefix(p.QuarantineReason, r) {
			t.Errorf("pad %d: reason %q (%d bytes)", pad, r, len(r))
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc"},
		{"aa€b", 5, "aa€"},                        // the cut falls right after a whole €
		{"aa€b", 4, "aa"},                         // inside €
		{"aa€b", 3, "aa"},                         // inside €
		{"a😀", 4, "a"},                            // inside a 4-byte sequence
		{"a\x80\x80\x80\x80\x80", 3, "a\x80\x80"}, // not UTF-8: cut anyway
	} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestPolicyHeaders(t *testing.T) {
	spam := Results{res("a", StatusFail, sym("B_SYM", 4), sym("A_SYM", 2.5))}
	ham := Results{res("a", StatusPass, sym("DKIM_ALLOW", -0.2))}
	for _, tc := range []struct {
		mode       HeaderMode
		rs         Results
		wantStatus string // "" = no X-Spam-Status
		wantVerd   string
	}{
		{HeadersAlways, spam, "Yes, score=6.50 required=5.00 tests=A_SYM,B_SYM", "tag; score=6.50; why=score"},
		{HeadersAlways, ham, "No, score=-0.20 required=5.00 tests=DKIM_ALLOW", "accept; score=-0.20; why=score"},
		{HeadersAlways, Results{res("a", StatusNone)}, "No, score=0.00 required=5.00 tests=none", "accept; score=0.00; why=score"},
		{HeadersSpam, spam, "Yes, score=6.50 required=5.00 tests=A_SYM,B_SYM", "tag; score=6.50; why=score"},
		{HeadersSpam, ham, "", ""},
		{HeadersNever, spam, "", ""},
	} {
		p := DefaultPolicy()
		p.Headers = tc.mode
		v := p.Decide(nil, tc.rs, knownChecks)
		got, ok := header(v, "X-Spam-Status")
		if got != tc.wantStatus || ok != (tc.wantStatus != "") {
			t.Errorf("%s: X-Spam-Status %q (%v), want %q", tc.mode, got, ok, tc.wantStatus)
		}
		if got, _ := header(v, "X-Chainmail-Verdict"); got != tc.wantVerd {
			t.Errorf("%s: X-Chainmail-Verdict %q, want %q", tc.mode, got, tc.wantVerd)
		}
	}
	if v := DefaultPolicy().Decide(nil, Results{res("a", StatusFail, sym("A", 20))}, knownChecks); len(v.Headers) != 0 {
		t.Errorf("rejected mail gets headers: %v", v.Headers)
	}
	v := DefaultPolicy().Decide(nil, Results{res("a", StatusFail, sym("A", 12))}, knownChecks)
	if _, ok := header(v, "X-Spam-Status"); !ok {
		t.Errorf("quarantined mail has no X-Spam-Status: %v", v.Headers)
	}
}

func TestPolicyAuthenticationResults(t *testing.T) {
	spf := res("spf", StatusPass)
	spf.AuthResults = []authres.Result{&authres.SPFResult{Value: authres.ResultPass, From: "example.com"}}
	dkim := res("dkim", StatusFail)
	dkim.AuthResults = []authres.Result{&authres.DKIMResult{Value: authres.ResultFail, Domain: "example.com", Identifier: "@example.com"}}
	p := DefaultPolicy()
	p.Hostname = "mx.example.net"
	p.Headers = HeadersNever
	v := p.Decide(nil, Results{spf, res("lists", StatusNone), dkim}, knownChecks)
	got, ok := header(v, "Authentication-Results")
	if want := "mx.example.net; spf=pass smtp.mailfrom=example.com; dkim=fail header.d=example.com header.i=@example.com"; got != want {
		t.Errorf("Authentication-Results %q (%v), want %q", got, ok, want)
	}
	if len(v.Headers) != 1 || v.Headers[0].Name != "Authentication-Results" {
		t.Errorf("headers %v", v.Headers)
	}
	if v := p.Decide(nil, Results{res("lists", StatusNone)}, knownChecks); len(v.Headers) != 0 {
		t.Errorf("no auth results, headers %v", v.Headers)
	}
}

func TestPolicySymbolsAndListed(t *testing.T) {
	a := res("rbl", StatusListed, sym("RBL_B", 2), sym("RBL_A", 2), sym("NEG", -3))
	a.Listed = []string{"ZEN"}
	b := res("uribl", StatusListed, sym("URI", 0.5))
	b.Listed = []string{"DBL"}
	v := DefaultPolicy().Decide(nil, Results{a, b}, knownChecks)
	var names []string
	for _, s := range v.Symbols {
		names = append(names, s.Name)
	}
	if got, want := strings.Join(names, " "), "NEG RBL_A RBL_B URI"; got != want {
		t.Errorf("symbols %q, want %q (by absolute score, then name)", got, want)
	}
	if got := strings.Join(v.Listed, ","); got != "ZEN,DBL" {
		t.Errorf("listed %q", got)
	}
	if v.Score != 1.5 {
		t.Errorf("score %v", v.Score)
	}
}

func TestEngineEvaluate(t *testing.T) {
	var observed *Verdict
	var took time.Duration
	e := &Engine{
		Chain: &Chain{Steps: []Step{{Check: newFake("a", func(context.Context, *Message, Results) Result {
			time.Sleep(5 * time.Millisecond)
			return res("", StatusFail, sym("A", 6))
		})}}},
		Policy: DefaultPolicy(),
		Known:  []string{"a"},
		Observer: funcObserver{verdict: func(m *Message, v *Verdict, d time.Duration) []string {
			observed, took = v, d
			return []string{m.QueueID + " " + v.Action.String()}
		}},
	}
	v, lines := e.Evaluate(context.Background(), policyMessage())
	if v.Action != Tag || len(lines) != 1 || lines[0] != "4Q1 tag" {
		t.Errorf("%v %q", v.Action, lines)
	}
	if observed != v || took < 5*time.Millisecond {
		t.Errorf("Observe got %p after %v, want the verdict %p after ≥ 5ms", observed, took, v)
	}
	e.Observer = nil
	if v, lines := e.Evaluate(context.Background(), policyMessage()); v.Action != Tag || lines != nil {
		t.Errorf("without an observer: %v %q", v.Action, lines)
	}
}

// A rule may name a check by an alias: the alias sees the check's status
// and facts, compiles when the check is only known, and a misspelt alias
// is still a compile error.
func TestPolicyAliases(t *testing.T) {
	p := DefaultPolicy()
	p.Aliases = map[string]string{"sdr": "reputation"}
	p.Rules = []Rule{{Name: "sdr-reject", If: `sdr.verdict in ["awful", "poor"] && !sdr.excepted`, Action: Reject}}
	known := []string{"reputation", "dmarc"}
	if err := p.Compile(known); err != nil {
		t.Fatalf("compile: %v", err)
	}
	rep := func(verdict string, excepted bool) Result {
		return Result{Check: "reputation", Status: StatusPass, Facts: map[string]any{"verdict": verdict, "excepted": excepted}}
	}
	for _, tc := range []struct {
		rs   Results
		want Action
	}{
		{Results{rep("awful", false)}, Reject},
		{Results{rep("poor", true)}, Accept},
		{Results{rep("good", false)}, Accept},
		{nil, Accept}, // the check did not run: the alias is "skipped"
	} {
		if v := p.Decide(policyMessage(), tc.rs, known); v.Action != tc.want {
			t.Errorf("%v: %v (%s), want %v", tc.rs, v.Action, v.Why, tc.want)
		}
	}
	bad := DefaultPolicy()
	bad.Aliases = p.Aliases
	bad.Rules = []Rule{{Name: "typo", If: `sdrr.verdict == "awful"`, Action: Reject}}
	if err := bad.Compile(known); err == nil {
		t.Error("a misspelt alias compiled")
	}
	// An alias of a check nobody knows is not a name either.
	orphan := DefaultPolicy()
	orphan.Aliases = map[string]string{"x": "missing"}
	orphan.Rules = []Rule{{Name: "x", If: `x.status == "pass"`, Action: Reject}}
	if err := orphan.Compile(known); err == nil {
		t.Error("an alias of an unknown check compiled")
	}
}

// learner is a fake check that records what it learnt.
type learner struct {
	fake
	got []Action
}

func (l *learner) Learn(_ context.Context, _ *Message, v *Verdict) { l.got = append(l.got, v.Action) }

func TestEngineLearners(t *testing.T) {
	l := &learner{fake: fake{name: "l", fn: func(context.Context, *Message, Results) Result { return res("", StatusFail, sym("L", 20)) }}}
	var logged bool
	e := &Engine{
		Chain:  &Chain{Steps: []Step{{Check: l}, {Check: newFake("other", nil)}}},
		Policy: DefaultPolicy(),
		Observer: funcObserver{verdict: func(*Message, *Verdict, time.Duration) []string {
			logged = true
			return nil
		}},
	}
	e.Evaluate(context.Background(), policyMessage())
	if len(l.got) != 1 || l.got[0] != Reject || !logged {
		t.Errorf("learnt %v (logged %v), want one reject after the log", l.got, logged)
	}
}

// Declared facts (Factual) are what a rule sees when the check did not
// run, so a comparison compiles and is simply false.
func TestPolicyDeclaredFacts(t *testing.T) {
	p := DefaultPolicy()
	p.Aliases = map[string]string{"sdr": "reputation"}
	p.Facts = map[string]map[string]any{"reputation": {"age_days": -1, "excepted": false}}
	p.Rules = []Rule{{Name: "young", If: `sdr.age_days >= 0 && sdr.age_days < 7 && !sdr.excepted`, Action: Quarantine}}
	known := []string{"reputation"}
	if err := p.Compile(known); err != nil {
		t.Fatalf("compile: %v", err)
	}
	if v := p.Decide(policyMessage(), nil, known); v.Action != Accept {
		t.Errorf("not run: %v", v.Action)
	}
	// A result without the fact (a timeout) falls back to the declared one.
	if v := p.Decide(policyMessage(), Results{{Check: "reputation", Status: StatusTimeout}}, known); v.Action != Accept {
		t.Errorf("timed out: %v (%s)", v.Action, v.Why)
	}
	young := Results{{Check: "reputation", Status: StatusFail, Facts: map[string]any{"age_days": 2, "excepted": false}}}
	if v := p.Decide(policyMessage(), young, known); v.Action != Quarantine {
		t.Errorf("young: %v (%s)", v.Action, v.Why)
	}
	// Without the declaration the same rule does not compile.
	bare := DefaultPolicy()
	bare.Aliases = p.Aliases
	bare.Rules = p.Rules
	if err := bare.Compile(known); err == nil {
		t.Error("compiled without declared facts")
	}
}
