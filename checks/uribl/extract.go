package uribl

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"sync"

	"golang.org/x/text/encoding/ianaindex"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// Origin says where a URL or an address was found.
type Origin uint8

// Origins.
const (
	// OriginLink: a link target in HTML (a/area href, form action,
	// frame src, …) and URLs embedded in a link's query.
	OriginLink Origin = 1 << iota
	// OriginText: written out in a text/plain part or in the visible
	// text of an HTML part.
	OriginText
	// OriginImage: an image source (img src, background).
	OriginImage
	// OriginSubject: written in the Subject.
	OriginSubject
	// OriginEmail: an e-mail address in the body (mailto: or bare).
	OriginEmail
	// OriginReplyTo: an address of the Reply-To field.
	OriginReplyTo
)

const urlOrigins = OriginLink | OriginText | OriginImage | OriginSubject

var originNames = map[string]Origin{
	"link": OriginLink, "text": OriginText, "image": OriginImage, "subject": OriginSubject,
	"email": OriginEmail, "reply_to": OriginReplyTo,
}

// Key is one value to look up: a registrable domain or an address.
type Key struct {
	Host    host
	Value   string // registrable domain or address text
	Origins Origin
}

// Email is one address found.
type Email struct {
	Local, Domain string
	Origins       Origin
}

// Link is one HTML anchor whose text may show a host.
type Link struct {
	Href string
	Host host
	Rest string // the href after the authority
	Text string
}

// Limits bound the work of one extraction.
type Limits struct {
	// MaxKeys bounds the distinct domains and addresses kept (and the
	// e-mail addresses, separately).
	MaxKeys int
	// MaxURLs bounds the URLs parsed; past it the rest of the message is
	// only read through.
	MaxURLs int
	// MaxScan bounds the decoded bytes read, all parts together.
	MaxScan int64
	// MaxLinks bounds the anchors kept for the phishing finding.
	MaxLinks int
	// Exclude holds registrable domains never kept.
	Exclude map[string]bool
	// LinksOnly reads only what the phishing finding needs: the anchors
	// of HTML parts. Text is not scanned and no keys are kept.
	LinksOnly bool
	// Walk bounds the walk over MIME parts: the limits every check shares
	// (zero values are the attachments package's defaults).
	Walk attachments.WalkOptions
	// Shorteners are the host names whose http and https URLs are kept
	// whole (Found.Short), at most MaxShort of them.
	Shorteners map[string]bool
	MaxShort   int
}

// Found is what one extraction found.
type Found struct {
	Keys   []Key
	Emails []Email
	Links  []Link
	// URLs counts every URL parsed; Dropped the ones whose key did not
	// fit under MaxKeys; Truncated is set when MaxScan or MaxURLs cut
	// the reading short.
	URLs, Dropped int
	Truncated     bool
	// Unscannable says which MIME limit (parts, depth) left parts
	// unread; "" when every part was read.
	Unscannable string
	// Short are the distinct URLs on a shortener host (Limits.Shorteners).
	Short []ShortURL
}

// collector accumulates what an extraction finds.
type collector struct {
	lim    Limits
	found  Found
	keys   map[string]int // value → index in found.Keys
	emails map[string]int
	budget int64 // decoded bytes left to read
	// textParts counts the text parts read.
	textParts int
	// cache remembers what a host as written normalises to: mail repeats
	// its hosts, and IDNA mapping and the public suffix search are the
	// dear part of extraction.
	// A URL's authority and an address's domain are read differently
	// ("0" is the address 0.0.0.0 in a URL, no domain after "@"): one
	// cache each.
	cache, domainCache map[string]hostInfo
}

// hostInfo is a host as written, normalised.
type hostInfo struct {
	h     host
	value string // lookup key (registrable domain or address)
	ok    bool
	// known: the domain ends in a listed public suffix.
	known bool
}

// maxCache bounds the host cache.
const maxCache = 4096

