package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"chainmail/checks/history"
)

//go:embed templates/*.html static/*
var assets embed.FS

// pageNames are the templates, each executed within layout.html.
var pageNames = []string{"login", "history", "record", "quarantine", "submit", "graphs", "status"}

const (
	pageSize = 50
	// maxQueue bounds the hold queue shown on one page.
	maxQueue = 500
	// bulkVerdicts: above this many held messages, their verdicts are
	// looked up in one pass over the recent history.
	bulkVerdicts = 20
)

func (c *Console) parseTemplates() error {
	funcs := template.FuncMap{
		"time":  func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
		"ms":    func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) },
		"score": func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
		"join":  strings.Join,
		"size":  humanSize,
		"lower": strings.ToLower,
		"ops":   func() []queueOp { return queueOps },
	}
	c.tmpl = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("console: templates: %v", err)
		}
		c.tmpl[name] = t
	}
	return nil
}

func (c *Console) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Cache-Control", "private, max-age=3600")
		fileServer.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /favicon.ico", c.headers(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	mux.HandleFunc("GET /login", c.headers(c.loginPage))
	mux.HandleFunc("POST /login", c.headers(c.login))
	auth := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, c.headers(c.withAuth(h).ServeHTTP))
	}
	auth("POST /logout", c.logout)
	auth("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/history", http.StatusFound) })
	auth("GET /history", c.historyPage)
	auth("GET /history/{id}", c.recordPage)
	auth("POST /history/{id}/learn", c.learnRecord)
	auth("GET /quarantine", c.quarantinePage)
	auth("POST /quarantine/{id}/{op}", c.quarantineAction)
	auth("GET /submit", c.submitPage)
	auth("POST /submit", c.submit)
	auth("GET /graphs", c.graphsPage)
	auth("GET /graphs/{name}", c.graphSVG)
	auth("GET /status", c.statusPage)
	auth("GET /api/history", c.apiHistory)
	auth("GET /api/history/{id}", c.apiRecord)
	auth("GET /api/quarantine", c.apiQuarantine)
	auth("GET /api/status", c.apiStatus)
	auth("GET /api/learners", c.apiLearners)
	auth("/", func(w http.ResponseWriter, r *http.Request) { c.fail(w, r, http.StatusNotFound, "No such page.") })
	c.mux = mux
}

func (c *Console) headers(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		h(w, r)
	}
}

