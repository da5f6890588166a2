// Package dkim is chainmail's DKIM check (name "dkim"): it verifies the
// DKIM-Signature header fields of a message (RFC 6376) and reports one
// outcome per signature, an aggregate status and rspamd-style symbols. It
// reports; it never decides what happens to the message.
//
// # Mechanism
//
// The cryptography and the canonicalization are go-msgauth's
// (github.com/emersion/go-msgauth/dkim.VerifyWithOptions). Around it this
// package:
//
//   - parses every DKIM-Signature field itself (RFC 6376 §3.2 tag-list), for
//     the facts (d=, s=, a= even of signatures go-msgauth cannot read), to
//     refuse a d= or s= that is not a domain name before it reaches the
//     resolver, and to find l= tags;
//   - verifies at most Config.MaxSignatures signatures, the topmost first
//     (the most recently added); the rest are listed as "neutral" with the
//     DKIM_TOO_MANY_SIGS symbol (RFC 6376 §6.1 lets a verifier limit the
//     signatures it checks);
//   - hands go-msgauth only the header fields a verified signature can
//     use — the DKIM-Signature fields and the fields named in their h= —
//     and unfolds those that only relaxed-canonicalized signatures cover.
//     This is byte-for-byte neutral for the verification (the picker of
//     RFC 6376 §5.4.2 only looks at fields named in h=, and relaxed header
//     canonicalization, §3.4.2, unfolds anyway) and it matters:
//     go-msgauth reads a folded field by appending each continuation line
//     to a string, which is quadratic in the number of lines (a 256 KiB
//     field folded every 3 octets takes seconds). What is still fed folded
//     is bounded by Config.MaxHeaderBytes and an internal cost limit;
//     beyond either every verified signature is permerror;
//   - passes a LookupTXT bound to the check's context whose errors keep
//     the RFC 6376 §6.1.2 classes apart: NXDOMAIN/NODATA is permanent
//     ("no key for signature", PERMFAIL), every other failure (timeout,
//     SERVFAIL, refused, a cancelled context) is temporary ("key
//     unavailable", TEMPFAIL);
//   - applies RFC 8301: rsa-sha1 signatures (§3.1) and RSA keys under 1024
//     bits (§3.2, or Config.MinRSABits) are never a pass. go-msgauth v0.7.0
//     already refuses both; the check enforces them again on its own so a
//     library change cannot turn them into passes. They are reported with
//     the RFC 8601 §2.7.1 result "policy";
//   - treats l= (body length, RFC 6376 §3.5) as a finding: go-msgauth
//     refuses every signature carrying l= without verifying it (§8.2
//     explains the risk of unsigned appended content), so such a signature
//     is "policy", never a pass of the whole content; when the l= count
//     leaves part of the canonicalized body unsigned the DKIM_UNSIGNED_BODY
//     symbol says how many octets.
//
// # Results
//
// Per signature (Result.Auth, an auth.DKIM with one Signature each; for
// rules the Facts "results", statuses as strings): pass, fail (the
// signature or body hash does not verify), policy (RFC 8301, l=),
// temperror, permerror (malformed signature, missing or bad key, expired,
// ...), neutral (not verified: over the cap). The Result.Status is pass
// when any signature passed, else temperror when any signature's key was
// unavailable (a retry may pass), else fail, else permerror (policy
// counts as permerror), and none when the message carries no signature.
// DMARC takes the auth.DKIM; for rules, Facts "domains_pass" lists the
// d= of passing signatures, "domains" every d=, "domains_temperror" the
// d= whose key lookup failed temporarily (DMARC turns a fail into
// temperror when one of them is aligned).
package dkim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"chainmail/checks"
	"chainmail/checks/auth"
	"chainmail/checks/dns"

	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
)

// Name is the check's name in configuration, logs and rules.
const Name = "dkim"

// Symbols.
const (
	SymAllow        = "R_DKIM_ALLOW"
	SymReject       = "R_DKIM_REJECT"
	SymTempfail     = "R_DKIM_TEMPFAIL"
	SymPermfail     = "R_DKIM_PERMFAIL"
	SymNA           = "R_DKIM_NA"
	SymUnsignedBody = "DKIM_UNSIGNED_BODY"
	SymTooMany      = "DKIM_TOO_MANY_SIGS"
)

// Per-signature statuses beyond the shared ones: RFC 8601 §2.7.1 "policy"
// (signed, but the signature is not acceptable: RFC 8301 algorithms and
// key sizes, l=).
const StatusPolicy = auth.StatusPolicy