// info normalises a host as written (authority or domain bytes), through
// the cache. authority says whether raw may carry userinfo and a port.
func (c *collector) info(raw []byte, authority bool) hostInfo {
	cache := c.domainCache
	if authority {
		cache = c.cache
	}
	if hi, ok := cache[string(raw)]; ok {
		return hi
	}
	var hi hostInfo
	if authority {
		hi.h, _, hi.ok = parseAuthority(string(raw))
	} else if d, ok := dnsbl.Domain(string(raw)); ok {
		hi.h, hi.ok = host{name: d}, true
	}
	if hi.ok {
		if hi.h.ip.IsValid() {
			hi.value, hi.known = hi.h.ip.String(), true
		} else {
			hi.value, _, hi.known = dns.OrganizationalDomainOK(hi.h.name)
		}
	}
	if len(cache) < maxCache {
		cache[string(raw)] = hi
	}
	return hi
}

const (
	// chunk is the text scanned at once; a URL longer than tail bytes
	// that straddles two chunks may be missed.
	chunk = 64 << 10
	tail  = 4 << 10
)

func newCollector(lim Limits) *collector {
	if lim.MaxKeys <= 0 {
		lim.MaxKeys = 50
	}
	if lim.MaxURLs <= 0 {
		lim.MaxURLs = 10000
	}
	if lim.MaxScan <= 0 {
		lim.MaxScan = 16 << 20
	}
	if lim.MaxLinks <= 0 {
		lim.MaxLinks = 200
	}
	return &collector{lim: lim, keys: map[string]int{}, emails: map[string]int{}, budget: lim.MaxScan,
		cache: map[string]hostInfo{}, domainCache: map[string]hostInfo{}}
}

// Extract finds the URLs, hosts and addresses of m: in the Subject, the
// Reply-To field and every text/plain and text/html part (also inside
// attached messages), after transfer decoding and charset decoding.
func Extract(m *checks.Message, lim Limits) *Found {
	c := newCollector(lim)
	if !lim.LinksOnly {
		c.scanString(m.Subject(), OriginSubject)
		for _, v := range m.Values("Reply-To") {
			c.replyTo(v)
		}
	}
	src, n := attachments.Message(m.RawHeader(), m.Body)
	tree := attachments.Walk(src, n, lim.Walk)
	c.entity(tree.Root)
	if tree.Truncated {
		c.found.Unscannable = "MIME structure past the limits"
		for _, p := range tree.Problems {
			if p.Unreadable {
				c.found.Unscannable = fmt.Sprintf("%s (part %s)", p.Detail, p.Path)
				break
			}
		}
	}
	if c.textParts == 0 && c.budget > 0 && !c.full() && !lim.LinksOnly {
		// The MIME structure gave no text (a broken boundary, a
		// multipart without parts): read the body as it is.
		c.text(c.limit(m.BodyReader()), OriginText)
	}
	return &c.found
}

func (c *collector) full() bool {
	return c.found.URLs >= c.lim.MaxURLs
}

// entity reads the text of one MIME entity and its descendants, as the
// attachments walk found them (within the shared limits): text/plain and
// text/html parts, and the Subject of attached messages.
func (c *collector) entity(root *attachments.Entity) {
	stack := []*attachments.Entity{root}
	for len(stack) > 0 && c.budget > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for i := len(e.Children) - 1; i >= 0; i-- {
			stack = append(stack, e.Children[i])
		}
		if e.Kind == attachments.Embedded && len(e.Children) > 0 {
			if s := e.Children[0].Header.Get("Subject"); s != "" {
				c.scanString(decodeWords(s), OriginText)
			}
		}
		if e.Kind != attachments.Leaf {
			continue
		}
		switch mt := e.MediaType; {
		case mt == "text/html" || mt == "application/xhtml+xml":
			c.textParts++
			c.html(c.decoded(e))
		case strings.HasPrefix(mt, "text/"):
			c.textParts++
			if !c.lim.LinksOnly {
				c.text(c.decoded(e), OriginText)
			}
		}
	}
	if c.budget <= 0 {
		c.found.Truncated = true
	}
}

// decoded returns the entity's body with its transfer encoding undone, in
// UTF-8 where the charset is known, bounded by the scan budget.
func (c *collector) decoded(e *attachments.Entity) io.Reader {
	var body io.Reader = e.Open()
	if cs := strings.ToLower(e.Params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if enc, _ := ianaindex.MIME.Encoding(cs); enc != nil {
			body = enc.NewDecoder().Reader(body)
		}
	}
	return c.limit(body)
}

// wordDecoder decodes RFC 2047 encoded words in any charset IANA knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
	enc, err := ianaindex.MIME.Encoding(cs)
	if err != nil || enc == nil {
		return nil, fmt.Errorf("uribl: charset %q unknown", cs)
	}
	return enc.NewDecoder().Reader(r), nil
}}

