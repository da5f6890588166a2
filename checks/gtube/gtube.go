// Package gtube is the gtube check: the Generic Test for Unsolicited Bulk
// Email string marks a message as spam with a decisive high score, as
// SpamAssassin and rspamd do, so a postmaster can test the whole path from
// MTA to verdict with a harmless message.
//
// The string is looked for in the body as sent and, for MIME messages, in
// every text part after transfer decoding (base64, quoted-printable), so
// an encoded test message is still found. The MIME parts are read by the
// attachments package's walk, within the limits (parts, depth) every check
// shares; a message past them is reported "unscannable", never cut short
// silently.
package gtube

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"chainmail/attachments"
	"chainmail/checks"
)

// String is the GTUBE test string.
const String = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// Symbol is the symbol of a GTUBE hit.
const Symbol = "GTUBE"

// SymbolUnscannable (score 0) marks a message whose MIME structure goes
// past the shared limits: the parts past them were not searched.
const SymbolUnscannable = "GTUBE_UNSCANNABLE"

// StatusUnscannable is the status of a message not searched completely.
const StatusUnscannable checks.Status = "unscannable"

// Config is the gtube check's configuration.
type Config struct {
	// Score of a hit (default 1000, as SpamAssassin).
	Score float64 `yaml:"score"`
	// MaxScan bounds the bytes searched per message (default 10 MiB).
	MaxScan checks.Size `yaml:"max_scan"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Score: 1000, MaxScan: 10 << 20} }

// Check is the gtube check.
type Check struct {
	cfg  Config
	walk attachments.WalkOptions
}

// New returns a gtube check whose MIME walk obeys walk (the limits every
// check shares; zero values are the attachments package's defaults).
func New(cfg Config, walk attachments.WalkOptions) (*Check, error) {
	if cfg.MaxScan <= 0 {
		cfg.MaxScan = DefaultConfig().MaxScan
	}
	return &Check{cfg: cfg, walk: walk}, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return "gtube" }

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	found, where, cut := c.find(m)
	switch {
	case found:
		return checks.Result{
			Status:  checks.StatusSpam,
			Class:   checks.ClassSpam,
			Symbols: []checks.Symbol{{Name: Symbol, Score: c.cfg.Score, Detail: where}},
			Reason:  "GTUBE test string found in " + where,
		}
	case cut != "":
		return checks.Result{
			Status:  StatusUnscannable,
			Symbols: []checks.Symbol{{Name: SymbolUnscannable, Detail: cut}},
			Reason:  "not searched completely: " + cut,
		}
	}
	return checks.Result{Status: checks.StatusClean}
}

// find searches m; cut says what limit stopped the search of the parts.
func (c *Check) find(m *checks.Message) (found bool, where, cut string) {
	if contains(io.LimitReader(m.BodyReader(), int64(c.cfg.MaxScan))) {
		return true, "body", ""
	}
	// Transfer-encoded text parts. A single-part message whose body is not
	// transfer-encoded was fully searched above: skip the MIME walk (unless
	// its header has bare CR line ends, which the walk reads as line ends
	// and which may hide a Content-Type).
	header := m.RawHeader()
	ct := strings.ToLower(m.Get("Content-Type"))
	cte := strings.ToLower(strings.TrimSpace(m.Get("Content-Transfer-Encoding")))
	if !strings.HasPrefix(ct, "multipart/") && !strings.HasPrefix(ct, "message/") &&
		cte != "base64" && cte != "quoted-printable" && !hasBareCR(header) {
		return false, "", ""
	}
	src, n := attachments.Message(header, m.Body)
	tree := attachments.Walk(src, n, c.walk)
	budget := int64(c.cfg.MaxScan)
	for _, e := range tree.Root.Leaves() {
		if budget <= 0 {
			break
		}
		if !strings.HasPrefix(e.MediaType, "text/") || e.RawSize() == 0 {
			continue
		}
		lr := &io.LimitedReader{R: e.Open(), N: budget}
		if contains(lr) {
			return true, "decoded text part", ""
		}
		budget = lr.N
	}
	if tree.Truncated {
		for _, p := range tree.Problems {
			if p.Unreadable {
				return false, "", fmt.Sprintf("%s (part %s)", p.Detail, p.Path)
			}
		}
		return false, "", "MIME structure past the limits"
	}
	return false, "", ""
}

// hasBareCR reports whether b holds a CR that no LF follows.
func hasBareCR(b []byte) bool {
	for i := bytes.IndexByte(b, '\r'); i >= 0; {
		if i+1 >= len(b) || b[i+1] != '\n' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\r')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
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
