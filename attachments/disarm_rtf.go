package attachments

import (
	"bytes"
	"sort"
	"strconv"
)

// disarmRTF removes the embedded objects and remote templates of an RTF
// document. A group holding one of the control words RTFActive looks for
// (\objdata \objemb \objocx \objlink \objautlink \objupdate) is removed
// with the {\object ...} group around it, or alone when there is none; a
// {\*\template ...} group naming an http(s) or UNC target is removed.
// Every other byte is kept. Escapes (\{ \} \\ \'hh) and \binN runs are
// skipped over, so that braces inside them do not count as groups.
func disarmRTF(data []byte) (*Disarmed, error) {
	type frame struct {
		start  int
		object bool // the group is an {\object ...} (or {\*\object ...})
		remove bool
		what   string
	}
	type span struct {
		start, end int
		what       string
	}
	var stack []frame
	var cut []span
	mark := func(what string, preferObject bool) bool {
		if len(stack) == 0 {
			return false
		}
		k := len(stack) - 1
		if preferObject {
			for j := len(stack) - 1; j > 0; j-- {
				if stack[j].object {
					k = j
					break
				}
			}
		}
		if k == 0 {
			return false // the document's own group
		}
		stack[k].remove = true
		if stack[k].what == "" {
			stack[k].what = what
		}
		return true
	}
	for i := 0; i < len(data); {
		switch data[i] {
		case '{':
			stack = append(stack, frame{start: i})
			i++
		case '}':
			if len(stack) > 0 {
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if f.remove {
					cut = append(cut, span{f.start, i + 1, f.what})
				}
			}
			i++
		case '\\':
			if i+1 >= len(data) {
				i++
				continue
			}
			if !isASCIILetter(data[i+1]) {
				i += 2 // a control symbol: \{ \} \\ \* \'hh (the hex digits are text)
				continue
			}
			j := i + 1
			for j < len(data) && isASCIILetter(data[j]) && j-i <= 32 {
				j++
			}
			word := string(data[i+1 : j])
			k := j
			if k < len(data) && data[k] == '-' {
				k++
			}
			for k < len(data) && data[k] >= '0' && data[k] <= '9' && k-j < 11 {
				k++
			}
			param := string(data[j:k])
			if k < len(data) && data[k] == ' ' {
				k++
			}
			switch word {
			case "object":
				if len(stack) > 0 {
					stack[len(stack)-1].object = true
				}
			case "objdata", "objemb", "objocx", "objlink", "objautlink", "objupdate":
				if !mark("RTF embedded object (\\"+word+")", true) {
					return nil, cannot("RTF object control word outside any group")
				}
			case "bin":
				n, err := strconv.Atoi(param)
				if err == nil && n > 0 {
					k += min(n, len(data)-k)
				}
			}
			if asciiLower(word) == "template" && remoteTarget(data[k:]) {
				if !mark("RTF remote template", false) {
					return nil, cannot("RTF template outside any group")
				}
			}
			i = k
		default:
			i++
		}
	}
	// Groups left open by a truncated file end with it.
	for k := len(stack) - 1; k >= 0; k-- {
		if stack[k].remove {
			if k == 0 {
				return nil, cannot("RTF active content in the document's own group")
			}
			cut = append(cut, span{stack[k].start, len(data), stack[k].what})
		}
	}
	sort.Slice(cut, func(a, b int) bool { return cut[a].start < cut[b].start })
	out := make([]byte, 0, len(data))
	d := &Disarmed{}
	p := 0
	for _, c := range cut {
		if c.start < p {
			continue // inside a group already removed
		}
		out = append(out, data[p:c.start]...)
		p = c.end
		d.Removed = append(d.Removed, c.what)
	}
	out = append(out, data[p:]...)
	d.Data = out
	d.Removed = dedupStrings(d.Removed)
	return d, nil
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func asciiLower(s string) string {
	if len(s) > 16 {
		return ""
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// remoteTarget: the text after \template names an http(s) or UNC path.
func remoteTarget(b []byte) bool {
	b = bytes.TrimLeft(b[:min(len(b), 64)], " \t\r\n\f\v")
	l := bytes.ToLower(b[:min(len(b), 5)])
	return bytes.HasPrefix(l, []byte("http")) || bytes.HasPrefix(b, []byte(`\\`))
}

func dedupStrings(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
