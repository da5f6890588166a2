// Package lists is the lists check: local allow and deny lists of client
// addresses (single IPs and CIDR prefixes), sender addresses and domains,
// and recipients, as MailCleaner's "Reject these senders addresses" and
// its white lists.
//
// Sender patterns match the envelope sender and every address in the
// header From. A pattern is an address (user@example.com), a domain
// (example.com or @example.com, meaning *@example.com) or a glob where *
// stands for any run of characters and ? for one (*@*.example.com: any
// subdomain of example.com, not example.com itself). Matching is
// case-insensitive. Client entries are IPv4 or IPv6 addresses or CIDR
// prefixes; IPv4-mapped IPv6 forms match the IPv4 client. The deny list is
// consulted first and wins over the allow list. Anyone can write any
// sender: an allow entry matches a sender only when it is authenticated
// (auth.go; SpamAssassin's whitelist_auth), so with sender allow entries
// the check waits for spf, dkim and dmarc. An allowed message is
// classified ham (with decisive "ham" or "both" it skips the scoring
// checks configured after this one); a denied one spam.
package lists

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net"
	"net/mail"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"chainmail/checks"
)

// List is one allow or deny list.
type List struct {
	Clients    []string `yaml:"clients"`
	Senders    []string `yaml:"senders"`
	Recipients []string `yaml:"recipients"`
}

// Config is the lists check's configuration.
type Config struct {
	Allow List `yaml:"allow"`
	Deny  List `yaml:"deny"`
	// AllowScore and DenyScore are the default scores of the LISTS_ALLOW_*
	// and LISTS_DENY_* symbols.
	AllowScore float64 `yaml:"allow_score"`
	DenyScore  float64 `yaml:"deny_score"`
	// AllowSendersNeedAuth: an allow entry matches a sender only when
	// that sender is authenticated (auth.go); false matches any
	// (spoofable) envelope sender or header From.
	AllowSendersNeedAuth bool `yaml:"allow_senders_need_auth"`
}

// DefaultConfig returns empty lists with the default scores.
func DefaultConfig() Config {
	return Config{AllowScore: -20, DenyScore: 100, AllowSendersNeedAuth: true}
}

type compiled struct {
	prefixes   []netip.Prefix
	senders    []string
	recipients []string
}

// Check is the lists check.
type Check struct {
	cfg         Config
	allow, deny compiled
}

// New validates the patterns of cfg.
func New(cfg Config) (*Check, error) {
	c := &Check{cfg: cfg}
	var err error
	if c.allow, err = compile("allow", cfg.Allow); err != nil {
		return nil, err
	}
	if c.deny, err = compile("deny", cfg.Deny); err != nil {
		return nil, err
	}
	return c, nil
}

func compile(which string, l List) (compiled, error) {
	var c compiled
	for _, s := range l.Clients {
		p, err := checks.ParsePrefix(s)
		if err != nil {
			return c, fmt.Errorf("lists: %s.clients: %q is not an IP address or CIDR prefix", which, s)
		}
		c.prefixes = append(c.prefixes, p)
	}
	norm := func(field string, in []string) ([]string, error) {
		var out []string
		for _, s := range in {
			p, err := normPattern(s)
			if err != nil {
				return nil, fmt.Errorf("lists: %s.%s: bad pattern %q: %v", which, field, s, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	var err error
	if c.senders, err = norm("senders", l.Senders); err != nil {
		return c, err
	}
	if c.recipients, err = norm("recipients", l.Recipients); err != nil {
		return c, err
	}
	return c, nil
}

// normPattern validates an address pattern and returns it lower-cased,
// with a bare domain turned into *@domain.
func normPattern(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("not UTF-8")
	}
	p := strings.ToLower(strings.TrimSpace(s))
	if p == "" {
		return "", fmt.Errorf("empty pattern")
	}
	if strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", fmt.Errorf("white space or control character in pattern")
	}
	switch strings.Count(p, "@") {
	case 0:
		p = "*@" + p
	case 1:
		if strings.HasPrefix(p, "@") {
			p = "*" + p
		}
	default:
		return "", fmt.Errorf("more than one @")
	}
	if strings.HasSuffix(p, "@") {
		return "", fmt.Errorf("no domain after @")
	}
	return p, nil
}

// glob reports whether s matches pattern, where * matches any run of
// characters (including none, and including / and @) and ? one character.
// Everything else matches itself.
func glob(pattern, s string) bool {
	// Iterative matching with backtracking to the last star: linear in
	// practice, never exponential.
	px, sx := 0, 0
	star, next := -1, 0
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				star, next = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, n := utf8.DecodeRuneInString(s[sx:])
					px, sx = px+1, sx+n
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px, sx = px+1, sx+1
					continue
				}
			}
		}
		if star >= 0 && next < len(s) {
			_, n := utf8.DecodeRuneInString(s[next:])
			next += n
			px, sx = star+1, next
			continue
		}
		return false
	}
	return true
}

