package whaling_test

import (
	"context"
	"strings"
	"testing"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/verdictlog"
	"chainmail/checks/whaling"
)

func newCheck(t *testing.T) *whaling.Check {
	t.Helper()
	c, err := whaling.New(whaling.Config{
		Protected: []whaling.Person{
			{Name: "John Doe", Addresses: []string{"john.doe@example.com", "jd@example.com"}, Aliases: []string{"Johnny Doe"}},
			{Name: "Maria García-López", Addresses: []string{"maria@example.com"}},
		},
		Domains:     []string{"example.com", "example-group.org"},
		MaxDistance: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msg(from string, extra ...string) *checks.Message {
	m := &checks.Message{Envelope: checks.Envelope{QueueID: "4Whale01", MailFrom: "bounce@sender.test", Rcpts: []string{"cfo@example.com"}}}
	m.Header = append(m.Header, checks.HeaderField{Name: "From", Value: from})
	for i := 0; i+1 < len(extra); i += 2 {
		m.Header = append(m.Header, checks.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	return m
}

func TestDisplayNames(t *testing.T) {
	c := newCheck(t)
	long := strings.Repeat("\u200b", 1000)
	for _, tc := range []struct {
		from, target, match string
	}{
		{`John Doe <ceo.office@gmail.test>`, "John Doe", "exact"},
		{`"Doe, John" <ceo@gmail.test>`, "John Doe", "reordered"},
		{"=?utf-8?b?0IpvaG4gRG9l?= <x@gmail.test>", "John Doe", "similar"},          // Њ is no look-alike, but one letter off
		{"=?utf-8?q?J=D0=BEhn_D=D0=BEe?= <x@gmail.test>", "John Doe", "confusable"}, // Cyrillic о
		{"\"J\u200bohn \u202eDoe\u202c\" <x@gmail.test>", "John Doe", "exact"},      // zero-width, bidi override
		{"\"\u2067John Doe\u2069\" <x@gmail.test>", "John Doe", "exact"},            // an isolate
		{"\"John Doe 🐳💼\" <x@gmail.test>", "John Doe", "exact"},
		{"\"John Doe, CEO\" <x@gmail.test>", "John Doe", "contains"},
		{"\"💼John💼Doe💼\" <x@gmail.test>", "John Doe", "exact"},
		{"\"John Doe" + long + "\" <x@gmail.test>", "John Doe", "exact"}, // 1 000 invisible characters
		{"\"" + strings.Repeat("🐳", 250) + "John Doe\" <x@gmail.test>", "John Doe", "exact"},
		{"\"Jonh Doe\" <x@gmail.test>", "John Doe", "similar"},
		{"\"Johnny Doe\" <x@gmail.test>", "John Doe", "exact"},
		{"\"MARIA GARCIA LOPEZ\" <m@gmail.test>", "Maria García-López", "exact"},
		{"\"MARIА GARCIA LOPEZ\" <m@gmail.test>", "Maria García-López", "confusable"}, // Cyrillic А
		{"\"BiII Doe\" <m@gmail.test>", "", ""},
		{"\"john.doe@example.com\" <x@gmail.test>", "John Doe", "address in name"},
		{`John Doe <john.doe@example.com>`, "", ""}, // his own address
		{`"John Doe" <JD@Example.com>`, "", ""},
		{`Jane Doe <jane@gmail.test>`, "", ""},
		{"\"" + strings.Repeat("lorem ipsum ", 84) + "John Doe\" <x@gmail.test>", "", ""}, // buried in 1 000 characters of words
		{"<x@gmail.test>", "", ""},
	} {
		r := c.Check(context.Background(), msg(tc.from), nil)
		if got, _ := r.Facts["target"].(string); got != tc.target || r.Facts["match"] != tc.match {
			t.Errorf("From %q: target %q match %q, want %q %q (%s)", clip(tc.from), got, r.Facts["match"], tc.target, tc.match, r.Reason)
		}
		if (tc.target != "") != (r.Status == checks.StatusFail) {
			t.Errorf("From %q: status %s", clip(tc.from), r.Status)
		}
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func TestCousinsAndReplyTo(t *testing.T) {
	c := newCheck(t)
	for _, tc := range []struct {
		from, replyTo string
		cousin, kind  string
		diverted      string
	}{
		{"billing@examp1e.com", "", "examp1e.com", "homograph", ""},
		{"billing@xn--exmple-4nf.com", "", "xn--exmple-4nf.com", "homograph", ""},
		{"billing@exmaple.com", "", "exmaple.com", "typo", ""},
		{"billing@example.net", "", "example.net", "other-tld", ""},
		{"billing@example-payroll.com", "", "example-payroll.com", "combo", ""},
		{"billing@sub.example.com", "", "", "", ""},
		{"billing@example-group.org", "", "", "", ""},
		{"news@vendor.test", "reply@gmail.test", "", "", "gmail.test"},
		{"news@vendor.test", "reply@lists.vendor.test", "", "", ""},
		{"news@vendor.test", "reply@example.com", "", "", ""},
		{"ceo@example.com", "ceo@exarnple.com", "exarnple.com", "homograph", "exarnple.com"},
	} {
		m := msg(tc.from)
		if tc.replyTo != "" {
			m.Header = append(m.Header, checks.HeaderField{Name: "Reply-To", Value: tc.replyTo})
		}
		r := c.Check(context.Background(), m, nil)
		if r.Facts["cousin_domain"] != tc.cousin || r.Facts["cousin_kind"] != tc.kind || r.Facts["reply_to_domain"] != tc.diverted {
			t.Errorf("From %s Reply-To %s: cousin %v (%v), diverted %v; want %q %q %q", tc.from, tc.replyTo, r.Facts["cousin_domain"], r.Facts["cousin_kind"], r.Facts["reply_to_domain"], tc.cousin, tc.kind, tc.diverted)
		}
	}
	// The envelope sender counts too.
	m := msg("Support <help@vendor.test>")
	m.MailFrom = "bounces@exampIe.com"
	if r := c.Check(context.Background(), m, nil); r.Facts["cousin"] != true {
		t.Errorf("envelope cousin missed: %v", r.Facts)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []whaling.Config{
		{Protected: []whaling.Person{{Name: ""}}},
		{Protected: []whaling.Person{{Name: "🐳"}}},
		{Protected: []whaling.Person{{Name: "A B", Addresses: []string{"nope"}}}},
		{Domains: []string{"com"}},
		{MaxDistance: 9},
	} {
		if _, err := whaling.New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// Through the configuration's default rule: quarantined, and the line is
// logged only because the message was blocked.
func TestWhalingLineWhenBlocked(t *testing.T) {
	build := func(action string) *checks.Engine {
		f, err := config.Parse("t.yaml", []byte(`
rules:
  - name: whaling
    if: whaling.impersonated
    action: `+action+`
checks:
  - name: whaling
    options:
      protected: [{name: John Doe, addresses: [john.doe@example.com]}]
`))
		if err != nil {
			t.Fatal(err)
		}
		e, err := f.Build(config.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		e.Observer = checks.VerdictFunc(verdictlog.Lines)
		return e
	}
	want := "Message 4Whale01 has been blocked as Whaling attack to John Doe john.doe@example.com"
	v, lines := build("quarantine").Evaluate(context.Background(), msg(`"John Doe" <ceo@gmail.test>`))
	if v.Action != checks.Quarantine || !contains(lines, want) {
		t.Errorf("quarantine: %v\n%s", v.Action, strings.Join(lines, "\n"))
	}
	v, lines = build("tag").Evaluate(context.Background(), msg(`"John Doe" <ceo@gmail.test>`))
	if v.Action != checks.Tag || contains(lines, want) {
		t.Errorf("tag: %v\n%s", v.Action, strings.Join(lines, "\n"))
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func BenchmarkWhaling(b *testing.B) {
	c, _ := whaling.New(whaling.Config{Protected: []whaling.Person{
		{Name: "John Doe", Addresses: []string{"john.doe@example.com"}},
		{Name: "Maria García-López", Addresses: []string{"maria@example.com"}},
		{Name: "Wei Zhang", Addresses: []string{"wei@example.com"}},
	}, Domains: []string{"example.com"}, MaxDistance: 1})
	m := msg(`"Newsletter Team" <news@vendor.test>`, "Reply-To", "help@vendor.test")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Check(context.Background(), m, nil)
	}
}