// Errors carried in Result.Err.
var (
	// ErrHeaderTooLarge: the header fields a signature covers exceed
	// Config.MaxHeaderBytes or are folded too heavily to verify.
	ErrHeaderTooLarge = errors.New("dkim: header too large to verify")
	// ErrTooManySignatures: more DKIM-Signature fields than
	// Config.MaxSignatures; the extra ones were not verified.
	ErrTooManySignatures = errors.New("dkim: too many signatures")
)

// Limits that are not configuration: they bound the work go-msgauth does
// on hostile input and are far above what real signers produce.
const (
	// maxFoldCost bounds the octets go-msgauth copies while joining the
	// continuation lines of the fields fed to it folded (about lines ×
	// size / 2 per field): 64 MiB is ~40 ms here. A 64 KiB To: folded
	// over 1000 lines costs 32 MiB.
	maxFoldCost = 64 << 20
	// maxSignedFields bounds the h= list of one signature: go-msgauth
	// scans the whole header once per h= entry.
	maxSignedFields = 256
	// maxFedFields bounds the number of header fields fed to go-msgauth,
	// for the same reason.
	maxFedFields = 1024
)

// Config configures the check.
type Config struct {
	// MaxSignatures is how many DKIM-Signature fields are verified,
	// topmost first. Default 5.
	MaxSignatures int `yaml:"max_signatures"`
	// MaxHeaderBytes bounds the header handed to the verifier: the
	// DKIM-Signature fields and the fields they sign, as fed (fields that
	// only relaxed signatures cover are fed unfolded). Beyond it every
	// verified signature is permerror ("header too large"). Default
	// 256 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MinRSABits is the smallest RSA key accepted. RFC 8301 §3.2 sets
	// 1024; smaller values are refused. Default 1024.
	MinRSABits int `yaml:"min_rsa_bits"`
	// MaxRSABits is the largest RSA key verified: RFC 6376 sets no upper
	// bound, but one verification with a 16384-bit key costs milliseconds
	// of CPU, so a sender could make every message expensive. A larger
	// key is refused before any RSA operation ("policy", permerror
	// overall, as rspamd does). Default 8192.
	MaxRSABits int `yaml:"max_rsa_bits"`
	// Scores maps symbol names to scores. Symbols not listed keep their
	// default: R_DKIM_ALLOW -0.20, R_DKIM_REJECT 1.00, R_DKIM_TEMPFAIL
	// 0.00, R_DKIM_PERMFAIL 0.00, R_DKIM_NA 0.00, DKIM_UNSIGNED_BODY 0.50,
	// DKIM_TOO_MANY_SIGS 0.00.
	// Not read from configuration: the chain entry's scores: overrides
	// a symbol's score there.
	Scores map[string]float64 `yaml:"-"`
}

func defaultScores() map[string]float64 {
	return map[string]float64{
		SymAllow:        -0.20,
		SymReject:       1.00,
		SymTempfail:     0,
		SymPermfail:     0,
		SymNA:           0,
		SymUnsignedBody: 0.50,
		SymTooMany:      0,
	}
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxSignatures:  5,
		MaxHeaderBytes: 256 << 10,
		MinRSABits:     1024,
		MaxRSABits:     8192,
		Scores:         defaultScores(),
	}
}

// Check verifies DKIM signatures. It is safe for concurrent use.
type Check struct {
	cfg    Config
	scores map[string]float64
	r      dns.Resolver
}

