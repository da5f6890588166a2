package console

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"chainmail/checks/history"
)

// The graphs are SVG made here from the history (the records the store
// keeps: history's entries, at most graphRecords) and Learner.Stats.

const (
	graphRecords = 10000
	// maxHours bounds the actions graph (the newest hours).
	maxHours = 168
	topN     = 15
	// recentTTL is how long the records behind the graphs are reused.
	recentTTL = 10 * time.Second
)

// graphs are the SVG graphs by name, with their titles.
var graphs = []struct{ Name, Title string }{
	{"actions", "Messages by action per hour"},
	{"latency", "Check latency (median and 95th percentile)"},
	{"symbols", "Top symbols"},
	{"senders", "Top senders"},
	{"domains", "Top sender domains"},
	{"learned", "Messages learned"},
}

var actionColors = map[string]string{
	"accept": "#4c9a2a", "tag": "#d4a017", "quarantine": "#e07b00",
	"tempfail": "#3b7dd8", "reject": "#c0392b", "discard": "#7f7f7f",
}

// recentRecords are the newest graphRecords records, read at most every
// recentTTL (a graphs page asks for six graphs at once).
func (c *Console) recentRecords(ctx context.Context) ([]*history.Record, error) {
	c.recentMu.Lock()
	defer c.recentMu.Unlock()
	if c.recent != nil && c.now().Sub(c.recentAt) < recentTTL {
		return c.recent, nil
	}
	recs, err := c.deps.History.Search(ctx, history.Query{Limit: graphRecords})
	if err != nil {
		return nil, err
	}
	c.recent, c.recentAt = recs, c.now()
	return recs, nil
}

func (c *Console) graphsPage(w http.ResponseWriter, r *http.Request) {
	recs, err := c.recentRecords(r.Context())
	d := map[string]any{"Graphs": graphs, "Count": len(recs)}
	if err != nil {
		d["Error"] = "The history could not be read: " + err.Error()
	} else if len(recs) > 0 {
		d["From"], d["To"] = recs[len(recs)-1].Time, recs[0].Time
	}
	c.render(w, r, http.StatusOK, "graphs", d)
}

func (c *Console) graphSVG(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".svg")
	known := false
	for _, g := range graphs {
		known = known || g.Name == name
	}
	if !ok || !known {
		http.Error(w, "no such graph", http.StatusNotFound)
		return
	}
	var out []byte
	if name == "learned" {
		stats, err := c.deps.Learner.Stats(r.Context())
		if err != nil {
			out = message("Messages learned", "The learners' statistics could not be read: "+err.Error())
		} else {
			out = learnedGraph(stats)
		}
	} else {
		recs, err := c.recentRecords(r.Context())
		switch {
		case err != nil:
			out = message(name, "The history could not be read: "+err.Error())
		case name == "actions":
			out = actionsGraph(recs)
		case name == "latency":
			out = latencyGraph(recs)
		case name == "symbols":
			out = topGraph("Top symbols (messages)", count(recs, func(r *history.Record) []string {
				var s []string
				for _, sym := range r.Symbols {
					s = append(s, sym.Name)
				}
				return s
			}))
		case name == "senders":
			out = topGraph("Top senders (envelope, messages)", count(recs, func(r *history.Record) []string { return []string{sender(r)} }))
		case name == "domains":
			out = topGraph("Top sender domains (messages)", count(recs, func(r *history.Record) []string {
				s := sender(r)
				if i := strings.LastIndexByte(s, '@'); i >= 0 {
					return []string{strings.ToLower(s[i+1:])}
				}
				return []string{s}
			}))
		}
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Write(out)
}

func sender(r *history.Record) string {
	if r.MailFrom == "" {
		return "<>"
	}
	return r.MailFrom
}

type counted struct {
	Label string
	N     int
}

