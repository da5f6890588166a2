package bayes

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/unicode/norm"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/address"
)

// TokenLimits bound the work of tokenizing one message.
type TokenLimits struct {
	// MaxText is how many bytes of decoded text are read (default 512 KiB).
	MaxText int64
	// MaxTokens is how many distinct tokens are kept (default 3000).
	MaxTokens int
	// Walk bounds the MIME walk.
	Walk attachments.WalkOptions
}

func (l *TokenLimits) defaults() {
	if l.MaxText <= 0 {
		l.MaxText = 512 << 10
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = 3000
	}
}

// Limits of single features, so that no attacker-chosen text makes the
// tokenizer slow or its output big.
const (
	// maxWord is the longest word (in runes) kept as itself; longer ones
	// become a "skip" feature of their kind and length, as bogofilter and
	// SpamAssassin do: base64 debris, hashes and URLs glued to text say
	// little by their exact spelling and a lot by their presence.
	maxWord = 30
	// maxJoin bounds a word rebuilt from spaced-out letters.
	maxJoin = 64
	// maxHeaderText bounds the header text (Subject, display name) read.
	maxHeaderText = 2048
	// maxHTMLDepth bounds the element stack kept to tell hidden text.
	maxHTMLDepth = 256
	// maxPairs is how many pairs of adjacent body words ("b:") a message
	// gives. Pairs, as CRM114's and rspamd's sparse features, catch what
	// single words miss ("click here", "remove me"); measured on the
	// public corpus, the first 150 give nearly all the gain of every pair
	// at a fifth of the extra lookups (README-bayes-method.md).
	maxPairs = 150
	// maxHeaderFields bounds the header fields whose names are features.
	maxHeaderFields = 100
)

// Tokenize returns the distinct features of m the classifier learns and
// judges, in the order first seen. They are what a reader sees, and a few
// things about how it was sent:
//
//   - the words of the Subject (prefix "s:"), of the sender's display name
//     ("n:") and of every text part ("" — HTML reduced to the text a mail
//     reader shows: no script, style or comments, and hidden text is a
//     feature, not words), and the first pairs of adjacent body words
//     ("b:");
//   - features of the HTML markup ("html:"): the tags used, images
//     (external or not), forms, hidden text, how many links;
//   - the hosts of links in HTML and of bare URLs in plain text ("url:")
//     and their registrable domains ("urld:");
//   - header features ("h:"): the sender's domain and registrable domain,
//     the mailer without its version, the root Content-Type and charset,
//     Reply-To elsewhere than From, the Message-ID's domain, the number of
//     Received hops, the names of the fields present, the registrable
//     domains of the relays; and the words of the other fields ("hw:"),
//     leaving out those that hold dates (Date, Received), which say when a
//     message was sent, not what it is;
//   - attachment names, extensions and types ("att:").
//
// Text is Unicode-normalised (NFKC) and lower-cased; zero-width characters
// are removed, words spelled out letter by letter ("V.i.a.g.r.a", "V I A G
// R A") are joined back, and look-alike Cyrillic and Greek letters in an
// otherwise Latin word read as the Latin ones, each obfuscation adding a
// feature of its own ("obf:"). The output is deterministic and holds at
// most lim.MaxTokens tokens.
func Tokenize(m *checks.Message, lim TokenLimits) []string {
	lim.defaults()
	t := tokenizers.Get().(*tokenizer)
	defer t.release()
	t.lim, t.budget = lim, lim.MaxText
	t.headers(m)
	src, n := attachments.Message(m.RawHeader(), m.Body)
	tree := attachments.Walk(src, n, lim.Walk)
	if r := tree.Root; r != nil {
		t.add("h:ct:" + r.MediaType)
		if cs := strings.ToLower(r.Params["charset"]); cs != "" && len(cs) <= maxWord {
			t.add("h:cs:" + cs)
		}
	}
	for _, e := range tree.Root.Leaves() {
		if t.full() {
			break
		}
		if e.IsAttachment() {
			t.attachment(e)
			continue
		}
		switch {
		case e.MediaType == "text/html":
			t.html(t.decoded(e))
		case strings.HasPrefix(e.MediaType, "text/"):
			t.text("", string(t.decoded(e)), true)
		}
	}
	return append([]string(nil), t.out...)
}

// tokenizers keeps tokenizers between messages: the set of tokens seen
// and the scratch buffers keep their room, so a message does not pay for
// allocating (and the collector for freeing) them again.
var tokenizers = sync.Pool{New: func() any { return &tokenizer{seen: make(map[string]struct{}, 1024)} }}

