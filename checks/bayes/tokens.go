package bayes

import (
	"bytes"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding/ianaindex"

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

// Tokenize returns the distinct features of m the classifier learns and
// judges, in the order first seen: words of the Subject and of every text
// part (HTML reduced to its text), the sender's domain, the hosts of
// links, attachment names and types. Each kind of feature has its own
// prefix, so "free" in the Subject and "free" in the body are different
// tokens.
func Tokenize(m *checks.Message, lim TokenLimits) []string {
	lim.defaults()
	t := &tokenizer{lim: lim, seen: map[string]bool{}, budget: lim.MaxText}
	t.words("s:", m.Subject())
	if d := address.FirstMailbox(m.Get("From")).Domain(); d != "" {
		t.add("from:" + d)
	}
	var body io.ReaderAt = bytes.NewReader(nil)
	var size int64
	if m.Body != nil {
		body, size = m.Body, m.Body.Size()
	}
	src, n := attachments.Concat(m.RawHeader(), body, size)
	tree := attachments.Walk(src, n, lim.Walk)
	for _, e := range tree.Root.Leaves() {
		if t.full() {
			break
		}
		if e.IsAttachment() {
			if name := e.Filename(); name != "" {
				t.add("att:name:" + strings.ToLower(name))
				if i := strings.LastIndexByte(name, '.'); i >= 0 {
					t.add("att:ext:" + strings.ToLower(name[i+1:]))
				}
			}
			t.add("att:type:" + e.MediaType)
			continue
		}
		switch {
		case e.MediaType == "text/html":
			t.html(t.decoded(e))
		case strings.HasPrefix(e.MediaType, "text/"):
			b, _ := io.ReadAll(t.decoded(e))
			t.words("", string(b))
		}
	}
	return t.out
}

type tokenizer struct {
	lim    TokenLimits
	seen   map[string]bool
	out    []string
	budget int64
}

func (t *tokenizer) full() bool { return len(t.out) >= t.lim.MaxTokens || t.budget <= 0 }

func (t *tokenizer) add(tok string) {
	if t.full() || t.seen[tok] {
		return
	}
	t.seen[tok] = true
	t.out = append(t.out, tok)
}

// decoded is the entity's text in UTF-8, charged to the text budget.
func (t *tokenizer) decoded(e *attachments.Entity) io.Reader {
	var r io.Reader = e.Open()
	if cs := strings.ToLower(e.Params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if enc, _ := ianaindex.MIME.Encoding(cs); enc != nil {
			r = enc.NewDecoder().Reader(r)
		}
	}
	lr := io.LimitReader(r, t.budget)
	b, _ := io.ReadAll(lr)
	t.budget -= int64(len(b))
	return bytes.NewReader(b)
}

// words adds the words of s under prefix.
func (t *tokenizer) words(prefix, s string) {
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '$' && r != '\'' && r != '-'
	}) {
		w = strings.Trim(w, "'-")
		if n := utf8.RuneCountInString(w); n < 2 || n > 30 {
			continue
		}
		t.add(prefix + strings.ToLower(w))
	}
}

// html adds the words of an HTML part's text and the hosts of its links.
func (t *tokenizer) html(r io.Reader) {
	z := html.NewTokenizer(r)
	var text strings.Builder
	for {
		switch z.Next() {
		case html.ErrorToken:
			t.words("", text.String())
			return
		case html.TextToken:
			text.Write(z.Text())
			text.WriteByte(' ')
		case html.StartTagToken, html.SelfClosingTagToken:
			name, more := z.TagName()
			t.add("html:" + string(name))
			for more {
				var k, v []byte
				k, v, more = z.TagAttr()
				if string(k) == "href" || string(k) == "src" {
					if host := linkHost(string(v)); host != "" {
						t.add("url:" + host)
					}
				}
			}
		}
	}
}

// linkHost is the lower-cased host of an http(s) URL, "" for others.
func linkHost(u string) string {
	u = strings.TrimSpace(u)
	for _, scheme := range []string{"http://", "https://"} {
		if len(u) > len(scheme) && strings.EqualFold(u[:len(scheme)], scheme) {
			rest := u[len(scheme):]
			if i := strings.IndexAny(rest, "/?#"); i >= 0 {
				rest = rest[:i]
			}
			if i := strings.LastIndexByte(rest, '@'); i >= 0 {
				rest = rest[i+1:]
			}
			if i := strings.LastIndexByte(rest, ':'); i >= 0 {
				rest = rest[:i]
			}
			return strings.ToLower(rest)
		}
	}
	return ""
}