// count counts records per label (each label once per record), most
// first, at most topN.
func count(recs []*history.Record, labels func(*history.Record) []string) []counted {
	m := map[string]int{}
	for _, r := range recs {
		seen := map[string]bool{}
		for _, l := range labels(r) {
			if !seen[l] {
				seen[l] = true
				m[l]++
			}
		}
	}
	out := make([]counted, 0, len(m))
	for l, n := range m {
		out = append(out, counted{l, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Label < out[j].Label
	})
	if len(out) > topN {
		out = out[:topN]
	}
	return out
}

// svg writes one SVG document.
type svg struct {
	b    bytes.Buffer
	w, h int
}

func newSVG(w, h int, title string) *svg {
	s := &svg{w: w, h: h}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, w, h, w, h)
	s.b.WriteString("<title>")
	xml.EscapeText(&s.b, []byte(title))
	s.b.WriteString("</title>")
	fmt.Fprintf(&s.b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`, w, h)
	s.text(10, 20, "start", 14, "#222222", title)
	return s
}

func (s *svg) text(x, y float64, anchor string, size int, color, t string) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d" fill="%s">`, x, y, anchor, size, color)
	xml.EscapeText(&s.b, []byte(t))
	s.b.WriteString("</text>")
}

func (s *svg) rect(x, y, w, h float64, color, tip string) {
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">`, x, y, w, h, color)
	if tip != "" {
		s.b.WriteString("<title>")
		xml.EscapeText(&s.b, []byte(tip))
		s.b.WriteString("</title>")
	}
	s.b.WriteString("</rect>")
}

