package attachments

import (
	"bufio"
	"bytes"
	"io"
	"path"
	"strings"
)

// uuencoded finds uuencoded files in text and inspects them like
// attachments (they are not archive members).
func (s *scanner) uuencoded(f *File, data []byte, depth int) {
	if !bytes.Contains(data, []byte("begin")) {
		return
	}
	if n := bareCRs(data); n > 0 {
		// Lines ended by a bare CR are lines to the MIME walk (see
		// lineScanner) and to mail clients that decode uuencoded text
		// (Thunderbird): here too.
		if s.hold(int64(len(data)+n), f.Path, f.Name) {
			out := make([]byte, 0, len(data)+n)
			for i, c := range data {
				out = append(out, c)
				if c == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
					out = append(out, '\n')
				}
			}
			data = out
		}
	}
	locs := uuBegin.FindAllSubmatchIndex(data, 51)
	if len(locs) > 50 {
		locs = locs[:50]
		s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitEntries, Path: f.Path, File: f.Name, Detail: "more than 50 uuencoded files: the rest were not inspected"})
	}
	for _, loc := range locs {
		name := strings.TrimSpace(string(data[loc[4]:loc[5]]))
		body := data[loc[1]:]
		end := bytes.Index(body, []byte("\nend"))
		if end >= 0 {
			body = body[:end+1]
		}
		var dec bytes.Buffer
		var bad int64
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 4096), 1<<20)
		if loc[2] >= 0 { // begin-base64
			raw, _ := io.ReadAll(NewDecoder("base64", bytes.NewReader(bytes.TrimSuffix(body, []byte("====\n")))))
			dec.Write(raw)
		} else {
			for sc.Scan() {
				dec.Write(uudecodeLine(bytes.TrimRight(sc.Bytes(), "\r"), nil, &bad))
			}
		}
		s.take(int64(dec.Len()))
		m := &File{Path: containerPath(f) + "/" + path.Base(strings.ReplaceAll(name, `\`, "/")), Names: NormalizeFilename(name, "uuencode"), Entity: f.Entity, Container: "uuencode", Size: int64(dec.Len()), Parent: f, Entry: name}
		if len(m.Names) > 0 {
			m.Name = m.Names[0].Name
		}
		s.rep.Files = append(s.rep.Files, m)
		s.inspect(m, dec.Bytes(), true, depth+1)
	}
}
