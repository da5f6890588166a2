package console

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chainmail/checks/history"
)

const (
	testPassword = "correct horse battery staple"
	testToken    = "tok-3a9f0c2b7d4e6a1f8b5c"
)

type fixture struct {
	t       *testing.T
	c       *Console
	srv     *httptest.Server
	hist    *memHistory
	queue   *memQueue
	learner *memLearner
	logMu   sync.Mutex
	log     bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	pw, tok := filepath.Join(dir, "password"), filepath.Join(dir, "token")
	os.WriteFile(pw, []byte(testPassword+"\n"), 0o600)
	os.WriteFile(tok, []byte(testToken+"\n"), 0o600)
	// A fixed day, so that `make screenshots` redraws the same pages.
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	f := &fixture{t: t, hist: &memHistory{recs: sampleRecords(now)},
		queue: &memQueue{held: map[string]Held{}, msgs: map[string][]byte{}}, learner: &memLearner{}}
	for i, id := range []string{"4Q0006X", "4Q0014X", "B7C2D9E1F3"} {
		f.queue.held[id] = Held{QueueID: id, Arrival: now.Add(-time.Duration(i+1) * time.Hour), Sender: "spam@bulk.example.com",
			Rcpts: []string{"postmaster@example.com"}, Size: 4321}
		f.queue.msgs[id] = []byte("Subject: held " + id + "\r\n\r\nbody\r\n")
	}
	c, err := New(Config{PasswordFile: pw, TokenFile: tok}, Deps{History: f.hist, HoldQueue: f.queue, Learner: f.learner,
		Status: memStatus{}, Logf: func(format string, args ...any) {
			f.logMu.Lock()
			defer f.logMu.Unlock()
			fmt.Fprintf(&f.log, format+"\n", args...)
		}})
	if err != nil {
		t.Fatal(err)
	}
	c.loginDelay = 10 * time.Millisecond
	f.c = c
	f.srv = httptest.NewServer(c)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) logged() string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.log.String()
}

