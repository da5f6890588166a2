package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/auth"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
)

// Test keys, made once per run.
var (
	keysOnce sync.Once
	rsa1024  *rsa.PrivateKey
	rsa2048  *rsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
		if rsa2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
	})
}

// keyRecord returns the DKIM key record (RFC 6376 §3.6.1) of a public key.
func keyRecord(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k)
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
	t.Fatalf("unsupported key %T", pub)
	return ""
}

// shortKeyRecord returns an RSA key record of the given size. Go refuses to
// generate RSA keys under 1024 bits, but a public key needs no private
// half: any odd modulus of the right length will do for a size check.
func shortKeyRecord(t testing.TB, bits int) string {
	t.Helper()
	n, err := rand.Prime(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1)
	return keyRecord(t, &rsa.PublicKey{N: new(big.Int).Set(n), E: 65537})
}

const plainMessage = "From: Joe <joe@example.com>\r\n" +
	"To: Ann <ann@example.net>\r\n" +
	"Subject: hello\r\n" +
	"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n" +
	"Message-ID: <1@example.com>\r\n" +
	"\r\n" +
	"Hello Ann,\r\n\r\nthis is a test.\r\n"

// sign signs raw with go-msgauth's signer and returns the signed message.
func sign(t testing.TB, raw string, o dkim.SignOptions) string {
	t.Helper()
	var out bytes.Buffer
	if err := dkim.Sign(&out, strings.NewReader(raw), &o); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func message(t testing.TB, raw string) *checks.Message {
	t.Helper()
	sp := checks.NewSpool(0, t.TempDir())
	t.Cleanup(func() { sp.Close() })
	m, err := checks.ReadMessage(strings.NewReader(raw), sp)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newCheck(t testing.TB, cfg Config, r *fakeResolver) *Check {
	t.Helper()
	c, err := New(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t testing.TB, c *Check, raw string) checks.Result {
	t.Helper()
	return c.Check(context.Background(), message(t, raw), nil)
}

func symbols(r checks.Result) []string {
	var out []string
	for _, s := range r.Symbols {
		out = append(out, s.Name)
	}
	return out
}

// results returns the signatures r hands to the checks after dkim.
func results(r checks.Result) []Signature {
	d, _ := r.Auth.(auth.DKIM)
	return d.Signatures
}

func statuses(r checks.Result) []string {
	var out []string
	for _, s := range results(r) {
		out = append(out, string(s.Status))
	}
	return out
}

// want checks the aggregate status, the per-signature statuses and the
// symbols of a result.
func want(t *testing.T, r checks.Result, status checks.Status, sigs []string, syms ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %s, want %s (reason %q, err %v)", r.Status, status, r.Reason, r.Err)
	}
	if got := statuses(r); !slices.Equal(got, sigs) && !(len(got) == 0 && len(sigs) == 0) {
		t.Errorf("signatures = %v, want %v (%+v)", got, sigs, results(r))
	}
	if got := symbols(r); !slices.Equal(got, syms) {
		t.Errorf("symbols = %v, want %v", got, syms)
	}
}

func TestNoSignature(t *testing.T) {
	c := newCheck(t, DefaultConfig(), &fakeResolver{})
	r := run(t, c, plainMessage)
	want(t, r, checks.StatusNone, nil, SymNA)
	if r.Score != 0 || len(r.AuthResults) != 0 {
		t.Errorf("score %v, authres %v", r.Score, r.AuthResults)
	}
	if got := r.Facts["domains_pass"].([]string); len(got) != 0 {
		t.Errorf("domains_pass = %v", got)
	}
}

func TestPass(t *testing.T) {
	testKeys(t)
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		hc, bc dkim.Canonicalization
	}{
		{"rsa1024 simple", rsa1024, dkim.CanonicalizationSimple, dkim.CanonicalizationSimple},
		{"rsa2048 relaxed", rsa2048, dkim.CanonicalizationRelaxed, dkim.CanonicalizationRelaxed},
		{"ed25519 relaxed/simple", edKey, dkim.CanonicalizationRelaxed, dkim.CanonicalizationSimple},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, tc.key.Public())}}}
			c := newCheck(t, DefaultConfig(), res)
			signed := sign(t, plainMessage, dkim.SignOptions{Domain: "Example.COM", Selector: "sel", Signer: tc.key,
				HeaderCanonicalization: tc.hc, BodyCanonicalization: tc.bc, HeaderKeys: []string{"From", "To", "Subject", "Date"}})
			r := run(t, c, signed)
			want(t, r, checks.StatusPass, []string{"pass"}, SymAllow)
			if r.Score != -0.20 {
				t.Errorf("score = %v", r.Score)
			}
			if got := r.Facts["domains_pass"].([]string); !slices.Equal(got, []string{"example.com"}) {
				t.Errorf("domains_pass = %v", got)
			}
			ar, ok := mainAuthResult(r)
			if !ok || ar.Value != authres.ResultPass || ar.Domain != "example.com" {
				t.Errorf("authres = %#v", r.AuthResults)
			}
			if sig := results(r)[0]; sig.Selector != "sel" || sig.Domain != "example.com" {
				t.Errorf("signature facts = %+v", sig)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	testKeys(t)
	rec := keyRecord(t, rsa2048.Public())
	signed := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "sel", Signer: rsa2048,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed})
	zone := func() *fakeResolver {
		return &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {rec}}}
	}
	t.Run("body changed", func(t *testing.T) {
		r := run(t, newCheck(t, DefaultConfig(), zone()), signed+"appended\r\n")
		want(t, r, checks.StatusFail, []string{"fail"}, SymReject)
		if r.Score != 1.0 {
			t.Errorf("score = %v", r.Score)
		}
	})
	t.Run("header changed", func(t *testing.T) {
		r := run(t, newCheck(t, DefaultConfig(), zone()), strings.Replace(signed, "Subject: hello", "Subject: HELLO", 1))
		want(t, r, checks.StatusFail, []string{"fail"}, SymReject)
	})
	t.Run("no key: NXDOMAIN is permerror (RFC 6376 §6.1.2)", func(t *testing.T) {
		r := run(t, newCheck(t, DefaultConfig(), &fakeResolver{}), signed)
		want(t, r, checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	})
	t.Run("revoked key", func(t *testing.T) {
		z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {"v=DKIM1; k=rsa; p="}}}
		want(t, run(t, newCheck(t, DefaultConfig(), z), signed), checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	})
	t.Run("two key records", func(t *testing.T) {
		z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {rec, rec}}}
		want(t, run(t, newCheck(t, DefaultConfig(), z), signed), checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	})
	for name, e := range map[string]error{
		"timeout":           errTimeout,
		"servfail":          errServfail,
		"refused (no flag)": &net.DNSError{Err: "refused"},
		"not a DNSError":    errors.New("connection reset"),
		// NXDOMAIN and timeout both set: the timeout wins, a retry may work.
		"ambiguous": &net.DNSError{Err: "x", IsNotFound: true, IsTimeout: true},
	} {
		t.Run(name+" is temperror", func(t *testing.T) {
			z := &fakeResolver{Fail: map[string]error{"sel._domainkey.example.com": e}}
			r := run(t, newCheck(t, DefaultConfig(), z), signed)
			want(t, r, checks.StatusTemperror, []string{"temperror"}, SymTempfail)
			if got := r.Facts["domains_temperror"].([]string); !slices.Equal(got, []string{"example.com"}) {
				t.Errorf("domains_temperror = %v", got)
			}
		})
	}
	t.Run("cancelled context is temperror", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := newCheck(t, DefaultConfig(), zone()).Check(ctx, message(t, signed), nil)
		want(t, r, checks.StatusTemperror, []string{"temperror"}, SymTempfail)
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("err = %v", r.Err)
		}
	})
	t.Run("wrong service s=tlsrpt", func(t *testing.T) {
		z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {strings.Replace(rec, "k=rsa;", "k=rsa; s=tlsrpt;", 1)}}}
		want(t, run(t, newCheck(t, DefaultConfig(), z), signed), checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	})
	t.Run("key type mismatch", func(t *testing.T) {
		z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, edKey.Public())}}}
		want(t, run(t, newCheck(t, DefaultConfig(), z), signed), checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	})
}

