// Package html is the html check: MailScanner's HTML switches for script,
// iframe, form, object codebase and web-bug tags, each yes (let through),
// no (a finding for the policy) or disarm (the HTML part rewritten so the
// tag does nothing).
//
// Every text/html part of the message is decoded (transfer encoding
// undone), tokenized with golang.org/x/net/html and, when a switch is
// disarm and the part holds that kind, written back: the changed tags
// rewritten, every other token byte for byte, the result encoded again in
// the part's own transfer encoding (quoted-printable or base64 as it came)
// and put in place of the part's body. The part's header, the other parts
// and the message header stay as received (Result.NewBody). A disarmed
// message's DKIM body hash no longer matches: see README "HTML control".
//
// What cannot be rewritten is never let through silently: a part over
// max_part_size, in a transfer encoding or charset the rewriter cannot
// keep, or not stored in place (inside an encoded message/rfc822) while a
// switch asks for a disarm is an "unscannable" finding.
//
// The check builds on the attachment check's result when that one changed
// the body (a file removed): it depends on it, so both edits are
// delivered.
package html

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime/quotedprintable"
	"sort"
	"strings"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/verdictlog"
)

// Statuses besides clean and unscannable.
const (
	// StatusFound: a kind whose switch is "no" was found.
	StatusFound checks.Status = "found"
	// StatusDisarmed: HTML parts were rewritten; nothing was left to report.
	StatusDisarmed checks.Status = "disarmed"
	// StatusUnscannable: a part that should have been looked at or
	// disarmed could not be.
	StatusUnscannable checks.Status = "unscannable"
)

// Symbols and their default scores.
var symbols = map[Kind]checks.Symbol{
	KindScript: {Name: "HTML_SCRIPT", Score: 1},
	KindIFrame: {Name: "HTML_IFRAME", Score: 0.5},
	KindForm:   {Name: "HTML_FORM", Score: 1},
	KindObject: {Name: "HTML_OBJECT", Score: 1},
	KindWebBug: {Name: "HTML_WEB_BUG", Score: 0.1},
}

// More symbols.
const (
	SymDisarmed    = "HTML_DISARMED"
	SymUnscannable = "HTML_UNSCANNABLE"
)

// Config is the html check's configuration.
type Config struct {
	Script         Mode `yaml:"script"`
	IFrame         Mode `yaml:"iframe"`
	Form           Mode `yaml:"form"`
	ObjectCodebase Mode `yaml:"object_codebase"`
	WebBugs        Mode `yaml:"web_bugs"`
	// MaxPartSize bounds one HTML part, decoded; a bigger one is not
	// read and is an unscannable finding.
	MaxPartSize checks.Size `yaml:"max_part_size"`
	// MaxTotal bounds the decoded HTML read per message.
	MaxTotal checks.Size `yaml:"max_total"`
	// Walk bounds the MIME walk (set by the composition root).
	Walk attachments.WalkOptions `yaml:"-"`
}

// DefaultConfig returns MailScanner's shipped defaults: every switch
// disarm.
func DefaultConfig() Config {
	return Config{Script: Disarm, IFrame: Disarm, Form: Disarm, ObjectCodebase: Disarm, WebBugs: Disarm,
		MaxPartSize: 4 << 20, MaxTotal: 16 << 20}
}

// Check is the html check.
type Check struct {
	cfg Config
	set Settings
}

// New validates cfg.
func New(cfg Config) (*Check, error) {
	for _, sw := range []struct {
		name string
		m    Mode
	}{{"script", cfg.Script}, {"iframe", cfg.IFrame}, {"form", cfg.Form}, {"object_codebase", cfg.ObjectCodebase}, {"web_bugs", cfg.WebBugs}} {
		switch sw.m {
		case Allow, Deny, Disarm:
		default:
			return nil, fmt.Errorf("html: %s %q: want yes, no or disarm", sw.name, sw.m)
		}
	}
	if cfg.MaxPartSize <= 0 || cfg.MaxTotal < cfg.MaxPartSize {
		return nil, fmt.Errorf("html: max_part_size %d must be above 0 and at most max_total %d", cfg.MaxPartSize, cfg.MaxTotal)
	}
	return &Check{cfg: cfg, set: Settings{Script: cfg.Script, IFrame: cfg.IFrame, Form: cfg.Form, Object: cfg.ObjectCodebase, WebBugs: cfg.WebBugs}}, nil
}

// Name implements checks.Check.
func (*Check) Name() string { return "html" }

