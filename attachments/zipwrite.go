package attachments

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// ZipChange is what RewriteZip does to one entry: Remove it, or replace
// its content by Data under the name Name ("" keeps the name).
type ZipChange struct {
	Remove bool
	Name   string
	Data   []byte
}

// ReadZipEntry returns the content of the entry named name of the zip in
// data, at most limit bytes (an error beyond).
func ReadZipEntry(data []byte, name string, limit int64) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, limit+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("attachments: zip entry %q is larger than %d bytes", name, limit)
		}
		return b, nil
	}
	return nil, fmt.Errorf("attachments: zip entry %q not found", name)
}

// RewriteZip returns the zip in data with the changes made, entries in
// their order; every entry not changed is copied as it is stored
// (compressed, and encrypted if it was). The archive is written from its
// central directory: what only local headers hold is not carried over.
// A change for an entry the archive does not have, or a name listed
// twice, is an error: the caller then removes the whole archive.
func RewriteZip(data []byte, changes map[string]*ZipChange) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	return rewriteZip(zr, changes)
}

// flatePool keeps deflate writers between entries: each holds about a
// megabyte of tables, which is most of what rewriting costs otherwise.
var flatePool sync.Pool

type pooledFlate struct{ *flate.Writer }

func (p pooledFlate) Close() error {
	err := p.Writer.Close()
	flatePool.Put(p.Writer)
	return err
}

func rewriteZip(zr *zip.Reader, changes map[string]*ZipChange) ([]byte, error) {
	seen := map[string]bool{}
	for _, f := range zr.File {
		if seen[f.Name] {
			return nil, fmt.Errorf("attachments: zip entry %q is listed twice", f.Name)
		}
		seen[f.Name] = true
	}
	for n := range changes {
		if !seen[n] {
			return nil, fmt.Errorf("attachments: zip entry %q not found", n)
		}
	}
	var out bytes.Buffer
	w := zip.NewWriter(&out)
	w.RegisterCompressor(zip.Deflate, func(dst io.Writer) (io.WriteCloser, error) {
		if fw, ok := flatePool.Get().(*flate.Writer); ok {
			fw.Reset(dst)
			return pooledFlate{fw}, nil
		}
		fw, err := flate.NewWriter(dst, flate.DefaultCompression)
		return pooledFlate{fw}, err
	})
	if zr.Comment != "" {
		if err := w.SetComment(zr.Comment); err != nil {
			return nil, err
		}
	}
	for _, f := range zr.File {
		ch := changes[f.Name]
		switch {
		case ch == nil:
			if err := w.Copy(f); err != nil {
				return nil, err
			}
		case ch.Remove:
		default:
			h := f.FileHeader
			if ch.Name != "" {
				h.Name = ch.Name
			}
			h.Method = zip.Deflate
			h.Flags &^= 0x1 | 0x8 // not encrypted (a disarmed entry was readable), sizes in the header
			h.Extra = nil
			h.CompressedSize64, h.UncompressedSize64, h.CRC32 = 0, 0, 0
			fw, err := w.CreateHeader(&h)
			if err != nil {
				return nil, err
			}
			if _, err := fw.Write(ch.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
