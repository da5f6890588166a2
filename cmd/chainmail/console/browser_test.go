package console

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"

	"chainmail/checks/checktest"
)

// TestBrowser drives the console with a real Chromium: the login form,
// the history, a record and its "learn as spam" button, the quarantine's
// release button, a message upload, the graphs and the status page, with
// a screenshot of each ($CHAINMAIL_SCREENSHOTS; `make screenshots`).
func TestBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := checktest.Browser(t, 2*time.Minute)
	shots := checktest.ScreenshotDir(t)
	// The browser's log: a Content Security Policy violation (an inline
	// script or style, an outside asset) fails the test.
	var logMu sync.Mutex
	var browserLog []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdplog.EventEntryAdded); ok {
			logMu.Lock()
			browserLog = append(browserLog, string(e.Entry.Source)+": "+string(e.Entry.Level)+": "+e.Entry.Text+" "+e.Entry.URL)
			logMu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		logMu.Lock()
		defer logMu.Unlock()
		for _, l := range browserLog {
			if strings.HasPrefix(l, "security:") || strings.Contains(l, "Content Security Policy") {
				t.Errorf("browser: %s", l)
			} else {
				t.Logf("browser: %s", l)
			}
		}
	}()
	shot := func(name string, full bool) {
		t.Helper()
		act := chromedp.CaptureScreenshot()
		if full {
			act = chromedp.FullScreenshot(100)
		}
		png, err := chromedp.Run(ctx, act)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// click presses a button or link and waits for the page it leads to.
	click := func(sel string) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
		if resp.Status != 200 {
			t.Errorf("click %s: HTTP %d at %s", sel, resp.Status, resp.URL)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	location := func() string {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(loc, f.srv.URL)
	}

	// The history asks for a login first.
	run("open the history", chromedp.Navigate(f.srv.URL+"/history"))
	if loc := location(); !strings.HasPrefix(loc, "/login?next=%2Fhistory") {
		t.Fatalf("not sent to the login form: %s", loc)
	}
	run("wrong password", chromedp.SendKeys(chromedp.CSS("#password"), "not the password"))
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#login"))); err != nil {
		t.Fatal(err)
	}
	if msg := text(".flash.error"); msg != "Wrong password." {
		t.Errorf("wrong password: %q", msg)
	}
	shot("login", false)
	run("password", chromedp.SendKeys(chromedp.CSS("#password"), testPassword))
	click("#login")
	if loc := location(); loc != "/history" {
		t.Fatalf("after logging in: %s", loc)
	}
	if s := text("table.records tbody tr:first-child"); !strings.Contains(s, "Cheap watches <b>now</b>") || !strings.Contains(s, "4Q0050X") {
		t.Errorf("newest record: %q", s)
	}
	shot("history", false)

	// A record, learned as spam.
	click(`table.records a[href="/history/r0050"]`)
	if h := text("h1"); h != "Cheap watches <b>now</b>" {
		t.Errorf("record title %q", h)
	}
	if s := text("table.results"); !strings.Contains(s, "spf") || !strings.Contains(s, "SPF_PASS") {
		t.Errorf("record checks: %q", s)
	}
	shot("record", true)
	click("#learn-spam")
	if msg := text(".flash.ok"); msg != "Learned the message (queue id 4Q0050X) as spam." {
		t.Errorf("flash after learning: %q", msg)
	}
	if got := f.learner.calls(); len(got) != 1 || !got[0].spam || got[0].raw != string(f.hist.recs[49].Message) {
		t.Errorf("learner called with %+v", got)
	}
	shot("record-learned", false)

	// The quarantine: release a held message.
	run("quarantine", chromedp.Navigate(f.srv.URL+"/quarantine"))
	if s := text("#held-4Q0006X"); !strings.Contains(s, "quarantine") || !strings.Contains(s, "Message number 6") {
		t.Errorf("held message's verdict: %q", s)
	}
	shot("quarantine", false)
	click("#release-4Q0006X")
	if msg := text(".flash.ok"); msg != "Released message 4Q0006X." {
		t.Errorf("flash after release: %q", msg)
	}
	if !slices.Equal(f.queue.released, []string{"4Q0006X"}) {
		t.Errorf("released %v", f.queue.released)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#held-4Q0006X").length`)); err != nil || n != 0 {
		t.Errorf("the released message is still listed: %d %v", n, err)
	}
	shot("quarantine-released", false)

	// Submit an .eml as ham.
	eml := filepath.Join(t.TempDir(), "newsletter.eml")
	os.WriteFile(eml, []byte("From: news@example.org\r\nSubject: Our news\r\n\r\nHello.\r\n"), 0o644)
	run("submit form", chromedp.Navigate(f.srv.URL+"/submit"),
		chromedp.SetUploadFiles(chromedp.CSS("#message"), []string{eml}),
		chromedp.Click(chromedp.CSS(`input[name="class"][value="ham"]`)))
	click("#submit")
	if msg := text(".flash.ok"); !strings.HasPrefix(msg, "Learned newsletter.eml (") || !strings.HasSuffix(msg, "as ham.") {
		t.Errorf("flash after submitting: %q", msg)
	}
	if got := f.learner.calls(); len(got) != 2 || got[1].spam || !strings.Contains(got[1].raw, "Subject: Our news") {
		t.Errorf("learner called with %+v", got)
	}
	shot("submit", false)

	// The graphs: every SVG loads and has a size.
	run("graphs", chromedp.Navigate(f.srv.URL+"/graphs"))
	var loaded bool
	for range 50 {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Array.from(document.images).length == 6 && Array.from(document.images).every(i => i.complete && i.naturalWidth > 100)`))
		if err != nil {
			t.Fatal(err)
		}
		if loaded = ok; loaded {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !loaded {
		t.Error("the graphs page did not render its six SVG graphs")
	}
	shot("graphs", true)

	// The status page, secrets hidden.
	run("status", chromedp.Navigate(f.srv.URL+"/status"))
	if s := text("pre.config"); !strings.Contains(s, "password: (hidden)") || strings.Contains(s, redisPassword) {
		t.Errorf("configuration shown: %q", s)
	}
	shot("status", true)

	// Log out: the history asks for the password again.
	click(`header form.logout button`)
	run("history after logout", chromedp.Navigate(f.srv.URL+"/history"))
	if loc := location(); !strings.HasPrefix(loc, "/login") {
		t.Errorf("after logging out: %s", loc)
	}
	t.Logf("screenshots in %s", shots)
}