// TestRFC8301 covers rsa-sha1 and short RSA keys: never a pass, reported as
// RFC 8601 "policy" (aggregate permerror).
func TestRFC8301(t *testing.T) {
	testKeys(t)
	signed := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "sel", Signer: rsa1024})
	t.Run("short key", func(t *testing.T) {
		z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {shortKeyRecord(t, 768)}}}
		r := run(t, newCheck(t, DefaultConfig(), z), signed)
		want(t, r, checks.StatusPermerror, []string{"policy"}, SymPermfail)
		if s := results(r)[0]; s.KeyBits != 768 || !strings.Contains(s.Reason, "RFC 8301") {
			t.Errorf("signature = %+v", s)
		}
		if ar, _ := mainAuthResult(r); ar.Value != authres.ResultPolicy {
			t.Errorf("authres value = %v", ar.Value)
		}
	})
	t.Run("min_rsa_bits 2048 refuses a valid 1024-bit signature", func(t *testing.T) {
		z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, rsa1024.Public())}}}
		cfg := DefaultConfig()
		want(t, run(t, newCheck(t, cfg, z), signed), checks.StatusPass, []string{"pass"}, SymAllow)
		cfg.MinRSABits = 2048
		r := run(t, newCheck(t, cfg, z), signed)
		want(t, r, checks.StatusPermerror, []string{"policy"}, SymPermfail)
	})
	t.Run("rsa-sha1", func(t *testing.T) {
		// go-msgauth cannot sign with sha1; the signature value does not
		// matter, a=rsa-sha1 alone decides.
		z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, rsa1024.Public())}}}
		raw := strings.Replace(signed, "a=rsa-sha256", "a=rsa-sha1", 1)
		r := run(t, newCheck(t, DefaultConfig(), z), raw)
		want(t, r, checks.StatusPermerror, []string{"policy"}, SymPermfail)
		if !strings.Contains(results(r)[0].Reason, "rsa-sha1") {
			t.Errorf("reason = %q", results(r)[0].Reason)
		}
	})
}