// New returns a check. Zero limits take their defaults; unknown symbol
// names and an RSA floor under 1024 bits are errors.
func New(cfg Config, r dns.Resolver) (*Check, error) {
	if r == nil {
		return nil, errors.New("dkim: no resolver")
	}
	def := DefaultConfig()
	if cfg.MaxSignatures < 0 || cfg.MaxHeaderBytes < 0 {
		return nil, errors.New("dkim: max_signatures and max_header_bytes must not be negative")
	}
	if cfg.MaxSignatures == 0 {
		cfg.MaxSignatures = def.MaxSignatures
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if cfg.MinRSABits == 0 {
		cfg.MinRSABits = def.MinRSABits
	}
	if cfg.MaxRSABits == 0 {
		cfg.MaxRSABits = def.MaxRSABits
	}
	if cfg.MaxRSABits < cfg.MinRSABits {
		return nil, fmt.Errorf("dkim: max_rsa_bits %d is below min_rsa_bits %d", cfg.MaxRSABits, cfg.MinRSABits)
	}
	if cfg.MinRSABits < 1024 {
		return nil, fmt.Errorf("dkim: min_rsa_bits %d is below the 1024 bits RFC 8301 §3.2 requires", cfg.MinRSABits)
	}
	scores := defaultScores()
	for k, v := range cfg.Scores {
		if _, ok := scores[k]; !ok {
			return nil, fmt.Errorf("dkim: unknown symbol %q in scores", k)
		}
		scores[k] = v
	}
	return &Check{cfg: cfg, scores: scores, r: r}, nil
}

// Name returns "dkim".
func (c *Check) Name() string { return Name }

// Signature is the outcome for one DKIM-Signature field, in header order.
// Rules see it as dkim.results[i].domain etc.
type Signature = auth.Signature

// factSignature is a Signature as policy rules see it (dkim.results):
// the status a plain string, which expr compares with string literals.
type factSignature struct {
	Domain        string `json:"domain" expr:"domain"`
	Selector      string `json:"selector" expr:"selector"`
	Algorithm     string `json:"algorithm,omitempty" expr:"algorithm"`
	Identifier    string `json:"identifier,omitempty" expr:"identifier"`
	Status        string `json:"status" expr:"status"`
	Reason        string `json:"reason,omitempty" expr:"reason"`
	KeyBits       int    `json:"key_bits,omitempty" expr:"key_bits"`
	UnsignedBytes int64  `json:"unsigned_bytes,omitempty" expr:"unsigned_bytes"`
}

// Check verifies the signatures of m. prior is not used.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	res := checks.Result{Check: Name}

	var fields []*sigField
	for i, f := range m.Header {
		if isSignatureField(f.Name) {
			fields = append(fields, parseSignature(i, f.Value))
		}
	}
	if len(fields) == 0 {
		res.Status = checks.StatusNone
		res.Reason = "no DKIM signature"
		c.addSymbol(&res, SymNA, "")
		res.Facts = facts(nil)
		return res
	}

	sigs := make([]Signature, len(fields))
	for i, f := range fields {
		sigs[i] = Signature{Domain: f.domain, Selector: f.selector, Algorithm: f.algorithm, Identifier: f.identifier}
	}
	n := min(len(fields), c.cfg.MaxSignatures)
	for i := n; i < len(fields); i++ {
		sigs[i].Status = checks.StatusNeutral
		sigs[i].Reason = fmt.Sprintf("not verified: more than %d signatures", c.cfg.MaxSignatures)
	}

	err := c.verify(ctx, m, fields[:n], sigs[:n])
	if err != nil && !errors.Is(err, ErrHeaderTooLarge) && ctx.Err() == nil {
		// The body could not be read: an internal failure, not a finding.
		res.Status = checks.StatusError
		res.Err = err
		res.Reason = err.Error()
		res.Auth = auth.DKIM{Status: res.Status, Signatures: sigs}
		res.Facts = facts(sigs)
		return res
	}
	res.Err = err
	if len(fields) > n && res.Err == nil {
		res.Err = ErrTooManySignatures
	}
	c.summarise(&res, sigs, len(fields) > n)
	return res
}

func isSignatureField(name string) bool {
	return strings.EqualFold(strings.TrimSpace(name), "DKIM-Signature")
}

// verify runs go-msgauth over the first len(fields) signatures and fills
// sigs. It returns ErrHeaderTooLarge (every signature then permerror), the
// context's error (every signature not passed then temperror) or a body
// read error.
func (c *Check) verify(ctx context.Context, m *checks.Message, fields []*sigField, sigs []Signature) error {
	header, err := c.feedHeader(m, fields)
	if err != nil {
		for i := range sigs {
			sigs[i].Status = checks.StatusPermerror
			sigs[i].Reason = err.Error()
		}
		return err
	}

	keys := &keyLog{records: map[string][]string{}}
	lookup := func(name string) ([]string, error) { return c.lookupTXT(ctx, keys, name) }
	body := &ctxReader{ctx: ctx, r: io.MultiReader(bytes.NewReader(header), m.BodyReader())}
	verifs, verr := dkim.VerifyWithOptions(body, &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: len(fields)})
	if verr != nil && !errors.Is(verr, dkim.ErrTooManySignatures) {
		// Only an I/O error gets here: the header we feed is well formed.
		if body.err != nil {
			verr = body.err
		}
		for i := range sigs {
			sigs[i].Status = checks.StatusTemperror
			sigs[i].Reason = "verification interrupted: " + verr.Error()
		}
		return verr
	}
	if len(verifs) != len(fields) {
		// Cannot happen: we feed exactly these signatures first.
		for i := range sigs {
			sigs[i].Status = checks.StatusPermerror
			sigs[i].Reason = "internal: signature count mismatch"
		}
		return fmt.Errorf("dkim: verifier returned %d results for %d signatures", len(verifs), len(fields))
	}
	for i, f := range fields {
		c.classify(m, f, verifs[i], keys, &sigs[i])
	}
	if body.err != nil {
		// The context ended or the spool failed while go-msgauth read the
		// body: what it saw was truncated, so nothing but a pass is known.
		for i := range sigs {
			if sigs[i].Status != checks.StatusPass {
				sigs[i].Status = checks.StatusTemperror
				sigs[i].Reason = "verification interrupted: " + body.err.Error()
			}
		}
		return body.err
	}
	return nil
}

