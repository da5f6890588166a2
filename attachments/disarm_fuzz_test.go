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