// TestBodyLength: l= is never a pass (go-msgauth refuses it); unsigned
// content after the counted octets is the DKIM_UNSIGNED_BODY finding.
func TestBodyLength(t *testing.T) {
	testKeys(t)
	z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, edKey.Public())}}}
	body := "Hello Ann,\r\n\r\nthis is a test.\r\n" // 31 octets, simple and relaxed alike
	for _, tc := range []struct {
		l        int
		unsigned int64
		syms     []string
	}{
		{31, 0, []string{SymPermfail}},
		{40, 0, []string{SymPermfail}},
		{12, 19, []string{SymPermfail, SymUnsignedBody}},
		{0, 31, []string{SymPermfail, SymUnsignedBody}},
	} {
		t.Run(fmt.Sprint("l=", tc.l), func(t *testing.T) {
			raw := "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=sel;\r\n" +
				fmt.Sprintf("\th=from:to:subject; l=%d; bh=AAAA; b=AAAA\r\n", tc.l) +
				strings.SplitN(plainMessage, "\r\n\r\n", 2)[0] + "\r\n\r\n" + body
			r := run(t, newCheck(t, DefaultConfig(), z), raw)
			want(t, r, checks.StatusPermerror, []string{"policy"}, tc.syms...)
			if got := results(r)[0].UnsignedBytes; got != tc.unsigned {
				t.Errorf("unsigned = %d, want %d", got, tc.unsigned)
			}
		})
	}
}

func TestBodyLengthCount(t *testing.T) {
	for _, tc := range []struct {
		body            string
		simple, relaxed int64
	}{
		{"", 2, 0},
		{"\r\n", 2, 0},
		{"\r\n\r\n\r\n", 2, 0},
		{"a", 3, 3},
		{"a\r\n", 3, 3},
		{"a\n\n\n", 3, 3},
		{"a \t b  \r\n\r\n", 9, 5},
		{" C \r\nD \t E\r\n\r\n\r\n", 12, 9}, // RFC 6376 §3.4.5 example body
		{"a\rb\r\n", 5, 5},
		{"a\r", 4, 3},
		{"  \r\n", 4, 0},
		{"x\r\n  \r\n", 7, 3},
	} {
		for _, relaxed := range []bool{false, true} {
			b := &bodyLength{relaxed: relaxed}
			// Byte by byte, to exercise state carried across writes.
			for i := 0; i < len(tc.body); i++ {
				b.Write([]byte{tc.body[i]})
			}
			w := tc.simple
			if relaxed {
				w = tc.relaxed
			}
			if got := b.Len(); got != w {
				t.Errorf("%q relaxed=%v: %d, want %d", tc.body, relaxed, got, w)
			}
		}
	}
}

