package attachments

import (
	"strings"
)

func (s *scanner) tnef(f *File, data []byte, depth int) {
	t, err := ParseTNEF(data)
	if err != nil {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindTNEFCorrupt, Path: f.Path, File: f.Name, Detail: "TNEF: " + err.Error()})
		return
	}
	for _, p := range t.Problems {
		cat := CategoryMalformed
		if strings.Contains(p, "not read") {
			cat = CategoryUnscannable
		}
		s.add(Finding{Category: cat, Kind: KindTNEFCorrupt, Path: f.Path, File: f.Name, Detail: "TNEF: " + p})
	}
	s.tnefFiles(f, t, depth)
}

func (s *scanner) tnefFiles(f *File, t *TNEF, depth int) {
	if len(t.RTF) > 0 {
		s.active(f, RTFActive(t.RTF))
	}
	for i, a := range t.Attachments {
		if !s.entries(f, i) {
			return
		}
		name := a.Name()
		if name == "" {
			name = "Untitled Attachment"
		}
		s.take(int64(len(a.Data)))
		m := s.member(f, name, "tnef", a.Data, int64(len(a.Data)), true, depth+1, "tnef")
		if a.LongName != "" && a.Title != "" && a.Title != a.LongName {
			m.Names = append(m.Names, NormalizeFilename(a.Title, "tnef-title")...)
		}
		if a.Embedded != nil && depth+1 < s.opts.MaxDepth {
			s.tnefFiles(m, a.Embedded, depth+1)
		}
	}
}