// client does not follow redirects, so that the tests see them.
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (f *fixture) do(cl *http.Client, method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// origin is what a browser sends with a form posted from the console.
func (f *fixture) origin() map[string]string { return map[string]string{"Origin": f.srv.URL} }

var bearer = map[string]string{"Authorization": "Bearer " + testToken}

// login logs a new client in and returns it with its CSRF token.
func (f *fixture) login() (*http.Client, string) {
	f.t.Helper()
	cl := f.client()
	resp, _ := f.do(cl, "POST", "/login", url.Values{"password": {testPassword}, "next": {"/quarantine"}}, f.origin())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/quarantine" {
		f.t.Fatalf("login: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	return cl, f.csrf(cl)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (f *fixture) csrf(cl *http.Client) string {
	f.t.Helper()
	_, body := f.do(cl, "GET", "/submit", nil, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		f.t.Fatalf("no CSRF token in the page: %s", body)
	}
	return m[1]
}

// pages are every GET page and API call of the console.
var pages = []string{"/", "/history", "/history?sender=alice&action=accept", "/history/r0050", "/history/r0004",
	"/quarantine", "/submit", "/graphs", "/graphs/actions.svg", "/graphs/latency.svg", "/graphs/symbols.svg",
	"/graphs/senders.svg", "/graphs/domains.svg", "/graphs/learned.svg", "/status",
	"/api/history", "/api/history/r0050", "/api/quarantine", "/api/status", "/api/learners"}

func TestAuthRequired(t *testing.T) {
	f := newFixture(t)
	cl := f.client()
	for _, p := range pages {
		resp, _ := f.do(cl, "GET", p, nil, nil)
		if strings.HasPrefix(p, "/api/") {
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s without credentials: %s, want 401 with WWW-Authenticate", p, resp.Status)
			}
			continue
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/login?next=") {
			t.Errorf("GET %s without credentials: %s to %q, want 302 to the login form", p, resp.Status, loc)
		}
	}
	for _, p := range []string{"/quarantine/4Q0006X/release", "/quarantine/4Q0006X/delete", "/history/r0050/learn", "/submit", "/logout"} {
		resp, _ := f.do(cl, "POST", p, url.Values{"class": {"spam"}}, f.origin())
		if resp.StatusCode != http.StatusFound {
			t.Errorf("POST %s without credentials: %s, want 302", p, resp.Status)
		}
	}
	if len(f.queue.released)+len(f.queue.deleted)+len(f.learner.calls()) != 0 {
		t.Errorf("an unauthenticated POST reached the dependencies: %v %v %v", f.queue.released, f.queue.deleted, f.learner.calls())
	}
	// A cookie naming no session is no login.
	u, _ := url.Parse(f.srv.URL)
	cl.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: "forged"}})
	if resp, _ := f.do(cl, "GET", "/history", nil, nil); resp.StatusCode != http.StatusFound {
		t.Errorf("a forged session cookie: %s", resp.Status)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	cl := f.client()
	resp, body := f.do(cl, "GET", "/login", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `type="password"`) {
		t.Fatalf("login form: %s", resp.Status)
	}
	start := time.Now()
	resp, body = f.do(cl, "POST", "/login", url.Values{"password": {"correct horse battery stapler"}}, f.origin())
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong password") || len(resp.Cookies()) != 0 {
		t.Errorf("wrong password: %s, cookies %v", resp.Status, resp.Cookies())
	}
	if time.Since(start) < f.c.loginDelay {
		t.Error("a failed login was not slowed down")
	}
	if lg := f.logged(); !strings.Contains(lg, "failed login from 127.0.0.1") || strings.Contains(lg, "stapler") {
		t.Errorf("failed login log: %q", lg)
	}
	if resp, _ := f.do(cl, "GET", "/history", nil, nil); resp.StatusCode != http.StatusFound {
		t.Errorf("after a wrong password the history is open: %s", resp.Status)
	}
	// The right password, but posted from elsewhere.
	resp, _ = f.do(cl, "POST", "/login", url.Values{"password": {testPassword}}, map[string]string{"Origin": "http://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login from another origin: %s", resp.Status)
	}
	resp, _ = f.do(cl, "POST", "/login", url.Values{"password": {testPassword}, "next": {"//evil.example/"}}, f.origin())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/history" {
		t.Errorf("login with an off-site next: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge <= 0 || ck.Expires.IsZero() || len(ck.Value) < 40 {
		t.Fatalf("session cookie: %+v", ck)
	}
	if resp, _ := f.do(cl, "GET", "/history", nil, nil); resp.StatusCode != 200 {
		t.Errorf("logged in, history: %s", resp.Status)
	}
	// The session expires.
	f.c.now = func() time.Time { return time.Now().Add(DefaultSessionTTL + time.Minute) }
	if resp, _ := f.do(cl, "GET", "/history", nil, nil); resp.StatusCode != http.StatusFound {
		t.Errorf("an expired session still works: %s", resp.Status)
	}
	f.c.now = time.Now
	// Log out ends the session on the server.
	cl, csrf := f.login()
	u, _ := url.Parse(f.srv.URL)
	old := cl.Jar.Cookies(u)
	if resp, _ := f.do(cl, "POST", "/logout", url.Values{"csrf": {csrf}}, f.origin()); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %s", resp.Status)
	}
	cl2 := f.client()
	cl2.Jar.SetCookies(u, old)
	if resp, _ := f.do(cl2, "GET", "/history", nil, nil); resp.StatusCode != http.StatusFound {
		t.Errorf("the cookie of a logged-out session still works: %s", resp.Status)
	}
}

