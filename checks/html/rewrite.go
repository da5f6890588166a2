package html

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	xhtml "golang.org/x/net/html"
)

// Mode is what one switch does with what it finds: MailScanner's yes, no
// and disarm.
type Mode string

// The modes.
const (
	// Allow lets the tag through untouched (MailScanner's "yes").
	Allow Mode = "yes"
	// Deny reports it for the policy (MailScanner's "no").
	Deny Mode = "no"
	// Disarm rewrites the HTML part so that the tag does nothing.
	Disarm Mode = "disarm"
)

// Kind is a kind of active HTML a switch governs, as named in the facts
// and symbols.
type Kind string

// The kinds.
const (
	KindScript Kind = "script"  // <script>, on* event attributes, javascript: URLs
	KindIFrame Kind = "iframe"  // <iframe>, <frame>
	KindForm   Kind = "form"    // <form> and its controls
	KindObject Kind = "object"  // <object>, <embed>, <applet>
	KindWebBug Kind = "web-bug" // a tiny or hidden remote image
)

// Kinds in the order they are reported.
var Kinds = []Kind{KindScript, KindIFrame, KindForm, KindObject, KindWebBug}

// Settings are the five switches.
type Settings struct {
	Script, IFrame, Form, Object, WebBugs Mode
}

func (s Settings) mode(k Kind) Mode {
	switch k {
	case KindScript:
		return s.Script
	case KindIFrame:
		return s.IFrame
	case KindForm:
		return s.Form
	case KindObject:
		return s.Object
	case KindWebBug:
		return s.WebBugs
	}
	return Allow
}

// WebBugReplacement is the image a disarmed web bug shows instead: a
// transparent 1x1 GIF carried in the mail itself (MailScanner's Web Bug
// Replacement), so nothing is fetched from anywhere.
const WebBugReplacement = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

// ignoredWebBugNames are image file names taken for layout spacers, not
// web bugs (MailScanner's Ignored Web Bug Filenames).
var ignoredWebBugNames = []string{"spacer", "pixel.gif", "pixel.png", "gap", "shim"}

// Found counts what one HTML text holds, per kind; Disarmed what was made
// inert.
type Found struct {
	Found, Disarmed map[Kind]int
}

// urlAttrs are the attributes that carry a URL a browser may follow or load.
var urlAttrs = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "data": true, "background": true,
	"lowsrc": true, "dynsrc": true, "codebase": true, "xlink:href": true, "poster": true, "cite": true,
	"longdesc": true, "usemap": true, "ping": true, "srcdoc": true,
}

// Rewrite reads the HTML text src (in any ASCII-compatible charset: the
// tokenizer only looks at ASCII markup) and returns what it holds and,
// when a switch is Disarm, the text with those kinds made inert. Every
// token that needs no change is copied byte for byte; a changed tag is
// written anew from its name and attributes. out is nil when nothing was
// changed. Rewrite never fails: markup it cannot read is text to the
// tokenizer, as to a browser.
func Rewrite(src []byte, s Settings) (out []byte, f Found) {
	f = Found{Found: map[Kind]int{}, Disarmed: map[Kind]int{}}
	z := xhtml.NewTokenizer(bytes.NewReader(src))
	var b bytes.Buffer
	changed := false
	skip := ""     // inside an element being dropped whole (script)
	formDepth := 0 // inside a form being disarmed
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			break
		}
		raw := z.Raw()
		if skip != "" {
			changed = true
			if tt == xhtml.EndTagToken {
				if name, _ := z.TagName(); string(name) == skip {
					skip = ""
				}
			}
			continue
		}
		switch tt {
		case xhtml.StartTagToken, xhtml.SelfClosingTagToken:
			t := readTag(z, tt)
			keep, rewritten := visit(&t, s, &f, &formDepth)
			if !keep {
				changed = true
				if t.name == "script" && tt == xhtml.StartTagToken {
					skip = "script"
				}
				continue
			}
			if rewritten {
				changed = true
				b.WriteString(t.String())
				continue
			}
		case xhtml.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "form":
				if formDepth > 0 {
					formDepth--
				}
			case "script":
				if s.Script == Disarm {
					changed = true
					continue
				}
			case "object", "embed", "applet":
				if s.Object == Disarm {
					changed = true
					continue
				}
			}
		}
		b.Write(raw)
	}
	if !changed {
		return nil, f
	}
	if b.Len() == 0 {
		return []byte{}, f // everything was removed: a change all the same
	}
	return b.Bytes(), f
}