func TestMixed(t *testing.T) {
	testKeys(t)
	z := &fakeResolver{
		TXT: map[string][]string{
			"a._domainkey.example.com": {keyRecord(t, edKey.Public())},
			"b._domainkey.example.org": {keyRecord(t, rsa1024.Public())},
		},
		Fail: map[string]error{"c._domainkey.example.net": errTimeout},
	}
	m := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "a", Signer: edKey})
	m = sign(t, m, dkim.SignOptions{Domain: "example.org", Selector: "b", Signer: rsa1024})
	m = sign(t, m, dkim.SignOptions{Domain: "example.net", Selector: "c", Signer: rsa1024})
	// A list footer breaks the first two, the newest (top) one is for
	// example.net whose key is unavailable.
	r := run(t, newCheck(t, DefaultConfig(), z), m+"-- \r\nlist footer\r\n")
	want(t, r, checks.StatusTemperror, []string{"temperror", "fail", "fail"}, SymReject, SymTempfail)
	if got := r.Facts["domains"].([]string); !slices.Equal(got, []string{"example.net", "example.org", "example.com"}) {
		t.Errorf("domains = %v", got)
	}
	r = run(t, newCheck(t, DefaultConfig(), z), m)
	want(t, r, checks.StatusPass, []string{"temperror", "pass", "pass"}, SymAllow, SymTempfail)
	if got := r.Facts["domains_pass"].([]string); !slices.Equal(got, []string{"example.org", "example.com"}) {
		t.Errorf("domains_pass = %v", got)
	}
	if ar, _ := mainAuthResult(r); ar.Domain != "example.org" || ar.Value != authres.ResultPass || len(r.AuthResults) != 3 {
		t.Errorf("authres = %+v (want the first pass)", ar)
	}
	if n := len(AuthResults(results(r))); n != 3 {
		t.Errorf("AuthResults gives %d results", n)
	}
}

func TestMalformedSignatures(t *testing.T) {
	testKeys(t)
	z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, edKey.Public())}}}
	head := strings.SplitN(plainMessage, "\r\n\r\n", 2)[0] + "\r\n\r\nbody\r\n"
	for name, sig := range map[string]string{
		"no tags":        "",
		"junk":           "@@@",
		"duplicate d=":   "v=1; a=ed25519-sha256; d=example.com; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
		"missing bh=":    "v=1; a=ed25519-sha256; d=example.com; s=sel; h=from; b=AA==",
		"bad d=":         "v=1; a=ed25519-sha256; d=legitimate.com(.attacker.com; s=sel; h=from; bh=AA==; b=AA==",
		"bad tag name":   "v=1; a=ed25519-sha256; d=example.com; s=sel; h=from; bh=AA==; b=AA==; 9x=1",
		"v=2":            "v=2; a=ed25519-sha256; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
		"from unsigned":  "v=1; a=ed25519-sha256; d=example.com; s=sel; h=to; bh=AA==; b=AA==",
		"unknown a=":     "v=1; a=rsa-md5; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
		"bad c=":         "v=1; a=ed25519-sha256; c=foobar; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
		"bad l=":         "v=1; a=ed25519-sha256; l=-5; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
		"q=http":         "v=1; a=ed25519-sha256; q=http; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
		"i= not under d": "v=1; a=ed25519-sha256; i=@evil.com; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
		"expired":        "v=1; a=ed25519-sha256; x=1000; d=example.com; s=sel; h=from; bh=AA==; b=AA==",
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, newCheck(t, DefaultConfig(), z), "DKIM-Signature: "+sig+"\r\n"+head)
			want(t, r, checks.StatusPermerror, []string{"permerror"}, SymPermfail)
		})
	}
	// The invalid d= never reaches the resolver.
	z = &fakeResolver{}
	r := run(t, newCheck(t, DefaultConfig(), z), "DKIM-Signature: v=1; a=ed25519-sha256; d=a(b.example; s=sel; h=from; bh=AA==; b=AA==\r\n"+head)
	want(t, r, checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	if q := z.Queries(); len(q) != 0 {
		t.Errorf("queries = %v", q)
	}
}