func TestBearer(t *testing.T) {
	f := newFixture(t)
	cl := f.client()
	for _, p := range pages {
		resp, body := f.do(cl, "GET", p, nil, bearer)
		want := 200
		if p == "/" {
			want = http.StatusFound
		}
		if resp.StatusCode != want {
			t.Errorf("GET %s with the token: %s: %.300s", p, resp.Status, body)
		}
	}
	for _, h := range []map[string]string{{"Authorization": "Bearer " + testToken + "x"}, {"Authorization": "Basic " + testToken}, {"Authorization": "Bearer "}} {
		if resp, _ := f.do(cl, "GET", "/history", nil, h); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /history with %q: %s, want 401", h["Authorization"], resp.Status)
		}
	}
	// A script's POST needs no CSRF token nor Origin.
	resp, body := f.do(cl, "POST", "/quarantine/4Q0006X/release", url.Values{}, bearer)
	var out struct {
		OK      bool
		Message string
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || resp.StatusCode != 200 || !out.OK || !strings.Contains(out.Message, "Released message 4Q0006X") {
		t.Errorf("bearer release: %s %s %v", resp.Status, body, err)
	}
	if !slices.Equal(f.queue.released, []string{"4Q0006X"}) {
		t.Errorf("released %v", f.queue.released)
	}
	resp, body = f.do(cl, "POST", "/quarantine/NOSUCH1/delete", url.Values{}, bearer)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "not in the hold queue") {
		t.Errorf("bearer delete of an absent message: %s %s", resp.Status, body)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	cl, csrf := f.login()
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{}, f.origin()},
		{"wrong token", url.Values{"csrf": {csrf + "x"}}, f.origin()},
		{"another session's token", url.Values{"csrf": {randomToken()}}, f.origin()},
		{"other origin", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "http://evil.example"}},
		{"other referer", url.Values{"csrf": {csrf}}, map[string]string{"Referer": "http://evil.example/page"}},
		{"no origin nor referer", url.Values{"csrf": {csrf}}, nil},
	}
	for _, tc := range cases {
		for _, p := range []string{"/quarantine/4Q0006X/release", "/quarantine/4Q0006X/delete-spam", "/history/r0050/learn"} {
			form := url.Values{"class": {"spam"}}
			for k, v := range tc.form {
				form[k] = v
			}
			resp, _ := f.do(cl, "POST", p, form, tc.hdr)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: POST %s: %s, want 403", tc.name, p, resp.Status)
			}
		}
	}
	if len(f.queue.released)+len(f.queue.deleted)+len(f.learner.calls()) != 0 {
		t.Fatalf("a forged POST reached the dependencies: %v %v %v", f.queue.released, f.queue.deleted, f.learner.calls())
	}
	// With the token and the Referer of a console page it works.
	resp, _ := f.do(cl, "POST", "/quarantine/4Q0006X/release", url.Values{"csrf": {csrf}}, map[string]string{"Referer": f.srv.URL + "/quarantine"})
	if resp.StatusCode != http.StatusSeeOther || !slices.Equal(f.queue.released, []string{"4Q0006X"}) {
		t.Errorf("a genuine release: %s, released %v", resp.Status, f.queue.released)
	}
	// Every form of every page carries the token.
	for _, p := range []string{"/history/r0050", "/quarantine", "/submit", "/status", "/history"} {
		_, body := f.do(cl, "GET", p, nil, nil)
		forms := strings.Count(body, `method="post"`)
		if n := strings.Count(body, `name="csrf" value="`+csrf+`"`); n != forms || forms == 0 {
			t.Errorf("%s: %d POST forms, %d CSRF tokens", p, forms, n)
		}
	}
}

func TestQuarantineActions(t *testing.T) {
	f := newFixture(t)
	cl, csrf := f.login()
	post := func(id, op string) (int, string) {
		resp, _ := f.do(cl, "POST", "/quarantine/"+id+"/"+op, url.Values{"csrf": {csrf}}, f.origin())
		if resp.StatusCode == http.StatusSeeOther {
			if loc := resp.Header.Get("Location"); loc != "/quarantine" {
				t.Errorf("%s %s: back to %q", op, id, loc)
			}
		}
		_, page := f.do(cl, "GET", "/quarantine", nil, nil)
		return resp.StatusCode, page
	}
	_, page := f.do(cl, "GET", "/quarantine", nil, nil)
	// The verdict of a held message is found by its queue id.
	if !strings.Contains(page, `href="/history/r0006"`) || !strings.Contains(page, "no verdict in the history") {
		t.Errorf("quarantine page without the verdicts: %s", page)
	}
	if st, page := post("4Q0006X", "release-ham"); st != http.StatusSeeOther || !strings.Contains(page, "Learned as ham and released message 4Q0006X.") {
		t.Errorf("release-ham: %d %s", st, page)
	}
	if st, page := post("4Q0014X", "delete-spam"); st != http.StatusSeeOther || !strings.Contains(page, "Learned as spam and deleted message 4Q0014X.") {
		t.Errorf("delete-spam: %d %s", st, page)
	}
	want := []learned{{"Subject: held 4Q0006X\r\n\r\nbody\r\n", false}, {"Subject: held 4Q0014X\r\n\r\nbody\r\n", true}}
	if got := f.learner.calls(); !slices.Equal(got, want) {
		t.Errorf("learned %+v, want %+v", got, want)
	}
	if !slices.Equal(f.queue.released, []string{"4Q0006X"}) || !slices.Equal(f.queue.deleted, []string{"4Q0014X"}) {
		t.Errorf("released %v deleted %v", f.queue.released, f.queue.deleted)
	}
	// Learning fails: the message stays held, the user is told.
	f.learner.err = fmt.Errorf("store unavailable")
	if _, page := post("B7C2D9E1F3", "delete-spam"); !strings.Contains(page, "Learning message B7C2D9E1F3 as spam failed, so it stays held: store unavailable") {
		t.Errorf("failed learning: %s", page)
	}
	if _, ok := f.queue.held["B7C2D9E1F3"]; !ok || len(f.queue.deleted) != 1 {
		t.Error("a message whose learning failed was deleted")
	}
	f.learner.err = nil
	if _, page := post("B7C2D9E1F3", "delete"); !strings.Contains(page, "Deleted message B7C2D9E1F3.") || len(f.learner.calls()) != 2 {
		t.Errorf("delete: %s", page)
	}
	if _, page := post("B7C2D9E1F3", "release"); !strings.Contains(page, "release on message B7C2D9E1F3 failed") || !strings.Contains(page, `class="flash error"`) {
		t.Errorf("releasing a deleted message: %s", page)
	}
	if st, _ := post("x;rm", "release"); st != http.StatusNotFound && st != http.StatusSeeOther {
		t.Errorf("a bad queue id: %d", st)
	}
	resp, body := f.do(cl, "POST", "/quarantine/AB..CD/release", url.Values{}, bearer)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not a Postfix queue id") {
		t.Errorf("a bad queue id: %s %s", resp.Status, body)
	}
	if st, page := post("4Q0001X", "explode"); st != http.StatusSeeOther || !strings.Contains(page, "No such action") {
		t.Errorf("unknown action: %d", st)
	}
	if len(f.queue.released) != 2 || len(f.queue.deleted) != 2 {
		t.Errorf("released %v deleted %v", f.queue.released, f.queue.deleted)
	}
}

