// Package spamassassin is the spamassassin check: it hands each message to
// a running spamd (Apache SpamAssassin's daemon) and reports SpamAssassin's
// own verdict, score and rule hits.
//
// The protocol is spamd's (SPAMC/1.5, see spamd(8) and the PROTOCOL file
// of the SpamAssassin sources): one request per connection, a request
// line "REPORT SPAMC/1.5", header lines "Content-length: N" and
// optionally "User: NAME", an empty line and the message. spamd answers
// "SPAMD/1.1 0 EX_OK", header lines among which "Spam: True ; 6.5 / 5.0"
// (verdict ; score / required score), an empty line and the report. A
// code other than 0 is one of the sysexits.h EX_* codes (EX_PROTOCOL 76,
// EX_UNAVAILABLE 69, EX_TEMPFAIL 75, …): spamd could not judge.
//
// REPORT is chosen because it is the one command whose answer carries the
// total, the required score and every rule hit with its score: the
// report's table (" pts rule name  description") lists them, a long
// description folded onto indented lines. SYMBOLS gives the names
// without the scores, CHECK the total without the rules.
//
// Result: status spam or ham as SpamAssassin decided (Class accordingly,
// so a decisive setting works), one symbol per rule hit named and scored
// as SpamAssassin names and scores it (GTUBE 1000, BAYES_50 0.8, …), and
// SpamAssassin's total as the check's score: the report prints each rule
// at 0.1 point, so what its table does not itemise (the rounding, or a
// local report template without the table) is the symbol Rest. Facts for
// rules: spamassassin.score, .required, .rules, .spam, .truncated.
//
// Size: a message larger than max_scan_size is scanned truncated (its
// first max_scan_size bytes, cut at a line end), as MailScanner does with
// "Max SpamAssassin Size": padding a spam past the limit then does not
// take it past SpamAssassin, and the cost of one scan stays bounded.
//
// Failure policy: spamd not reachable, not answering within the timeout,
// answering an EX_* error or something that is not its protocol gives
// temperror — never spam, never ham — and scores nothing.
package spamassassin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"chainmail/checks"
)

// Engine is the name of the scanner in the verdict line when this check
// scored the message ("is spam, SpamAssassin (not cached, …").
const Engine = "SpamAssassin"

// Rest is the symbol of the part of SpamAssassin's total that its report
// does not itemise (each rule is printed rounded to 0.1 point).
const Rest = "SPAMASSASSIN_REST"

// Config is the spamassassin check's configuration.
type Config struct {
	// Address of spamd: HOST:PORT (tcp:HOST:PORT is read the same way) or
	// unix:/path/to/socket.
	Address string `yaml:"address"`
	// User is sent as spamd's "User:" header (whose preferences spamd
	// uses); "" sends none, and spamd uses its default user.
	User string `yaml:"user"`
	// Timeout bounds one scan, connection included (default 30s). Keep it
	// below the check's chain timeout.
	Timeout checks.Duration `yaml:"timeout"`
	// MaxScanSize is the most of a message sent to spamd (default 200KiB,
	// MailScanner's Max SpamAssassin Size); a bigger message is scanned
	// truncated.
	MaxScanSize checks.Size `yaml:"max_scan_size"`
}

// DefaultConfig returns the defaults: spamd on its usual port.
func DefaultConfig() Config {
	return Config{
		Address:     "127.0.0.1:783",
		Timeout:     checks.Duration(30 * time.Second),
		MaxScanSize: 200 << 10,
	}
}

// Check is the spamassassin check.
type Check struct {
	cfg              Config
	network, address string
}

// New returns the check.
func New(cfg Config) (*Check, error) {
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("spamassassin: timeout %s: must not be negative", time.Duration(cfg.Timeout))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultConfig().Timeout
	}
	if cfg.MaxScanSize <= 0 {
		return nil, fmt.Errorf("spamassassin: max_scan_size %d: must be positive", int64(cfg.MaxScanSize))
	}
	if strings.ContainsAny(cfg.User, "\r\n") {
		return nil, fmt.Errorf("spamassassin: user %q: must be one line", cfg.User)
	}
	network, address, err := checks.ParseDaemonAddress(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("spamassassin: %w", err)
	}
	return &Check{cfg: cfg, network: network, address: address}, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return "spamassassin" }

// Facts implements checks.Factual: the facts rules see, with the values
// they have when the check did not run or spamd failed.
func (*Check) Facts() map[string]any {
	return map[string]any{"score": 0.0, "required": 0.0, "rules": []string{}, "spam": false, "truncated": false}
}