// TestManySignatures: 100 DKIM-Signature fields cost five verifications.
func TestManySignatures(t *testing.T) {
	testKeys(t)
	z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, edKey.Public())}}}
	m := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "sel", Signer: edKey})
	var junk strings.Builder
	for i := range 99 {
		fmt.Fprintf(&junk, "DKIM-Signature: v=1; a=rsa-sha256; d=d%d.example; s=s; h=from; bh=AA==; b=AA==\r\n", i)
	}
	start := time.Now()
	r := run(t, newCheck(t, DefaultConfig(), z), junk.String()+m)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if r.Status != checks.StatusPermerror {
		t.Errorf("status = %v", r.Status)
	}
	st := statuses(r)
	if len(st) != 100 || st[0] != "permerror" || st[5] != "neutral" || st[99] != "neutral" {
		t.Errorf("statuses = %v", st)
	}
	if !slices.Contains(symbols(r), SymTooMany) || !errors.Is(r.Err, ErrTooManySignatures) {
		t.Errorf("symbols %v err %v", symbols(r), r.Err)
	}
	if q := z.Queries(); len(q) != 5 {
		t.Errorf("%d queries, want 5", len(q))
	}
	// The valid signature is the last: raising the cap reaches it.
	cfg := DefaultConfig()
	cfg.MaxSignatures = 100
	want(t, run(t, newCheck(t, cfg, z), junk.String()+m), checks.StatusPass, append(slices.Repeat([]string{"permerror"}, 99), "pass"), SymAllow, SymPermfail)
}

// withField returns the message raw with one more header field inserted
// at position at. The field is added to the parsed message directly:
// checks.ParseHeader (like go-msgauth's reader) is quadratic in the
// number of continuation lines of a field, and the time measured here is
// the check's.
func withField(t testing.TB, raw string, at int, name, value string) *checks.Message {
	t.Helper()
	m := message(t, raw)
	m.Header = slices.Insert(m.Header, at, checks.HeaderField{Name: name, Value: value})
	return m
}

// folded returns a field value of about size octets folded every line
// octets (CRLF and the leading space included).
func folded(size, line int) string {
	var b strings.Builder
	b.WriteString("x")
	for b.Len() < size {
		b.WriteString("\r\n " + strings.Repeat("a", line-3))
	}
	return b.String()
}

// timed runs the check on m and fails the test when it takes longer than
// a second.
func timed(t *testing.T, c *Check, m *checks.Message) checks.Result {
	t.Helper()
	start := time.Now()
	r := c.Check(context.Background(), m, nil)
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
	return r
}

