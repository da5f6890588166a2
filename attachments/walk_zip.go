package attachments

import (
	"fmt"
	"io"
)

func (s *scanner) zip(f *File, data []byte, depth int) {
	l, err := ListZip(data, s.opts.MaxEntries)
	if err != nil {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "zip: " + err.Error()})
		return
	}
	for _, p := range l.Problems {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "zip: " + p})
	}
	for _, m := range l.Mismatches {
		s.add(Finding{Category: CategorySuspicious, Kind: KindZipDirectoryMismatch, Path: f.Path, File: f.Name, Detail: "zip: " + m})
	}
	if l.Truncated {
		s.entries(f, s.opts.MaxEntries)
	}
	var names []string
	overlap := false
	for _, e := range l.Entries {
		names = append(names, e.Name)
		if e.Overlaps {
			overlap = true
		}
	}
	if overlap {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindZipOverlap, Path: f.Path, File: f.Name, Detail: "zip entries overlap (zip bomb): overlapping entries not unpacked"})
	}
	ooxml := false
	for _, n := range names {
		if n == "[Content_Types].xml" {
			ooxml = true
		}
	}
	if ooxml {
		s.active(f, OOXMLActive(names, func(name string) []byte {
			for _, e := range l.Entries {
				if e.Name == name && !e.Encrypted && !e.Overlaps {
					r, err := OpenZipEntry(data, e)
					if err != nil {
						return nil
					}
					b, _ := io.ReadAll(&budgetReader{r: io.LimitReader(r, 8<<20), s: s})
					return b
				}
			}
			return nil
		}))
	}
	encrypted := 0
	for _, e := range l.Entries {
		if e.LocalName != "" {
			s.add(Finding{Category: CategorySuspicious, Kind: KindZipNameMismatch, Path: f.Path, File: f.Name, Detail: fmt.Sprintf("entry named %q in the directory but %q in its local header", truncateString(e.Name, 80), truncateString(e.LocalName, 80))})
			// Both names are checked.
		}
		if e.Dir {
			continue
		}
		if e.Encrypted {
			encrypted++
			m := s.member(f, e.Name, "zip", nil, int64(e.UncompressedSize), false, depth+1, "zip")
			m.Encrypted = true
			m.Names = append(m.Names, e.otherNames()...)
			continue
		}
		if e.Overlaps || s.budget <= 0 {
			m := s.member(f, e.Name, "zip", nil, int64(e.UncompressedSize), false, depth+1, "zip")
			m.Names = append(m.Names, e.otherNames()...)
			continue
		}
		var content []byte
		var size int64 = int64(e.UncompressedSize)
		whole := false
		mark := s.held
		r, err := OpenZipEntry(data, e)
		if err != nil {
			s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveUnsupported, Path: f.Path, File: e.Name, Detail: err.Error()})
		} else {
			content, size, whole = s.extract(f, e.Name, r, int64(e.UncompressedSize), int64(e.CompressedSize))
		}
		m := s.member(f, e.Name, "zip", content, size, whole, depth+1, "zip")
		s.releaseTo(mark)
		m.Names = append(m.Names, e.otherNames()...)
	}
	if encrypted > 0 {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindEncryptedArchive, Path: f.Path, File: f.Name, Detail: fmt.Sprintf("password-protected zip (%s)", plural(encrypted, "encrypted entry", "encrypted entries"))})
	}
}
