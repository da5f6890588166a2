package config

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"chainmail/checks/helo"
	"chainmail/checks/spf"
)

// moved are check option keys that chainmail no longer reads, with what
// to write instead. Reading one is an error at its line: silently
// ignoring it would change scores or limits behind the user's back.
//
// A symbol's score has one spelling, the chain entry's scores: (beside
// options:); the checks' own options.scores are gone. symbols maps the
// keys of an old options.scores to the symbols they set (nil: the keys
// were symbols already), so the error can show the replacement.
var moved = map[string]map[string]movedKey{
	"antivirus": {"max_size": {msg: "renamed stream_max_length (the largest message sent to clamd, like 25MiB); max_size beside options: is the chain's limit, above which the message is unscannable"}},
	"spf":       {"scores": {symbols: spfSymbols}},
	"helo":      {"scores": {symbols: heloSymbols}},
	"dkim":      {"scores": {}},
	"dmarc":     {"scores": {}},
}

type movedKey struct {
	msg     string
	symbols map[string]string
}

var spfSymbols = map[string]string{
	"pass": spf.SymbolAllow, "fail": spf.SymbolFail, "softfail": spf.SymbolSoftfail, "neutral": spf.SymbolNeutral,
	"none": spf.SymbolNA, "temperror": spf.SymbolDNSFail, "permerror": spf.SymbolPermFail,
}

var heloSymbols = map[string]string{
	"ip_literal": helo.SymIPLiteral, "ip_mismatch": helo.SymIPMismatch, "bare_ip": helo.SymBareIP,
	"not_fqdn": helo.SymNotFQDN, "bad_syntax": helo.SymBadSyntax, "ours": helo.SymOurs,
	"no_resolve": helo.SymNoResolve, "no_ptr": helo.SymNoPTR, "rdns_mismatch": helo.SymMismatch,
	"sender_no_mx_a": helo.SymSenderNoMXA, "sender_null_mx": helo.SymSenderNull,
}

// checkMoved refuses the moved keys in a check's options.
func checkMoved(c *Check) error {
	keys := moved[c.Name]
	opts := &c.Options
	if len(keys) == 0 || opts.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(opts.Content); i += 2 {
		k, v := opts.Content[i], opts.Content[i+1]
		m, ok := keys[k.Value]
		if !ok {
			continue
		}
		msg := m.msg
		if k.Value == "scores" {
			msg = "no longer read: a symbol's score is set by the entry's scores: beside options: (" + scoresExample(v, m.symbols) + ")"
		}
		return &Error{File: c.file, Line: k.Line, Msg: fmt.Sprintf("check %q: options.%s %s", c.Name, k.Value, msg)}
	}
	return nil
}

// scoresExample writes the entry's scores: that does what an old
// options.scores did.
func scoresExample(v *yaml.Node, symbols map[string]string) string {
	var parts []string
	if v.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(v.Content); i += 2 {
			name := v.Content[i].Value
			if symbols != nil {
				s, ok := symbols[name]
				if !ok {
					continue
				}
				name = s
			}
			parts = append(parts, name+": "+v.Content[i+1].Value)
		}
	}
	sort.Strings(parts)
	return "scores: {" + strings.Join(parts, ", ") + "}"
}
