package attachments

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NameFlags say what NormalizeFilename had to change in a name.
type NameFlags uint16

// Name flags.
const (
	// NameBidi: bidirectional controls (RTLO U+202E and friends) were
	// removed; they exist in a file name only to disguise its extension.
	NameBidi NameFlags = 1 << iota
	// NameInvisible: zero-width characters were removed.
	NameInvisible
	// NameControl: control characters were replaced or removed.
	NameControl
	// NameNUL: the name held a NUL byte; the part before it is a separate
	// candidate (what a C-string API would see).
	NameNUL
	// NamePath: directory parts were removed.
	NamePath
	// NameTrailing: trailing dots or spaces were removed (Windows ignores
	// them, so "x.exe. " runs as x.exe).
	NameTrailing
	// NameLong: the name was cut to MaxNameLength bytes.
	NameLong
)

// MaxNameLength is the longest normalised name kept, in bytes. It is well
// above MailScanner's "very long filename" rule (150 characters).
const MaxNameLength = 512

func (f NameFlags) String() string {
	var s []string
	for _, x := range []struct {
		f NameFlags
		n string
	}{{NameBidi, "bidi-control"}, {NameInvisible, "zero-width"}, {NameControl, "control-char"}, {NameNUL, "nul"}, {NamePath, "path"}, {NameTrailing, "trailing-dot-space"}, {NameLong, "long"}} {
		if f&x.f != 0 {
			s = append(s, x.n)
		}
	}
	return strings.Join(s, ",")
}

// Filename is one name a part or archive member goes by.
type Filename struct {
	// Name is the normalised name that rules match and logs show.
	Name string
	// Raw is the name as decoded from the header (or archive), before
	// normalisation.
	Raw string
	// Source says where it came from: filename*, filename, name*, name,
	// uuencode, tnef, zip, tar, …
	Source string
	Flags  NameFlags
}

// DecodeFilename decodes a header parameter value the way mail clients
// do: RFC 2047 encoded words, and raw 8-bit bytes as UTF-8 or else Latin-1.
// (RFC 2231 values are decoded by the parameter parser before this.)
func DecodeFilename(v string) string { return decodeWords(v) }

// NormalizeFilename returns the names a raw file name stands for: the
// cleaned name and, when the name holds a NUL, also the part before the
// NUL. Cleaning removes bidi controls and zero-width characters, turns
// other control characters into spaces (a tab stays white space for
// MailScanner's white-space rule), keeps only the last path element,
// removes leading spaces and trailing dots and spaces, and cuts the name to
// MaxNameLength bytes.
func NormalizeFilename(raw, source string) []Filename {
	name, flags := clean(raw)
	out := []Filename{{Name: name, Raw: raw, Source: source, Flags: flags}}
	if i := strings.IndexByte(raw, 0); i >= 0 {
		before, f2 := clean(raw[:i])
		out[0].Flags |= NameNUL
		if before != "" && before != name {
			out = append(out, Filename{Name: before, Raw: raw, Source: source, Flags: f2 | NameNUL})
		}
	}
	if out[0].Name == "" {
		out = out[1:]
	}
	return out
}

func clean(raw string) (string, NameFlags) {
	var flags NameFlags
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); {
		r, n := utf8.DecodeRuneInString(raw[i:])
		i += n
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case isBidi(r):
			flags |= NameBidi
		case isInvisible(r):
			flags |= NameInvisible
		case r == 0:
			flags |= NameNUL
		case r == '\t' || r == '\r' || r == '\n' || r == '\v' || r == '\f':
			flags |= NameControl
			b.WriteByte(' ')
		case r < 0x20 || (r >= 0x7f && r < 0xa0):
			flags |= NameControl
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		flags |= NamePath
		s = s[i+1:]
	}
	// A drive prefix such as C:name.
	if len(s) > 2 && s[1] == ':' && (s[0]|0x20) >= 'a' && (s[0]|0x20) <= 'z' {
		flags |= NamePath
		s = s[2:]
	}
	t := strings.TrimRight(s, ". \u00a0")
	if t != s {
		flags |= NameTrailing
	}
	s = strings.TrimLeft(t, " ")
	if len(s) > MaxNameLength {
		flags |= NameLong
		n := MaxNameLength
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s, flags
}

// isBidi reports the Unicode bidirectional formatting characters.
func isBidi(r rune) bool {
	switch {
	case r == '\u200e', r == '\u200f', r == '\u061c':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// isInvisible reports zero-width and other invisible format characters
// (besides the bidi controls).
func isInvisible(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u180e':
		return true
	}
	return unicode.Is(unicode.Cf, r) && !isBidi(r) && r >= '\u2061' && r <= '\u2064'
}

// Extension returns the lower-cased extension of name without the dot,
// "" when it has none.
func Extension(name string) string {
	i := strings.LastIndexByte(name, '.')
	if i < 0 || i == len(name)-1 {
		return ""
	}
	return strings.ToLower(name[i+1:])
}