// classify turns go-msgauth's verdict on one signature into ours.
func (c *Check) classify(m *checks.Message, f *sigField, v *dkim.Verification, keys *keyLog, s *Signature) {
	if f.tags != nil {
		s.KeyBits = rsaKeyBits(keys.single(f.selector + "._domainkey." + f.domain))
	}
	if f.hasLength && f.err == nil {
		relaxed := f.bodyCanon == canonRelaxed
		if n, err := canonicalBodyLength(m.BodyReader(), relaxed); err == nil && n > f.length {
			s.UnsignedBytes = n - f.length
		}
	}
	verr := v.Err
	switch {
	case f.err != nil:
		// Our reading of the field is stricter than go-msgauth's in a few
		// places (tag names, d=/s= syntax): a field we cannot read is
		// never a pass, whatever go-msgauth made of it.
		s.Status, s.Reason = checks.StatusPermerror, trimPrefix(f.err.Error())
	case f.algorithm == "rsa-sha1":
		s.Status, s.Reason = StatusPolicy, "rsa-sha1 is not accepted (RFC 8301 §3.1)"
	case s.KeyBits > c.cfg.MaxRSABits:
		s.Status, s.Reason = StatusPolicy, fmt.Sprintf("RSA key of %d bits is over %d (resource limit)", s.KeyBits, c.cfg.MaxRSABits)
	case s.KeyBits > 0 && s.KeyBits < c.cfg.MinRSABits:
		s.Status, s.Reason = StatusPolicy, fmt.Sprintf("RSA key of %d bits is under %d (RFC 8301 §3.2)", s.KeyBits, c.cfg.MinRSABits)
	case verr == nil:
		s.Status = checks.StatusPass
	case dkim.IsTempFail(verr):
		s.Status, s.Reason = checks.StatusTemperror, trimPrefix(verr.Error())
	case dkim.IsPermFail(verr):
		s.Status, s.Reason = checks.StatusPermerror, trimPrefix(verr.Error())
	case f.hasLength:
		// go-msgauth refuses l= (before hashing) with its only non-perm,
		// non-temp error: the signature was not verified at all.
		s.Status = StatusPolicy
		s.Reason = fmt.Sprintf("body length tag l=%d is not accepted", f.length)
		if s.UnsignedBytes > 0 {
			s.Reason += fmt.Sprintf("; %d body octets are unsigned", s.UnsignedBytes)
		}
	default:
		s.Status, s.Reason = checks.StatusFail, trimPrefix(verr.Error())
	}
}

func trimPrefix(s string) string { return strings.TrimPrefix(s, "dkim: ") }