// Errors.
var (
	// ErrUnavailable: spamd could not be reached, did not answer in time,
	// or answered with an error code.
	ErrUnavailable = errors.New("spamassassin: spamd unavailable")
	// ErrProtocol: the answer is not spamd's protocol.
	ErrProtocol = errors.New("spamassassin: unexpected spamd answer")
)

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	msg, size, truncated, err := scanBytes(m.Reader(), int64(c.cfg.MaxScanSize))
	if err != nil {
		return failed(fmt.Errorf("spamassassin: reading the message: %w", err), false)
	}
	rep, err := c.Report(ctx, msg)
	if err != nil {
		return failed(err, truncated)
	}
	rules := make([]string, 0, len(rep.Rules))
	syms := make([]checks.Symbol, 0, len(rep.Rules)+1)
	sum := 0.0
	for _, r := range rep.Rules {
		rules = append(rules, r.Name)
		syms = append(syms, checks.Symbol{Name: r.Name, Score: r.Score})
		sum += r.Score
	}
	if rest := round1(rep.Score - sum); rest != 0 {
		syms = append(syms, checks.Symbol{Name: Rest, Score: rest, Detail: "not itemised in spamd's report"})
	}
	res := checks.Result{
		Status:  checks.StatusHam,
		Class:   checks.ClassHam,
		Score:   rep.Score,
		Symbols: syms,
		Engine:  Engine,
		Reason:  fmt.Sprintf("score %.1f, required %.1f", rep.Score, rep.Required),
		Facts: map[string]any{"score": rep.Score, "required": rep.Required, "rules": rules,
			"spam": rep.Spam, "truncated": truncated},
	}
	if rep.Spam {
		res.Status, res.Class = checks.StatusSpam, checks.ClassSpam
	}
	if truncated {
		res.Reason += fmt.Sprintf(", first %d of %d bytes scanned", len(msg), size)
	}
	return res
}

func failed(err error, truncated bool) checks.Result {
	return checks.Result{Status: checks.StatusTemperror, Reason: err.Error(), Err: err,
		Facts: map[string]any{"score": 0.0, "required": 0.0, "rules": []string{}, "spam": false, "truncated": truncated}}
}

func round1(f float64) float64 {
	r := float64(int64(f*10+sign(f)*0.5)) / 10
	return r + 0 // no -0
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

// scanBytes reads what is sent to spamd: the whole message, or when it is
// larger than max its first max bytes cut back to the last line end (a
// cut inside a line could leave half a word or a broken encoded line).
// size is the message's full size.
func scanBytes(r io.Reader, max int64) (msg []byte, size int64, truncated bool, err error) {
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(r, max+1))
	if err != nil {
		return nil, 0, false, err
	}
	if n <= max {
		return b.Bytes(), n, false, nil
	}
	rest, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, 0, false, err
	}
	msg = b.Bytes()[:max]
	if i := bytes.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i+1]
	}
	return msg, n + rest, true, nil
}

// Rule is one SpamAssassin rule hit.
type Rule struct {
	Name        string
	Score       float64
	Description string
}

// Report is spamd's answer to REPORT.
type Report struct {
	Spam     bool
	Score    float64
	Required float64
	Rules    []Rule
}