// release empties t and gives it back to the pool.
func (t *tokenizer) release() {
	clear(t.seen)
	clear(t.out)
	t.out, t.run, t.joined = t.out[:0], t.run[:0], t.joined[:0]
	t.prev, t.pairs = "", 0
	tokenizers.Put(t)
}

type tokenizer struct {
	lim    TokenLimits
	seen   map[string]struct{}
	out    []string
	budget int64
	// scratch
	run    []string
	joined []byte
	prev   string
	pairs  int
}

func (t *tokenizer) full() bool { return len(t.out) >= t.lim.MaxTokens }

func (t *tokenizer) add(tok string) {
	if t.full() {
		return
	}
	n := len(t.seen)
	t.seen[tok] = struct{}{} // one hash of tok, not two
	if len(t.seen) == n {
		return // seen before
	}
	t.out = append(t.out, tok)
}

// headers adds the features of the header fields.
func (t *tokenizer) headers(m *checks.Message) {
	t.text("s:", clip(m.Subject(), maxHeaderText), false)
	from := address.FirstMailbox(m.Get("From"))
	fromOrg := ""
	if d := strings.ToLower(from.Domain()); d != "" {
		t.add("h:from:" + d)
		if fromOrg = address.OrgDomain(d); fromOrg != "" && fromOrg != d {
			t.add("h:fromd:" + fromOrg)
		}
	}
	if from.Name != "" {
		t.text("n:", clip(from.Name, maxHeaderText), false)
	}
	if rt := m.Get("Reply-To"); rt != "" {
		d := address.OrgDomain(address.FirstMailbox(rt).Domain())
		if d != fromOrg {
			t.add("h:replyto:elsewhere")
		} else {
			t.add("h:replyto:same")
		}
	}
	if id := m.Get("Message-ID"); id != "" {
		d := ""
		if i := strings.LastIndexByte(id, '@'); i >= 0 {
			d = address.OrgDomain(strings.TrimRight(id[i+1:], ">"))
		}
		if d == "" {
			d = "none"
		}
		t.add("h:mid:" + d)
		if fromOrg != "" && d == fromOrg {
			t.add("h:mid:from")
		}
	} else {
		t.add("h:mid:absent")
	}
	mailer := m.Get("X-Mailer")
	if mailer == "" {
		mailer = m.Get("User-Agent")
	}
	if mailer != "" {
		t.add("h:mailer:" + mailerName(mailer))
	}
	t.add("h:hops:" + bucket(len(m.Values("Received")), 1, 2, 3, 4, 6, 8, 12))
	// Which fields a message has tells how it was written and carried
	// (mailing-list fields, a webmail's own fields, a bulk mailer's).
	for i, f := range m.Header {
		if i >= maxHeaderFields {
			break
		}
		name := strings.ToLower(f.Name)
		if len(name) <= maxWord {
			t.add("h:has:" + name)
		}
		switch name {
		case "subject", "from", "date", "received", "message-id":
			// read above, or dates and serial numbers
		case "x-spam-status", "x-spam-level", "x-spam-flag", "x-spam-checker-version", "x-spam-report":
			// another filter's verdict: learning it would learn that
			// filter, and a sender can write it
		default:
			t.text("hw:", clip(checks.Unfold(f.Value), maxHeaderText), false)
		}
	}
	// The registrable domains of the relays named in Received fields.
	for i, r := range m.Values("Received") {
		if i >= 12 {
			break
		}
		for _, kw := range []string{"from ", "by "} {
			if j := strings.Index(r, kw); j >= 0 {
				if d := address.OrgDomain(scanHost(strings.ToLower(clip(r[j+len(kw):], 255)))); d != "" {
					t.add("h:relay:" + d)
				}
			}
		}
	}
}

// mailerName is a mailer's name without versions, build numbers or
// comments: "Microsoft Outlook Express 6.00.2600.0000" → "microsoft
// outlook express".
func mailerName(s string) string {
	s = clip(s, 200)
	if i := strings.IndexAny(s, "(["); i > 0 {
		s = s[:i]
	}
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ' ' || r == '/' || r == '\t' }) {
		f = strings.Trim(f, ",;:-")
		if f == "" || strings.IndexFunc(f, unicode.IsDigit) >= 0 {
			continue
		}
		if out = append(out, f); len(out) == 3 {
			break
		}
	}
	if len(out) == 0 {
		return "other"
	}
	return strings.Join(out, " ")
}

