package config

import (
	"fmt"
	"os"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"chainmail/checks"
	"chainmail/checks/dkim"
	"chainmail/checks/dmarc"
	"chainmail/checks/dns"
	"chainmail/checks/gtube"
	"chainmail/checks/lists"
	"chainmail/checks/spf"
)

// Deps are the shared services checks are built with.
type Deps struct {
	Resolver dns.Resolver
}

// constructor builds one check from its options node.
type constructor func(file string, opts *yaml.Node, d Deps) (checks.Check, error)

// build adapts a check package's DefaultConfig/New pair into a
// constructor: options are decoded strictly over the defaults.
func build[C any, K checks.Check](def func() C, newf func(C, Deps) (K, error)) constructor {
	return func(file string, opts *yaml.Node, d Deps) (checks.Check, error) {
		cfg := def()
		if opts != nil && opts.Kind != 0 {
			if err := decodeStrict(file, opts, &cfg); err != nil {
				return nil, err
			}
		}
		return newf(cfg, d)
	}
}

// table is every check chainmail knows, by the name used in
// configuration, logs and metrics.
var table = map[string]constructor{
	"gtube": build(gtube.DefaultConfig, func(c gtube.Config, _ Deps) (*gtube.Check, error) { return gtube.New(c) }),
	"lists": build(lists.DefaultConfig, func(c lists.Config, _ Deps) (*lists.Check, error) { return lists.New(c) }),
	"spf":   build(spf.DefaultConfig, func(c spf.Config, d Deps) (*spf.Check, error) { return spf.New(c, d.Resolver) }),
	"dkim":  build(dkim.DefaultConfig, func(c dkim.Config, d Deps) (*dkim.Check, error) { return dkim.New(c, d.Resolver) }),
	"dmarc": build(dmarc.DefaultConfig, func(c dmarc.Config, d Deps) (*dmarc.Check, error) { return dmarc.New(c, d.Resolver) }),
}

// Names returns the names of all known checks, sorted.
func Names() []string {
	out := make([]string, 0, len(table))
	for k := range table {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Build makes the engine described by f. The verdict logger is not set:
// the caller decides where lines go.
func (f *File) Build(d Deps) (*checks.Engine, error) {
	p := f.policy()
	rules, err := f.rules()
	if err != nil {
		return nil, err
	}
	p.Rules = rules
	if err := p.Compile(Names()); err != nil {
		return nil, &Error{File: f.Path, Msg: err.Error()}
	}

	chain := &checks.Chain{Deadline: time.Duration(f.Policy.Deadline)}
	for _, c := range f.Checks {
		if !c.IsEnabled() {
			continue
		}
		ctor, ok := table[c.Name]
		if !ok {
			return nil, &Error{File: c.file, Line: c.line, Msg: fmt.Sprintf("unknown check %q (known checks: %v)", c.Name, Names())}
		}
		chk, err := ctor(c.file, &c.Options, d)
		if err != nil {
			if _, isCfg := err.(*Error); isCfg {
				return nil, err
			}
			return nil, &Error{File: c.file, Line: c.line, Msg: fmt.Sprintf("check %q: %v", c.Name, err)}
		}
		dec := checks.DecisiveNone
		if c.Decisive != "" {
			dec, _ = checks.ParseDecisive(c.Decisive)
		}
		chain.Steps = append(chain.Steps, checks.Step{
			Check:    chk,
			Decisive: dec,
			Timeout:  time.Duration(c.Timeout),
			MaxSize:  int64(c.MaxSize),
			Scores:   c.Scores,
		})
	}
	return &checks.Engine{Chain: chain, Policy: p, Known: Names()}, nil
}

func (f *File) policy() *checks.Policy {
	p := checks.DefaultPolicy()
	p.Hostname = f.Hostname
	if p.Hostname == "" {
		if h, err := os.Hostname(); err == nil {
			p.Hostname = h
		} else {
			p.Hostname = "localhost"
		}
	}
	p.Monitor = f.Policy.Monitor
	p.Tag, p.Quarantine, p.Reject = f.Policy.Tag, f.Policy.Quarantine, f.Policy.Reject
	p.DecisiveSpam, _ = checks.ParseAction(f.Policy.DecisiveSpam)
	p.OnError, _ = checks.ParseAction(f.Policy.OnError)
	p.RejectCode, p.RejectReply, _ = splitReply(f.Policy.RejectReply, '5')
	p.TempfailCode, p.TempfailReply, _ = splitReply(f.Policy.TempfailReply, '4')
	p.ErrorCode, p.ErrorReply, _ = splitReply(f.Policy.ErrorReply, '4')
	p.QuarantineReason = f.Policy.QuarantineReason
	p.SubjectTag = f.Policy.SubjectTag
	p.Headers = checks.HeaderMode(f.Policy.Headers)
	return p
}