// TestLargeHeader: header size and folding are bounded, and what no
// signature covers does not count.
func TestLargeHeader(t *testing.T) {
	testKeys(t)
	z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {keyRecord(t, edKey.Public())}}}
	c := newCheck(t, DefaultConfig(), z)
	fakeSig := func(canon string) string {
		return "DKIM-Signature: v=1; a=ed25519-sha256; c=" + canon + "/simple; d=example.com; s=sel; h=from:x-big; bh=AA==; b=AA==\r\n"
	}
	for _, canon := range []dkim.Canonicalization{dkim.CanonicalizationSimple, dkim.CanonicalizationRelaxed} {
		t.Run(string(canon)+" unsigned 500KB field is not fed", func(t *testing.T) {
			signed := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "sel", Signer: edKey,
				HeaderCanonicalization: canon, HeaderKeys: []string{"From", "To", "Subject"}})
			r := timed(t, c, withField(t, signed, 2, "X-Unsigned", folded(500<<10, 3)))
			want(t, r, checks.StatusPass, []string{"pass"}, SymAllow)
		})
		t.Run(string(canon)+" signed 500KB field is refused", func(t *testing.T) {
			// A fake signature: the limit applies before verification.
			r := timed(t, c, withField(t, fakeSig(string(canon))+plainMessage, 2, "X-Big", folded(500<<10, 78)))
			want(t, r, checks.StatusPermerror, []string{"permerror"}, SymPermfail)
			if !errors.Is(r.Err, ErrHeaderTooLarge) {
				t.Errorf("err = %v", r.Err)
			}
		})
	}
	t.Run("relaxed 500KB field folded every 3 octets is verified, in linear time", func(t *testing.T) {
		// Unfolded it is 170 KB, under the limit.
		r := timed(t, c, withField(t, fakeSig("relaxed")+plainMessage, 2, "X-Big", folded(500<<10, 3)))
		want(t, r, checks.StatusFail, []string{"fail"}, SymReject)
	})
	t.Run("relaxed signature over a heavily folded field passes", func(t *testing.T) {
		// Signed unfolded, delivered folded: relaxed canonicalization
		// makes the two equal, and the check feeds it unfolded.
		big := folded(200<<10, 3)
		signed := sign(t, "X-Big: "+unfold(big)+"\r\n"+plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "sel", Signer: edKey,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, HeaderKeys: []string{"From", "X-Big"}})
		m := message(t, signed)
		for i := range m.Header {
			if m.Header[i].Name == "X-Big" {
				m.Header[i].Value = big
			}
		}
		want(t, timed(t, c, m), checks.StatusPass, []string{"pass"}, SymAllow)
	})
	t.Run("simple 100KB field folded every 3 octets is refused by the fold cost", func(t *testing.T) {
		r := timed(t, c, withField(t, fakeSig("simple")+plainMessage, 2, "X-Big", folded(100<<10, 3)))
		want(t, r, checks.StatusPermerror, []string{"permerror"}, SymPermfail)
		if !errors.Is(r.Err, ErrHeaderTooLarge) {
			t.Errorf("err = %v", r.Err)
		}
	})
	t.Run("simple 20KB field folded every 20 octets is verified", func(t *testing.T) {
		r := timed(t, c, withField(t, fakeSig("simple")+plainMessage, 2, "X-Big", folded(20<<10, 20)))
		want(t, r, checks.StatusFail, []string{"fail"}, SymReject)
	})
	t.Run("h= with 10000 entries", func(t *testing.T) {
		raw := "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=sel; h=" + strings.Repeat("from:", 10000) + "from; bh=AA==; b=AA==\r\n" +
			strings.Repeat("From: a@example.com\r\n", 5000) + plainMessage
		r := timed(t, c, message(t, raw))
		want(t, r, checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	})
	t.Run("2000 signed fields", func(t *testing.T) {
		raw := "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=sel; h=" + strings.Repeat("from:", 200) + "from; bh=AA==; b=AA==\r\n" +
			strings.Repeat("From: a@example.com\r\n", 2000) + plainMessage
		r := timed(t, c, message(t, raw))
		want(t, r, checks.StatusPermerror, []string{"permerror"}, SymPermfail)
	})
}

// TestFeedEquivalence: filtering and unfolding do not change outcomes.
// Messages with many folded fields, some signed twice (oversigning), under
// every canonicalization, all verify; changing any signed field fails.
func TestFeedEquivalence(t *testing.T) {
	testKeys(t)
	z := &fakeResolver{TXT: map[string][]string{
		"r._domainkey.example.com": {keyRecord(t, edKey.Public())},
		"s._domainkey.example.org": {keyRecord(t, rsa1024.Public())},
	}}
	raw := "Received: from a by b;\r\n\tMon, 1 Jan 2024 00:00:00 +0000\r\n" +
		"From: Joe\r\n  <joe@example.com>\r\n" +
		"To: a@example.net,\r\n\tb@example.net,\r\n  c@example.net\r\n" +
		"Subject: folded\r\n   subject   with  spaces \r\n" +
		"X-Other:  value\r\n" +
		"To: second@example.net\r\n" +
		"\r\nbody\r\n"
	m := sign(t, raw, dkim.SignOptions{Domain: "example.com", Selector: "r", Signer: edKey,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, HeaderKeys: []string{"From", "To", "To", "To", "Subject", "Received"}})
	m = sign(t, m, dkim.SignOptions{Domain: "example.org", Selector: "s", Signer: rsa1024,
		HeaderCanonicalization: dkim.CanonicalizationSimple, HeaderKeys: []string{"From", "Subject", "DKIM-Signature"}})
	c := newCheck(t, DefaultConfig(), z)
	want(t, run(t, c, m), checks.StatusPass, []string{"pass", "pass"}, SymAllow)
	// Refolding the subject breaks the simple signature only.
	refolded := strings.Replace(m, "Subject: folded\r\n   subject", "Subject: folded\r\n subject", 1)
	want(t, run(t, c, refolded), checks.StatusPass, []string{"fail", "pass"}, SymAllow, SymReject)
	// Changing the unsigned-by-both X-Other changes nothing.
	want(t, run(t, c, strings.Replace(m, "X-Other:  value", "X-Other: changed", 1)), checks.StatusPass, []string{"pass", "pass"}, SymAllow)
	// Adding a third To breaks the relaxed signature (it oversigned To).
	added := strings.Replace(m, "X-Other:", "To: third@example.net\r\nX-Other:", 1)
	want(t, run(t, c, added), checks.StatusPass, []string{"pass", "fail"}, SymAllow, SymReject)
}

