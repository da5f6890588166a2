package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"chainmail/checks"
	"chainmail/checks/attachment"
	"chainmail/milter"
)

// outDir is replay --out: it writes each message the milter lets through
// as the MTA would deliver it.
type outDir struct {
	dir string
}

func newOutDir(dir string) (*outDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &outDir{dir: dir}, nil
}

// delivers reports whether the MTA delivers (or holds, for quarantine)
// the message the milter answered o for.
func delivers(o *milter.Outcome) bool {
	switch o.Action {
	case "accept", "continue", "quarantine":
		return true
	}
	return false
}

// write stores the delivered form of raw under a name derived from the
// item's name and returns the path written. It never replaces a file:
// when the name is taken, "-2", "-3", … is put before the extension.
func (d *outDir) write(item string, raw []byte, o *milter.Outcome) (string, error) {
	data := deliveredMessage(raw, o)
	base := outName(item)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for n := 1; n < 100000; n++ {
		name := base
		if n > 1 {
			name = stem + "-" + strconv.Itoa(n) + ext
		}
		p := filepath.Join(d.dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(p)
			return "", err
		}
		return p, nil
	}
	return "", fmt.Errorf("%s: no free name for %s", d.dir, base)
}

// outName is the file name for a replay item: the base name of its file,
// for the Nth message of an mbox "BASE-N.eml"; characters other than
// letters, digits and ._+=,@- become "_", and a leading dot too.
func outName(item string) string {
	path, n, _ := strings.Cut(item, "#")
	base := filepath.Base(path)
	if n != "" {
		base += "-" + n + ".eml"
	}
	b := []byte(base)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+=,@-", c) >= 0
		if !ok || (i == 0 && c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "message.eml"
	}
	return string(b)
}

// deliveredMessage applies the milter's answer to raw: header fields
// changed and removed ("Name[index]", an empty value removes), added at
// the end of the header, as Postfix does, and the body replaced. Every
// other byte stays as it is; what the milter sends is written with the
// line ends of raw.
func deliveredMessage(raw []byte, o *milter.Outcome) []byte {
	eol := "\n"
	if i := bytes.IndexByte(raw, '\n'); i > 0 && raw[i-1] == '\r' {
		eol = "\r\n"
	}
	fields, rest := splitRawHeader(raw)
	for _, h := range o.Headers {
		name, idx, change := headerRef(h.Name)
		if !change {
			fields = append(fields, rawField{name: name, data: formatField(name, h.Value, eol)})
			continue
		}
		at := -1
		for i, f := range fields {
			if strings.EqualFold(f.name, name) {
				if idx--; idx == 0 {
					at = i
					break
				}
			}
		}
		switch {
		case at < 0 && h.Value != "":
			fields = append(fields, rawField{name: name, data: formatField(name, h.Value, eol)})
		case at < 0:
		case h.Value == "":
			fields = append(fields[:at], fields[at+1:]...)
		default:
			fields[at].data = formatField(name, h.Value, eol)
		}
	}
	var b bytes.Buffer
	for _, f := range fields {
		b.Write(f.data)
	}
	if o.Body == nil {
		b.Write(rest)
		return b.Bytes()
	}
	// The header's end (the empty line), then the new body.
	if bytes.HasPrefix(rest, []byte("\r\n")) {
		b.WriteString("\r\n")
	} else if bytes.HasPrefix(rest, []byte("\n")) {
		b.WriteString("\n")
	} else {
		b.WriteString(eol)
	}
	b.Write(withLineEnds(o.Body, eol))
	return b.Bytes()
}

// rawField is one header field as received, its continuation lines and
// line end included.
type rawField struct {
	name string
	data []byte
}

// splitRawHeader splits raw into its header fields and the rest: the
// empty line that ends the header and the body, or the body from the
// first line that is no header field.
func splitRawHeader(raw []byte) ([]rawField, []byte) {
	var fields []rawField
	off := 0
	for off < len(raw) {
		end := bytes.IndexByte(raw[off:], '\n')
		if end < 0 {
			end = len(raw)
		} else {
			end += off + 1
		}
		line := raw[off:end]
		switch {
		case len(bytes.TrimRight(line, "\r\n")) == 0:
			return fields, raw[off:]
		case (line[0] == ' ' || line[0] == '\t') && len(fields) > 0:
			last := &fields[len(fields)-1]
			last.data = raw[off-len(last.data) : end]
		default:
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return fields, raw[off:]
			}
			fields = append(fields, rawField{name: strings.TrimRight(string(line[:colon]), " \t"), data: line})
		}
		off = end
	}
	return fields, raw[off:]
}

// headerRef reads "Name[index]", the milter client's spelling of a change.
func headerRef(s string) (name string, index int, change bool) {
	if !strings.HasSuffix(s, "]") {
		return s, 0, false
	}
	o := strings.LastIndexByte(s, '[')
	if o <= 0 {
		return s, 0, false
	}
	n, err := strconv.Atoi(s[o+1 : len(s)-1])
	if err != nil || n <= 0 {
		return s, 0, false
	}
	return s[:o], n, true
}

func formatField(name, value, eol string) []byte {
	if value != "" && value[0] != ' ' && value[0] != '\t' {
		value = " " + value
	}
	return []byte(name + ":" + string(withLineEnds([]byte(value), eol)) + eol)
}

// withLineEnds writes every line end of b as eol.
func withLineEnds(b []byte, eol string) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	if eol == "\n" {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\n"), []byte(eol))
}

// jsonAttachment is one entry of replay --json's attachments.
type jsonAttachment = attachment.FileOutcome

// attachmentOutcomes gathers, from the results of v, what the attachment
// check did with each file and what the html check disarmed.
func attachmentOutcomes(v *checks.Verdict) (files []jsonAttachment, disarmed []string) {
	files = []jsonAttachment{}
	for _, r := range v.Results {
		if fo, ok := r.Facts["outcomes"].([]attachment.FileOutcome); ok {
			files = append(files, fo...)
		}
		if d, ok := r.Facts["disarmed"].([]string); ok && r.Check == "html" {
			disarmed = append(disarmed, d...)
		}
	}
	return files, disarmed
}