// tag is a start tag read from the tokenizer.
type tag struct {
	name        string
	attrs       []xhtml.Attribute
	selfClosing bool
}

func readTag(z *xhtml.Tokenizer, tt xhtml.TokenType) tag {
	name, more := z.TagName()
	t := tag{name: string(name), selfClosing: tt == xhtml.SelfClosingTagToken}
	for more {
		var k, v []byte
		k, v, more = z.TagAttr()
		t.attrs = append(t.attrs, xhtml.Attribute{Key: string(k), Val: string(v)})
	}
	return t
}

func (t *tag) get(key string) (string, bool) {
	for _, a := range t.attrs {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func (t *tag) drop(keep func(xhtml.Attribute) bool) bool {
	n := 0
	for _, a := range t.attrs {
		if keep(a) {
			t.attrs[n] = a
			n++
		}
	}
	dropped := n < len(t.attrs)
	t.attrs = t.attrs[:n]
	return dropped
}

func (t *tag) set(key, val string) {
	for i, a := range t.attrs {
		if a.Key == key {
			t.attrs[i].Val = val
			return
		}
	}
	t.attrs = append(t.attrs, xhtml.Attribute{Key: key, Val: val})
}

// String writes the tag. Attribute values are escaped, and characters
// beyond ASCII (an entity the tokenizer decoded) are written as numeric
// character references, which mean the same in every charset.
func (t *tag) String() string {
	var b strings.Builder
	b.WriteString("<" + t.name)
	for _, a := range t.attrs {
		b.WriteString(" " + a.Key + `="` + escapeAttr(a.Val) + `"`)
	}
	if t.selfClosing {
		b.WriteString(" /")
	}
	b.WriteString(">")
	return b.String()
}

func escapeAttr(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); {
		c := v[i]
		switch c {
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			if c < utf8.RuneSelf {
				b.WriteByte(c)
				break
			}
			r, n := utf8.DecodeRuneInString(v[i:])
			if r == utf8.RuneError && n <= 1 {
				b.WriteByte(c) // a byte of the part's own charset
				i++
				continue
			}
			b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
			i += n
			continue
		}
		i++
	}
	return b.String()
}

// scriptURL reports a javascript: or vbscript: URL the way a browser reads
// the scheme: leading spaces and controls skipped, tabs and line breaks
// inside ignored, any case.
func scriptURL(v string) bool {
	var b strings.Builder
	for i := 0; i < len(v) && b.Len() < 11; i++ {
		c := v[i]
		if c <= ' ' {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	s := b.String()
	return strings.HasPrefix(s, "javascript:") || strings.HasPrefix(s, "vbscript:") || strings.HasPrefix(s, "livescript:")
}

// metaScript reports <meta http-equiv=refresh content="0;url=javascript:…">.
func metaScript(t *tag) bool {
	eq, _ := t.get("http-equiv")
	if !strings.EqualFold(strings.TrimSpace(eq), "refresh") {
		return false
	}
	c, _ := t.get("content")
	i := strings.Index(strings.ToLower(c), "url")
	if i < 0 {
		return false
	}
	rest := strings.TrimLeft(c[i+3:], " \t\r\n")
	rest = strings.TrimPrefix(rest, "=")
	return scriptURL(strings.Trim(rest, ` '"`))
}

// visit inspects one start tag: it counts what it finds and, for the
// kinds to disarm, drops the tag (keep false) or changes it (rewritten).
func visit(t *tag, s Settings, f *Found, formDepth *int) (keep, rewritten bool) {
	found := func(k Kind) bool {
		f.Found[k]++
		if s.mode(k) == Disarm {
			f.Disarmed[k]++
			return true
		}
		return false
	}
	// Script anywhere: event handlers and script URLs.
	var handlers, urls bool
	for _, a := range t.attrs {
		if strings.HasPrefix(a.Key, "on") && len(a.Key) > 2 {
			handlers = true
		}
		if urlAttrs[a.Key] && scriptURL(a.Val) {
			urls = true
		}
	}
	if t.name == "script" {
		if found(KindScript) {
			return false, false
		}
	}
	if t.name == "meta" && metaScript(t) {
		// A refresh to a script URL runs it as the mail opens.
		if found(KindScript) {
			return false, false
		}
	}
	if handlers || urls {
		if found(KindScript) {
			t.drop(func(a xhtml.Attribute) bool {
				return !(strings.HasPrefix(a.Key, "on") && len(a.Key) > 2) && !(urlAttrs[a.Key] && scriptURL(a.Val))
			})
			rewritten = true
		}
	}
	switch t.name {
	case "iframe", "frame":
		// An iframe that loads nothing is inert.
		_, src := t.get("src")
		_, doc := t.get("srcdoc")
		if (src || doc) && found(KindIFrame) {
			t.drop(func(a xhtml.Attribute) bool { return a.Key != "src" && a.Key != "srcdoc" })
			rewritten = true
		}
	case "form":
		// A form that sends nowhere (no action) is inert.
		if _, action := t.get("action"); action && found(KindForm) {
			t.drop(func(a xhtml.Attribute) bool { return a.Key != "action" && a.Key != "target" && a.Key != "method" })
			rewritten = true
			if !t.selfClosing {
				*formDepth++
			}
		}
	case "input", "button", "select", "textarea", "keygen":
		if s.Form == Disarm && *formDepth > 0 {
			t.drop(func(a xhtml.Attribute) bool { return a.Key != "formaction" })
			t.set("disabled", "disabled")
			rewritten = true
		} else if _, ok := t.get("formaction"); ok && found(KindForm) {
			// A control that sends on its own (formaction).
			t.drop(func(a xhtml.Attribute) bool { return a.Key != "formaction" })
			t.set("disabled", "disabled")
			rewritten = true
		}
	case "object", "embed", "applet":
		if found(KindObject) {
			return false, false
		}
	case "param":
		if s.Object == Disarm {
			return false, false
		}
	case "img", "image":
		if webBug(t) && found(KindWebBug) {
			t.drop(func(a xhtml.Attribute) bool { return a.Key != "srcset" })
			t.set("src", WebBugReplacement)
			rewritten = true
		}
	}
	return true, rewritten
}

// webBug reports an image loaded from elsewhere that nobody is meant to
// see: both sides at most 2 pixels, either side 0, or hidden by its style.
// A name taken for a layout spacer is not one.
func webBug(t *tag) bool {
	src, _ := t.get("src")
	l := strings.ToLower(strings.TrimSpace(src))
	if !strings.HasPrefix(l, "http:") && !strings.HasPrefix(l, "https:") && !strings.HasPrefix(l, "//") {
		return false
	}
	if i := strings.IndexAny(l, "?#"); i >= 0 {
		l = l[:i]
	}
	base := l[strings.LastIndexByte(l, '/')+1:]
	for _, n := range ignoredWebBugNames {
		if strings.Contains(base, n) {
			return false
		}
	}
	w, wok := pixels(t, "width")
	h, hok := pixels(t, "height")
	if (wok && w == 0) || (hok && h == 0) || (wok && hok && w <= 2 && h <= 2) {
		return true
	}
	style, _ := t.get("style")
	st := strings.ReplaceAll(strings.ToLower(style), " ", "")
	return strings.Contains(st, "display:none") || strings.Contains(st, "visibility:hidden") ||
		strings.Contains(st, "width:0") || strings.Contains(st, "height:0") ||
		strings.Contains(st, "width:1px") && strings.Contains(st, "height:1px")
}

func pixels(t *tag, key string) (int, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	v = strings.TrimSuffix(strings.TrimSpace(v), "px")
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false
	}
	return n, true
}