// TestKeyRecordSizes: key records at and beyond TXT size limits.
func TestKeyRecordSizes(t *testing.T) {
	testKeys(t)
	k4096, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	signed := sign(t, plainMessage, dkim.SignOptions{Domain: "example.com", Selector: "sel", Signer: k4096})
	for name, tc := range map[string]struct {
		rec  string
		want checks.Status
	}{
		// A 4096-bit key record is ~750 octets: several 255-octet strings
		// that the resolver joins.
		"4096-bit key":         {keyRecord(t, k4096.Public()), checks.StatusPass},
		"64 KiB of junk":       {"v=DKIM1; k=rsa; p=" + strings.Repeat("A", 65535), checks.StatusPermerror},
		"64 KiB of separators": {strings.Repeat(";", 65535), checks.StatusPermerror},
		"64 KiB tag names":     {strings.Repeat("a=b;", 16383), checks.StatusPermerror},
	} {
		t.Run(name, func(t *testing.T) {
			z := &fakeResolver{TXT: map[string][]string{"sel._domainkey.example.com": {tc.rec}}}
			start := time.Now()
			r := run(t, newCheck(t, DefaultConfig(), z), signed)
			if r.Status != tc.want {
				t.Errorf("status = %v (%s)", r.Status, r.Reason)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	z := &fakeResolver{}
	if _, err := New(Config{Scores: map[string]float64{"R_DKIM_NOPE": 1}}, z); err == nil {
		t.Error("unknown symbol accepted")
	}
	if _, err := New(Config{MinRSABits: 512}, z); err == nil {
		t.Error("min_rsa_bits 512 accepted")
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Error("nil resolver accepted")
	}
	c, err := New(Config{Scores: map[string]float64{SymAllow: -1}}, z)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.MaxSignatures != 5 || c.cfg.MaxHeaderBytes != 256<<10 || c.scores[SymAllow] != -1 || c.scores[SymReject] != 1 {
		t.Errorf("cfg %+v scores %v", c.cfg, c.scores)
	}
	if c.Name() != "dkim" {
		t.Error(c.Name())
	}
	if !reflect.DeepEqual(DefaultConfig().Scores, defaultScores()) {
		t.Error("DefaultConfig scores")
	}
}

func TestLookupName(t *testing.T) {
	for in, want := range map[string]string{
		"sel._domainkey.Example.com.":    "sel._domainkey.Example.com",
		"s._domainkey.bücher.example":    "s._domainkey.xn--bcher-kva.example",
		"legitimate.com(.attacker.com":   "",
		"a..b":                           "",
		"":                               "",
		strings.Repeat("a", 64) + ".com": "",
	} {
		got, err := lookupName(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("lookupName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// mainAuthResult returns the first passing dkim= result, else the first
// one.
func mainAuthResult(r checks.Result) (*authres.DKIMResult, bool) {
	var first *authres.DKIMResult
	for _, a := range r.AuthResults {
		d, ok := a.(*authres.DKIMResult)
		if !ok {
			return nil, false
		}
		if first == nil {
			first = d
		}
		if d.Value == authres.ResultPass {
			return d, true
		}
	}
	if first == nil {
		return &authres.DKIMResult{}, false
	}
	return first, true
}

// max_rsa_bits defaults to 8192 and may not be under min_rsa_bits. (The
// refusal itself is exercised by rspamd's 16384- and 32768-bit key cases
// in cmd/chainmail/rspamd_test.go.)
func TestOversizedKeyRefused(t *testing.T) {
	c := newCheck(t, DefaultConfig(), &fakeResolver{})
	if c.cfg.MaxRSABits != 8192 {
		t.Fatalf("default max_rsa_bits %d", c.cfg.MaxRSABits)
	}
	cfg := DefaultConfig()
	cfg.MaxRSABits = 512
	if _, err := New(cfg, &fakeResolver{}); err == nil {
		t.Error("max_rsa_bits under min_rsa_bits accepted")
	}
}
