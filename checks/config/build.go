package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/checks/antivirus"
	"chainmail/checks/attachment"
	"chainmail/checks/bayes"
	"chainmail/checks/dkim"
	"chainmail/checks/dmarc"
	"chainmail/checks/dns"
	"chainmail/checks/dnsbl"
	"chainmail/checks/greylist"
	"chainmail/checks/gtube"
	"chainmail/checks/helo"
	"chainmail/checks/html"
	"chainmail/checks/lists"
	"chainmail/checks/quota"
	"chainmail/checks/rbl"
	"chainmail/checks/reputation"
	"chainmail/checks/spamassassin"
	"chainmail/checks/spf"
	"chainmail/checks/uribl"
	"chainmail/checks/whaling"
	"chainmail/store"
)

// Deps are the shared services checks are built with.
type Deps struct {
	Resolver dns.Resolver
	// Store is the state store (reputation history); nil when none is
	// configured.
	Store store.Store
	// Registerer takes the Prometheus collectors of checks that have
	// their own (quota, greylist); nil registers nothing. Collectors
	// registered by an earlier load are reused, so a reload keeps counts.
	Registerer prometheus.Registerer
	// Logf receives operational lines of checks (a failing webhook); nil
	// is quiet.
	Logf func(format string, args ...any)
	// MIME bounds every walk over MIME parts (gtube, uribl, attachment);
	// Build sets it from the attachment check's max_mime_depth and
	// max_mime_parts (see mimeLimits).
	MIME attachments.WalkOptions
}

// UsesState reports whether an enabled check needs the state store
// (its constructor in table says so): the store is opened only then.
func (f *File) UsesState() bool {
	if f.ConsoleOn() {
		return true // the console's history
	}
	for _, c := range f.Checks {
		if c.IsEnabled() && table[c.Name].state {
			return true
		}
	}
	return false
}

// constructor builds one check from its options node; aliases are the
// other names rules may use for it (checks.Aliased), facts the facts it
// declares (checks.Factual).
type constructor struct {
	make func(file string, opts *yaml.Node, d Deps) (checks.Check, error)
	// typ is the type of the check's options, for hiding its secrets.
	typ     reflect.Type
	aliases []string
	facts   map[string]any
	// remote checks wait on outside services (DNS lists, RDAP, the state
	// store): running out of time lets the chain go on by default. Every
	// other check is local content work and tempfails the message.
	remote bool
	// alwaysRun checks are not skipped by a ham decision (security
	// checks an allow list must not switch off).
	alwaysRun bool
	// state checks are built with Deps.Store (UsesState).
	state bool
	// def returns the check's DefaultConfig(), what options are decoded
	// over.
	def func() any
}

// withDefaults sets a constructor's chain defaults.
func (c constructor) withDefaults(remote, alwaysRun bool) constructor {
	c.remote, c.alwaysRun = remote, alwaysRun
	return c
}

// withState marks a check that is built with the state store.
func (c constructor) withState() constructor {
	c.state = true
	return c
}

// build adapts a check package's DefaultConfig/New pair into a
// constructor: options are decoded strictly over the defaults.
func build[C any, K checks.Check](def func() C, newf func(C, Deps) (K, error)) constructor {
	return constructor{make: func(file string, opts *yaml.Node, d Deps) (checks.Check, error) {
		cfg := def()
		if opts != nil && opts.Kind != 0 {
			if err := decodeStrict(file, opts, &cfg); err != nil {
				return nil, err
			}
		}
		return newf(cfg, d)
	}, typ: reflect.TypeOf((*C)(nil)).Elem(), aliases: aliasesOf[K](), facts: factsOf[K](), def: func() any { return def() }}
}

// aliasesOf asks a zero K for its aliases (checks.Aliased says they are
// constants).
func aliasesOf[K checks.Check]() []string {
	var k K
	if a, ok := any(k).(checks.Aliased); ok {
		return a.Aliases()
	}
	return nil
}

// factsOf asks a zero K for the facts it declares (checks.Factual).
func factsOf[K checks.Check]() map[string]any {
	var k K
	if f, ok := any(k).(checks.Factual); ok {
		return f.Facts()
	}
	return nil
}

// facts maps the name of every check that declares facts to them.
func facts() map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, c := range table {
		if c.facts != nil {
			out[name] = c.facts
		}
	}
	return out
}

// aliases maps every alias of a known check to the check's name.
func aliases() map[string]string {
	out := map[string]string{}
	for name, c := range table {
		for _, a := range c.aliases {
			out[a] = name
		}
	}
	return out
}