func TestLearnRecord(t *testing.T) {
	f := newFixture(t)
	cl, csrf := f.login()
	_, page := f.do(cl, "GET", "/history/r0050", nil, nil)
	for _, want := range []string{"Cheap watches &lt;b&gt;now&lt;/b&gt;", "4Q0050X", "spf", "bayes", "SPF_PASS", "queue_id=4Q0050X action=accept", `id="learn-spam"`, "spam probability", "ms"} {
		if !strings.Contains(page, want) {
			t.Errorf("record page lacks %q", want)
		}
	}
	resp, _ := f.do(cl, "POST", "/history/r0050/learn", url.Values{"csrf": {csrf}, "class": {"spam"}}, f.origin())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/history/r0050" {
		t.Fatalf("learn: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if got := f.learner.calls(); len(got) != 1 || !got[0].spam || !strings.HasPrefix(got[0].raw, "From: news@lists.example.org") {
		t.Errorf("learned %+v", got)
	}
	_, page = f.do(cl, "GET", "/history/r0050", nil, nil)
	if !strings.Contains(page, "Learned the message (queue id 4Q0050X) as spam.") {
		t.Errorf("no flash after learning: %s", page)
	}
	if _, page = f.do(cl, "GET", "/history/r0050", nil, nil); strings.Contains(page, "Learned the message") {
		t.Error("the flash message is shown twice")
	}
	f.do(cl, "POST", "/history/r0050/learn", url.Values{"csrf": {csrf}, "class": {"ham"}}, f.origin())
	if got := f.learner.calls(); len(got) != 2 || got[1].spam {
		t.Errorf("learned %v", got)
	}
	// A record without its message offers no buttons and refuses.
	_, page = f.do(cl, "GET", "/history/r0004", nil, nil)
	if strings.Contains(page, `id="learn-spam"`) || !strings.Contains(page, "did not keep this message") {
		t.Error("a record without its message offers learning")
	}
	resp, body := f.do(cl, "POST", "/history/r0004/learn", url.Values{"class": {"spam"}}, bearer)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "did not keep") {
		t.Errorf("learning a record without a message: %s %s", resp.Status, body)
	}
	if resp, _ := f.do(cl, "POST", "/history/r0050/learn", url.Values{"class": {"maybe"}}, bearer); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("learn as maybe: %s", resp.Status)
	}
	if resp, _ := f.do(cl, "GET", "/history/nosuch", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an absent record: %s", resp.Status)
	}
	if len(f.learner.calls()) != 2 {
		t.Errorf("learned %v", f.learner.calls())
	}
}

