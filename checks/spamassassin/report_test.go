package spamassassin

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// A report as spamd 4.0 writes it, with a folded description and
// negative scores.
const sampleReport = "SPAMD/1.1 0 EX_OK\r\nContent-length: %LEN%\r\nSpam: True ; 6.6 / 5.0\r\n\r\n" + sampleBody

const sampleBody = `Spam detection software, running on the system "mx",
has identified this incoming email as possible spam.

Content analysis details:   (6.6 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
 0.8 BAYES_50               BODY: Bayes spam probability is 40 to 60%
                            [score: 0.5004]
-1.9 DKIM_VALID_AU          Message has a valid DKIM or DK signature from
                            author's domain
 1000 GTUBE                 BODY: Generic Test for Unsolicited Bulk Email
-0.0 NO_RELAYS              Informational: message was not relayed via SMTP
 2.5 URIBL_BLACK            Contains an URL listed in the URIBL blacklist
                            [URIs: example.com]
-994.8 USER_IN_WELCOMELIST  User is listed in 'welcomelist_from'

trailing text 9.9 NOT_A_RULE
`

func withLen(s, body string) string {
	return strings.Replace(s, "%LEN%", strconv.Itoa(len(body)), 1)
}

// TestParseReport: the verdict, total and required score of the Spam
// header, and every row of the table with its score (negative, -0.0, a
// four-digit one) and its description unfolded; text outside the table
// is not read as a rule.
func TestParseReport(t *testing.T) {
	rep, err := ParseReport([]byte(withLen(sampleReport, sampleBody)))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Spam || rep.Score != 6.6 || rep.Required != 5 {
		t.Errorf("%+v", rep)
	}
	want := []Rule{
		{"BAYES_50", 0.8, "BODY: Bayes spam probability is 40 to 60% [score: 0.5004]"},
		{"DKIM_VALID_AU", -1.9, "Message has a valid DKIM or DK signature from author's domain"},
		{"GTUBE", 1000, "BODY: Generic Test for Unsolicited Bulk Email"},
		{"NO_RELAYS", 0, "Informational: message was not relayed via SMTP"},
		{"URIBL_BLACK", 2.5, "Contains an URL listed in the URIBL blacklist [URIs: example.com]"},
		{"USER_IN_WELCOMELIST", -994.8, "User is listed in 'welcomelist_from'"},
	}
	if len(rep.Rules) != len(want) {
		t.Fatalf("rules %+v", rep.Rules)
	}
	for i, w := range want {
		if rep.Rules[i] != w {
			t.Errorf("rule %d: %+v, want %+v", i, rep.Rules[i], w)
		}
	}
}

// TestParseReportHam: "Spam: False" is ham; a negative total is read.
func TestParseReportHam(t *testing.T) {
	body := " pts rule name              description\n---- ---------------------- ----\n-0.1 DKIM_VALID             Message has at least one valid DKIM or DK signature\n\n"
	rep, err := ParseReport([]byte("SPAMD/1.1 0 EX_OK\r\nContent-length: " + strconv.Itoa(len(body)) + "\r\nSpam: False ; -0.1 / 5.0\r\n\r\n" + body))
	if err != nil || rep.Spam || rep.Score != -0.1 || len(rep.Rules) != 1 || rep.Rules[0].Score != -0.1 {
		t.Errorf("%+v %v", rep, err)
	}
}

// TestParseReportErrors: spamd's EX_* codes are ErrUnavailable (spamd
// could not judge); what is not its protocol is ErrProtocol.
func TestParseReportErrors(t *testing.T) {
	for answer, want := range map[string]error{
		"SPAMD/1.0 76 Bad header line: (EOF)\r\n": ErrUnavailable,
		"SPAMD/1.0 75 EX_TEMPFAIL\r\n":            ErrUnavailable,
		"SPAMD/1.0 69 EX_UNAVAILABLE\r\n":         ErrUnavailable,
		"":                                        ErrProtocol,
		"garbage\r\n":                             ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\n":                   ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\n\r\n":               ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\nSpam: True ; x / 5.0\r\n\r\n":                         ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1e309 / 5\r\n\r\n":                       ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\nSpam: True 6.5 / 5.0\r\n\r\n":                         ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\nContent-length: -1\r\nSpam: True ; 1 / 5\r\n\r\n":     ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 9\r\nSpam: True ; 1 / 5\r\n\r\nshort": ErrProtocol,
		"SPAMD/1.1 0 EX_OK\r\nno colon\r\nSpam: True ; 1 / 5\r\n\r\n":               ErrProtocol,
	} {
		if _, err := ParseReport([]byte(answer)); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", answer, err, want)
		}
	}
}

// TestScanBytes: a message over the limit is cut at the last line end
// within it; one at the limit is whole.
func TestScanBytes(t *testing.T) {
	msg := "a: b\r\n\r\nline one\r\nline two\r\n"
	got, size, trunc, err := scanBytes(stringsReader(msg), int64(len(msg)))
	if err != nil || string(got) != msg || trunc || size != int64(len(msg)) {
		t.Errorf("at the limit: %q %d %v %v", got, size, trunc, err)
	}
	got, size, trunc, err = scanBytes(stringsReader(msg), int64(len(msg)-3))
	if err != nil || string(got) != "a: b\r\n\r\nline one\r\n" || !trunc || size != int64(len(msg)) {
		t.Errorf("over the limit: %q %d %v %v", got, size, trunc, err)
	}
}

// TestRest: what the table does not itemise is one symbol, so the
// symbols sum to SpamAssassin's total.
func TestRest(t *testing.T) {
	if r := round1(6.6 - (0.8 + 2.7 + 3.0)); r != 0.1 {
		t.Errorf("rest %v", r)
	}
	if r := round1(5.0 - (2.5 + 2.5)); r != 0 {
		t.Errorf("rest %v", r)
	}
	if r := round1(-0.04); r != 0 || 1/r < 0 {
		t.Errorf("rest %v", r)
	}
}
