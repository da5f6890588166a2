package attachments

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/nwaples/rardecode/v2"
)

func (s *scanner) rar(f *File, data []byte, depth int) {
	// The window is allocated at the size the header declares (up to
	// 4 GiB by default): bound it. A larger one is reported below.
	r, err := rardecode.NewReader(bytes.NewReader(data), rardecode.MaxDictionarySize(max(s.opts.MaxFileSize, 64<<20)))
	if err != nil {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "rar: " + err.Error()})
		return
	}
	encrypted := 0
	for n := 0; ; n++ {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, rardecode.ErrArchiveEncrypted) {
				s.add(Finding{Category: CategoryUnscannable, Kind: KindEncryptedArchive, Path: f.Path, File: f.Name, Detail: "rar archive with encrypted headers"})
				return
			}
			s.add(Finding{Category: CategoryUnscannable, Kind: KindArchiveCorrupt, Path: f.Path, File: f.Name, Detail: "rar: " + err.Error()})
			break
		}
		if !s.entries(f, n) {
			break
		}
		if h.IsDir {
			continue
		}
		if h.Encrypted {
			encrypted++
			m := s.member(f, h.Name, "rar", nil, h.UnPackedSize, false, depth+1, "rar")
			m.Encrypted = true
			continue
		}
		mark := s.held
		content, size, whole := s.extract(f, h.Name, r, h.UnPackedSize, h.PackedSize)
		s.member(f, h.Name, "rar", content, size, whole, depth+1, "rar")
		s.releaseTo(mark)
	}
	if encrypted > 0 {
		s.add(Finding{Category: CategoryUnscannable, Kind: KindEncryptedArchive, Path: f.Path, File: f.Name, Detail: fmt.Sprintf("password-protected rar (%s)", plural(encrypted, "encrypted entry", "encrypted entries"))})
	}
}
