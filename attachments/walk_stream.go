package attachments

import (
	"archive/tar"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"io"
	"strings"
)

// stream unpacks a single-stream compressor (gzip, bzip2, xz): its one
// member is the data inside, named after the stream's own name.
func (s *scanner) stream(f *File, data []byte, depth int, kind string) {
	defer s.releaseTo(s.held)
	var r io.Reader
	var x *xzReader
	name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(f.Name, ".gz"), ".bz2"), ".xz")
	if strings.HasSuffix(strings.ToLower(f.Name), ".tgz") {
		name = f.Name[:len(f.Name)-4] + ".tar"
	}
	switch kind {
	case "gzip":
		z, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "gzip: " + err.Error()})
			return
		}
		if z.Name != "" {
			name = z.Name
		}
		r = z
	case "bzip2":
		r = bzip2.NewReader(bytes.NewReader(data))
	case "xz":
		// The decoder allocates the dictionary a block header declares
		// (up to 4 GiB): each is bounded and taken from the memory
		// budget before it is allocated.
		x = newXZReader(data, max(s.opts.MaxFileSize, 64<<20), func(n int64) bool { return s.hold(n, f.Path, f.Name) })
		r = x
	}
	if name == "" || name == f.Name {
		name = "unpacked"
	}
	content, size, whole := s.extract(f, name, r, 0, int64(len(data)))
	if x != nil && x.lying {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "xz: an index lists another number of blocks than its stream holds"})
	}
	s.member(f, name, kind, content, size, whole, depth+1, kind)
}

func (s *scanner) tar(f *File, r io.Reader, depth int) {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "tar: " + err.Error()})
			return
		}
		if !s.entries(f, n) {
			return
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		mark := s.held
		content, size, whole := s.extract(f, h.Name, tr, h.Size, 0)
		s.member(f, h.Name, "tar", content, size, whole, depth+1, "tar")
		s.releaseTo(mark)
	}
}
