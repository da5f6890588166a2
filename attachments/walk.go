package attachments

// Archive walking: the scanner opens the containers a file is (zip, gzip,
// xz, bzip2, tar, 7z, rar, TNEF, OLE, uuencoded blocks) and inspects each
// member as a file of its own. This file holds what the walkers share;
// each format has its walk_*.go.

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// containerPath is the path members of f hang from: a MIME part's path
// gets its file name ("1.2/a.zip"), a member's path has it already.
func containerPath(f *File) string {
	if f.Entity != nil && f.Path == f.Entity.Path {
		if f.Name == "" {
			return f.Path
		}
		return f.Path + "/" + f.Name
	}
	return f.Path
}

// member records an archive member and inspects it.
func (s *scanner) member(parent *File, name, source string, data []byte, size int64, whole bool, depth int, container string) *File {
	names := NormalizeFilename(name, source)
	f := &File{
		Path: containerPath(parent) + "/" + strings.TrimLeft(name, "/"), Names: names,
		Size: size, Member: container != "tnef" && container != "uuencode", Container: container, Entity: parent.Entity,
		Parent: parent, Entry: name,
	}
	if len(names) > 0 {
		f.Name = names[0].Name
	}
	f.Path = strings.ReplaceAll(f.Path, "//", "/")
	s.rep.Files = append(s.rep.Files, f)
	s.inspect(f, data, whole, depth)
	return f
}

// extract reads one member's content through the budget, refusing bombs:
// a declared ratio over the limit is not unpacked at all, and no member is
// read past its declared size (plus one byte, to see that it lied) or the
// file limit.
func (s *scanner) extract(parent *File, name string, r io.Reader, declared, compressed int64) ([]byte, int64, bool) {
	if compressed > 0 && declared > s.opts.RatioFloor && float64(declared)/float64(compressed) > s.opts.MaxRatio {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitRatio, Path: parent.Path, File: name, Detail: fmt.Sprintf("compression ratio %.0f:1 over %.0f:1 (%d bytes from %d): not unpacked", float64(declared)/float64(compressed), s.opts.MaxRatio, declared, compressed)})
		return nil, declared, false
	}
	if declared > 0 {
		r = io.LimitReader(r, declared+1)
	}
	data, whole, over, err := s.read(r, declared, s.keep, Finding{Path: parent.Path, File: name})
	if err != nil && !errors.Is(err, errBudget) {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: parent.Path, File: name, Detail: "member could not be unpacked: " + err.Error()})
		whole = false
	}
	if !whole && err == nil && declared <= 0 && compressed > 0 {
		// A compressed stream does not say how large it is: what was not
		// kept is unpacked into nothing, only counted, up to what the
		// ratio allows, so that a bomb is found without holding its
		// output (a single-file gzip of 1 GiB of zeros).
		bound := max(s.opts.RatioFloor, int64(float64(compressed)*s.opts.MaxRatio))
		n, derr := io.Copy(io.Discard, io.LimitReader(&budgetReader{r: r, s: s}, bound-int64(len(data))+1))
		total := int64(len(data)) + n
		switch {
		case total > bound:
			s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitRatio, Path: parent.Path, File: name, Detail: fmt.Sprintf("compression ratio over %.0f:1 (more than %d bytes from %d): not inspected", s.opts.MaxRatio, bound, compressed)})
			return data, total, false // the head still shows what it is
		case derr != nil && !errors.Is(derr, errBudget):
			s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: parent.Path, File: name, Detail: "member could not be unpacked: " + derr.Error()})
		case derr == nil:
			declared = total // its true size; the head is what was inspected
		}
	}
	size := declared
	if whole {
		size = int64(len(data))
		if declared > 0 && size > declared {
			s.add(Finding{Category: CategorySuspicious, Kind: KindArchiveSizeLie, Path: parent.Path, File: name, Detail: fmt.Sprintf("member larger than its declared %d bytes", declared)})
		}
		if compressed > 0 && size > s.opts.RatioFloor && float64(size)/float64(compressed) > s.opts.MaxRatio {
			s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitRatio, Path: parent.Path, File: name, Detail: fmt.Sprintf("compression ratio %.0f:1 over %.0f:1", float64(size)/float64(compressed), s.opts.MaxRatio)})
			return nil, size, false
		}
	}
	if over && Sniff(data).Family != FamilyText {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitSize, Path: parent.Path, File: name, Detail: fmt.Sprintf("%s larger than %d bytes: not inspected", firstField(Sniff(data).Description), s.opts.MaxFileSize)})
	}
	return data, size, whole
}

func (s *scanner) entries(parent *File, n int) bool {
	if n >= s.opts.MaxEntries {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindLimitEntries, Path: parent.Path, File: parent.Name, Detail: fmt.Sprintf("more than %d entries: the rest were not inspected", s.opts.MaxEntries)})
		return false
	}
	return true
}
