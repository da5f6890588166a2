package attachment

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ulikunitz/xz"

	"chainmail/checks"
)

// zerosGzip is a gzip file of n MiB of zeros: one small member of 1 MiB
// repeated (gzip readers read concatenated members as one file).
func zerosGzip(t *testing.T, n int) []byte {
	t.Helper()
	var one bytes.Buffer
	w, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Close()
	return bytes.Repeat(one.Bytes(), n)
}

// zerosXZ is an xz file of n MiB of zeros: concatenated streams.
func zerosXZ(t *testing.T, n int) []byte {
	t.Helper()
	var one bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&one)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, 1<<20))
	w.Close()
	return bytes.Repeat(one.Bytes(), n)
}

// A single compressed file of 1 GiB of zeros (gzip 1 MB, bzip2 785
// bytes, xz) is over the compression-ratio limit like an archive member
// would be: unscannable, never clean; and it is counted, not unpacked
// whole.
func TestCompressedSingleFileBomb(t *testing.T) {
	bz, err := os.ReadFile(filepath.Join("..", "..", "attachments", "testdata", "zeros-1GiB.bz2")) // bzip2 -9 of 1 GiB of zeros
	if err != nil {
		t.Fatal(err)
	}
	c := newCheck(t, nil)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"zeros.gz", zerosGzip(t, 1024)},
		{"zeros.bz2", bz},
		{"zeros.xz", zerosXZ(t, 1024)},
		{"zeros.tgz", zerosGzip(t, 1024)},
	} {
		r := c.Check(context.Background(), msg(part{f.name, "application/octet-stream", f.data}), nil)
		if r.Status != StatusUnscannable || !hasFinding(r, "limit-ratio") {
			t.Errorf("%s (%d bytes): status %s (%s), findings %v", f.name, len(f.data), r.Status, r.Reason, r.Facts["findings"])
		}
	}
	// A compressed file of ordinary ratio is still clean, and one that
	// carries a program is blocked.
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ { // 2 MiB of log lines, about 4:1
		fmt.Fprintf(w, "%08x host%d sshd[%d]: session opened for user u%d\n", rnd.Uint32(), rnd.IntN(50), rnd.IntN(99999), rnd.IntN(1000))
	}
	w.Close()
	if r := c.Check(context.Background(), msg(part{"log.txt.gz", "application/gzip", b.Bytes()}), nil); r.Status != checks.StatusClean {
		t.Errorf("log.txt.gz: status %s (%s) %v", r.Status, r.Reason, r.Facts["findings"])
	}
	b.Reset()
	w = gzip.NewWriter(&b)
	w.Write(exe)
	w.Write(make([]byte, 8<<20)) // 8 MiB of zeros after the program
	w.Close()
	if r := c.Check(context.Background(), msg(part{"setup.exe.gz", "application/gzip", b.Bytes()}), nil); r.Status != checks.StatusBlocked {
		t.Errorf("setup.exe.gz: status %s (%s) %v", r.Status, r.Reason, r.Facts["findings"])
	}
}

// Through the milter protocol: a gzip of 1 GiB of zeros is quarantined,
// not accepted clean.
func TestCompressedBombOverMilter(t *testing.T) {
	m := msg(part{"zeros.gz", "application/gzip", zerosGzip(t, 1024)})
	if got := sendOverMilter(t, newCheck(t, nil), m); got != "quarantine " {
		t.Fatalf("outcome %q", got)
	}
}
