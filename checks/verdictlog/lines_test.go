package verdictlog

import (
	"errors"
	"net"
	"strings"
	"testing"

	"chainmail/checks"
)

// msg builds a message with the envelope fields the lines use and a raw
// Subject header value.
func msg(id, ip, from string, rcpts []string, subject string) *checks.Message {
	m := &checks.Message{Envelope: checks.Envelope{
		QueueID: id, MailFrom: from, Rcpts: rcpts,
	}}
	if ip != "" {
		m.ClientIP = net.ParseIP(ip)
	}
	if subject != "" {
		m.Header = []checks.HeaderField{{Name: "Subject", Value: subject}}
	}
	return m
}

func checkLines(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d lines, want %d", len(got), len(want))
	}
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("line %d:\n got: %q\nwant: %q", i+1, g, w)
		}
	}
}

func TestLines(t *testing.T) {
	base := msg("4XyZ1k2L3m", "192.0.2.7", "bob@sender.example", []string{"alice@example.com"}, "Hello there")
	spf := checks.Symbol{Name: "R_SPF_FAIL", Score: 1}
	zen := checks.Symbol{Name: "RBL_SPAMHAUS", Score: 4}

	cases := []struct {
		name string
		m    *checks.Message
		v    *checks.Verdict
		want []string
	}{
		{
			name: "spam with lists",
			m:    base,
			v: &checks.Verdict{Action: checks.Tag, Score: 12.4, Required: 5, Spam: true, Why: checks.Why{By: checks.ByScore},
				Symbols: []checks.Symbol{spf, zen}, Listed: []string{"spamhaus-ZEN", "SpamCop", "spamhaus-ZEN"}},
			want: []string{
				"RBL checks: 4XyZ1k2L3m found in spamhaus-ZEN, SpamCop",
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is spam, spamhaus-ZEN, SpamCop, chainmail (not cached, score=12.40, required 5.00, R_SPF_FAIL 1.00, RBL_SPAMHAUS 4.00)",
				"Spam Actions: message 4XyZ1k2L3m actions are deliver,header",
				"Delivery of spam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
			},
		},
		{
			name: "spam without lists",
			m:    base,
			v: &checks.Verdict{Action: checks.Quarantine, Score: 10.5, Required: 5, Spam: true, Why: checks.Why{By: checks.ByScore},
				Symbols: []checks.Symbol{{Name: "BAYES_99", Score: 9.5}, spf}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is spam, chainmail (not cached, score=10.50, required 5.00, BAYES_99 9.50, R_SPF_FAIL 1.00)",
				"Spam Actions: message 4XyZ1k2L3m actions are store",
				"Non-delivery of spam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
			},
		},
		{
			name: "not spam, no symbols",
			m:    base,
			v:    &checks.Verdict{Action: checks.Accept, Required: 5, Why: checks.Why{By: checks.ByScore}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is not spam, chainmail (not cached, score=0.00, required 5.00)",
				"Delivery of nonspam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
			},
		},
		{
			name: "not spam, negative symbol",
			m:    base,
			v: &checks.Verdict{Action: checks.Accept, Score: 0.3, Required: 5, Why: checks.Why{By: checks.ByScore},
				Symbols: []checks.Symbol{{Name: "MIME_HTML_ONLY", Score: 0.5}, {Name: "DKIM_ALLOW", Score: -0.2}}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is not spam, chainmail (not cached, score=0.30, required 5.00, MIME_HTML_ONLY 0.50, DKIM_ALLOW -0.20)",
				"Delivery of nonspam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
			},
		},
		{
			name: "null sender, no queue id, no client ip, no subject",
			m:    msg("", "", "", []string{"postmaster@example.com"}, ""),
			v:    &checks.Verdict{Required: 5, Score: -0.001},
			want: []string{
				"Message NOQUEUE from unknown (<>) to example.com is not spam, chainmail (not cached, score=0.00, required 5.00)",
				"Delivery of nonspam: message NOQUEUE from <> to postmaster@example.com with subject ",
			},
		},
		{
			name: "several recipients, repeated domains, brackets",
			m: msg("ABC", "2001:db8::25", "<news@list.example>",
				[]string{"a@Example.COM", "<b@example.com>", "c@other.example", "d@EXAMPLE.com", "local"}, "Digest"),
			v: &checks.Verdict{Required: 5, Score: 1},
			want: []string{
				"Message ABC from 2001:db8::25 (news@list.example) to example.com,other.example,local is not spam, chainmail (not cached, score=1.00, required 5.00)",
				"Delivery of nonspam: message ABC from news@list.example to a@Example.COM,b@example.com,c@other.example,d@EXAMPLE.com,local with subject Digest",
			},
		},
		{
			name: "no recipients",
			m:    msg("ABC", "192.0.2.1", "x@y.example", nil, "s"),
			v:    &checks.Verdict{Required: 5},
			want: []string{
				"Message ABC from 192.0.2.1 (x@y.example) to unknown is not spam, chainmail (not cached, score=0.00, required 5.00)",
				"Delivery of nonspam: message ABC from x@y.example to unknown with subject s",
			},
		},
		{
			name: "monitor, spam",
			m:    base,
			v: &checks.Verdict{Action: checks.Accept, Monitor: true, Would: checks.Reject, Score: 16, Required: 5,
				Spam: true, Why: checks.Why{By: checks.ByScore}, Symbols: []checks.Symbol{{Name: "BAYES_99", Score: 16}}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is spam, chainmail (not cached, score=16.00, required 5.00, BAYES_99 16.00)",
				"Spam Actions: message 4XyZ1k2L3m actions are deliver",
				"Monitor: message 4XyZ1k2L3m would be reject (score)",
				"Delivery of spam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
			},
		},
		{
			name: "monitor, not spam but held back",
			m:    base,
			v: &checks.Verdict{Action: checks.Accept, Monitor: true, Would: checks.Tempfail, Required: 5, Why: checks.Why{By: checks.ByError, Name: "spf"},
				Results: checks.Results{{Check: "spf", Status: checks.StatusError, Reason: "panic: boom"}}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is not spam, chainmail (not cached, score=0.00, required 5.00)",
				"Monitor: message 4XyZ1k2L3m would be tempfail (error:spf)",
				"Delivery of nonspam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
				"Check spf on message 4XyZ1k2L3m: error (panic: boom)",
			},
		},
		{
			name: "monitor, nothing held back",
			m:    base,
			v:    &checks.Verdict{Action: checks.Accept, Monitor: true, Would: checks.Accept, Required: 5, Why: checks.Why{By: checks.ByScore}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is not spam, chainmail (not cached, score=0.00, required 5.00)",
				"Delivery of nonspam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
			},
		},
		{
			name: "tempfail on a check error, with diagnostics",
			m:    base,
			v: &checks.Verdict{Action: checks.Tempfail, Required: 5, Why: checks.Why{By: checks.ByError, Name: "dkim"}, Results: checks.Results{
				{Check: "spf", Status: checks.StatusPass},
				{Check: "dkim", Status: checks.StatusError, Reason: "panic: index out of range"},
				{Check: "rbl", Status: checks.StatusTimeout, Reason: "no answer within 10s"},
				{Check: "antivirus", Status: checks.StatusSkipped, Reason: "too big (30000000 > 25000000)"},
				{Check: "uribl", Status: checks.StatusSkipped, Reason: "decisive rbl"},
				{Check: "reputation", Status: checks.StatusError, Err: errors.New("store: connection refused")},
				{Check: "greylist", Status: checks.StatusTimeout},
			}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is not spam, chainmail (not cached, score=0.00, required 5.00)",
				"Deferral of message: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there (error:dkim)",
				"Check dkim on message 4XyZ1k2L3m: error (panic: index out of range)",
				"Check rbl on message 4XyZ1k2L3m: timeout (no answer within 10s)",
				"Check antivirus on message 4XyZ1k2L3m: skipped (too big (30000000 > 25000000))",
				"Check reputation on message 4XyZ1k2L3m: error (store: connection refused)",
				"Check greylist on message 4XyZ1k2L3m: timeout",
			},
		},
		{
			name: "rejected although not spam",
			m:    base,
			v:    &checks.Verdict{Action: checks.Reject, Required: 5, Why: checks.Why{By: checks.ByError, Name: "spf"}},
			want: []string{
				"Message 4XyZ1k2L3m from 192.0.2.7 (bob@sender.example) to example.com is not spam, chainmail (not cached, score=0.00, required 5.00)",
				"Non-delivery of nonspam: message 4XyZ1k2L3m from bob@sender.example to alice@example.com with subject Hello there",
			},
		},
		{
			name: "nil message and verdict",
			want: []string{
				"Message NOQUEUE from unknown (<>) to unknown is not spam, chainmail (not cached, score=0.00, required 0.00)",
				"Delivery of nonspam: message NOQUEUE from <> to unknown with subject ",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkLines(t, Lines(c.m, c.v), c.want)
		})
	}
}

