package milter_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/milter/miltertest"
	"chainmail/milter/mtatest"
)

// forgedForms are forged fields in the shapes an MTA passes on that a
// milter test client would not produce: white space before the colon
// (RFC 5322 obsolete syntax, which readers accept), a NUL byte (the MTA
// cuts the value there), a comment folded over lines before our id, the
// id alone on its line, 8-bit bytes, no space after the colon, and
// several fields of one name between fields of that name that are kept
// (the removal indexes must hit the forged ones only).
const forgedForms = "X-Spam-Status: No FORGED1\r\n" +
	"X-Spam-Status : No FORGED2\r\n" +
	"X-Spam-Status\t: No FORGED3\r\n" +
	"Authentication-Results : mx.chainmail.test; dkim=pass FORGED4\r\n" +
	"Subject: h\xc3\xa9llo\r\n" +
	"Authentication-Results: other.example; dkim=pass KEPT1\r\n" +
	"Authentication-Results: mx.chainmail.test; dkim=pass FORGED5 \xc3\xa9\r\n" +
	"authentication-results: (a\r\n (b) c)\r\n mx.chainmail.test; dkim=pass FORGED6\r\n" +
	"Authentication-Results: other.example; dkim=pass KEPT2\r\n" +
	"Authentication-Results: mx.chainmail.test\x00; dkim=pass FORGED7\r\n" +
	"X-Spam-Flag:YES-FORGED8\r\n" +
	"X-Chainmail-Verdict: FORGED9\r\n" +
	"X-Spam-Score: FORGED10\r\n" +
	"Authentication-Results: mx.chainmail.test\r\n\t; dkim=pass FORGED11\r\n" +
	"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n"

type mta interface {
	Dial(testing.TB) *mtatest.SMTPClient
	Delivered(testing.TB, int, time.Duration) []mtatest.Delivered
}

// Through real Postfix and sendmail, every forged form is removed and
// the fields of the same names that are not ours are delivered.
func TestForgedFormsRemovedThroughMTAs(t *testing.T) {
	for _, name := range []string{"postfix", "sendmail"} {
		t.Run(name, func(t *testing.T) {
			p := checks.DefaultPolicy()
			p.Hostname = "mx.chainmail.test"
			eng := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: verdictOf{}, Decisive: checks.DecisiveBoth, Timeout: 5 * time.Second}}}, Policy: p}
			srv := miltertest.Start(t, eng)
			var m mta
			if name == "sendmail" {
				m = mtatest.StartSendmail(t, mtatest.SendmailOptions{Milter: "inet:" + srv.Addr})
			} else {
				m = mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + srv.Addr})
			}
			c := m.Dial(t)
			c.Ehlo("client.example")
			if r := c.Send("alice@example.com", []string{"bob@example.org"}, []byte(forgedForms+"\r\nHello.\r\n")); r.Code != 250 {
				t.Fatalf("send: %v", r)
			}
			c.Quit()
			got := m.Delivered(t, 1, 20*time.Second)
			if len(got) != 1 {
				t.Fatalf("delivered %d messages", len(got))
			}
			head, _, _ := bytes.Cut(got[0].Data, []byte("\r\n\r\n"))
			h := string(head)
			if strings.Contains(h, "FORGED") || !strings.Contains(h, "KEPT1") || !strings.Contains(h, "KEPT2") {
				t.Errorf("delivered header:\n%s", h)
			}
		})
	}
}
