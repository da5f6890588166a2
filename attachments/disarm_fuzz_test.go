package attachments

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// checkDisarmed is what every disarm fuzz target asserts: no panic, a
// bounded time, an error that wraps ErrCannotDisarm or a result in which
// Analyse finds nothing.
func checkDisarmed(t *testing.T, name string, b []byte, grow int) {
	start := time.Now()
	d, err := Disarm(name, b)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("slow: %v", time.Since(start))
	}
	if err != nil {
		if !errors.Is(err, ErrCannotDisarm) {
			t.Fatalf("error does not wrap ErrCannotDisarm: %v", err)
		}
		return
	}
	if len(d.Data) > len(b)+grow {
		t.Fatalf("grew from %d to %d bytes", len(b), len(d.Data))
	}
	if left := Analyse(d.Data); len(left) > 0 {
		t.Fatalf("active content left: %v", left)
	}
}

func FuzzDisarmRTF(f *testing.F) {
	f.Add([]byte(`{\rtf1 A{\object\objemb{\*\objdata \bin2 }}}B}`))
	f.Add([]byte(`{\rtf1{\*\template http://x/}\{{\*\objupdate}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !bytes.HasPrefix(b, []byte(`{\rt`)) {
			b = append([]byte(`{\rt`), b...)
		}
		checkDisarmed(t, "x.rtf", b, 0)
	})
}

func FuzzDisarmPDF(f *testing.F) {
	for _, c := range disarmPDFCases {
		f.Add(c.pdf)
	}
	f.Add(testObjStmPDF())
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isPDF(b) {
			b = append([]byte("%PDF-1.7\n"), b...)
		}
		d, err := disarmPDF(b)
		if err == nil && len(d.Data) < len(b) {
			t.Fatalf("length changed: %d → %d", len(b), len(d.Data))
		}
		// An incremental update adds at most the file's size again, 64
		// KiB, and its cross-reference section.
		checkDisarmed(t, "x.pdf", b, len(b)+64<<10+32*len(b)/10+4096)
	})
}

func FuzzDisarmOLE(f *testing.F) {
	f.Add(testDoc())
	f.Add(testDoc("MacroR", "MacroT"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := disarmOLE("x.doc", b)
		if err == nil && len(d.Data) != len(b) {
			t.Fatalf("length changed: %d → %d", len(b), len(d.Data))
		}
		checkDisarmed(t, "x.doc", b, 0)
	})
}