// DependsOn implements checks.Dependent: a body the attachment check
// changed is the one this check rewrites further.
func (*Check) DependsOn() []string { return []string{"attachment"} }

// Facts implements checks.Factual.
func (*Check) Facts() map[string]any {
	return map[string]any{"findings": []string{}, "disarmed": []string{}, "unscannable": false, "parts": 0}
}

func (c *Check) anyLook() bool {
	for _, k := range Kinds {
		if c.set.mode(k) != Allow {
			return true
		}
	}
	return false
}

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, prior checks.Results) checks.Result {
	r := checks.Result{Status: checks.StatusClean, Facts: c.Facts()}
	if !c.anyLook() {
		return r
	}
	header := m.RawHeader()
	var body checks.Body = m.Body
	for _, p := range prior {
		if p.Check == "attachment" && p.NewBody != nil {
			body = p.NewBody
		}
	}
	src, size := attachments.Message(header, body)
	tree := attachments.Walk(src, size, c.cfg.Walk)
	headerLen := int64(len(header))

	found := map[Kind]int{}
	disarmed := map[Kind]int{}
	var edits []attachments.Edit
	var unscannable []string
	parts := 0
	var total int64
	eol := attachments.LineEnding(src)
	if tree.Truncated {
		// Parts past the MIME limits were not read: what they hold is
		// unknown, never taken for clean.
		unscannable = append(unscannable, "MIME structure past the limits (max_mime_parts, max_mime_depth)")
	}
	for _, e := range tree.Root.Leaves() {
		if e.MediaType != "text/html" || e.IsAttachment() && e.Disposition == "attachment" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return checks.Result{Check: c.Name(), Status: checks.StatusTimeout, Err: err}
		}
		parts++
		why, text := c.read(e, &total)
		if why != "" {
			unscannable = append(unscannable, e.Path+": "+why)
			continue
		}
		// A break at the very end of the body (a single-part message's
		// last line) stays where it is, outside the rewritten text.
		end := e.End - trailingBreak(e)
		if end < e.End && (identity(e.Encoding) || e.Encoding == "quoted-printable") {
			text = bytes.TrimSuffix(text, []byte("\n"))
			text = bytes.TrimSuffix(text, []byte("\r"))
		}
		out, f := Rewrite(text, c.set)
		for k, n := range f.Found {
			found[k] += n
		}
		if out == nil {
			continue
		}
		why = ""
		switch {
		case !e.InPlace || e.BodyStart < headerLen:
			why = "not stored in place (inside an encoded message)"
		case !asciiCompatible(e.Params["charset"]) && onlyWebBugs(f.Disarmed):
			// Tracking pixels in a part we cannot write back (Japanese
			// newsletters in ISO-2022-JP): a privacy matter, not a danger
			// that would justify holding the mail. Delivered as it is,
			// the finding counted.
			continue
		case !asciiCompatible(e.Params["charset"]):
			why = "charset " + e.Params["charset"] + " cannot be rewritten"
		}
		var enc []byte
		if why == "" {
			var err error
			if enc, err = encode(out, e.Encoding, eol); err != nil {
				why = err.Error()
			}
		}
		if why != "" {
			unscannable = append(unscannable, e.Path+": "+why)
			continue
		}
		for k, n := range f.Disarmed {
			disarmed[k] += n
		}
		// The body alone: the part's header (charset, encoding) stays.
		edits = append(edits, attachments.Edit{Entity: &attachments.Entity{Path: e.Path, InPlace: true, Start: e.BodyStart, End: end}, Data: enc})
	}

	var findings, dis []string
	var events []checks.Event
	for _, k := range Kinds {
		if disarmed[k] > 0 {
			dis = append(dis, string(k))
			events = append(events, verdictlog.HTMLDisarmed(m.QueueID, string(k), disarmed[k]))
		}
		if found[k] > 0 && c.set.mode(k) == Deny {
			findings = append(findings, string(k))
			r.Symbols = append(r.Symbols, symbols[k])
			events = append(events, verdictlog.HTMLFound(m.QueueID, string(k), found[k]))
		}
	}
	for _, u := range unscannable {
		events = append(events, verdictlog.HTMLUnscannable(m.QueueID, u))
	}
	if len(dis) > 0 {
		r.Symbols = append(r.Symbols, checks.Symbol{Name: SymDisarmed, Score: 0, Detail: strings.Join(dis, ",")})
	}
	if len(unscannable) > 0 {
		r.Symbols = append(r.Symbols, checks.Symbol{Name: SymUnscannable, Score: 1, Detail: unscannable[0]})
	}
	sort.Slice(r.Symbols, func(i, j int) bool { return r.Symbols[i].Name < r.Symbols[j].Name })
	for _, s := range r.Symbols {
		r.Score += s.Score
	}
	r.Facts["findings"] = nonNil(findings)
	r.Facts["disarmed"] = nonNil(dis)
	r.Facts["unscannable"] = len(unscannable) > 0
	r.Facts["parts"] = parts
	r.Events = events
	switch {
	case len(unscannable) > 0:
		r.Status, r.Reason = StatusUnscannable, unscannable[0]
	case len(findings) > 0:
		r.Status, r.Reason = StatusFound, "HTML "+strings.Join(findings, ", ")
	case len(dis) > 0:
		r.Status, r.Reason = StatusDisarmed, "disarmed HTML "+strings.Join(dis, ", ")
	}
	if len(edits) > 0 {
		nb, err := attachments.ApplyEdits(src, headerLen, size, edits)
		if err != nil {
			r.Status, r.Reason = StatusUnscannable, "could not rewrite HTML: "+err.Error()
			r.Facts["unscannable"] = true
		} else {
			r.NewBody = nb
		}
	}
	return r
}