// Report sends msg to spamd with the REPORT command and returns its answer.
func (c *Check) Report(ctx context.Context, msg []byte) (Report, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.cfg.Timeout))
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer conn.Close()
	// Closing the connection when ctx ends unblocks any read or write; no
	// socket deadline of its own, which could fire a moment before ctx
	// and make the chain's timeout look like spamd's failure.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	fail := func(what string, err error) (Report, error) {
		if ctx.Err() != nil {
			return Report{}, fmt.Errorf("%w: no answer within %s", ErrUnavailable, time.Duration(c.cfg.Timeout))
		}
		return Report{}, fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "REPORT SPAMC/1.5\r\nContent-length: %d\r\n", len(msg))
	if c.cfg.User != "" {
		fmt.Fprintf(&req, "User: %s\r\n", c.cfg.User)
	}
	req.WriteString("\r\n")
	if _, err := conn.Write(req.Bytes()); err != nil {
		return fail("write", err)
	}
	if _, err := conn.Write(msg); err != nil {
		return fail("write", err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	// The answer is small (the report text); bound it all the same.
	answer, err := io.ReadAll(io.LimitReader(conn, maxAnswer+1))
	if err != nil {
		return fail("read", err)
	}
	if len(answer) > maxAnswer {
		return Report{}, fmt.Errorf("%w: answer over %d bytes", ErrProtocol, maxAnswer)
	}
	if len(answer) == 0 {
		return fail("read", errors.New("connection closed without an answer"))
	}
	return ParseReport(answer)
}

// maxAnswer bounds spamd's answer.
const maxAnswer = 1 << 20

// ParseReport reads spamd's answer to REPORT: the response line, the
// headers (Content-length, Spam) and the report's rule table.
func ParseReport(answer []byte) (Report, error) {
	var rep Report
	br := bufio.NewReader(bytes.NewReader(answer))
	line, err := readLine(br)
	if err != nil {
		return rep, fmt.Errorf("%w: no response line", ErrProtocol)
	}
	// SPAMD/1.1 0 EX_OK
	proto, rest, _ := strings.Cut(line, " ")
	code, msg, _ := strings.Cut(rest, " ")
	if !strings.HasPrefix(proto, "SPAMD/") || code == "" {
		return rep, fmt.Errorf("%w: response line %q", ErrProtocol, clip(line))
	}
	if code != "0" {
		return rep, fmt.Errorf("%w: spamd error %s %s", ErrUnavailable, clip(code), clip(msg))
	}
	length, haveSpam := -1, false
	for {
		h, err := readLine(br)
		if err != nil {
			return rep, fmt.Errorf("%w: headers not ended", ErrProtocol)
		}
		if h == "" {
			break
		}
		name, val, ok := strings.Cut(h, ":")
		if !ok {
			return rep, fmt.Errorf("%w: header line %q", ErrProtocol, clip(h))
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return rep, fmt.Errorf("%w: Content-length %q", ErrProtocol, clip(val))
			}
			length = n
		case "spam":
			if err := parseSpam(val, &rep); err != nil {
				return rep, err
			}
			haveSpam = true
		}
	}
	if !haveSpam {
		return rep, fmt.Errorf("%w: no Spam header", ErrProtocol)
	}
	body, _ := io.ReadAll(br)
	if length >= 0 {
		if len(body) < length {
			return rep, fmt.Errorf("%w: report cut short (%d of %d bytes)", ErrProtocol, len(body), length)
		}
		body = body[:length]
	}
	rep.Rules = parseTable(string(body))
	return rep, nil
}

// parseSpam reads "True ; 6.5 / 5.0".
func parseSpam(val string, rep *Report) error {
	verdict, scores, ok := strings.Cut(val, ";")
	s, r, ok2 := strings.Cut(scores, "/")
	if !ok || !ok2 {
		return fmt.Errorf("%w: Spam header %q", ErrProtocol, clip(val))
	}
	switch strings.ToLower(strings.TrimSpace(verdict)) {
	case "true", "yes":
		rep.Spam = true
	case "false", "no":
	default:
		return fmt.Errorf("%w: Spam header %q", ErrProtocol, clip(val))
	}
	var err1, err2 error
	rep.Score, err1 = parseScore(strings.TrimSpace(s))
	rep.Required, err2 = parseScore(strings.TrimSpace(r))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: Spam header %q", ErrProtocol, clip(val))
	}
	return nil
}

// parseTable reads the rule table of a report:
//
//	 pts rule name              description
//	---- ---------------------- --------------------------------------------------
//	 2.7 MISSING_DATE           Missing Date: header
//	-1.9 BAYES_00               BODY: Bayes spam probability is 0 to 1%
//	                            [score: 0.0000]
//
// A rule line has the score in the first columns; an indented line
// continues the description above it. The table ends at an empty line.
// Lines that are neither are ignored: the report around the table is
// free text of the local configuration.
func parseTable(report string) []Rule {
	var rules []Rule
	in := false
	for _, line := range strings.Split(report, "\n") {
		line = strings.TrimRight(line, "\r")
		if !in {
			in = strings.HasPrefix(line, "----")
			continue
		}
		if strings.TrimSpace(line) == "" {
			break
		}
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		if indent > 4 {
			if len(rules) > 0 {
				d := &rules[len(rules)-1].Description
				*d = strings.TrimSpace(*d + " " + strings.TrimSpace(line))
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		score, err := parseScore(f[0])
		if err != nil || !ruleName(f[1]) {
			continue
		}
		desc := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line)[len(f[0]):], " \t")[len(f[1]):])
		rules = append(rules, Rule{Name: f[1], Score: score, Description: desc})
	}
	return rules
}

// parseScore reads a decimal score; -0.0 is 0.
func parseScore(s string) (float64, error) {
	if s == "" || strings.ContainsAny(s, "eExXpPiInN_") {
		return 0, fmt.Errorf("score %q", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if f > 1e6 || f < -1e6 {
		return 0, fmt.Errorf("score %q out of range", s)
	}
	return f + 0, nil
}

// ruleName reports whether s is a SpamAssassin rule name (letters,
// digits, underscores; not a digit first).
func ruleName(s string) bool {
	if s == "" || len(s) > 128 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