// Name implements checks.Check.
func (c *Check) Name() string { return "lists" }

type hit struct{ kind, value, pattern string }

func (l *compiled) match(ip net.IP, senders, rcpts []string) *hit {
	if ip != nil {
		if a, ok := netip.AddrFromSlice(ip); ok {
			a = a.Unmap()
			for _, p := range l.prefixes {
				if p.Contains(a) {
					return &hit{"client", a.String(), p.String()}
				}
			}
		}
	}
	for _, s := range senders {
		for _, p := range l.senders {
			if glob(p, s) {
				return &hit{"sender", s, p}
			}
		}
	}
	for _, r := range rcpts {
		for _, p := range l.recipients {
			if glob(p, r) {
				return &hit{"recipient", r, p}
			}
		}
	}
	return nil
}

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, prior checks.Results) checks.Result {
	senders := senderAddresses(m)
	rcpts := make([]string, 0, len(m.Rcpts))
	for _, r := range m.Rcpts {
		rcpts = append(rcpts, normAddr(r))
	}
	if h := c.deny.match(m.ClientIP, senders, rcpts); h != nil {
		return result(h, "deny", checks.StatusListed, checks.ClassSpam, c.cfg.DenyScore)
	}
	if c.cfg.AllowSendersNeedAuth && len(c.allow.senders) > 0 {
		senders = authenticated(m, prior)
	}
	if h := c.allow.match(m.ClientIP, senders, rcpts); h != nil {
		return result(h, "allow", checks.StatusPass, checks.ClassHam, c.cfg.AllowScore)
	}
	return checks.Result{Status: checks.StatusNone}
}

func result(h *hit, list string, st checks.Status, class checks.Class, score float64) checks.Result {
	sym := "LISTS_" + strings.ToUpper(list) + "_" + strings.ToUpper(h.kind)
	return checks.Result{
		Status:  st,
		Class:   class,
		Symbols: []checks.Symbol{{Name: sym, Score: score, Detail: h.value}},
		Reason:  fmt.Sprintf("%s %s %s matches %s", list, h.kind, h.value, h.pattern),
		Facts:   map[string]any{"list": list, "kind": h.kind, "value": h.value, "pattern": h.pattern},
	}
}

// normAddr lower-cases an envelope address and drops angle brackets and
// the trailing dot of its domain ("a@example.com." is the same mailbox
// to DMARC and to mail clients: it must be to the lists too).
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(a, "<") && strings.HasSuffix(a, ">") {
		a = a[1 : len(a)-1]
	}
	return trimDot(strings.ToLower(a))
}

// trimDot drops the trailing dot of an address's domain.
func trimDot(a string) string {
	if strings.LastIndexByte(a, '@') >= 0 {
		return strings.TrimSuffix(a, ".")
	}
	return a
}

// addressParser reads From headers whatever the charset of the display
// names: only the addresses matter here.
var addressParser = &mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// senderAddresses returns the envelope sender and the header From
// addresses, lower-cased.
func senderAddresses(m *checks.Message) []string {
	var out []string
	if m.MailFrom != "" {
		out = append(out, normAddr(m.MailFrom))
	}
	return append(out, headerFromAddresses(m)...)
}

// headerFromAddresses returns the header From addresses, lower-cased.
func headerFromAddresses(m *checks.Message) []string {
	var out []string
	for _, v := range m.Values("From") {
		addrs, err := addressParser.ParseList(v)
		if err != nil {
			// Unparseable From: a sender must not get past the deny list
			// by breaking the syntax, so take everything that looks like
			// an address.
			out = append(out, looseAddresses(v)...)
			continue
		}
		for _, a := range addrs {
			out = append(out, trimDot(strings.ToLower(a.Address)))
		}
	}
	return out
}

// looseAddresses returns every <angle-addr> in v and every word with an @
// outside them, lower-cased.
func looseAddresses(v string) []string {
	var out []string
	rest := v
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		if a := strings.TrimSpace(rest[i+1 : i+j]); a != "" {
			out = append(out, trimDot(strings.ToLower(a)))
		}
		rest = rest[:i] + " " + rest[i+j+1:]
	}
	for _, w := range strings.FieldsFunc(rest, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`,;"()<>`, r)
	}) {
		if strings.Contains(w, "@") {
			out = append(out, trimDot(strings.ToLower(w)))
		}
	}
	return out
}
