package attachments

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"chainmail/checks/checktest"
)

func benchScan(b *testing.B, msg []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		Scan(bytes.NewReader(msg), int64(len(msg)), Options{})
	}
}

// A plain 10 KB text message: the cost every message pays.
func BenchmarkScanText10K(b *testing.B) {
	msg := "From: a@example.com\r\nSubject: x\r\n\r\n" + strings.Repeat("The quick brown fox jumps over the lazy dog, again and again.\r\n", 160)
	benchScan(b, []byte(msg))
}

// rspamd's gargantua.eml: 59 attachments of 59 types.
func BenchmarkScanGargantua(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(checktest.Corpus(b, "rspamd-functional"), "messages", "gargantua.eml"))
	if err != nil {
		b.Fatal(err)
	}
	benchScan(b, raw)
}

// One 10 MB attachment of random bytes.
func BenchmarkScan10MBAttachment(b *testing.B) {
	data := make([]byte, 10<<20)
	rand.Read(data)
	benchScan(b, message("data.bin", data))
}

// One 10 MB zip attachment (a document-sized member inside).
func BenchmarkScan10MBZip(b *testing.B) {
	data := make([]byte, 10<<20)
	rand.Read(data)
	benchScan(b, message("data.zip", zipOf(b, "data.bin", data)))
}

// Disarm over every corpus document with active content (oletools' test
// data, SpamAssassin's olevbmacro attachments), refusals included: bytes
// are the documents' sizes.
func BenchmarkDisarm(b *testing.B) {
	var active []disarmSample
	var n int64
	for _, s := range disarmSamples(b) {
		if len(Analyse(s.Data)) > 0 {
			active = append(active, s)
			n += int64(len(s.Data))
		}
	}
	b.ReportAllocs()
	b.SetBytes(n)
	for b.Loop() {
		for _, s := range active {
			Disarm(s.Name, s.Data)
		}
	}
}

// Analyse over every corpus document of the disarming set.
func BenchmarkAnalyse(b *testing.B) {
	samples := disarmSamples(b)
	var n int64
	for _, s := range samples {
		n += int64(len(s.Data))
	}
	b.ReportAllocs()
	b.SetBytes(n)
	for b.Loop() {
		for _, s := range samples {
			Analyse(s.Data)
		}
	}
}
