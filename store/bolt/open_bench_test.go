package bolt

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// largeState writes a state file of about mb megabytes (kv bucket, 100
// byte values) once per benchmark.
func largeState(b *testing.B, mb int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "state.db")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 100)
	n := mb << 20 / 140
	for i := 0; i < n; {
		err := db.Update(func(tx *bbolt.Tx) error {
			kv, err := tx.CreateBucketIfNotExists(bucketKV)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(bucketExp); err != nil {
				return err
			}
			for j := 0; j < 50000 && i < n; j, i = j+1, i+1 {
				var k [16]byte
				binary.BigEndian.PutUint64(k[:], uint64(i)*0x9E3779B97F4A7C15)
				binary.BigEndian.PutUint64(k[8:], uint64(i))
				if err := kv.Put(k[:], val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	return path
}

// reportSize reports the file's size (after ResetTimer, which drops
// metrics reported before it).
func reportSize(b *testing.B, path string) {
	if fi, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "MB")
	}
}

// BenchmarkOpen100MB: Open of a 100 MB state file, with the corruption
// check at start (read-only walk of every key and bbolt's Check).
func BenchmarkOpen100MB(b *testing.B) {
	path := largeState(b, 100)
	b.ResetTimer()
	reportSize(b, path)
	for i := 0; i < b.N; i++ {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkCheck100MB: the corruption check alone.
func BenchmarkCheck100MB(b *testing.B) {
	path := largeState(b, 100)
	b.ResetTimer()
	reportSize(b, path)
	for i := 0; i < b.N; i++ {
		if err := check(path, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareOpen100MB: bbolt's own open as the store opens it (it
// reads every page to rebuild the free list), for comparison.
func BenchmarkBareOpen100MB(b *testing.B) {
	path := largeState(b, 100)
	b.ResetTimer()
	reportSize(b, path)
	for i := 0; i < b.N; i++ {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
		if err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
}
