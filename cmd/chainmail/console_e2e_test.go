package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"chainmail/checks/checktest"
	"chainmail/milter/mtatest"
)

// TestConsoleEndToEnd: chainmail serve with its web console on, behind a
// real Postfix, driven from a real Chromium. A person logs in, sees the
// two messages Postfix passed through the milter in the history, releases
// the quarantined one from Postfix's hold queue and sees Postfix deliver
// it, and marks the other as spam and sees the classifier's count move.
func TestConsoleEndToEnd(t *testing.T) {
	checktest.Chromium(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	addr, consoleAddr := freePort(t), freePort(t)
	pf := mtatest.StartPostfix(t, mtatest.PostfixOptions{Milter: "inet:" + addr})
	const password = "console-e2e-password-0123"
	const token = "console-e2e-token-0123456789"
	pwFile, tokenFile := filepath.Join(dir, "password"), filepath.Join(dir, "token")
	os.WriteFile(pwFile, []byte(password+"\n"), 0o600)
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	cfg := filepath.Join(dir, "chainmail.yaml")
	conf := fmt.Sprintf(`listen: inet:%s
hostname: mx.chainmail.test
metrics: {listen: ""}
log:
  sinks: [{type: file, path: %q}]
state: {backend: bolt, path: %q}
console:
  listen: %s
  password_file: %q
  token_file: %q
  postfix: {config_dir: %q}
rules:
  - name: hold-me
    if: envelope.from == "hold@example.net"
    action: quarantine
checks:
  - name: gtube
    decisive: spam
  - name: bayes
`, addr, filepath.Join(dir, "verdicts.log"), filepath.Join(dir, "state.db"), consoleAddr, pwFile, tokenFile, filepath.Join(pf.Dir(), "conf"))
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, exec.Command(bin, "serve", "-c", cfg), "tcp", addr)
	base := "http://" + consoleAddr

	c := pf.Dial(t)
	c.Ehlo("client.example")
	c.XClient("ADDR=192.0.2.46 NAME=mail.example.net HELO=mail.example.net")
	for _, m := range []struct{ from, subject string }{{"sender@example.net", "weekly report"}, {"hold@example.net", "please hold"}} {
		msg := "From: <" + m.from + ">\r\nTo: <bob@example.org>\r\nSubject: " + m.subject + "\r\nMessage-ID: <" + strings.ReplaceAll(m.subject, " ", ".") + "@example.net>\r\n\r\nThe numbers of the week.\r\n"
		if r := c.Send(m.from, []string{"bob@example.org"}, []byte(msg)); r.Code != 250 {
			t.Fatalf("send %s: %v", m.subject, r)
		}
	}
	c.Quit()
	pf.Delivered(t, 1, 30*time.Second)
	waitFor(t, "the quarantined message in Postfix's hold queue", func() bool { return len(pf.HoldQueue(t)) == 1 })

	// The API with the token: both verdicts are in the history.
	api := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: HTTP %d: %s", path, resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	var recs struct {
		Records []struct {
			ID, Subject, Action string
		} `json:"records"`
	}
	waitFor(t, "two records in the history", func() bool {
		api("/api/history", &recs)
		return len(recs.Records) == 2
	})
	var hamID string
	for _, r := range recs.Records {
		if r.Subject == "weekly report" {
			hamID = r.ID
		}
	}

	// Its log lines are the ones the verdict log wrote.
	var rec struct{ Lines []string }
	api("/api/history/"+hamID, &rec)
	logged, _ := os.ReadFile(filepath.Join(dir, "verdicts.log"))
	if len(rec.Lines) == 0 || !strings.Contains(string(logged), rec.Lines[len(rec.Lines)-1]) || !strings.Contains(strings.Join(rec.Lines, "\n"), "weekly report") {
		t.Errorf("record lines %q, not those of the log:\n%s", rec.Lines, logged)
	}

	ctx := checktest.Browser(t, 2*time.Minute)
	shots := checktest.ScreenshotDir(t)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	click := func(sel string) {
		t.Helper()
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
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
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(shots, "e2e-"+name+".png"), png, 0o644)
	}

	run("open the console", chromedp.Navigate(base+"/history"))
	run("password", chromedp.SendKeys(chromedp.CSS("#password"), password))
	click("#login")
	if body := text("table.records"); !strings.Contains(body, "weekly report") || !strings.Contains(body, "please hold") || !strings.Contains(body, "quarantine") {
		t.Fatalf("history after login:\n%s", body)
	}
	shot("history")

	// Release the held message from the quarantine page: Postfix
	// delivers it.
	run("quarantine", chromedp.Navigate(base+"/quarantine"))
	held := pf.HoldQueue(t)
	if page := text("main"); !strings.Contains(page, held[0]) || !strings.Contains(page, "please hold") {
		t.Fatalf("quarantine page does not show %s with its verdict:\n%s", held[0], page)
	}
	shot("quarantine")
	click("#release-" + held[0])
	if f := text(".flash"); !strings.Contains(strings.ToLower(f), "released") {
		t.Errorf("flash after release: %q", f)
	}
	got := pf.Delivered(t, 2, 30*time.Second)
	if got[1].Sender != "hold@example.net" {
		t.Errorf("delivered after release: %s", got[1].Sender)
	}

	// Mark the delivered one as spam: bayes has learned one spam more.
	before := learnedSpam(t, api)
	run("record", chromedp.Navigate(base+"/history/"+hamID))
	click("#learn-spam")
	if f := text(".flash"); !strings.Contains(strings.ToLower(f), "spam") {
		t.Errorf("flash after learning: %q", f)
	}
	shot("learned")
	if after := learnedSpam(t, api); after != before+1 {
		t.Errorf("bayes learned spam %d → %d, want one more", before, after)
	}
}

// learnedSpam is what the console's status says bayes learned as spam.
func learnedSpam(t *testing.T, api func(string, any)) int {
	t.Helper()
	var st struct {
		Learners []struct {
			Check       string `json:"check"`
			LearnedSpam int    `json:"learned_spam"`
		} `json:"learners"`
	}
	api("/api/learners", &st)
	for _, l := range st.Learners {
		if l.Check == "bayes" {
			return l.LearnedSpam
		}
	}
	t.Fatalf("no bayes in the learners: %+v", st)
	return 0
}