// trailingBreak is the length of the line break the raw body ends with.
func trailingBreak(e *attachments.Entity) int64 {
	n := e.RawSize()
	ra, ok := e.Body().(io.ReaderAt)
	if n < 1 || !ok {
		return 0
	}
	var b [2]byte
	k := int64(2)
	if n < 2 {
		k = 1
	}
	if _, err := ra.ReadAt(b[2-k:], n-k); err != nil {
		return 0
	}
	switch {
	case b[0] == '\r' && b[1] == '\n':
		return 2
	case b[1] == '\n':
		return 1
	}
	return 0
}

func identity(enc string) bool {
	switch enc {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// read returns the part's HTML decoded, or why it could not be read.
func (c *Check) read(e *attachments.Entity, total *int64) (string, []byte) {
	d := e.Open()
	if !d.Known() {
		return "transfer encoding " + e.Encoding + " unknown", nil
	}
	limit := int64(c.cfg.MaxPartSize)
	if left := int64(c.cfg.MaxTotal) - *total; left < limit {
		limit = left
	}
	b, err := io.ReadAll(io.LimitReader(d, limit+1))
	if err != nil {
		return "unreadable: " + err.Error(), nil
	}
	*total += int64(len(b))
	if int64(len(b)) > limit {
		return fmt.Sprintf("too big (over %d bytes of HTML)", limit), nil
	}
	return "", b
}

// asciiCompatible reports a charset in which HTML markup is ASCII bytes
// that no other character contains, so tokens can be rewritten without
// decoding the text.
func asciiCompatible(cs string) bool {
	cs = strings.ToLower(strings.Trim(cs, `" `))
	for _, p := range []string{"utf-16", "utf-32", "ucs-2", "ucs-4", "utf-7", "iso-2022", "hz-gb", "csiso2022", "unicode"} {
		if strings.HasPrefix(cs, p) {
			return false
		}
	}
	return true
}

// encode writes the rewritten HTML in the part's transfer encoding, with
// the message's line ends and without a final line break (that one
// belongs to the next delimiter).
func encode(b []byte, enc, eol string) ([]byte, error) {
	switch enc {
	case "", "7bit", "8bit", "binary":
		return b, nil
	case "quoted-printable":
		var out bytes.Buffer
		w := quotedprintable.NewWriter(&out)
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		o := out.Bytes()
		if eol == "\n" {
			o = bytes.ReplaceAll(o, []byte("\r\n"), []byte("\n"))
		}
		return o, nil
	case "base64":
		s := base64.StdEncoding.EncodeToString(b)
		var out strings.Builder
		for len(s) > 76 {
			out.WriteString(s[:76] + eol)
			s = s[76:]
		}
		out.WriteString(s)
		return []byte(out.String()), nil
	}
	return nil, fmt.Errorf("transfer encoding %s cannot be written", enc)
}

// onlyWebBugs reports whether what a rewrite disarmed is web bugs only.
func onlyWebBugs(disarmed map[Kind]int) bool {
	for k, n := range disarmed {
		if k != KindWebBug && n > 0 {
			return false
		}
	}
	return true
}