// TestActions covers the Spam Actions and delivery line of every action.
func TestActions(t *testing.T) {
	m := msg("Q1", "198.51.100.9", "s@a.example", []string{"r1@b.example", "r2@b.example"}, "Offer")
	const tail = "message Q1 from s@a.example to r1@b.example,r2@b.example with subject Offer"
	cases := []struct {
		action   checks.Action
		acts     string
		delivery string
	}{
		{checks.Accept, "deliver", "Delivery of spam: " + tail},
		{checks.Tag, "deliver,header", "Delivery of spam: " + tail},
		{checks.Quarantine, "store", "Non-delivery of spam: " + tail},
		{checks.Tempfail, "defer", "Deferral of message: " + tail + " (rule:dmarc-temp)"},
		{checks.Reject, "bounce", "Non-delivery of spam: " + tail},
		{checks.Discard, "delete", "Non-delivery of spam: " + tail},
	}
	for _, c := range cases {
		t.Run(c.action.String(), func(t *testing.T) {
			v := &checks.Verdict{Action: c.action, Spam: true, Score: 7, Required: 5, Why: checks.Why{By: checks.ByRule, Name: "dmarc-temp"}}
			checkLines(t, Lines(m, v), []string{
				"Message Q1 from 198.51.100.9 (s@a.example) to b.example is spam, chainmail (not cached, score=7.00, required 5.00)",
				"Spam Actions: message Q1 actions are " + c.acts,
				c.delivery,
			})
		})
	}
}