// bucket names the range of the bounds n falls in: "<=b" for the first
// bound at or above n, ">last" above all.
func bucket(n int, bounds ...int) string {
	for _, b := range bounds {
		if n <= b {
			return strconv.Itoa(b)
		}
	}
	return ">" + strconv.Itoa(bounds[len(bounds)-1])
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (t *tokenizer) attachment(e *attachments.Entity) {
	t.add("att:type:" + e.MediaType)
	name := e.Filename()
	if name == "" {
		return
	}
	name = strings.ToLower(norm.NFKC.String(clip(name, 256)))
	if utf8.RuneCountInString(name) <= maxWord*2 {
		t.add("att:name:" + name)
	} else {
		t.add("att:name:long")
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 && len(name)-i-1 <= 10 {
		t.add("att:ext:" + name[i+1:])
	}
}

// decoded is the entity's text in UTF-8, charged to the text budget.
func (t *tokenizer) decoded(e *attachments.Entity) []byte {
	if t.budget <= 0 {
		return nil
	}
	var r io.Reader = e.Open()
	if cs := strings.ToLower(e.Params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if enc, _ := ianaindex.MIME.Encoding(cs); enc != nil {
			r = enc.NewDecoder().Reader(r)
		}
	}
	b, _ := io.ReadAll(io.LimitReader(r, t.budget))
	t.budget -= int64(len(b))
	return b
}

// normalize is s as the tokenizer reads it: zero-width characters and
// soft hyphens removed, NFKC (so full-width letters, ligatures and
// mathematical letters read as the plain ones) and lower case. Lower
// case after NFKC rather than full case folding (x/text/cases.Fold):
// every learned and judged text goes through the same mapping, so the two
// differ only for the few letters whose folding is several letters (ß,
// ŉ), and ToLower keeps ASCII text on its fast path.
func normalize(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	s = strings.Map(func(r rune) rune {
		if isInvisible(r) {
			return -1
		}
		return r
	}, s)
	return strings.ToLower(norm.NFKC.String(s))
}

// isInvisible reports the characters that take no room on screen and so
// split a word for a program but not for a reader.
func isInvisible(r rune) bool {
	switch r {
	case 0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, 0x00ad, 0x034f, 0x180e:
		return true
	}
	return false
}

// confusable maps the Cyrillic and Greek small letters that look like
// Latin ones (after lower-casing) to them.
var confusable = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p',
	'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ј': 'j', 'ԁ': 'd',
	'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l', 'һ': 'h', 'ѡ': 'w', 'ү': 'y',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p',
	'τ': 't', 'υ': 'u', 'χ': 'x', 'γ': 'y', 'η': 'n', 'ω': 'w',
}

func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r == '$'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// text adds the words of s under prefix; body text also gives the hosts
// of the bare URLs in it.
func (t *tokenizer) text(prefix, s string, body bool) {
	s = normalize(s)
	if body {
		t.bareURLs(s)
	}
	run := t.run[:0] // single letters standing close together
	gap, newline := 0, false
	for i := 0; i < len(s) && !t.full(); {
		r, n := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		if !isWordRune(r) {
			gap++
			newline = newline || r == '\n'
			i += n
			continue
		}
		start, runes := i, 0
		for i < len(s) {
			r, n := rune(s[i]), 1
			if r >= utf8.RuneSelf {
				r, n = utf8.DecodeRuneInString(s[i:])
			}
			if !isWordRune(r) {
				// an apostrophe inside a word ("don't") belongs to it
				if r == '\'' && i+1 < len(s) && s[i+1] < utf8.RuneSelf && unicode.IsLetter(rune(s[i+1])) && runes > 0 {
					i++
					runes++
					continue
				}
				break
			}
			i += n
			runes++
		}
		w := s[start:i]
		tight := gap <= 3 && !newline
		gap, newline = 0, false
		if runes == 1 && (len(run) == 0 || tight) {
			if len(run) < maxJoin+1 {
				run = append(run, w)
			}
			continue
		}
		t.flush(prefix, run)
		run = run[:0]
		if runes == 1 {
			run = append(run, w)
			continue
		}
		t.word(prefix, w, runes)
	}
	t.flush(prefix, run)
	t.run = run[:0]
}

// flush adds a run of single letters: three or more that stood close
// together ("v i a g r a", "v.i.a.g.r.a", "v-i-a-g-r-a") are joined
// back into the word they spell; fewer are no words.
func (t *tokenizer) flush(prefix string, run []string) {
	if len(run) < 3 {
		return
	}
	b := t.joined[:0]
	for _, l := range run {
		b = append(b, l...)
	}
	t.joined = b
	t.add("obf:spaced")
	t.word(prefix, string(b), len(run))
}

// word adds one word (already normalised) under prefix.
func (t *tokenizer) word(prefix, w string, runes int) {
	if runes < 2 {
		return
	}
	if runes > maxWord {
		t.add("skip:" + prefix + wordKind(w) + ":" + bucket(runes, 40, 60, 100))
		return
	}
	if w[0] >= utf8.RuneSelf || strings.IndexFunc(w, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
		if lat, mixed := unconfuse(w); mixed {
			t.add("obf:mixed-script")
			w = lat
		}
	}
	t.add(prefix + w)
	if prefix == "" && t.pairs < maxPairs {
		if t.prev != "" {
			t.pairs++
			t.add("b:" + t.prev + " " + w)
		}
		t.prev = w
	}
}

// wordKind names what a long word is made of.
func wordKind(w string) string {
	letters, digits := false, false
	for _, r := range w {
		switch {
		case unicode.IsDigit(r):
			digits = true
		case unicode.IsLetter(r):
			letters = true
		}
	}
	switch {
	case letters && digits:
		return "mixed"
	case digits:
		return "digits"
	}
	return "letters"
}

// unconfuse maps look-alike letters in a word that also has Latin
// letters to Latin; mixed reports whether the word mixed scripts so.
// A word without Latin letters (Russian, Greek text) is left alone.
func unconfuse(w string) (string, bool) {
	latin, other := false, false
	for _, r := range w {
		switch {
		case r < utf8.RuneSelf && unicode.IsLetter(r):
			latin = true
		case confusable[r] != 0:
			other = true
		}
	}
	if !latin || !other {
		return w, false
	}
	return strings.Map(func(r rune) rune {
		if l := confusable[r]; l != 0 {
			return l
		}
		return r
	}, w), true
}

// bareURLs adds the hosts of the URLs written out in (normalised) text:
// after "http://" or "https://", and "www." at the start of a word.
func (t *tokenizer) bareURLs(s string) {
	for off := 0; !t.full(); {
		i := strings.Index(s[off:], "://")
		if i < 0 {
			break
		}
		at := off + i
		if strings.HasSuffix(s[:at], "http") || strings.HasSuffix(s[:at], "https") {
			t.host(scanHost(s[at+3:]))
		}
		off = at + 3
	}
	for off := 0; !t.full(); {
		i := strings.Index(s[off:], "www.")
		if i < 0 {
			break
		}
		at := off + i
		if at == 0 || !isHostByte(s[at-1]) {
			t.host(scanHost(s[at:]))
		}
		off = at + 4
	}
}

func isHostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-'
}