// pageData is what layout.html gets.
type pageData struct {
	Page    string
	CSRF    string
	Flashes []flash
	// Bearer: the request came with the token (no session, no forms'
	// CSRF token).
	Bearer bool
	Error  string
	Data   any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	pd := pageData{Page: name, Data: data}
	if s := sessionOf(r); s != nil {
		pd.CSRF = s.csrf
		pd.Flashes = c.takeFlashes(s)
	} else {
		pd.Bearer = name != "login"
	}
	switch d := data.(type) {
	case map[string]any:
		pd.Error, _ = d["Error"].(string)
	case historyData:
		pd.Error = d.Error
	}
	var buf bytes.Buffer
	if err := c.tmpl[name].Execute(&buf, pd); err != nil {
		c.deps.Logf("console: page %s: %v", name, err)
		http.Error(w, "the page could not be made: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// audit logs what a user did, and who: a session or the token, from
// which address.
func (c *Console) audit(r *http.Request, format string, args ...any) {
	who := "the token"
	if sessionOf(r) != nil {
		who = "a login session"
	}
	c.deps.Logf("console: "+format+" (by %s from %s)", append(args, who, clientIP(r))...)
}

// fail shows an error page (JSON for the API).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	c.render(w, r, status, "status", map[string]any{"Error": msg})
}

// done reports an action's outcome: a flash message and a redirect for a
// browser, JSON for a script.
func (c *Console) done(w http.ResponseWriter, r *http.Request, status int, back, msg string) {
	isErr := status >= 400
	if sessionOf(r) == nil {
		body := map[string]any{"ok": !isErr, "message": msg}
		writeJSON(w, status, body)
		return
	}
	c.addFlash(r, isErr, msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// queryOf reads a history.Query from URL parameters named like its JSON
// form: sender, rcpt, subject, queue_id, action, symbol, since, until
// (RFC 3339, 2006-01-02T15:04 or 2006-01-02), limit, offset.
func queryOf(v url.Values, defLimit int) (history.Query, error) {
	q := history.Query{
		Sender: strings.TrimSpace(v.Get("sender")), Rcpt: strings.TrimSpace(v.Get("rcpt")),
		Subject: strings.TrimSpace(v.Get("subject")), QueueID: strings.TrimSpace(v.Get("queue_id")),
		Action: strings.TrimSpace(v.Get("action")), Symbol: strings.TrimSpace(v.Get("symbol")),
		Limit: defLimit,
	}
	var err error
	if q.Since, err = parseTime(v.Get("since")); err != nil {
		return q, fmt.Errorf("since: %v", err)
	}
	if q.Until, err = parseTime(v.Get("until")); err != nil {
		return q, fmt.Errorf("until: %v", err)
	}
	for _, f := range []struct {
		name string
		to   *int
	}{{"limit", &q.Limit}, {"offset", &q.Offset}} {
		if s := v.Get(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return q, fmt.Errorf("%s: %q is not a count", f.name, s)
			}
			*f.to = n
		}
	}
	if q.Limit == 0 || q.Limit > 1000 {
		q.Limit = min(max(q.Limit, defLimit), 1000)
	}
	return q, nil
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2006-01-02, 2006-01-02T15:04 or RFC 3339)", s)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func isNotFound(rec *history.Record, err error) bool {
	return err == nil && rec == nil || err != nil && strings.Contains(strings.ToLower(err.Error()), "not found")
}

// --- history

type historyData struct {
	Q             history.Query
	Since, Until  string
	Records       []*history.Record
	Prev, Next    string
	First, Last   int
	Actions       []string
	Error         string
	Before, After string
}

var actions = []string{"accept", "tag", "quarantine", "tempfail", "reject", "discard"}

func (c *Console) historyPage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	d := historyData{Actions: actions, Since: v.Get("since"), Until: v.Get("until")}
	q, err := queryOf(v, pageSize)
	d.Q = q
	if err != nil {
		d.Error = "Bad search: " + err.Error()
		c.render(w, r, http.StatusBadRequest, "history", d)
		return
	}
	q.Limit++
	recs, err := c.deps.History.Search(r.Context(), q)
	q.Limit--
	if err != nil {
		d.Error = "The history could not be searched: " + err.Error()
		c.render(w, r, http.StatusBadGateway, "history", d)
		return
	}
	more := len(recs) > q.Limit
	if more {
		recs = recs[:q.Limit]
	}
	d.Records = recs
	d.First, d.Last = q.Offset+1, q.Offset+len(recs)
	page := func(off int) string {
		u := url.Values{}
		for k, vs := range v {
			u[k] = vs
		}
		u.Set("offset", strconv.Itoa(off))
		return "/history?" + u.Encode()
	}
	if q.Offset > 0 {
		d.Prev = page(max(q.Offset-q.Limit, 0))
	}
	if more {
		d.Next = page(q.Offset + q.Limit)
	}
	c.render(w, r, http.StatusOK, "history", d)
}

func (c *Console) recordPage(w http.ResponseWriter, r *http.Request) {
	rec, err := c.deps.History.Get(r.Context(), r.PathValue("id"))
	if isNotFound(rec, err) {
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("No history record %q (it may have been pushed out by newer ones).", r.PathValue("id")))
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "The history record could not be read: "+err.Error())
		return
	}
	c.render(w, r, http.StatusOK, "record", rec)
}

func classOf(v string) (spam bool, ok bool) {
	switch v {
	case "spam":
		return true, true
	case "ham":
		return false, true
	}
	return false, false
}

func className(spam bool) string {
	if spam {
		return "spam"
	}
	return "ham"
}

func (c *Console) learnRecord(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	back := "/history/" + url.PathEscape(id)
	spam, ok := classOf(r.FormValue("class"))
	if !ok {
		c.done(w, r, http.StatusBadRequest, back, "Learn as what? class must be spam or ham.")
		return
	}
	rec, err := c.deps.History.Get(r.Context(), id)
	if isNotFound(rec, err) {
		c.done(w, r, http.StatusNotFound, "/history", fmt.Sprintf("No history record %q.", id))
		return
	}
	if err != nil {
		c.done(w, r, http.StatusBadGateway, back, "The history record could not be read: "+err.Error())
		return
	}
	if len(rec.Message) == 0 {
		c.done(w, r, http.StatusConflict, back, "History did not keep this message (larger than keep_message): submit it from a copy instead.")
		return
	}
	if err := c.deps.Learner.Learn(r.Context(), rec.Message, spam); err != nil {
		c.audit(r, "learning record %s as %s failed: %v", id, className(spam), err)
		c.done(w, r, http.StatusBadGateway, back, fmt.Sprintf("Learning the message as %s failed: %v", className(spam), err))
		return
	}
	c.audit(r, "learned record %s (queue id %s) as %s", id, rec.QueueID, className(spam))
	c.done(w, r, http.StatusOK, back, fmt.Sprintf("Learned the message (queue id %s) as %s.", rec.QueueID, className(spam)))
}