// decodeWords decodes the encoded words of a header value, the value as
// it is when it cannot.
func decodeWords(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// limit charges what is read from r to the scan budget.
func (c *collector) limit(r io.Reader) io.Reader { return &budgetReader{r: r, c: c} }

type budgetReader struct {
	r io.Reader
	c *collector
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.c.budget <= 0 {
		b.c.found.Truncated = true
		return 0, io.EOF
	}
	if int64(len(p)) > b.c.budget {
		p = p[:b.c.budget]
	}
	n, err := b.r.Read(p)
	b.c.budget -= int64(n)
	return n, err
}

// text scans a text body in chunks cut at white space, so memory stays
// bounded whatever the part's size.
func (c *collector) text(r io.Reader, origin Origin) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	// buf never grows past chunk+readSize (it is cut once it reaches
	// chunk), so it stays clear of tmp.
	buf := (*bp)[: 0 : chunk+readSize]
	tmp := (*bp)[chunk+readSize:]
	for {
		n, err := r.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for len(buf) >= chunk {
			cut := safeCut(buf[:chunk])
			c.scan(buf[:cut], origin)
			buf = append(buf[:0], buf[cut:]...)
		}
		if err != nil {
			c.scan(buf, origin)
			return
		}
	}
}

// bufPool holds the text scanner's buffers: the chunk with its tail, then
// the read buffer.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, chunk+2*readSize)
	return &b
}}

const readSize = 16 << 10

// safeCut returns where to cut b: after the last white space or angle
// bracket in its tail, or at its end when there is none.
func safeCut(b []byte) int {
	lo := max(len(b)-tail, 0)
	for i := len(b) - 1; i >= lo; i-- {
		switch b[i] {
		case ' ', '\t', '\r', '\n', '<', '>', '"':
			return i + 1
		}
	}
	return len(b)
}

func (c *collector) scanString(s string, origin Origin) {
	if s != "" {
		c.scan([]byte(s), origin)
	}
}

// replyTo adds the addresses of one Reply-To value.
func (c *collector) replyTo(v string) {
	list, err := mail.ParseAddressList(v)
	if err != nil {
		c.scanEmails([]byte(v), OriginReplyTo)
		return
	}
	for _, a := range list {
		c.addEmail(a.Address, OriginReplyTo)
	}
}

// addKey records the lookup key v of h.
func (c *collector) addKey(h host, v string, origin Origin) {
	if c.lim.LinksOnly {
		return
	}
	if h.ip.IsValid() && !dnsbl.Public(h.ip) {
		return
	}
	if c.lim.Exclude[v] {
		return
	}
	if i, ok := c.keys[v]; ok {
		c.found.Keys[i].Origins |= origin
		return
	}
	if len(c.found.Keys) >= c.lim.MaxKeys {
		c.found.Dropped++
		return
	}
	k := Key{Host: h, Value: v, Origins: origin}
	if !h.ip.IsValid() {
		k.Host = host{name: v}
	}
	c.keys[v] = len(c.found.Keys)
	c.found.Keys = append(c.found.Keys, k)
}

// addEmail records an address and its domain.
func (c *collector) addEmail(addr string, origin Origin) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i > 64 {
		return
	}
	hi := c.info([]byte(addr[i+1:]), false)
	if !hi.ok {
		return
	}
	c.addMailbox(addr[:i], hi, origin)
}

// addMailbox records local@domain, the domain already normalised.
func (c *collector) addMailbox(local string, hi hostInfo, origin Origin) {
	c.addKey(hi.h, hi.value, origin)
	if c.lim.Exclude[hi.value] {
		return
	}
	local = strings.ToLower(local)
	k := local + "@" + hi.h.name
	if j, ok := c.emails[k]; ok {
		c.found.Emails[j].Origins |= origin
		return
	}
	if len(c.found.Emails) >= c.lim.MaxKeys {
		return
	}
	c.emails[k] = len(c.found.Emails)
	c.found.Emails = append(c.found.Emails, Email{Local: local, Domain: hi.h.name, Origins: origin})
}

// embedded looks for URLs inside the rest of a link (its path and query,
// percent-decoded once): redirectors carry their destination there.
func (c *collector) embedded(rest string, origin Origin) {
	if len(rest) > 4096 {
		rest = rest[:4096]
	}
	low := strings.ToLower(rest)
	if !strings.Contains(low, "%3a") && !strings.Contains(low, "://") {
		return
	}
	c.scan([]byte(percentDecode(rest)), origin)
}