func TestSubmit(t *testing.T) {
	f := newFixture(t)
	cl, csrf := f.login()
	upload := func(csrf, class, content string) *http.Response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf", csrf)
		mw.WriteField("class", class)
		fw, _ := mw.CreateFormFile("message", "phish.eml")
		fw.Write([]byte(content))
		mw.Close()
		req, _ := http.NewRequest("POST", f.srv.URL+"/submit", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Origin", f.srv.URL)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	msg := "From: x@example.net\r\nSubject: win\r\n\r\nclick\r\n"
	if resp := upload("", "spam", msg); resp.StatusCode != http.StatusForbidden {
		t.Errorf("upload without CSRF: %s", resp.Status)
	}
	if resp := upload(csrf, "spam", msg); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("upload: %s", resp.Status)
	}
	if got := f.learner.calls(); !slices.Equal(got, []learned{{msg, true}}) {
		t.Errorf("learned %+v", got)
	}
	_, page := f.do(cl, "GET", "/submit", nil, nil)
	if !strings.Contains(page, "Learned phish.eml (") || !strings.Contains(page, "as spam.") {
		t.Errorf("no flash: %s", page)
	}
	upload(csrf, "ham", "  \r\n")
	if _, page := f.do(cl, "GET", "/submit", nil, nil); !strings.Contains(page, "phish.eml is empty.") {
		t.Errorf("empty upload: %s", page)
	}
	if len(f.learner.calls()) != 1 {
		t.Errorf("an empty upload was learned")
	}
}

func TestSearchReachesQuery(t *testing.T) {
	f := newFixture(t)
	cl, _ := f.login()
	since := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	v := url.Values{"sender": {"bob@"}, "rcpt": {"postmaster"}, "subject": {"number"}, "queue_id": {"4Q00"},
		"action": {"accept"}, "symbol": {"SPF_PASS"}, "since": {since.Format(time.RFC3339)}, "until": {"2099-01-02"}, "offset": {"1"}}
	resp, page := f.do(cl, "GET", "/history?"+v.Encode(), nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("search: %s", resp.Status)
	}
	q := f.hist.lastQuery()
	until, _ := time.ParseInLocation("2006-01-02", "2099-01-02", time.Local)
	want := history.Query{Sender: "bob@", Rcpt: "postmaster", Subject: "number", QueueID: "4Q00", Action: "accept", Symbol: "SPF_PASS",
		Since: since, Until: until, Limit: pageSize + 1, Offset: 1}
	if !q.Since.Equal(want.Since) || !q.Until.Equal(want.Until) {
		t.Errorf("times: %v %v", q.Since, q.Until)
	}
	q.Since, q.Until, want.Since, want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if q != want {
		t.Errorf("query %+v, want %+v", q, want)
	}
	// bob's accepted messages in the last two hours: the fake applied
	// the query; the page shows what it returned.
	if strings.Contains(page, "alice@example.org") {
		t.Error("the page shows a record the query excluded")
	}
	// Paging: 50 records, 20 a page through the API; the page links on.
	resp, body := f.do(cl, "GET", "/api/history?limit=20&offset=40&action=accept", nil, bearer)
	q = f.hist.lastQuery()
	if resp.StatusCode != 200 || q.Limit != 20 || q.Offset != 40 || q.Action != "accept" {
		t.Errorf("API query: %s %+v", resp.Status, q)
	}
	_ = body
	_, page = f.do(cl, "GET", "/history", nil, nil)
	if strings.Contains(page, "older »") || strings.Contains(page, "« newer") || strings.Count(page, `<tr>`) != pageSize+1 {
		t.Errorf("the only page: %d rows", strings.Count(page, "<tr>"))
	}
	f.hist.recs = append(f.hist.recs, sampleRecords(time.Now().Add(-48 * time.Hour))[:5]...)
	for i, r := range f.hist.recs[50:] {
		r.ID = fmt.Sprintf("q%04d", i)
	}
	_, page = f.do(cl, "GET", "/history", nil, nil)
	if !strings.Contains(page, `href="/history?offset=50"`) || strings.Contains(page, "« newer") || strings.Count(page, `<tr>`) != pageSize+1 {
		t.Errorf("first page: %d rows", strings.Count(page, "<tr>"))
	}
	_, page = f.do(cl, "GET", "/history?offset=50", nil, nil)
	if strings.Contains(page, "older »") || !strings.Contains(page, `href="/history?offset=0"`) || strings.Count(page, `<tr>`) != 6 {
		t.Error("last page links")
	}
	if resp, _ := f.do(cl, "GET", "/history?since=yesterday", nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad since: %s", resp.Status)
	}
	if resp, _ := f.do(cl, "GET", "/api/history?limit=-3", nil, bearer); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad limit: %s", resp.Status)
	}
}