// scanHost is the host name at the start of s (letters, digits, dots and
// hyphens).
func scanHost(s string) string {
	n := 0
	for n < len(s) && n < 255 {
		if !isHostByte(s[n]) {
			break
		}
		n++
	}
	return strings.Trim(s[:n], ".-")
}

// host adds a link's host and its registrable domain.
func (t *tokenizer) host(h string) {
	if h == "" || !strings.Contains(h, ".") {
		return
	}
	if net.ParseIP(h) != nil {
		t.add("url:ip")
		return
	}
	n := len(t.out)
	t.add("url:" + h)
	if len(t.out) == n {
		return // this host was seen before, its domain too
	}
	if d := address.OrgDomain(h); d != "" && d != h {
		t.add("urld:" + d)
	}
}

// linkHost is the lower-cased host of an http(s) URL, "" for others.
func linkHost(u string) string {
	u = strings.TrimSpace(u)
	for _, scheme := range []string{"http://", "https://"} {
		if len(u) > len(scheme) && strings.EqualFold(u[:len(scheme)], scheme) {
			rest := u[len(scheme):]
			if i := strings.IndexAny(rest, "/?#\\"); i >= 0 {
				rest = rest[:i]
			}
			if i := strings.LastIndexByte(rest, '@'); i >= 0 {
				rest = rest[i+1:]
			}
			if i := strings.LastIndexByte(rest, ':'); i >= 0 {
				rest = rest[:i]
			}
			return strings.ToLower(clip(rest, 255))
		}
	}
	return ""
}

// element is one open HTML element as the text reader tracks it.
type element struct {
	name   string
	skip   bool   // script, style: its text is not shown
	hidden bool   // its text is not seen
	bg     string // background colour in effect
}

var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true,
	"hr": true, "img": true, "input": true, "link": true, "meta": true, "param": true, "source": true,
	"track": true, "wbr": true}

