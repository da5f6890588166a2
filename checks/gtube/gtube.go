// Package gtube is the gtube check: the Generic Test for Unsolicited Bulk
// Email string marks a message as spam with a decisive high score, as
// SpamAssassin and rspamd do, so a postmaster can test the whole path from
// MTA to verdict with a harmless message.
//
// The string is looked for in the body as sent and, for MIME messages, in
// every text part after transfer decoding (base64, quoted-printable), so
// an encoded test message is still found.
package gtube

import (
	"bytes"
	"context"
	"io"
	"strings"

	"github.com/emersion/go-message"

	"chainmail/checks"
)

// String is the GTUBE test string.
const String = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// Symbol is the symbol of a GTUBE hit.
const Symbol = "GTUBE"

// Config is the gtube check's configuration.
type Config struct {
	// Score of a hit (default 1000, as SpamAssassin).
	Score float64 `yaml:"score"`
	// MaxScan bounds the bytes searched per message (default 10 MiB).
	MaxScan int64 `yaml:"max_scan"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Score: 1000, MaxScan: 10 << 20} }

// Check is the gtube check.
type Check struct{ cfg Config }

// New returns a gtube check.
func New(cfg Config) (*Check, error) {
	if cfg.MaxScan <= 0 {
		cfg.MaxScan = DefaultConfig().MaxScan
	}
	return &Check{cfg: cfg}, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return "gtube" }

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	found, where := c.find(m)
	if !found {
		return checks.Result{Status: checks.StatusClean}
	}
	return checks.Result{
		Status:  checks.StatusSpam,
		Class:   checks.ClassSpam,
		Symbols: []checks.Symbol{{Name: Symbol, Score: c.cfg.Score, Detail: where}},
		Reason:  "GTUBE test string found in " + where,
	}
}

func (c *Check) find(m *checks.Message) (bool, string) {
	if contains(io.LimitReader(m.BodyReader(), c.cfg.MaxScan)) {
		return true, "body"
	}
	// Transfer-encoded text parts. A single-part message whose body is not
	// transfer-encoded was fully searched above: skip the MIME walk.
	ct := strings.ToLower(m.Get("Content-Type"))
	cte := strings.ToLower(strings.TrimSpace(m.Get("Content-Transfer-Encoding")))
	if !strings.HasPrefix(ct, "multipart/") && !strings.HasPrefix(ct, "message/") &&
		cte != "base64" && cte != "quoted-printable" {
		return false, ""
	}
	e, err := message.Read(io.MultiReader(bytes.NewReader(m.RawHeader()), io.LimitReader(m.BodyReader(), c.cfg.MaxScan)))
	if e == nil {
		return false, ""
	}
	_ = err // go-message returns the entity with an unknown-charset error: keep it
	found := false
	var walk func(e *message.Entity, depth int)
	walk = func(e *message.Entity, depth int) {
		if found || depth > 20 {
			return
		}
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if p == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
					return
				}
				walk(p, depth+1)
				if found {
					return
				}
			}
		}
		t, _, _ := e.Header.ContentType()
		if t == "" || strings.HasPrefix(t, "text/") {
			found = contains(e.Body)
		}
	}
	walk(e, 0)
	if found {
		return true, "decoded text part"
	}
	return false, ""
}

// contains reports whether r holds String, streaming with an overlap so a
// hit across read boundaries is found.
func contains(r io.Reader) bool {
	needle := []byte(String)
	buf := make([]byte, 32*1024+len(needle))
	keep := 0
	for {
		n, err := r.Read(buf[keep:])
		if n > 0 {
			window := buf[:keep+n]
			if bytes.Contains(window, needle) {
				return true
			}
			keep = len(needle) - 1
			if keep > len(window) {
				keep = len(window)
			}
			copy(buf, window[len(window)-keep:])
		}
		if err != nil {
			return false
		}
	}
}
