package attachments

import (
	"bytes"
	"io"
	"mime"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// Param is one header parameter as written: the name lower-cased, the
// value with quotes and backslash escapes removed.
type Param struct {
	Name  string
	Value string
}

// ParseParams reads a structured header value such as Content-Type or
// Content-Disposition: the lower-cased value before the first ';' and the
// parameters in order, duplicates kept. It is lenient the way mail clients
// are: missing or doubled semicolons, unquoted values with spaces, an
// unterminated quoted string, parameters without a value.
func ParseParams(v string) (string, []Param) {
	v = strings.ReplaceAll(strings.ReplaceAll(v, "\r", ""), "\n", "")
	i := strings.IndexByte(v, ';')
	value := v
	rest := ""
	if i >= 0 {
		value, rest = v[:i], v[i+1:]
	}
	value = strings.ToLower(strings.TrimSpace(value))
	// "text/plain name=x" without a semicolon.
	if j := strings.IndexAny(value, " \t"); j > 0 && strings.Contains(value[j:], "=") {
		rest = value[j:] + ";" + rest
		value = value[:j]
	}
	var params []Param
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t;")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		semi := strings.IndexByte(rest, ';')
		if eq < 0 || (semi >= 0 && semi < eq) {
			// A name without a value: skip it.
			if semi < 0 {
				break
			}
			rest = rest[semi+1:]
			continue
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, "\"") {
			var b strings.Builder
			j := 1
			for ; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					b.WriteByte(rest[j])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			val = b.String()
			if j < len(rest) {
				rest = rest[j+1:]
			} else {
				rest = ""
			}
			// Anything up to the next ';' after the closing quote is junk.
			if k := strings.IndexByte(rest, ';'); k >= 0 {
				rest = rest[k:]
			} else {
				rest = ""
			}
		} else {
			k := strings.IndexByte(rest, ';')
			if k < 0 {
				val, rest = rest, ""
			} else {
				val, rest = rest[:k], rest[k:]
			}
			val = strings.TrimSpace(val)
		}
		if name != "" && !strings.ContainsAny(name, " \t\"") {
			params = append(params, Param{Name: name, Value: val})
		}
	}
	return value, params
}

// joinParams returns the parameters by name with RFC 2231 continuations
// joined and charsets decoded; an extended (name*) value wins over the
// plain one, the first of duplicates wins.
func joinParams(params []Param) map[string]string {
	out := map[string]string{}
	ext := map[string]string{}
	for _, g := range group2231(params) {
		if g.extended {
			if _, ok := ext[g.name]; !ok {
				ext[g.name] = g.value
			}
		} else if _, ok := out[g.name]; !ok {
			out[g.name] = g.value
		}
	}
	for k, v := range ext {
		out[k] = v
	}
	return out
}

// joined is one parameter after RFC 2231 processing.
type joined struct {
	name     string
	value    string
	extended bool // written as name* or name*N
}

// group2231 joins RFC 2231 sections (name*0, name*1*, …) and decodes
// extended values (charset'language'%XX). Plain parameters pass through
// with RFC 2047 encoded words decoded (a common violation that every
// client accepts). The result is in order of first appearance.
func group2231(params []Param) []joined {
	type section struct {
		n       int
		value   string
		encoded bool
	}
	var order []string
	sections := map[string][]section{}
	var out []joined
	for _, p := range params {
		star := strings.IndexByte(p.Name, '*')
		if star < 0 {
			out = append(out, joined{name: p.Name, value: decodeWords(p.Value)})
			continue
		}
		base := p.Name[:star]
		tail := p.Name[star+1:]
		s := section{value: p.Value}
		switch {
		case tail == "":
			s.encoded = true
		default:
			enc := strings.HasSuffix(tail, "*")
			num := strings.TrimSuffix(tail, "*")
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || n > 999 {
				continue
			}
			s.n, s.encoded = n, enc
		}
		if _, ok := sections[base]; !ok {
			order = append(order, base)
		}
		sections[base] = append(sections[base], s)
	}
	for _, base := range order {
		ss := sections[base]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].n < ss[j].n })
		var raw []byte
		cs := ""
		seen := map[int]bool{}
		for i, s := range ss {
			if seen[s.n] {
				continue // a repeated section: the first one counts
			}
			seen[s.n] = true
			v := s.value
			if s.encoded {
				if i == 0 {
					// charset'language'value
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							cs = v[:a]
							v = v[a+1+b+1:]
						}
					}
				}
				raw = append(raw, percentDecode(v)...)
			} else {
				raw = append(raw, v...)
			}
		}
		out = append(out, joined{name: base, value: decodeCharset(cs, raw), extended: true})
	}
	return out
}

func percentDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// decodeCharset turns raw bytes in the named charset into UTF-8. Without a
// charset (or with an unknown one) valid UTF-8 is kept and anything else
// read as Latin-1, so no byte is lost.
func decodeCharset(cs string, raw []byte) string {
	cs = strings.ToLower(strings.TrimSpace(cs))
	switch cs {
	case "", "us-ascii", "utf-8", "utf8", "unknown-8bit", "x-unknown":
	default:
		if r, err := charset.Reader(cs, bytes.NewReader(raw)); err == nil {
			if b, err := io.ReadAll(io.LimitReader(r, 1<<20)); err == nil {
				return string(b)
			}
		}
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return latin1(raw)
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charset.Reader}

var encodedWord = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// decodeWords decodes RFC 2047 encoded words in s. A word that cannot be
// decoded is kept as written; white space between two decoded words goes
// (RFC 2047 §6.2). Raw 8-bit text that is not UTF-8 is read as Latin-1.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		if !utf8.ValidString(s) {
			return latin1([]byte(s))
		}
		return s
	}
	var b strings.Builder
	last, prevDecoded := 0, false
	for _, loc := range encodedWord.FindAllStringIndex(s, -1) {
		gap := s[last:loc[0]]
		d, err := wordDecoder.Decode(s[loc[0]:loc[1]])
		if !(err == nil && prevDecoded && strings.TrimLeft(gap, " \t") == "") {
			b.WriteString(gap)
		}
		if err == nil {
			b.WriteString(d)
		} else {
			b.WriteString(s[loc[0]:loc[1]])
		}
		last, prevDecoded = loc[1], err == nil
	}
	b.WriteString(s[last:])
	out := b.String()
	if !utf8.ValidString(out) {
		return latin1([]byte(out))
	}
	return out
}

// entityNames collects the file names of a part from every
// Content-Disposition and Content-Type field: filename*, filename, name*,
// name, in that order of preference, normalised, without repeats.
func entityNames(h *textproto.Header) []Filename {
	var out []Filename
	add := func(raw, source string) {
		if strings.TrimSpace(raw) == "" {
			return
		}
		for _, f := range NormalizeFilename(raw, source) {
			dup := false
			for _, o := range out {
				if o.Name == f.Name {
					dup = true
					break
				}
			}
			if !dup {
				out = append(out, f)
			}
		}
	}
	collect := func(field, param string) {
		var plain, ext []string
		for _, v := range h.Values(field) {
			_, ps := ParseParams(v)
			for _, g := range group2231(ps) {
				if g.name != param {
					continue
				}
				if g.extended {
					ext = append(ext, g.value)
				} else {
					plain = append(plain, g.value)
				}
			}
		}
		for _, v := range ext {
			add(v, param+"*")
		}
		for _, v := range plain {
			add(v, param)
		}
	}
	collect("Content-Disposition", "filename")
	collect("Content-Type", "name")
	return out
}