// Characters of the text scanner.
func isSchemeChar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '+' || b == '-' || b == '.'
}

// isHostByte: a byte that may be part of a host as written in text
// (non-ASCII bytes are parts of IDN labels).
func isHostByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '%' || b >= 0x80
}

// isLocalByte: a byte of an address's local part as addresses are written
// in mail text. RFC 5322 allows more ("/", "&", "#", …), but in text those
// are URL punctuation far more often than address characters.
func isLocalByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("._%+-=", b) >= 0
}

// scan finds URLs and e-mail addresses in text, in one pass: a web scheme
// followed by ":/" or ":\", "www." at the start of a word, and "@" between
// an address's local part and its domain. Each trigger looks back and
// ahead a bounded number of bytes, so the cost is linear in len(b).
func (c *collector) scan(b []byte, origin Origin) {
	if c.lim.LinksOnly {
		return
	}
	urlEnd := 0 // "@" before this belongs to a URL's userinfo
	for i := 0; i < len(b); i++ {
		if c.full() {
			c.found.Truncated = true
			return
		}
		switch b[i] {
		case ':':
			if i+1 >= len(b) || (b[i+1] != '/' && b[i+1] != '\\') {
				continue
			}
			j := i
			for j > 0 && i-j < 10 && isSchemeChar(b[j-1]) {
				j--
			}
			if j == i || !webScheme(string(b[j:i])) {
				continue
			}
			k := i + 1
			for k < len(b) && (b[k] == '/' || b[k] == '\\') && k-i < 4 {
				k++
			}
			end := authorityEnd(b, k)
			if hi := c.info(b[k:end], true); hi.ok {
				c.found.URLs++
				c.addKey(hi.h, hi.value, origin)
				if c.lim.Shorteners != nil && len(c.found.Short) < c.lim.MaxShort && shortHost(c.lim.Shorteners, hi.h.name) {
					c.addShort(hi.h, string(b[j:i]), string(b[k:end]), string(b[end:urlTextEnd(b, end)]), origin)
				}
			}
			urlEnd = end
		case 'w', 'W':
			if i > 0 && (isHostByte(b[i-1]) || b[i-1] == '/' || b[i-1] == '@') {
				continue
			}
			if i+4 > len(b) || !bytes.EqualFold(b[i:i+4], []byte("www.")) {
				continue
			}
			end := authorityEnd(b, i)
			if hi := c.info(b[i:end], true); hi.ok && hi.known {
				c.found.URLs++
				c.addKey(hi.h, hi.value, origin)
			}
			urlEnd = end
		case '@':
			if i < urlEnd || origin == OriginSubject {
				continue
			}
			c.emailAt(b, i, origin)
		}
	}
}

// scanEmails finds only addresses.
func (c *collector) scanEmails(b []byte, origin Origin) {
	for i := 0; i < len(b); i++ {
		if b[i] == '@' {
			c.emailAt(b, i, origin)
		}
	}
}

// authorityEnd returns where the authority starting at k ends, looking
// at most maxAuthority bytes ahead.
func authorityEnd(b []byte, k int) int {
	end := k
	for end < len(b) && end-k < maxAuthority && authorityByte(b[end]) {
		end++
	}
	return end
}

// emailAt reads the address around the "@" at i.
func (c *collector) emailAt(b []byte, i int, origin Origin) {
	j := i
	for j > 0 && i-j < 64 && isLocalByte(b[j-1]) {
		j--
	}
	// A mailto: prefix is not part of the local part.
	local := b[j:i]
	if k := bytes.LastIndexByte(local, ':'); k >= 0 {
		local = local[k+1:]
	}
	local = bytes.Trim(local, ".")
	if len(local) == 0 {
		return
	}
	k := i + 1
	for k < len(b) && k-i < 256 && isHostByte(b[k]) && b[k] != '%' {
		k++
	}
	d := bytes.TrimRight(b[i+1:k], ".-")
	hi := c.info(d, false)
	if !hi.ok || !hi.known {
		return
	}
	if origin != OriginReplyTo {
		origin = OriginEmail
	}
	c.addMailbox(string(local), hi, origin)
}