// --- quarantine

type heldRow struct {
	Held
	Verdict *history.Record
}

// held lists the hold queue with each message's verdict.
func (c *Console) held(r *http.Request) ([]heldRow, bool, error) {
	hs, err := c.deps.HoldQueue.List(r.Context())
	if err != nil {
		return nil, false, err
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Arrival.After(hs[j].Arrival) })
	cut := len(hs) > maxQueue
	if cut {
		hs = hs[:maxQueue]
	}
	rows := make([]heldRow, len(hs))
	// A few held messages: one search each; many: one pass over the
	// recent history. A history error shows as "no verdict": the queue
	// itself is what matters here.
	var recent map[string]*history.Record
	if len(hs) > bulkVerdicts {
		recent = map[string]*history.Record{}
		recs, _ := c.recentRecords(r.Context())
		for i := len(recs) - 1; i >= 0; i-- { // newest wins
			recent[recs[i].QueueID] = recs[i]
		}
	}
	for i, h := range hs {
		rows[i].Held = h
		if recent != nil {
			rows[i].Verdict = recent[h.QueueID]
			continue
		}
		recs, err := c.deps.History.Search(r.Context(), history.Query{QueueID: h.QueueID, Limit: 10})
		if err != nil {
			continue
		}
		for _, rec := range recs {
			if rec.QueueID == h.QueueID {
				rows[i].Verdict = rec
				break
			}
		}
	}
	return rows, cut, nil
}

func (c *Console) quarantinePage(w http.ResponseWriter, r *http.Request) {
	rows, cut, err := c.held(r)
	d := map[string]any{"Rows": rows, "Cut": cut, "Max": maxQueue}
	if err != nil {
		d["Error"] = "The hold queue could not be listed: " + err.Error()
		c.render(w, r, http.StatusBadGateway, "quarantine", d)
		return
	}
	c.render(w, r, http.StatusOK, "quarantine", d)
}

type queueOp struct{ Op, Label, Class string }

var queueOps = []queueOp{
	{"release", "Release", "good"},
	{"release-ham", "Release + learn ham", "good"},
	{"delete", "Delete", "bad"},
	{"delete-spam", "Delete + learn spam", "bad"},
}

// validQueueID: Postfix queue ids are letters and digits.
func validQueueID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for _, ch := range id {
		if !(ch >= '0' && ch <= '9' || ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z') {
			return false
		}
	}
	return true
}

func (c *Console) quarantineAction(w http.ResponseWriter, r *http.Request) {
	id, op := r.PathValue("id"), r.PathValue("op")
	const back = "/quarantine"
	if !validQueueID(id) {
		c.done(w, r, http.StatusBadRequest, back, fmt.Sprintf("%q is not a Postfix queue id.", id))
		return
	}
	ctx := r.Context()
	learn := func(spam bool) bool {
		raw, err := c.deps.HoldQueue.Message(ctx, id)
		if err != nil {
			c.done(w, r, http.StatusBadGateway, back, fmt.Sprintf("Message %s could not be read from the hold queue (nothing was done): %v", id, err))
			return false
		}
		if err := c.deps.Learner.Learn(ctx, raw, spam); err != nil {
			c.audit(r, "learning held message %s as %s failed: %v", id, className(spam), err)
			c.done(w, r, http.StatusBadGateway, back, fmt.Sprintf("Learning message %s as %s failed, so it stays held: %v", id, className(spam), err))
			return false
		}
		return true
	}
	var err error
	var did string
	switch op {
	case "release":
		err, did = c.deps.HoldQueue.Release(ctx, id), "Released"
	case "delete":
		err, did = c.deps.HoldQueue.Delete(ctx, id), "Deleted"
	case "release-ham":
		if !learn(false) {
			return
		}
		err, did = c.deps.HoldQueue.Release(ctx, id), "Learned as ham and released"
	case "delete-spam":
		if !learn(true) {
			return
		}
		err, did = c.deps.HoldQueue.Delete(ctx, id), "Learned as spam and deleted"
	default:
		c.done(w, r, http.StatusNotFound, back, fmt.Sprintf("No such action %q (release, delete, release-ham, delete-spam).", op))
		return
	}
	if err != nil {
		c.audit(r, "%s on held message %s failed: %v", op, id, err)
		c.done(w, r, http.StatusBadGateway, back, fmt.Sprintf("%s on message %s failed: %v", op, id, err))
		return
	}
	c.audit(r, "%s held message %s", strings.ToLower(did), id)
	c.done(w, r, http.StatusOK, back, fmt.Sprintf("%s message %s.", did, id))
}