// table is every check chainmail knows, by the name used in
// configuration, logs and metrics.
var table = map[string]constructor{
	"gtube": build(gtube.DefaultConfig, func(c gtube.Config, d Deps) (*gtube.Check, error) { return gtube.New(c, d.MIME) }),
	"lists": build(lists.DefaultConfig, func(c lists.Config, _ Deps) (*lists.Check, error) { return lists.New(c) }),
	"spf":   build(spf.DefaultConfig, func(c spf.Config, d Deps) (*spf.Check, error) { return spf.New(c, d.Resolver) }).withDefaults(true, false),
	"dkim":  build(dkim.DefaultConfig, func(c dkim.Config, d Deps) (*dkim.Check, error) { return dkim.New(c, d.Resolver) }).withDefaults(true, false),
	"dmarc": build(dmarc.DefaultConfig, func(c dmarc.Config, d Deps) (*dmarc.Check, error) { return dmarc.New(c, d.Resolver) }).withDefaults(true, false),
	"rbl": build(rbl.DefaultConfig, func(c rbl.Config, d Deps) (*rbl.Check, error) {
		ck, err := rbl.New(c, d.Resolver)
		if err == nil {
			dnsbl.NewSuspendedMetric(d.Registerer).Track("rbl", ck.Set())
		}
		return ck, err
	}).withDefaults(true, false),
	"uribl": build(uribl.DefaultConfig, newURIBL).withDefaults(true, false),
	"helo":  build(helo.DefaultConfig, func(c helo.Config, d Deps) (*helo.Check, error) { return helo.New(c, d.Resolver) }).withDefaults(true, false),
	"reputation": build(reputation.DefaultConfig, func(c reputation.Config, d Deps) (*reputation.Check, error) {
		return reputation.New(c, d.Store, d.Resolver, d.Logf)
	}).withDefaults(true, false).withState(),
	"quota": build(quota.DefaultConfig, func(c quota.Config, d Deps) (*quota.Check, error) {
		return quota.New(c, quota.Deps{Store: d.Store, Metrics: quota.NewMetrics(d.Registerer), Logf: d.Logf})
	}).withDefaults(true, false).withState(),
	"greylist": build(greylist.DefaultConfig, func(c greylist.Config, d Deps) (*greylist.Check, error) {
		return greylist.New(c, greylist.Deps{Store: d.Store, Metrics: greylist.NewMetrics(d.Registerer)})
	}).withDefaults(true, false).withState(),
	"bayes": build(bayes.DefaultConfig, func(c bayes.Config, d Deps) (*bayes.Check, error) {
		b, err := bayes.New(c, d.Store, d.Logf)
		if err != nil {
			return nil, err
		}
		return b.WithWalk(d.MIME), nil
	}).withDefaults(true, false).withState(),
	"whaling": build(whaling.DefaultConfig, func(c whaling.Config, _ Deps) (*whaling.Check, error) { return whaling.New(c) }),
	// attachment: rule file paths are relative to the configuration file.
	"attachment": {make: func(file string, opts *yaml.Node, _ Deps) (checks.Check, error) {
		cfg := attachment.DefaultConfig()
		if opts != nil && opts.Kind != 0 {
			if err := decodeStrict(file, opts, &cfg); err != nil {
				return nil, err
			}
		}
		cfg.BaseDir = filepath.Dir(file)
		return attachment.New(cfg)
	}, typ: reflect.TypeOf(attachment.Config{}), facts: factsOf[*attachment.Check](), alwaysRun: true,
		def: func() any { return attachment.DefaultConfig() }},
	// html: MailScanner's HTML switches; a local content check (tempfails
	// on timeout) that runs for allow-listed senders too.
	"html": build(html.DefaultConfig, func(c html.Config, d Deps) (*html.Check, error) {
		c.Walk = d.MIME
		return html.New(c)
	}).withDefaults(false, true),
	"antivirus": build(antivirus.DefaultConfig, func(c antivirus.Config, _ Deps) (*antivirus.Check, error) { return antivirus.New(c) }).withDefaults(false, true),
	// spamassassin waits on spamd, a daemon beside chainmail: running out
	// of time lets the chain go on, as for the network checks.
	"spamassassin": build(spamassassin.DefaultConfig, func(c spamassassin.Config, _ Deps) (*spamassassin.Check, error) { return spamassassin.New(c) }).withDefaults(true, false),
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
	p.Aliases, p.Facts = aliases(), facts()
	if err := p.Compile(Names()); err != nil {
		return nil, &Error{File: f.Path, Msg: err.Error()}
	}

	d.MIME = f.mimeLimits()
	chain := &checks.Chain{Deadline: time.Duration(f.Policy.Deadline)}
	seen := map[string]bool{}
	for _, c := range f.Checks {
		if !c.IsEnabled() {
			continue
		}
		seen[c.Name] = true
		if c.Name == "attachment" && seen["html"] {
			// The last body set in chain order is delivered: html builds
			// on attachment's, so it must be the later one.
			return nil, &Error{File: c.file, Line: c.line, Msg: `check "attachment" must come before "html": html rewrites the body attachment changed, and the later one is delivered`}
		}
		ctor, ok := table[c.Name]
		if !ok {
			return nil, &Error{File: c.file, Line: c.line, Msg: fmt.Sprintf("unknown check %q (known checks: %v)", c.Name, Names())}
		}
		chk, err := ctor.make(c.file, &c.Options, d)
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
		onTimeout := checks.TimeoutTempfail
		if ctor.remote {
			onTimeout = checks.TimeoutContinue
		}
		if c.OnTimeout != "" {
			onTimeout, _ = checks.ParseOnTimeout(c.OnTimeout)
		}
		alwaysRun := ctor.alwaysRun
		if c.AlwaysRun != nil {
			alwaysRun = *c.AlwaysRun
		}
		chain.Steps = append(chain.Steps, checks.Step{
			Check:     chk,
			Decisive:  dec,
			Timeout:   time.Duration(c.Timeout),
			MaxSize:   int64(c.MaxSize),
			Scores:    c.Scores,
			OnTimeout: onTimeout,
			AlwaysRun: alwaysRun,
			// The security checks (attachment, antivirus) hold a message
			// too big for them: unscannable, never skipped unchecked.
			TooBigUnscannable: ctor.alwaysRun,
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