func TestAPIJSON(t *testing.T) {
	f := newFixture(t)
	cl := f.client()
	resp, body := f.do(cl, "GET", "/api/history?limit=3", nil, bearer)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var list struct {
		Records []map[string]any `json:"records"`
		Limit   int              `json:"limit"`
		Offset  int              `json:"offset"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Records) != 3 || list.Limit != 3 || list.Offset != 0 {
		t.Fatalf("list: %d records, limit %d", len(list.Records), list.Limit)
	}
	first := list.Records[0]
	for _, k := range []string{"id", "time", "queue_id", "mail_from", "rcpts", "subject", "action", "score", "required", "symbols", "results", "lines", "took_ns", "has_message"} {
		if _, ok := first[k]; !ok {
			t.Errorf("a listed record lacks %q: %v", k, first)
		}
	}
	if first["id"] != "r0050" || first["has_message"] != true || first["message"] != nil {
		t.Errorf("newest record: id %v has_message %v message %v", first["id"], first["has_message"], first["message"])
	}
	var rec history.Record
	resp, body = f.do(cl, "GET", "/api/history/r0050", nil, bearer)
	if err := json.Unmarshal([]byte(body), &rec); err != nil || resp.StatusCode != 200 {
		t.Fatal(resp.Status, err)
	}
	if rec.ID != "r0050" || rec.QueueID != "4Q0050X" || len(rec.Results) != 2 || rec.Results[0].Took == 0 || !bytes.HasPrefix(rec.Message, []byte("From: news@")) {
		t.Errorf("record: %+v", rec)
	}
	resp, body = f.do(cl, "GET", "/api/history/nosuch", nil, bearer)
	var e map[string]string
	if json.Unmarshal([]byte(body), &e); resp.StatusCode != 404 || e["error"] == "" {
		t.Errorf("absent record: %s %s", resp.Status, body)
	}
	f.hist.err = fmt.Errorf("redis: connection refused")
	resp, body = f.do(cl, "GET", "/api/history", nil, bearer)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "connection refused") {
		t.Errorf("history down: %s %s", resp.Status, body)
	}
	sess, _ := f.login()
	if _, page := f.do(sess, "GET", "/history", nil, nil); !strings.Contains(page, "The history could not be searched: redis: connection refused") {
		t.Error("the history page does not say the history is down")
	}
}

// TestNoSecretsInPages renders every page, logged in and with the token,
// and looks for the password, the token and the configuration's secrets.
func TestNoSecretsInPages(t *testing.T) {
	f := newFixture(t)
	sess, _ := f.login()
	secrets := []string{testPassword, testToken, redisPassword, apiKey}
	var statusPage string
	for _, cl := range []struct {
		c   *http.Client
		hdr map[string]string
	}{{sess, nil}, {f.client(), bearer}, {f.client(), nil}} {
		for _, p := range append(pages, "/login", "/nosuch", "/history/nosuch") {
			resp, body := f.do(cl.c, "GET", p, nil, cl.hdr)
			for _, s := range secrets {
				if strings.Contains(body, s) || strings.Contains(fmt.Sprint(resp.Header), s) {
					t.Errorf("GET %s shows the secret %q", p, s)
				}
			}
			if p == "/status" && cl.hdr == nil && resp.StatusCode == 200 {
				statusPage = body
			}
		}
	}
	for _, want := range []string{"password: (hidden)", "api_key: (hidden)", "multi.uribl.com", "zen.spamhaus.org", "clamd: connection refused", "degraded"} {
		if !strings.Contains(statusPage, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	// A failed bearer attempt and a login are logged without secrets.
	f.do(f.client(), "GET", "/history", nil, map[string]string{"Authorization": "Bearer " + testToken + "zz"})
	for _, s := range secrets {
		if strings.Contains(f.logged(), s) {
			t.Errorf("the log shows %q", s)
		}
	}
}

func TestRedact(t *testing.T) {
	type sub struct {
		Token string `yaml:"token"`
		Name  string `yaml:"name"`
	}
	tree, err := redactConfig(map[string]any{"a": sub{"t0k", "nm"}, "SecretKey": 3, "keys": []any{"x"}, "empty_password": "", "list": []any{map[string]any{"client_secret": "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := configText(tree)
	for _, bad := range []string{"t0k", "3", "- x", "s\n"} {
		if strings.Contains(txt, bad) {
			t.Errorf("redacted config shows %q:\n%s", bad, txt)
		}
	}
	if !strings.Contains(txt, "name: nm") || !strings.Contains(txt, `empty_password: ""`) {
		t.Errorf("redaction hid too much:\n%s", txt)
	}
}

func TestSVG(t *testing.T) {
	f := newFixture(t)
	cl := f.client()
	check := func(name, body string) {
		d := xml.NewDecoder(strings.NewReader(body))
		elems := map[string]int{}
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s is not well-formed XML: %v\n%s", name, err, body)
			}
			if se, ok := tok.(xml.StartElement); ok {
				elems[se.Name.Local]++
				if elems["svg"] == 1 && se.Name.Local == "svg" && se.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("%s: svg namespace %q", name, se.Name.Space)
				}
			}
		}
		if elems["svg"] != 1 || elems["rect"] < 3 || elems["text"] < 3 {
			t.Errorf("%s: elements %v", name, elems)
		}
	}
	for _, g := range graphs {
		resp, body := f.do(cl, "GET", "/graphs/"+g.Name+".svg", nil, bearer)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" {
			t.Errorf("%s: %s %s", g.Name, resp.Status, resp.Header.Get("Content-Type"))
		}
		check(g.Name, body)
	}
	_, body := f.do(cl, "GET", "/graphs/senders.svg", nil, bearer)
	for _, want := range []string{"alice@example.org", "spam@bulk.example.com"} {
		if !strings.Contains(body, want) {
			t.Errorf("senders graph lacks %s", want)
		}
	}
	if _, body = f.do(cl, "GET", "/graphs/domains.svg", nil, bearer); !strings.Contains(body, "bulk.example.com") || strings.Contains(body, "@bulk") {
		t.Error("domains graph")
	}
	if _, body = f.do(cl, "GET", "/graphs/actions.svg", nil, bearer); !strings.Contains(body, "reject: 1") {
		t.Error("actions graph lacks a reject bar")
	}
	// Escaping: a sender with markup stays text.
	f.hist.recs[0].MailFrom = `<script>"x"&y@evil.example`
	f.c.recent = nil // the graphs' records are reused for recentTTL
	_, body = f.do(cl, "GET", "/graphs/senders.svg", nil, bearer)
	check("senders with markup", body)
	// Empty history, failing history.
	f.hist.recs = nil
	f.c.recent = nil
	for _, g := range graphs[:5] {
		_, body := f.do(cl, "GET", "/graphs/"+g.Name+".svg", nil, bearer)
		if !strings.Contains(body, "No ") {
			t.Errorf("%s without records: %s", g.Name, body)
		}
	}
	if resp, _ := f.do(cl, "GET", "/graphs/pie.svg", nil, bearer); resp.StatusCode != 404 {
		t.Errorf("unknown graph: %s", resp.Status)
	}
	// Latency percentiles.
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100}
	if percentile(d, 0.5) != 10 || percentile(d, 0.95) != 19 || percentile(d[:1], 0.95) != 1 {
		t.Errorf("percentiles %v %v", percentile(d, 0.5), percentile(d, 0.95))
	}
}

func TestHeaders(t *testing.T) {
	f := newFixture(t)
	cl, _ := f.login()
	for _, p := range []string{"/login", "/history", "/graphs/actions.svg", "/api/history"} {
		resp, _ := f.do(cl, "GET", p, nil, nil)
		h := resp.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", p, h)
		}
	}
	// No inline script nor style, no external asset.
	for _, p := range []string{"/login", "/history", "/history/r0050", "/quarantine", "/submit", "/graphs", "/status"} {
		_, body := f.do(cl, "GET", p, nil, nil)
		for _, bad := range []string{"<script", "style=", "<style", "http://", "https://", "onclick"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte(testToken), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("hunter2"), 0o600)
	deps := Deps{History: &memHistory{}, HoldQueue: &memQueue{}, Learner: &memLearner{}, Status: memStatus{}, Logf: t.Logf}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "0.0.0.0:8080", TokenFile: tok}, "not a loopback address"},
		{Config{Listen: ":8080", TokenFile: tok}, "not a loopback address"},
		{Config{Listen: "mail.example.org:8080", TokenFile: tok}, "not a loopback address"},
		{Config{Listen: "127.0.0.1", TokenFile: tok}, "missing port"},
		{Config{Listen: "127.0.0.1:0"}, "password_file or token_file is required"},
		{Config{Listen: "127.0.0.1:0", PasswordFile: short}, "at least 16 characters"},
		{Config{Listen: "127.0.0.1:0", TokenFile: filepath.Join(dir, "absent")}, "no such file"},
	} {
		if _, err := New(tc.cfg, deps); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{Listen: "[::1]:0", TokenFile: tok}, Deps{History: &memHistory{}}); err == nil {
		t.Error("missing dependencies were taken")
	}
	for _, cfg := range []Config{{Listen: "0.0.0.0:0", AllowRemote: true, TokenFile: tok}, {Listen: "localhost:0", TokenFile: tok}, {TokenFile: tok}} {
		if _, err := New(cfg, deps); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	// Start serves on Listen, Shutdown stops.
	c, err := New(Config{Listen: "127.0.0.1:0", TokenFile: tok}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+c.Addr().String()+"/api/history", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("served: %v %v", resp, err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + c.Addr().String() + "/login"); err == nil {
		t.Error("still serving after Shutdown")
	}
	// Off: Start does nothing.
	off, _ := New(Config{TokenFile: tok}, deps)
	if err := off.Start(); err != nil || off.Addr() != nil {
		t.Errorf("console off: %v %v", err, off.Addr())
	}
}

// queueWithOwnHeld is a hold queue with its own Held type, like
// milter/holdqueue's.
type ownHeld struct {
	QueueID string
	Arrival time.Time
	Sender  string
	Rcpts   []string
	Size    int64
}

type ownQueue struct{ memQueue }

func (q *ownQueue) List(ctx context.Context) ([]ownHeld, error) {
	hs, err := q.memQueue.List(ctx)
	out := make([]ownHeld, len(hs))
	for i, h := range hs {
		out[i] = ownHeld(h)
	}
	return out, err
}

func TestAdaptHoldQueue(t *testing.T) {
	q := &ownQueue{memQueue{held: map[string]Held{"ABC123": {QueueID: "ABC123", Sender: "s@example.org", Size: 7}}}}
	hq := AdaptHoldQueue[ownHeld](q)
	hs, err := hq.List(context.Background())
	if err != nil || len(hs) != 1 || hs[0].QueueID != "ABC123" || hs[0].Size != 7 {
		t.Errorf("%v %v", hs, err)
	}
	if err := hq.Release(context.Background(), "ABC123"); err != nil || !slices.Equal(q.released, []string{"ABC123"}) {
		t.Errorf("release: %v %v", err, q.released)
	}
}

func TestQuarantineManyHeld(t *testing.T) {
	f := newFixture(t)
	for i := 1; i <= 30; i++ {
		id := fmt.Sprintf("4Q%04dX", i)
		f.queue.held[id] = Held{QueueID: id, Arrival: time.Now().Add(-time.Duration(i) * time.Minute), Sender: "s@example.org"}
	}
	before := len(f.hist.queries)
	resp, body := f.do(f.client(), "GET", "/quarantine", nil, bearer)
	if resp.StatusCode != 200 || strings.Count(body, `<tr id="held-`) != 31 {
		t.Fatalf("%s, %d rows", resp.Status, strings.Count(body, `<tr id="held-`))
	}
	for _, want := range []string{`href="/history/r0001"`, `href="/history/r0030"`, "no verdict in the history"} {
		if !strings.Contains(body, want) {
			t.Errorf("quarantine lacks %s", want)
		}
	}
	if n := len(f.hist.queries) - before; n != 1 {
		t.Errorf("%d history searches for 31 held messages, want one pass", n)
	}
	f.do(f.client(), "POST", "/quarantine/4Q0003X/delete", url.Values{}, bearer)
	if lg := f.logged(); !strings.Contains(lg, "console: deleted held message 4Q0003X (by the token from 127.0.0.1)") {
		t.Errorf("audit log: %s", lg)
	}
}

// /api/learners is the learners' counts, as the graphs show them.
func TestAPILearners(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do(f.client(), "GET", "/api/learners", nil, bearer)
	var got struct {
		Learners []LearnerStat `json:"learners"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %v: %s", resp.Status, err, body)
	}
	want, _ := f.learner.Stats(context.Background())
	if len(got.Learners) != len(want) || len(want) == 0 {
		t.Fatalf("learners %+v, want %+v", got.Learners, want)
	}
	for i, l := range got.Learners {
		if l.Check != want[i].Check || l.LearnedSpam != want[i].LearnedSpam || l.LearnedHam != want[i].LearnedHam {
			t.Errorf("learner %d: %+v, want %+v", i, l, want[i])
		}
	}
}