// --- submit

func (c *Console) submitPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "submit", nil)
}

func (c *Console) submit(w http.ResponseWriter, r *http.Request) {
	const back = "/submit"
	spam, ok := classOf(r.FormValue("class"))
	if !ok {
		c.done(w, r, http.StatusBadRequest, back, "Learn as what? Choose spam or ham.")
		return
	}
	f, hdr, err := r.FormFile("message")
	if err != nil {
		c.done(w, r, http.StatusBadRequest, back, "No message file was uploaded: "+err.Error())
		return
	}
	defer f.Close()
	raw, err := io.ReadAll(f)
	if err != nil {
		c.done(w, r, http.StatusBadRequest, back, "The upload could not be read: "+err.Error())
		return
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		c.done(w, r, http.StatusBadRequest, back, hdr.Filename+" is empty.")
		return
	}
	if err := c.deps.Learner.Learn(r.Context(), raw, spam); err != nil {
		c.audit(r, "learning the uploaded %q as %s failed: %v", hdr.Filename, className(spam), err)
		c.done(w, r, http.StatusBadGateway, back, fmt.Sprintf("Learning %s as %s failed: %v", hdr.Filename, className(spam), err))
		return
	}
	c.audit(r, "learned the uploaded %q (%d bytes) as %s", hdr.Filename, len(raw), className(spam))
	c.done(w, r, http.StatusOK, back, fmt.Sprintf("Learned %s (%s) as %s.", hdr.Filename, humanSize(int64(len(raw))), className(spam)))
}

// --- status

func (c *Console) statusPage(w http.ResponseWriter, r *http.Request) {
	st, err := c.deps.Status.Status(r.Context())
	if err != nil {
		c.render(w, r, http.StatusBadGateway, "status", map[string]any{"Error": "The status could not be read: " + err.Error()})
		return
	}
	cfgText := ""
	if st.Config, err = redactConfig(st.Config); err == nil {
		cfgText, err = configText(st.Config)
	}
	if err != nil {
		cfgText = "(the configuration could not be shown: " + err.Error() + ")"
	}
	c.render(w, r, http.StatusOK, "status", map[string]any{"S": st, "ConfigText": cfgText})
}

func (c *Console) apiStatus(w http.ResponseWriter, r *http.Request) {
	st, err := c.deps.Status.Status(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	if st.Config, err = redactConfig(st.Config); err != nil {
		c.fail(w, r, http.StatusInternalServerError, "the configuration could not be shown: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// apiLearners is what each learner knows: {"learners": [...]}.
func (c *Console) apiLearners(w http.ResponseWriter, r *http.Request) {
	stats, err := c.deps.Learner.Stats(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	if stats == nil {
		stats = []LearnerStat{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"learners": stats})
}

// --- API

// listRecord is a record in /api/history: without the message itself.
type listRecord struct {
	*history.Record
	Message    []byte `json:"message,omitempty"`
	HasMessage bool   `json:"has_message"`
}

func (c *Console) apiHistory(w http.ResponseWriter, r *http.Request) {
	q, err := queryOf(r.URL.Query(), 100)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	recs, err := c.deps.History.Search(r.Context(), q)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	out := make([]listRecord, len(recs))
	for i, rec := range recs {
		out[i] = listRecord{Record: rec, HasMessage: len(rec.Message) > 0}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": out, "limit": q.Limit, "offset": q.Offset})
}

func (c *Console) apiRecord(w http.ResponseWriter, r *http.Request) {
	rec, err := c.deps.History.Get(r.Context(), r.PathValue("id"))
	if isNotFound(rec, err) {
		c.fail(w, r, http.StatusNotFound, "no such record")
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (c *Console) apiQuarantine(w http.ResponseWriter, r *http.Request) {
	rows, _, err := c.held(r)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	type row struct {
		QueueID string          `json:"queue_id"`
		Arrival time.Time       `json:"arrival"`
		Sender  string          `json:"sender"`
		Rcpts   []string        `json:"rcpts"`
		Size    int64           `json:"size"`
		Verdict *history.Record `json:"verdict,omitempty"`
	}
	out := make([]row, len(rows))
	for i, h := range rows {
		out[i] = row{h.QueueID, h.Arrival, h.Sender, h.Rcpts, h.Size, h.Verdict}
	}
	writeJSON(w, http.StatusOK, map[string]any{"held": out})
}
