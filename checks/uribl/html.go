package uribl

import (
	"bytes"
	"io"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxHTMLToken bounds one HTML token (a text run, a tag with its
// attributes). A longer one ends tokenizing and the rest of the part is
// read as plain text.
const maxHTMLToken = 2 << 20

// maxAnchorText bounds the text kept of one anchor.
const maxAnchorText = 512

// inline elements do not separate words of the visible text; every other
// element does.
var inline = map[atom.Atom]bool{
	atom.A: true, atom.Abbr: true, atom.B: true, atom.Bdi: true, atom.Bdo: true, atom.Big: true,
	atom.Cite: true, atom.Code: true, atom.Data: true, atom.Del: true, atom.Dfn: true, atom.Em: true,
	atom.Font: true, atom.I: true, atom.Ins: true, atom.Kbd: true, atom.Label: true, atom.Mark: true,
	atom.Nobr: true, atom.Q: true, atom.S: true, atom.Samp: true, atom.Small: true, atom.Span: true,
	atom.Strike: true, atom.Strong: true, atom.Sub: true, atom.Sup: true, atom.Time: true, atom.Tt: true,
	atom.U: true, atom.Var: true, atom.Wbr: true,
}

// html reads an HTML part with the x/net/html tokenizer (which copes with
// any malformed markup and decodes character references in text and
// attributes): link targets and image sources are URLs of their own
// origin, the visible text is scanned like plain text, and anchors keep
// their text for the phishing finding.
func (c *collector) html(r io.Reader) {
	z := html.NewTokenizer(r)
	z.SetMaxBuf(maxHTMLToken)
	var text []byte
	flush := func(all bool) {
		if all {
			c.scan(text, OriginText)
			text = text[:0]
			return
		}
		cut := safeCut(text)
		c.scan(text[:cut], OriginText)
		text = append(text[:0], text[cut:]...)
	}
	var anchor *Link
	var anchorText []byte
	endAnchor := func() {
		if anchor == nil {
			return
		}
		t := strings.TrimSpace(string(anchorText))
		if t != "" && strings.Contains(t, ".") && len(c.found.Links) < c.lim.MaxLinks {
			anchor.Text = t
			c.found.Links = append(c.found.Links, *anchor)
		}
		anchor, anchorText = nil, anchorText[:0]
	}
	rawText := atom.Atom(0) // inside script or style
	for {
		if c.full() {
			c.found.Truncated = true
			return
		}
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() == html.ErrBufferExceeded {
				// One token too long to hold: read the rest as text.
				c.found.Truncated = true
				flush(true)
				c.text(io.MultiReader(bytes.NewReader(z.Raw()), bytes.NewReader(z.Buffered()), r), OriginText)
				endAnchor()
				return
			}
			// Markup cut off by the end of the part (an attribute
			// never closed) is read as text, as lenient clients show
			// it.
			text = append(text, ' ')
			text = append(text, z.Raw()...)
			flush(true)
			endAnchor()
			return
		case html.TextToken:
			if rawText != 0 {
				continue
			}
			t := z.Text()
			text = append(text, t...)
			if anchor != nil && len(anchorText) < maxAnchorText {
				anchorText = append(anchorText, t[:min(len(t), maxAnchorText-len(anchorText))]...)
			}
			if len(text) >= chunk {
				flush(false)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			if !inline[a] {
				text = append(text, ' ')
				if anchor != nil {
					anchorText = append(anchorText, ' ')
				}
			}
			if a == atom.A {
				endAnchor()
			}
			if (a == atom.Script || a == atom.Style) && tt == html.StartTagToken {
				rawText = a
			}
			for hasAttr {
				var key, val []byte
				key, val, hasAttr = z.TagAttr()
				origin, ok := attrOrigin(a, string(key))
				if !ok {
					continue
				}
				v := string(val)
				h, rest, ok := c.link(v, origin)
				if ok && a == atom.A && string(key) == "href" {
					anchor = &Link{Href: truncate(v, 2048), Host: h, Rest: truncate(rest, 4096)}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if a == rawText {
				rawText = 0
			}
			if a == atom.A {
				endAnchor()
			}
			if !inline[a] {
				text = append(text, ' ')
			}
		}
	}
}

// attrOrigin says whether an attribute of an element holds a URL, and of
// which origin.
func attrOrigin(a atom.Atom, key string) (Origin, bool) {
	switch key {
	case "href":
		return OriginLink, a == atom.A || a == atom.Area || a == atom.Link || a == atom.Base
	case "src":
		switch a {
		case atom.Img, atom.Input, atom.Image:
			return OriginImage, true
		case atom.Iframe, atom.Frame, atom.Embed, atom.Script, atom.Source, atom.Video, atom.Audio:
			return OriginLink, true
		}
	case "action", "formaction":
		return OriginLink, true
	case "background", "poster":
		return OriginImage, true
	case "data":
		return OriginLink, a == atom.Object
	}
	return 0, false
}

// link records a link target: its host, the URLs embedded in its query,
// or the addresses of a mailto: link.
func (c *collector) link(v string, origin Origin) (host, string, bool) {
	s := strings.TrimSpace(v)
	if len(s) > 7 && strings.EqualFold(s[:7], "mailto:") {
		addrs := s[7:]
		if i := strings.IndexByte(addrs, '?'); i >= 0 {
			addrs = addrs[:i]
		}
		for _, a := range strings.FieldsFunc(percentDecode(addrs), func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
			c.addEmail(a, OriginEmail)
		}
		return host{}, "", false
	}
	auth, rest, ok := splitHref(s)
	if !ok {
		return host{}, rest, false
	}
	hi := c.info([]byte(auth), true)
	if !hi.ok {
		return host{}, rest, false
	}
	c.found.URLs++
	c.addKey(hi.h, hi.value, origin)
	if c.lim.Shorteners != nil {
		if i := strings.IndexByte(s, ':'); i > 0 {
			c.addShort(hi.h, s[:i], auth, rest, origin)
		}
	}
	c.embedded(rest, origin)
	return hi.h, rest, true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
