package dkim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"chainmail/checks"
)

// fuzzKey is a fixed Ed25519 key, so signed seeds stay valid.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// FuzzCheck feeds arbitrary messages through the whole check, go-msgauth
// included: no panic, a defined status for the message and every
// signature, bounded time. The seed corpus (testdata/fuzz/FuzzCheck)
// holds a valid signature by fuzzKey for sel._domainkey.example.com, many
// signatures, l=, folded and malformed fields.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(plainMessage))
	testKeys(f)
	z := &fakeResolver{
		TXT: map[string][]string{
			"sel._domainkey.example.com": {"v=DKIM1; k=ed25519; p=" + b64(fuzzKey.Public().(ed25519.PublicKey))},
			"rsa._domainkey.example.com": {keyRecord(f, rsa1024.Public())},
		},
		Fail: map[string]error{"tmp._domainkey.example.com": errTimeout, "sf._domainkey.example.com": errServfail},
	}
	c, err := New(DefaultConfig(), z)
	if err != nil {
		f.Fatal(err)
	}
	valid := map[string]bool{"pass": true, "fail": true, "policy": true, "neutral": true, "temperror": true, "permerror": true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sp := checks.NewSpool(1<<20, t.TempDir())
		defer sp.Close()
		m, err := checks.ReadMessage(bytes.NewReader(raw), sp)
		if err != nil {
			return
		}
		start := time.Now()
		r := c.Check(context.Background(), m, nil)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v", d)
		}
		switch r.Status {
		case checks.StatusPass, checks.StatusFail, checks.StatusTemperror, checks.StatusPermerror, checks.StatusNone:
		default:
			t.Fatalf("status %q (%v)", r.Status, r.Err)
		}
		sigs := results(r)
		pass := false
		for _, s := range sigs {
			if !valid[string(s.Status)] {
				t.Fatalf("signature status %q", s.Status)
			}
			pass = pass || s.Status == "pass"
		}
		if pass != (r.Status == checks.StatusPass) {
			t.Fatalf("aggregate %s with %+v", r.Status, sigs)
		}
		if (len(sigs) == 0) != (r.Status == checks.StatusNone) {
			t.Fatalf("aggregate %s with %d signatures", r.Status, len(sigs))
		}
	})
}
