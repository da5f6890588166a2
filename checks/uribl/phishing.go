package uribl

import (
	"net/url"
	"strings"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
)

// PhishingConfig configures the phishing finding: a link whose text shows
// one site while it leads to another.
type PhishingConfig struct {
	Enabled bool `yaml:"enabled"`
	// Symbol and Score of the finding (PHISHING, 4).
	Symbol string  `yaml:"symbol"`
	Score  float64 `yaml:"score"`
	// Redirectors are registrable domains whose links lead elsewhere by
	// design (link trackers, URL shorteners of the organisation): a link
	// through them is no finding.
	Redirectors []string `yaml:"redirectors"`
	// MaxNesting is how many redirections embedded in a link's query are
	// followed to find where it really goes (default 4). A chain longer
	// than that is a finding.
	MaxNesting int `yaml:"max_nesting"`
	// Strict names sites whose imitation gets its own symbol instead of
	// Symbol (banks, payment providers).
	Strict []StrictSites `yaml:"strict"`
	// MaxFindings bounds the links named in the detail (default 5).
	MaxFindings int `yaml:"max_findings"`
}

// StrictSites is a group of sites with its own symbol.
type StrictSites struct {
	Symbol  string   `yaml:"symbol"`
	Score   float64  `yaml:"score"`
	Domains []string `yaml:"domains"`
}

// DefaultPhishing returns the defaults: on, PHISHING 4.
func DefaultPhishing() PhishingConfig {
	return PhishingConfig{Enabled: true, Symbol: "PHISHING", Score: 4, MaxNesting: 4, MaxFindings: 5}
}

// phishing is the compiled configuration.
type phishing struct {
	cfg         PhishingConfig
	redirectors map[string]bool
	strict      map[string]int // registrable domain → index in cfg.Strict
}

func newPhishing(cfg PhishingConfig) (*phishing, error) {
	p := &phishing{cfg: cfg, redirectors: map[string]bool{}, strict: map[string]int{}}
	if p.cfg.MaxNesting <= 0 {
		p.cfg.MaxNesting = 4
	}
	if p.cfg.MaxFindings <= 0 {
		p.cfg.MaxFindings = 5
	}
	if p.cfg.Symbol == "" {
		p.cfg.Symbol = "PHISHING"
	}
	for _, d := range cfg.Redirectors {
		n, ok := dnsbl.Domain(d)
		if !ok {
			return nil, errorf("phishing: redirector %q is not a domain", d)
		}
		p.redirectors[dns.OrganizationalDomain(n)] = true
	}
	for i, s := range cfg.Strict {
		if s.Symbol == "" {
			return nil, errorf("phishing: strict group %d has no symbol", i+1)
		}
		for _, d := range s.Domains {
			n, ok := dnsbl.Domain(d)
			if !ok {
				return nil, errorf("phishing: strict domain %q is not a domain", d)
			}
			p.strict[dns.OrganizationalDomain(n)] = i
		}
	}
	return p, nil
}

// displayHost reads the host a link's text shows, if the text is a URL or
// a bare host name ("http://www.bank.example/login", "www.bank.example",
// "bank.example"). Text that is not (words, "click here") shows none.
func displayHost(text string) (host, bool) {
	t := strings.TrimFunc(text, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '<' || r == '>' || r == '(' || r == ')' ||
			r == '[' || r == ']' || r == '"' || r == '\'' || invisible(r) || r == '\u00a0'
	})
	if t == "" || strings.ContainsAny(t, " \t\r\n") {
		return host{}, false
	}
	if h, _, ok := parseHref(t); ok {
		return h, true
	}
	// A bare name, possibly with a path.
	if i := strings.IndexAny(t, "/?#"); i >= 0 {
		t = t[:i]
	}
	if strings.ContainsAny(t, "@:") {
		return host{}, false
	}
	h, ok := normalizeHost(t)
	if !ok || (!h.ip.IsValid() && !knownSuffix(h.name)) {
		return host{}, false
	}
	return h, true
}

// destination follows the URLs embedded in a link's query: a redirector
// that names exactly one destination leads there. It returns the last
// host reached; ok is false when a query names several URLs (the link
// could lead to any) or the chain is longer than max.
func destination(h host, rest string, max int) (host, bool) {
	for depth := 0; ; depth++ {
		var found []string
		q := rest
		if i := strings.IndexByte(q, '?'); i >= 0 {
			q = q[i+1:]
		} else {
			q = ""
		}
		if i := strings.IndexByte(q, '#'); i >= 0 {
			q = q[:i]
		}
		for _, kv := range strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' }) {
			_, v, _ := strings.Cut(kv, "=")
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			} else {
				v = percentDecode(v)
			}
			if _, _, ok := parseHref(v); ok && strings.Contains(v, ":") {
				found = append(found, v)
			}
		}
		switch {
		case len(found) == 0:
			return h, true
		case len(found) > 1:
			return host{}, false
		case depth >= max:
			return host{}, false
		}
		nh, nrest, _ := parseHref(found[0])
		h, rest = nh, nrest
	}
}

// find returns the symbols for links that show one site and lead to
// another.
func (p *phishing) find(links []Link) []checks.Symbol {
	type finding struct {
		symbol string
		score  float64
		detail []string
	}
	var out []*finding
	bySym := map[string]*finding{}
	for _, l := range links {
		shown, ok := displayHost(l.Text)
		if !ok {
			continue
		}
		sreg, hreg := shown.registrable(), l.Host.registrable()
		if sreg == hreg || (!shown.ip.IsValid() && !l.Host.ip.IsValid() && sameLabel(sreg, hreg)) || p.redirectors[hreg] {
			continue
		}
		if dest, ok := destination(l.Host, l.Rest, p.cfg.MaxNesting); ok {
			dreg := dest.registrable()
			if dreg == sreg || (!dest.ip.IsValid() && !shown.ip.IsValid() && sameLabel(dreg, sreg)) {
				continue
			}
		}
		sym, score := p.cfg.Symbol, p.cfg.Score
		if i, ok := p.strict[sreg]; ok {
			sym, score = p.cfg.Strict[i].Symbol, p.cfg.Strict[i].Score
		}
		f := bySym[sym]
		if f == nil {
			f = &finding{symbol: sym, score: score}
			bySym[sym] = f
			out = append(out, f)
		}
		d := sreg + "->" + hreg
		if len(f.detail) < p.cfg.MaxFindings && !contains(f.detail, d) {
			f.detail = append(f.detail, d)
		}
	}
	var syms []checks.Symbol
	for _, f := range out {
		syms = append(syms, checks.Symbol{Name: f.symbol, Score: f.score, Detail: strings.Join(f.detail, ",")})
	}
	return syms
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