// feedHeader builds the header block handed to go-msgauth: the first
// len(fields) DKIM-Signature fields, further DKIM-Signature fields only
// when a verified signature signs "DKIM-Signature", and the fields named
// in the h= of a verified signature, in their original order. A field no
// simple-canonicalized signature covers is unfolded (RFC 6376 §3.4.2:
// relaxed canonicalization unfolds anyway), which keeps go-msgauth's
// header reading linear.
func (c *Check) feedHeader(m *checks.Message, fields []*sigField) ([]byte, error) {
	covered := map[string]bool{}
	simple := map[string]bool{}
	own := map[int]bool{} // header index → a verified signature's field
	raw := map[int]bool{} // header index → keep folded
	for _, f := range fields {
		own[f.index] = true
		if f.err != nil {
			continue
		}
		if len(f.headers) > maxSignedFields {
			return nil, fmt.Errorf("%w: h= of d=%s lists %d fields (limit %d)", ErrHeaderTooLarge, f.domain, len(f.headers), maxSignedFields)
		}
		simpleSig := f.headerCanon != canonRelaxed
		if simpleSig {
			raw[f.index] = true
		}
		for _, h := range f.headers {
			covered[h] = true
			if simpleSig {
				simple[h] = true
			}
		}
	}

	var kept []checks.HeaderField
	size, cost := 0, 0
	for i, hf := range m.Header {
		name := strings.TrimSpace(hf.Name)
		lname := strings.ToLower(name)
		keep, folded := false, false
		switch {
		case isSignatureField(name):
			keep = own[i] || covered["dkim-signature"]
			folded = raw[i] || simple["dkim-signature"]
		case !isASCII(name):
			// go-msgauth matches names with strings.EqualFold; keep what
			// a lower-cased map might miss. Feeding extra fields never
			// changes a verification.
			keep, folded = true, true
		default:
			keep, folded = covered[lname], simple[lname]
		}
		if !keep {
			continue
		}
		v := toCRLF(hf.Value)
		if !folded {
			v = unfold(v)
		} else if lines := strings.Count(v, "\n") + 1; lines > 1 {
			cost += lines * (len(name) + len(v) + 4) / 2
		}
		kept = append(kept, checks.HeaderField{Name: hf.Name, Value: v})
		size += len(hf.Name) + len(v) + 4
	}
	if len(kept) > maxFedFields {
		return nil, fmt.Errorf("%w: %d signed header fields (limit %d)", ErrHeaderTooLarge, len(kept), maxFedFields)
	}
	if size > c.cfg.MaxHeaderBytes {
		return nil, fmt.Errorf("%w: %d octets of signed header (limit %d)", ErrHeaderTooLarge, size, c.cfg.MaxHeaderBytes)
	}
	if cost > maxFoldCost {
		return nil, fmt.Errorf("%w: signed header fields folded over too many lines", ErrHeaderTooLarge)
	}
	fed := &checks.Message{Header: kept}
	return fed.RawHeader(), nil
}

// toCRLF makes every line end CRLF, as Message.RawHeader does.
func toCRLF(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

// unfold removes CRLF before white space (RFC 5322 §2.2.3). Under relaxed
// header canonicalization the result is identical.
func unfold(s string) string {
	if !strings.Contains(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n ", " ")
	return strings.ReplaceAll(s, "\r\n\t", "\t")
}

// ctxReader stops at the end of the context or at a read error. It reports
// both as EOF to go-msgauth — which, with several signatures, leaks its
// goroutines when the reader fails — and keeps the error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, io.EOF
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, io.EOF
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
		err = io.EOF
	}
	return n, err
}

// keyLog remembers the key records go-msgauth fetched, for the RFC 8301
// key-size check. go-msgauth looks keys up from several goroutines.
type keyLog struct {
	mu      sync.Mutex
	records map[string][]string
}

func (k *keyLog) add(name string, txts []string) {
	k.mu.Lock()
	k.records[strings.ToLower(name)] = txts
	k.mu.Unlock()
}

// single returns the record fetched for name when there was exactly one.
func (k *keyLog) single(name string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r := k.records[strings.ToLower(name)]; len(r) == 1 {
		return r[0]
	}
	return ""
}

// lookupTXT is the LookupTXT given to go-msgauth. go-msgauth treats an
// error that is a net.Error with Temporary() as TEMPFAIL and any other as
// PERMFAIL, so the errors are reshaped to say exactly what RFC 6376 §6.1.2
// asks: only a name that does not exist (or has no TXT record) is
// permanent.
func (c *Check) lookupTXT(ctx context.Context, keys *keyLog, name string) ([]string, error) {
	q, err := lookupName(name)
	if err != nil {
		return nil, &net.DNSError{Err: "invalid key name", Name: clip(name, 100)}
	}
	txts, err := c.r.LookupTXT(ctx, q)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound && !de.IsTimeout && !de.IsTemporary {
			return nil, &net.DNSError{Err: "no key record", Name: q, IsNotFound: true}
		}
		msg := err.Error()
		if de != nil {
			msg = de.Err
		}
		return nil, &net.DNSError{Err: msg, Name: q, IsTemporary: true}
	}
	keys.add(name, txts)
	for _, t := range txts {
		if bits := rsaKeyBits(t); bits > c.cfg.MaxRSABits {
			// Refused before go-msgauth spends CPU on it: a permanent
			// error, classified as "policy" below.
			return nil, &net.DNSError{Err: fmt.Sprintf("RSA key of %d bits is over %d", bits, c.cfg.MaxRSABits), Name: q}
		}
	}
	return txts, nil
}