// html adds the words of the text an HTML part shows and the features of
// its markup.
func (t *tokenizer) html(src []byte) {
	z := html.NewTokenizer(bytes.NewReader(src))
	z.SetMaxBuf(len(src) + 1)
	var text strings.Builder
	stack := []element{{name: "", bg: "#ffffff"}}
	var hidden, links, comments int
	for {
		tt := z.Next()
		top := stack[len(stack)-1]
		switch tt {
		case html.ErrorToken:
			t.text("", text.String(), true)
			if hidden > 0 {
				t.add("html:hidden")
			}
			if comments > 0 {
				t.add("html:comments:" + bucket(comments, 1, 5, 20))
			}
			t.add("html:links:" + bucket(links, 0, 1, 3, 10, 30))
			return
		case html.CommentToken:
			comments++
		case html.TextToken:
			switch {
			case top.skip:
			case top.hidden:
				if len(bytes.TrimSpace(z.Text())) > 0 {
					hidden++
				}
			default:
				text.Write(z.Text())
				text.WriteByte(' ')
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			for i := len(stack) - 1; i > 0; i-- {
				if stack[i].name == string(name) {
					stack = stack[:i]
					break
				}
			}
			text.WriteByte(' ')
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			tag := string(name)
			t.add("html:" + tag)
			el := element{name: tag, skip: top.skip || tag == "script" || tag == "style", hidden: top.hidden, bg: top.bg}
			var color string
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				switch string(k) {
				case "href":
					if host := linkHost(string(v)); host != "" {
						links++
						t.host(host)
					}
				case "src":
					if host := linkHost(string(v)); host != "" {
						t.host(host)
						if tag == "img" {
							t.add("html:img:external")
						}
					}
				case "style":
					st := strings.ToLower(strings.Join(strings.Fields(string(v)), ""))
					if strings.Contains(st, "display:none") || strings.Contains(st, "visibility:hidden") || tinyFont(st) {
						el.hidden = true
					}
					if c := cssValue(st, "color:"); c != "" {
						color = c
					}
					if c := cssValue(st, "background-color:"); c != "" {
						el.bg = normColor(c)
					} else if c := cssValue(st, "background:"); c != "" {
						el.bg = normColor(c)
					}
				case "color":
					color = string(v)
				case "bgcolor":
					el.bg = normColor(string(v))
				case "size":
					if tag == "font" {
						if s := strings.TrimSpace(string(v)); s == "0" || strings.HasPrefix(s, "-") && s != "-1" {
							el.hidden = true
						}
					}
				}
			}
			if color != "" && normColor(color) == el.bg {
				el.hidden = true
			}
			if el.hidden && !top.hidden {
				t.add("html:hidden:" + tag)
			}
			if tt == html.StartTagToken && !voidElements[tag] && len(stack) < maxHTMLDepth {
				stack = append(stack, el)
			}
			if tag == "br" || tag == "p" || tag == "div" || tag == "td" || tag == "li" || tag == "tr" {
				text.WriteByte('\n')
			}
		}
	}
}

// tinyFont reports a CSS font size of at most 2px (or 0 in any unit).
func tinyFont(style string) bool {
	v := cssValue(style, "font-size:")
	if v == "" {
		return false
	}
	for _, tiny := range []string{"0", "0px", "1px", "2px", "0pt", "1pt", "0em", "0%"} {
		if v == tiny {
			return true
		}
	}
	return false
}

// cssValue is the value of property in a lower-cased style attribute
// without spaces ("" when absent).
func cssValue(style, property string) string {
	i := strings.Index(style, property)
	for i > 0 && style[i-1] != ';' && style[i-1] != '"' && style[i-1] != '{' {
		// "background-color:" also contains "color:": want the property itself
		j := strings.Index(style[i+1:], property)
		if j < 0 {
			return ""
		}
		i += 1 + j
	}
	if i < 0 {
		return ""
	}
	v := style[i+len(property):]
	if j := strings.IndexByte(v, ';'); j >= 0 {
		v = v[:j]
	}
	return strings.TrimSuffix(v, "!important")
}

// normColor writes the common spellings of white and black one way, so
// that white text on a white background is seen as hidden.
func normColor(c string) string {
	c = strings.ToLower(strings.TrimSpace(c))
	switch c {
	case "white", "#fff", "#ffffff", "rgb(255,255,255)":
		return "#ffffff"
	case "black", "#000", "#000000", "rgb(0,0,0)":
		return "#000000"
	}
	return c
}