// TestInjection: whatever a sender controls cannot start a new line.
func TestInjection(t *testing.T) {
	// An encoded word decodes to CR LF: Unfold cannot catch it.
	m := msg("Q2", "192.0.2.1", "evil@x.example\nMessage Q3 from 1.2.3.4",
		[]string{"a@example.com\r\nDelivery of nonspam: x"},
		"=?utf-8?q?Hi=0D=0AMessage_Q9_from_10.0.0.1_is_not_spam?= \x1b[31mred\x7f tab\there")
	v := &checks.Verdict{Required: 5, Why: checks.Why{By: checks.ByRule, Name: "x\nfake"}, Action: checks.Tempfail,
		Listed:  []string{"BAD\nLIST"},
		Symbols: []checks.Symbol{{Name: "SYM\r\nX", Score: 1}},
		Results: checks.Results{{Check: "av", Status: checks.StatusError, Reason: "clamd: \"line1\nline2\""}}}
	got := Lines(m, v)
	checkLines(t, got, []string{
		"RBL checks: Q2 found in BAD LIST",
		"Message Q2 from 192.0.2.1 (evil@x.example Message Q3 from 1.2.3.4) to example.com  delivery of nonspam: x is not spam, BAD LIST, chainmail (not cached, score=0.00, required 5.00, SYM  X 1.00)",
		"Deferral of message: message Q2 from evil@x.example Message Q3 from 1.2.3.4 to a@example.com  Delivery of nonspam: x with subject Hi  Message Q9 from 10.0.0.1 is not spam  [31mred  tab here (rule:x fake)",
		"Check av on message Q2: error (clamd: \"line1 line2\")",
	})
	for _, l := range got {
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("line holds a line break: %q", l)
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	m := msg("Q4", "192.0.2.1", "a@b.example", []string{"c@d.example"}, "caf\xe9 na\xc3\xafve \xf0\x9f\x93\xa7")
	got := Lines(m, &checks.Verdict{Required: 5})
	want := "Delivery of nonspam: message Q4 from a@b.example to c@d.example with subject caf\uFFFD naïve 📧"
	if got[1] != want {
		t.Errorf("got %q, want %q", got[1], want)
	}
}

func TestSanitize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"plain ASCII line", "plain ASCII line"},
		{"a\r\nb", "a  b"},
		{"a\tb\x00c\x7fd", "a b c d"},
		{"nel\u0085ls\u2028ps\u2029end", "nel ls ps end"},
		{"ünïcødé ✓", "ünïcødé ✓"},
		{"bad\xffbyte\xc3", "bad\uFFFDbyte\uFFFD"},
		{"\uFFFD kept", "\uFFFD kept"},
	}
	for _, c := range cases {
		if got := Sanitize(c.in); got != c.want {
			t.Errorf("Sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEventLines(t *testing.T) {
	cases := []struct{ got, want string }{
		{infectedLine("4XyZ", "192.0.2.7"), "Infected message 4XyZ came from 192.0.2.7"},
		{infectedLine("", ""), "Infected message NOQUEUE came from unknown"},
		{filenameCheckLine("4XyZ", "invoice.pdf.exe", "Attempt to hide real filename extension"),
			"Filename Checks: Attempt to hide real filename extension (4XyZ invoice.pdf.exe)"},
		{filenameCheckLine("4XyZ", "a\nb.exe", "Windows executable\r\n"),
			"Filename Checks: Windows executable   (4XyZ a b.exe)"},
		{filetypeCheckLine("4XyZ", "doc.zip", "No executables allowed"),
			"Filetype Checks: No executables allowed (4XyZ doc.zip)"},
		{whalingLine("4XyZ", "John Doe", "john@example.com"),
			"Message 4XyZ has been blocked as Whaling attack to John Doe john@example.com"},
		{whalingLine("4XyZ", "", "<john@example.com>"),
			"Message 4XyZ has been blocked as Whaling attack to john@example.com"},
		{sdrDomainsLine("4XyZ", SDRDomains{HELO: "mx.sender.example", EnvFrom: "sender.example", HeaderFrom: "sender.example"}),
			"MID 4XyZ SDR: Domains for which SDR is requested: reverse DNS host: Not Present, helo: mx.sender.example, env-from: sender.example, header-from: sender.example, reply-to: Not Present"},
		{sdrDomainsLine("4XyZ", SDRDomains{ReverseDNS: "mail.sender.example", HELO: "mail.sender.example", EnvFrom: "sender.example", HeaderFrom: "brand.example", ReplyTo: "freemail.example"}),
			"MID 4XyZ SDR: Domains for which SDR is requested: reverse DNS host: mail.sender.example, helo: mail.sender.example, env-from: sender.example, header-from: brand.example, reply-to: freemail.example"},
		{sdrVerdictLine("4XyZ", SDRVerdict{Verdict: "awful", ThreatCategory: "Phishing", SuspectedDomains: []string{"brand-login.example", "cdn.example"}, YoungestDomain: "brand-login.example", AgeDays: 2, AgeKnown: true}),
			"MID 4XyZ SDR: Consolidated Sender Reputation: Awful, Threat Category: Phishing, Suspected Domain(s) : brand-login.example, cdn.example. Youngest Domain Age: 2 days for domain: brand-login.example"},
		{sdrVerdictLine("4XyZ", SDRVerdict{Verdict: "Good", SuspectedDomains: []string{"sender.example"}, YoungestDomain: "sender.example"}),
			"MID 4XyZ SDR: Consolidated Sender Reputation: Good, Threat Category: N/A, Suspected Domain(s) : sender.example. Youngest Domain Age: unknown for domain: sender.example"},
		{sdrVerdictLine("", SDRVerdict{AgeKnown: true}),
			"MID NOQUEUE SDR: Consolidated Sender Reputation: Unknown, Threat Category: N/A, Suspected Domain(s) : N/A. Youngest Domain Age: 0 days for domain: N/A"},
		{quotaLine(QuotaEvent{Host: "192.0.2.7", HELO: "laptop", From: "alice@example.com", To: "bob@example.org",
			Policy: "submission", Quota: "per-user-hour", Limit: "messages", Track: "SASLUsername:alice",
			Counter: "MessageCount", Current: 71.16, Max: 70}),
			"module=Quotas, action=defer, host=192.0.2.7, helo=laptop, from=alice@example.com, to=bob@example.org, reason=quota_match, policy=submission, quota=per-user-hour, limit=messages, track=SASLUsername:alice, counter=MessageCount, quota=71.16/70 (101.7%)"},
		{quotaLine(QuotaEvent{Action: "reject", Host: "192.0.2.7", HELO: "h", To: "bob@example.org",
			Policy: "1", Quota: "2", Limit: "3", Track: "Sender:@example.com", Counter: "MessageCumulativeSize", Current: 5, Max: 0}),
			"module=Quotas, action=reject, host=192.0.2.7, helo=h, from=<>, to=bob@example.org, reason=quota_match, policy=1, quota=2, limit=3, track=Sender:@example.com, counter=MessageCumulativeSize, quota=5.00/0 (n/a)"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d:\n got: %q\nwant: %q", i+1, c.got, c.want)
		}
	}
}

// Events reported by checks come after the RBL line and before the
// verdict line, in result order.
func TestLinesIncludeCheckEvents(t *testing.T) {
	m := &checks.Message{Envelope: checks.Envelope{QueueID: "Q9", MailFrom: "a@example.net", Rcpts: []string{"b@example.org"}}}
	v := &checks.Verdict{Listed: []string{"ZEN"}, Results: checks.Results{
		{Check: "attachment", Events: []checks.Event{{Name: "filename", Line: filenameCheckLine("Q9", "x.exe", "Windows executable")}}},
		{Check: "antivirus", Events: []checks.Event{{Name: "infected", Line: infectedLine("Q9", "192.0.2.1")}}},
	}}
	got := Lines(m, v)
	if len(got) < 4 || got[0] != "RBL checks: Q9 found in ZEN" ||
		got[1] != "Filename Checks: Windows executable (Q9 x.exe)" ||
		got[2] != "Infected message Q9 came from 192.0.2.1" ||
		!strings.HasPrefix(got[3], "Message Q9 from ") {
		t.Fatalf("lines %q", got)
	}
}

// The youngest domain's age is written in Cisco's own form.
func TestDomainAge(t *testing.T) {
	for days, want := range map[int]string{0: "0 days", 1: "1 day", 21: "21 days", 30: "1 month", 209: "6 months 29 days", 365: "1 year", 400: "1 year 1 month 5 days"} {
		if got := DomainAge(days); got != want {
			t.Errorf("DomainAge(%d) = %q, want %q", days, got, want)
		}
	}
}

// A message deferred because a check could not answer is logged as a
// deferral, not as spam: no verdict line, no Spam Actions.
func TestOutageLoggedAsDeferral(t *testing.T) {
	m := &checks.Message{Envelope: checks.Envelope{QueueID: "Q1", MailFrom: "a@example.com", Rcpts: []string{"b@example.org"}}}
	v := &checks.Verdict{Action: checks.Tempfail, Spam: true, Why: checks.Why{By: checks.ByRule, Name: "antivirus-unavailable"},
		Results: checks.Results{{Check: "antivirus", Status: checks.StatusTemperror, Reason: "clamd: connection refused"}}}
	got := strings.Join(Lines(m, v), "\n")
	want := "Message Q1 from unknown (a@example.com) to example.org is not spam, chainmail (not cached, score=0.00, required 0.00)\n" +
		"Deferral of message: message Q1 from a@example.com to b@example.org with subject  (rule:antivirus-unavailable)"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