// summarise sets the aggregate status, symbols, facts and A-R result.
func (c *Check) summarise(res *checks.Result, sigs []Signature, tooMany bool) {
	var pass, temp, fail, perm []string
	unsigned := []string{}
	for _, s := range sigs {
		label := s.Domain
		if label == "" {
			label = "?"
		}
		if s.Selector != "" {
			label += ":s=" + s.Selector
		}
		switch s.Status {
		case checks.StatusPass:
			pass = append(pass, label)
		case checks.StatusTemperror:
			temp = append(temp, label)
		case checks.StatusFail:
			fail = append(fail, label)
		case checks.StatusPermerror, StatusPolicy:
			perm = append(perm, label)
		}
		if s.UnsignedBytes > 0 {
			unsigned = append(unsigned, fmt.Sprintf("%s:%d", label, s.UnsignedBytes))
		}
	}
	switch {
	case len(pass) > 0:
		res.Status = checks.StatusPass
	case len(temp) > 0:
		res.Status = checks.StatusTemperror
	case len(fail) > 0:
		res.Status = checks.StatusFail
	default:
		res.Status = checks.StatusPermerror
	}
	for _, g := range []struct {
		sym    string
		labels []string
	}{{SymAllow, pass}, {SymReject, fail}, {SymTempfail, temp}, {SymPermfail, perm}, {SymUnsignedBody, unsigned}} {
		if len(g.labels) > 0 {
			c.addSymbol(res, g.sym, strings.Join(g.labels, ","))
		}
	}
	if tooMany {
		c.addSymbol(res, SymTooMany, fmt.Sprintf("%d signatures, %d verified", len(sigs), c.cfg.MaxSignatures))
	}

	res.Reason = reason(sigs)
	d := auth.DKIM{Status: res.Status, Signatures: sigs}
	res.Auth = d
	res.Facts = facts(sigs)
	res.Facts["domains_pass"] = d.Domains(checks.StatusPass)
	res.Facts["domains_temperror"] = d.Domains(checks.StatusTemperror)
	res.Facts["domains"] = d.Domains()
	// One dkim= result per signature, in header order (RFC 8601 §2.7.1).
	res.AuthResults = AuthResults(sigs)
}

func (c *Check) addSymbol(res *checks.Result, name, detail string) {
	sc := c.scores[name]
	res.Symbols = append(res.Symbols, checks.Symbol{Name: name, Score: sc, Detail: detail})
	res.Score += sc
}

func facts(sigs []Signature) map[string]any {
	view := make([]factSignature, 0, len(sigs))
	for _, s := range sigs {
		view = append(view, factSignature{Domain: s.Domain, Selector: s.Selector, Algorithm: s.Algorithm, Identifier: s.Identifier,
			Status: string(s.Status), Reason: s.Reason, KeyBits: s.KeyBits, UnsignedBytes: s.UnsignedBytes})
	}
	return map[string]any{
		"results":           view,
		"signatures":        len(sigs),
		"domains":           []string{},
		"domains_pass":      []string{},
		"domains_temperror": []string{},
	}
}

// reason is a one-line summary: each signature's domain and status, the
// reason of the first that did not pass.
func reason(sigs []Signature) string {
	var parts []string
	why := ""
	for i, s := range sigs {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("+%d more", len(sigs)-3))
			break
		}
		d := s.Domain
		if d == "" {
			d = "?"
		}
		parts = append(parts, d+"="+string(s.Status))
		if why == "" && s.Status != checks.StatusPass && s.Reason != "" {
			why = s.Reason
		}
	}
	out := strings.Join(parts, " ")
	if why != "" {
		out += " (" + clip(why, 120) + ")"
	}
	return out
}

// AuthResults returns one RFC 8601 dkim result per signature, in header
// order. Result.AuthResults holds only one (the first pass, else the
// first); the composition root can use this to add them all once results
// can carry several.
func AuthResults(sigs []Signature) []authres.Result {
	out := make([]authres.Result, 0, len(sigs))
	for _, s := range sigs {
		r := &authres.DKIMResult{Value: authres.ResultValue(s.Status), Domain: s.Domain, Identifier: s.Identifier}
		if s.Status != checks.StatusPass {
			r.Reason = s.Reason
		}
		out = append(out, r)
	}
	return out
}
