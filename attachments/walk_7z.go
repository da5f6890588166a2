package attachments

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/bodgit/sevenzip"
)

func (s *scanner) sevenZip(f *File, data []byte, depth int) {
	z, err := sevenzip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		var re *sevenzip.ReadError
		if errors.As(err, &re) && re.Encrypted {
			s.add(Finding{Category: CategoryUnscannable, Kind: KindEncryptedArchive, Path: f.Path, File: f.Name, Detail: "7z archive with encrypted headers"})
			return
		}
		s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "7z: " + err.Error()})
		return
	}
	// Reaching a member of a solid archive unpacks all those before it,
	// read or not: what the archive declares is charged up front, and
	// nothing is unpacked when it is over the budget.
	var declared int64
	for _, zf := range z.File {
		declared += int64(min(zf.UncompressedSize, 1<<40))
	}
	s.take(declared)
	encrypted := 0
	for n, zf := range z.File {
		if !s.entries(f, n) {
			return
		}
		if zf.FileInfo().IsDir() {
			continue
		}
		if s.budget > 0 && probe7zEncrypted(zf) {
			encrypted++
			m := s.member(f, zf.Name, "7z", nil, int64(zf.UncompressedSize), false, depth+1, "7z")
			m.Encrypted = true
			continue
		}
		mark := s.held
		var content []byte
		size := int64(zf.UncompressedSize)
		whole := false
		if s.budget <= 0 {
			// over the budget (reported): the name is still checked
		} else if rc, err := zf.Open(); err == nil {
			content, size, whole = s.extract(f, zf.Name, rc, int64(zf.UncompressedSize), 0)
			rc.Close()
		} else {
			s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveUnsupported, Path: f.Path, File: zf.Name, Detail: "7z: " + err.Error()})
		}
		s.member(f, zf.Name, "7z", content, size, whole, depth+1, "7z")
		s.releaseTo(mark)
	}
	if encrypted > 0 {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindEncryptedArchive, Path: f.Path, File: f.Name, Detail: fmt.Sprintf("password-protected 7z (%s)", plural(encrypted, "encrypted entry", "encrypted entries"))})
	}
}

// probe7zEncrypted reports whether a 7z member's folder is encrypted
// (reading its first byte fails with the library's encryption hint).
func probe7zEncrypted(zf *sevenzip.File) bool {
	var re *sevenzip.ReadError
	rc, err := zf.Open()
	if err != nil {
		return errors.As(err, &re) && re.Encrypted
	}
	defer rc.Close()
	_, err = rc.Read(make([]byte, 1))
	return err != nil && err != io.EOF && errors.As(err, &re) && re.Encrypted
}