func (s *svg) line(x1, y1, x2, y2 float64, color string) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`, x1, y1, x2, y2, color)
}

func (s *svg) bytes() []byte {
	s.b.WriteString("</svg>\n")
	return s.b.Bytes()
}

func message(title, msg string) []byte {
	s := newSVG(700, 80, title)
	s.text(10, 55, "start", 12, "#666666", msg)
	return s.bytes()
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimLabel(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// actionsGraph stacks the messages of each hour by action.
func actionsGraph(recs []*history.Record) []byte {
	const title = "Messages by action per hour"
	if len(recs) == 0 {
		return message(title, "No messages in the history yet.")
	}
	last := recs[0].Time.Truncate(time.Hour)
	first := recs[len(recs)-1].Time.Truncate(time.Hour)
	for _, r := range recs {
		t := r.Time.Truncate(time.Hour)
		if t.After(last) {
			last = t
		}
		if t.Before(first) {
			first = t
		}
	}
	hours := int(last.Sub(first)/time.Hour) + 1
	if hours > maxHours {
		hours, first = maxHours, last.Add(-(maxHours-1)*time.Hour)
	}
	buckets := make([]map[string]int, hours)
	for i := range buckets {
		buckets[i] = map[string]int{}
	}
	others := map[string]bool{}
	for _, r := range recs {
		i := int(r.Time.Truncate(time.Hour).Sub(first) / time.Hour)
		if i < 0 || i >= hours {
			continue
		}
		a := strings.ToLower(r.Action)
		buckets[i][a]++
		if actionColors[a] == "" {
			others[a] = true
		}
	}
	order := append([]string{}, actions...)
	for a := range others {
		order = append(order, a)
	}
	sort.Strings(order[len(actions):])
	peak := 0
	for _, b := range buckets {
		n := 0
		for _, v := range b {
			n += v
		}
		peak = max(peak, n)
	}
	const W, H, left, right, top, bottom = 900, 320, 50, 20, 50, 40
	s := newSVG(W, H, title)
	plotW, plotH := float64(W-left-right), float64(H-top-bottom)
	ymax := niceMax(float64(peak))
	for i := 0; i <= 4; i++ {
		y := float64(top) + plotH - plotH*float64(i)/4
		s.line(left, y, float64(W-right), y, "#e0e0e0")
		s.text(left-6, y+4, "end", 11, "#555555", fmt.Sprintf("%g", ymax*float64(i)/4))
	}
	bw := plotW / float64(hours)
	for i, b := range buckets {
		x := float64(left) + float64(i)*bw
		y := float64(top) + plotH
		t := first.Add(time.Duration(i) * time.Hour)
		for _, a := range order {
			n := b[a]
			if n == 0 {
				continue
			}
			h := plotH * float64(n) / ymax
			y -= h
			col := actionColors[a]
			if col == "" {
				col = "#555555"
			}
			s.rect(x+bw*0.1, y, math.Max(bw*0.8, 1), h, col, fmt.Sprintf("%s %s: %d", t.Local().Format("2006-01-02 15:00"), a, n))
		}
		step := max(1, hours/12)
		if i%step == 0 {
			label := t.Local().Format("15:00")
			if t.Local().Hour() == 0 || i == 0 {
				label = t.Local().Format("Jan 2 15:00")
			}
			s.text(x+bw/2, float64(H-bottom)+16, "middle", 10, "#555555", label)
		}
	}
	s.line(left, float64(top)+plotH, float64(W-right), float64(top)+plotH, "#888888")
	// legend
	x := 300.0
	for _, a := range order {
		col := actionColors[a]
		if col == "" {
			col = "#555555"
		}
		s.rect(x, 10, 12, 12, col, "")
		s.text(x+16, 21, "start", 12, "#222222", a)
		x += 20 + 7*float64(len(a)) + 10
	}
	return s.bytes()
}

// hrow is one row of a horizontal bar chart: one value per series.
type hrow struct {
	Label  string
	Values []float64
}

// hbars draws horizontal bars, one group per row.
func hbars(title, unit string, series, colors []string, rows []hrow) []byte {
	if len(rows) == 0 {
		return message(title, "No data yet.")
	}
	const W, left, right, top, barH, gap = 900, 260, 90, 40, 14, 8
	groupH := float64(barH*len(series) + gap)
	H := top + int(groupH*float64(len(rows))) + 20
	s := newSVG(W, H, title)
	peak := 0.0
	for _, r := range rows {
		for _, v := range r.Values {
			peak = math.Max(peak, v)
		}
	}
	ymax := niceMax(peak)
	plotW := float64(W - left - right)
	if len(series) > 1 {
		x := 500.0
		for i, name := range series {
			s.rect(x, 10, 12, 12, colors[i], "")
			s.text(x+16, 21, "start", 12, "#222222", name)
			x += 30 + 7*float64(len(name))
		}
	}
	for i, r := range rows {
		y := float64(top) + float64(i)*groupH
		s.text(left-8, y+float64(barH*len(series))/2+4, "end", 12, "#222222", trimLabel(r.Label, 38))
		for j, v := range r.Values {
			w := plotW * v / ymax
			by := y + float64(j*barH)
			val := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".") + unit
			s.rect(left, by, math.Max(w, 1), barH-2, colors[j], fmt.Sprintf("%s %s: %s", r.Label, series[j], val))
			s.text(left+math.Max(w, 1)+4, by+barH-4, "start", 11, "#555555", val)
		}
	}
	s.line(left, float64(top)-4, left, float64(H-16), "#888888")
	return s.bytes()
}

func topGraph(title string, cs []counted) []byte {
	rows := make([]hrow, len(cs))
	for i, c := range cs {
		rows[i] = hrow{c.Label, []float64{float64(c.N)}}
	}
	return hbars(title, "", []string{"messages"}, []string{"#3b7dd8"}, rows)
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func latencyGraph(recs []*history.Record) []byte {
	by := map[string][]time.Duration{}
	for _, r := range recs {
		for _, res := range r.Results {
			by[res.Check] = append(by[res.Check], res.Took)
		}
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	rows := make([]hrow, len(names))
	for i, n := range names {
		d := by[n]
		sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
		ms := func(x time.Duration) float64 { return float64(x) / float64(time.Millisecond) }
		rows[i] = hrow{fmt.Sprintf("%s (%d)", n, len(d)), []float64{ms(percentile(d, 0.5)), ms(percentile(d, 0.95))}}
	}
	return hbars("Check latency (median and 95th percentile, ms)", " ms", []string{"median", "p95"}, []string{"#3b7dd8", "#e07b00"}, rows)
}

func learnedGraph(stats []LearnerStat) []byte {
	rows := make([]hrow, 0, len(stats))
	for _, st := range stats {
		label := st.Check
		if st.Error != "" {
			label += " (error)"
		}
		rows = append(rows, hrow{label, []float64{float64(st.LearnedSpam), float64(st.LearnedHam)}})
	}
	return hbars("Messages learned", "", []string{"spam", "ham"}, []string{"#c0392b", "#4c9a2a"}, rows)
}
