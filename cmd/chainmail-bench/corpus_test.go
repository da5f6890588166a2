package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestReadCorpus(t *testing.T) {
	sum := func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name, text, checksum string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"id": "x", "checksum": map[string]string{"type": "MD5", "value": checksum}, "text": text})
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	spam := "Subject: buy\n\nnow\n"
	ham := "Subject: caf\u00e9\n\nhello\n" // é is written back as the byte 0xe9
	hamBytes := []byte("Subject: caf\xe9\n\nhello\n")
	euro := "Subject: \u20ac\n\nx\n" // no Latin-1 byte for U+20AC
	add("package/data/spam-1/00001."+sum([]byte(spam))+".json", spam, sum([]byte(spam)))
	add("package/data/spam-1/00002.00000000000000000000000000000000.json", spam, "00000000000000000000000000000000")
	add("package/data/easy-ham-1/00003."+sum(hamBytes)+".json", ham, sum(hamBytes))
	add("package/data/easy-ham-1/00004."+sum([]byte(euro))+".json", euro, sum([]byte(euro)))
	add("package/data/file_list.json", "", "")
	add("package/data/other/00005."+sum([]byte(spam))+".json", spam, sum([]byte(spam)))
	tw.Close()
	zw.Close()
	tgz := filepath.Join(t.TempDir(), "c.tgz")
	if err := os.WriteFile(tgz, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	msgs, st, err := readCorpus(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if st.total["spam-1"] != 2 || st.kept["spam-1"] != 1 || st.total["easy-ham-1"] != 2 || st.kept["easy-ham-1"] != 1 || st.total["other"] != 0 {
		t.Errorf("stats: total %v, kept %v", st.total, st.kept)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	// Ordered by group, then name.
	if m := msgs[0]; m.group != "easy-ham-1" || m.spam || !bytes.Equal(m.raw, hamBytes) || m.md5 != sum(hamBytes) {
		t.Errorf("first message: %+v", m)
	}
	if m := msgs[1]; m.group != "spam-1" || !m.spam || string(m.raw) != spam {
		t.Errorf("second message: %+v", m)
	}
}
