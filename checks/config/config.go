// Package config reads chainmail's YAML configuration and builds the
// engine (chain, policy, verdict log) from it. It is the composition root
// shared by `chainmail serve`, `replay`, `config check` and the tests: the
// table of checks is an explicit map from name to constructor, no init().
//
// Reading is strict: an unknown key anywhere, including inside a check's
// options, is an error with file and line, and so is a rule that does not
// compile.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"chainmail/checks"
	"chainmail/checks/dns"
	"chainmail/checks/verdictlog"
	"chainmail/store/redis"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the embedded default configuration.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// File is the configuration file.
type File struct {
	Listen   string            `yaml:"listen"`
	Hostname string            `yaml:"hostname"`
	DNS      DNS               `yaml:"dns"`
	Log      verdictlog.Config `yaml:"log"`
	Metrics  Metrics           `yaml:"metrics"`
	Feedback Feedback          `yaml:"feedback"`
	Console  Console           `yaml:"console"`
	Spool    Spool             `yaml:"spool"`
	Milter   Milter            `yaml:"milter"`
	State    State             `yaml:"state"`
	Policy   Policy            `yaml:"policy"`
	Rules    []Rule            `yaml:"rules"`
	Checks   []Check           `yaml:"checks"`

	// Path is the file this was read from ("" for the default).
	Path string `yaml:"-"`

	// places says where each mapping key ("policy.headers") was last set,
	// for errors found after the files are merged.
	places map[string]place
}

// place is a position in a configuration file.
type place struct {
	file string
	line int
}

// DNS configures the resolver the checks use: the DNS client's own
// settings (servers, timeout, retries, cache_size), read as they are.
type DNS = dns.Config

// Metrics configures the HTTP listener for /metrics and /healthz.
type Metrics struct {
	Listen string `yaml:"listen"`
	// PProf serves /debug/pprof/* (goroutine stacks, heap) on the same
	// listener; off unless asked for.
	PProf bool `yaml:"pprof"`
}

// Spool configures body spooling.
type Spool struct {
	Dir       string `yaml:"dir"`
	Threshold Size   `yaml:"threshold"`
}

// Milter configures the milter server.
type Milter struct {
	Timeout        Duration `yaml:"timeout"`
	MaxHeaderBytes Size     `yaml:"max_header_bytes"`
	// MaxConcurrent bounds the messages evaluated at once; 0 means one
	// per CPU core.
	MaxConcurrent int `yaml:"max_concurrent"`
	// Connection limits against idle or stuck clients (milter.go).
	ConnectTimeout Duration `yaml:"connect_timeout"`
	CommandTimeout Duration `yaml:"command_timeout"`
	IdleTimeout    Duration `yaml:"idle_timeout"`
	MaxConnections int      `yaml:"max_connections"`
	// The unix socket's permissions and group (name or gid; "" keeps
	// the process's group).
	SocketMode  FileMode `yaml:"socket_mode"`
	SocketGroup string   `yaml:"socket_group"`
}

// State configures the state store of the checks that keep state
// (quota, greylist, reputation): a bbolt file for one MTA, Redis when
// several MTAs share quotas, greylisting and history. It is opened only
// when such a check is enabled.
type State struct {
	// Backend is bolt or redis.
	Backend string `yaml:"backend"`
	// Path is the bbolt file; "" is the automatic place (see File).
	Path string `yaml:"path"`
	// FlushInterval is how often bbolt commits (with fsync) the changes
	// kept in memory: what a crash can lose.
	FlushInterval Duration `yaml:"flush_interval"`
	// OnCorrupt is what start does with a bbolt file it cannot read:
	// refuse (one line naming the file) or reset (move it aside, start
	// empty).
	OnCorrupt string     `yaml:"on_corrupt"`
	Redis     RedisState `yaml:"redis"`
}

// File is the bbolt file: Path, or when it is "" the automatic place:
// $STATE_DIRECTORY/state.db when that is set (systemd sets it for a unit
// with StateDirectory=; the first directory when it names several), else
// /var/lib/chainmail/state.db for root, else state.db under
// $XDG_STATE_HOME/chainmail (~/.local/state/chainmail), so that a
// postmaster trying chainmail as an ordinary user gets a working default.
func (s State) File() string {
	if s.Path != "" {
		return s.Path
	}
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		return filepath.Join(d, "state.db")
	}
	if os.Geteuid() == 0 {
		return "/var/lib/chainmail/state.db"
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "/var/lib/chainmail/state.db"
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "chainmail", "state.db")
}

// RedisState says where Redis is: the Redis store's own settings.
type RedisState = redis.Settings

// validate checks the state section.
func (s *State) validate(f *File) error {
	switch s.Backend {
	case "bolt":
		if s.FlushInterval <= 0 {
			return f.errAt("state.flush_interval", "must be positive (like 1s)")
		}
		if s.OnCorrupt != "refuse" && s.OnCorrupt != "reset" {
			return f.errAt("state.on_corrupt", "%q (want refuse or reset)", s.OnCorrupt)
		}
	case "redis":
		r := s.Redis
		if len(r.Addrs) == 0 {
			return f.errAt("state.redis.addrs", "empty (want HOST:PORT)")
		}
		for _, a := range r.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return f.errAt("state.redis.addrs", "%q is not HOST:PORT", a)
			}
		}
		if r.Cluster && r.MasterName != "" {
			return f.errAt("state.redis.cluster", "cluster and sentinel_master exclude each other")
		}
		if r.Cluster && r.DB != 0 {
			return f.errAt("state.redis.db", "a Redis Cluster has only database 0")
		}
		if !r.Cluster && r.MasterName == "" && len(r.Addrs) > 1 {
			return f.errAt("state.redis.addrs", "several addresses need cluster: true or a sentinel_master")
		}
		if r.DB < 0 {
			return f.errAt("state.redis.db", "must be 0 or more")
		}
		if r.Timeout <= 0 {
			return f.errAt("state.redis.timeout", "must be positive (like 500ms)")
		}
	default:
		return f.errAt("state.backend", "%q (want bolt or redis)", s.Backend)
	}
	return nil
}

// Policy is the policy section.
type Policy struct {
	Monitor          bool     `yaml:"monitor"`
	Tag              float64  `yaml:"tag"`
	Quarantine       float64  `yaml:"quarantine"`
	Reject           float64  `yaml:"reject"`
	DecisiveSpam     string   `yaml:"decisive_spam"`
	OnError          string   `yaml:"on_error"`
	Deadline         Duration `yaml:"deadline"`
	RejectReply      string   `yaml:"reject_reply"`
	TempfailReply    string   `yaml:"tempfail_reply"`
	ErrorReply       string   `yaml:"error_reply"`
	QuarantineReason string   `yaml:"quarantine_reason"`
	SubjectTag       string   `yaml:"subject_tag"`
	Headers          string   `yaml:"headers"`
}

// Rule is one named rule.
type Rule struct {
	Name   string `yaml:"name"`
	If     string `yaml:"if"`
	Action string `yaml:"action"`
	// Reply is "CODE X.Y.Z text" or "X.Y.Z text" (the code then follows
	// the action: 550 for reject, 451 for tempfail).
	Reply string `yaml:"reply,omitempty"`
	line  int
	file  string
}

// UnmarshalYAML records the rule's line.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	type plain Rule
	if err := n.Decode((*plain)(r)); err != nil {
		return err
	}
	r.line = n.Line
	return nil
}

// Check is one entry of the chain.
type Check struct {
	Name     string             `yaml:"name"`
	Enabled  *bool              `yaml:"enabled,omitempty"`
	Decisive string             `yaml:"decisive,omitempty"`
	Timeout  Duration           `yaml:"timeout,omitempty"`
	MaxSize  Size               `yaml:"max_size,omitempty"`
	Scores   map[string]float64 `yaml:"scores,omitempty"`
	// OnTimeout is tempfail or continue; "" is the check's own default.
	OnTimeout string `yaml:"on_timeout,omitempty"`
	// AlwaysRun: a ham decision does not skip the check; nil is the
	// check's own default (true for attachment and antivirus).
	AlwaysRun *bool     `yaml:"always_run,omitempty"`
	Options   yaml.Node `yaml:"options,omitempty"`
	line      int
	file      string
	// keyLines are the lines of the entry's keys (decisive: …).
	keyLines map[string]int
}

// UnmarshalYAML records the entry's line and those of its keys.
func (c *Check) UnmarshalYAML(n *yaml.Node) error {
	type plain Check
	if err := n.Decode((*plain)(c)); err != nil {
		return err
	}
	c.line = n.Line
	if n.Kind == yaml.MappingNode {
		c.keyLines = map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.keyLines[n.Content[i].Value] = n.Content[i].Line
		}
	}
	return nil
}

// lineOf is the line of the entry's key, else of the entry.
func (c *Check) lineOf(key string) int {
	if l, ok := c.keyLines[key]; ok {
		return l
	}
	return c.line
}

// IsEnabled reports whether the check runs (default true).
func (c *Check) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// Duration and Size are the checks package's, the one home of the
// configuration's durations and sizes (checks/units.go).
type (
	Duration = checks.Duration
	Size     = checks.Size
)

// ParseSize reads a byte count with an optional unit (checks.ParseSize).
func ParseSize(s string) (int64, error) { return checks.ParseSize(s) }

// Default returns the embedded default configuration.
func Default() *File {
	f, err := parse("(default)", nil)
	if err != nil {
		panic("config: embedded default does not load: " + err.Error())
	}
	return f
}

// Load reads path laid over the embedded default; path "" gives the
// default alone.
func Load(path string) (*File, error) {
	if path == "" {
		return parse("(default)", nil)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	return parse(path, data)
}

// Parse reads configuration text as if from the named file.
func Parse(name string, data []byte) (*File, error) { return parse(name, data) }

func parse(name string, data []byte) (*File, error) {
	f := &File{places: map[string]place{}}
	if err := f.decodeInto("(default)", defaultYAML); err != nil {
		return nil, err
	}
	if data != nil {
		if err := f.decodeInto(name, data); err != nil {
			return nil, err
		}
		f.Path = name
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// decodeInto lays one file over f: a key it sets replaces f's value, and
// the lists checks:, rules: and log.sinks: are replaced whole.
func (f *File) decodeInto(name string, data []byte) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return errEmpty(name)
		}
		return syntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return syntaxError(name, err)
		}
		return &Error{File: name, Line: extra.Line, Msg: "more than one YAML document (a --- line): the configuration is one mapping"}
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 && root.Content[0].Kind != yaml.MappingNode {
		if root.Content[0].Tag == "!!null" {
			return errEmpty(name)
		}
		return &Error{File: name, Line: root.Content[0].Line, Msg: "the configuration must be a mapping of keys to values"}
	}
	// Sequences replace the defaults whole.
	if hasKey(&root, "checks") {
		f.Checks = nil
	}
	if hasKey(&root, "rules") {
		f.Rules = nil
	}
	if hasKey(&root, "log") && hasSubKey(&root, "log", "sinks") {
		f.Log.Sinks = nil
	}
	if err := decodeStrict(name, &root, f); err != nil {
		return err
	}
	if hasKey(&root, "checks") {
		for i := range f.Checks {
			f.Checks[i].file = name
		}
	}
	if hasKey(&root, "rules") {
		for i := range f.Rules {
			f.Rules[i].file = name
		}
	}
	if len(root.Content) > 0 {
		f.record(name, "", root.Content[0])
	}
	return nil
}

// errEmpty refuses a file without settings. An empty file is far more
// likely a truncated or half-written one than a wish for the defaults,
// and taking it would silently drop the deny lists, the log sinks and the
// DNS servers on the next reload. Line 1 is where the settings should be.
func errEmpty(name string) error {
	return &Error{File: name, Line: 1, Msg: "the configuration file is empty (no settings, only comments or blanks); to run with the defaults, start without -c"}
}

// record notes where every mapping key under n was set.
func (f *File) record(file, prefix string, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := prefix + n.Content[i].Value
		f.places[key] = place{file, n.Content[i].Line}
		f.record(file, key+".", n.Content[i+1])
	}
}

func hasKey(root *yaml.Node, key string) bool {
	return child(root, key) != nil
}

func hasSubKey(root *yaml.Node, key, sub string) bool {
	n := child(root, key)
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == sub {
			return true
		}
	}
	return false
}

func child(root *yaml.Node, key string) *yaml.Node {
	m := root
	if m.Kind == yaml.DocumentNode && len(m.Content) > 0 {
		m = m.Content[0]
	}
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// errAt is an error about the value of key ("policy.headers"), at the
// place that set it.
func (f *File) errAt(key string, format string, args ...any) error {
	p, ok := f.places[key]
	if !ok {
		p.file = f.Path
		if p.file == "" {
			p.file = "(default)"
		}
	}
	return &Error{File: p.file, Line: p.line, Msg: key + ": " + fmt.Sprintf(format, args...)}
}

// validate checks what the types alone do not.
func (f *File) validate() error {
	if f.Listen == "" {
		return f.errAt("listen", "empty (want inet:HOST:PORT or unix:PATH)")
	}
	if f.DNS.Timeout < 0 {
		return f.errAt("dns.timeout", "must not be negative (like 2s)")
	}
	if key, err := f.Log.Check(); err != nil {
		return f.errAt("log."+key, "%v", err)
	}
	if err := f.validateFeedback(); err != nil {
		return err
	}
	if err := f.validateConsole(); err != nil {
		return err
	}
	if f.Milter.MaxConcurrent < 0 {
		return f.errAt("milter.max_concurrent", "must be 0 (one per CPU core) or more")
	}
	for _, a := range []struct{ key, v string }{{"policy.decisive_spam", f.Policy.DecisiveSpam}, {"policy.on_error", f.Policy.OnError}} {
		if _, err := checks.ParseAction(a.v); err != nil {
			return f.errAt(a.key, "%v", err)
		}
	}
	switch checks.HeaderMode(f.Policy.Headers) {
	case checks.HeadersAlways, checks.HeadersSpam, checks.HeadersNever:
	default:
		return f.errAt("policy.headers", "%q (want always, spam or never)", f.Policy.Headers)
	}
	for _, r := range []struct {
		key, v string
		class  byte
	}{{"policy.reject_reply", f.Policy.RejectReply, '5'}, {"policy.tempfail_reply", f.Policy.TempfailReply, '4'}, {"policy.error_reply", f.Policy.ErrorReply, '4'}} {
		code, _, err := splitReply(r.v, r.class)
		if err != nil {
			return f.errAt(r.key, "%v", err)
		}
		if code[0] != r.class {
			return f.errAt(r.key, "code %s must be %cxx", code, r.class)
		}
	}
	seen := map[string]int{}
	for _, c := range f.Checks {
		if c.Name == "" {
			return &Error{File: c.file, Line: c.line, Msg: "check without a name"}
		}
		if prev, dup := seen[c.Name]; dup {
			return &Error{File: c.file, Line: c.lineOf("name"), Msg: fmt.Sprintf("check %q listed twice (first at line %d)", c.Name, prev)}
		}
		seen[c.Name] = c.lineOf("name")
		if _, ok := table[c.Name]; !ok {
			return &Error{File: c.file, Line: c.lineOf("name"), Msg: fmt.Sprintf("unknown check %q (known checks: %s)", c.Name, strings.Join(Names(), ", "))}
		}
		if c.Decisive != "" {
			if _, err := checks.ParseDecisive(c.Decisive); err != nil {
				return &Error{File: c.file, Line: c.lineOf("decisive"), Msg: fmt.Sprintf("check %q: %v", c.Name, err)}
			}
		}
		if c.OnTimeout != "" {
			if _, err := checks.ParseOnTimeout(c.OnTimeout); err != nil {
				return &Error{File: c.file, Line: c.lineOf("on_timeout"), Msg: fmt.Sprintf("check %q: %v", c.Name, err)}
			}
		}
		if err := checkMoved(&c); err != nil {
			return err
		}
	}
	if err := f.Milter.validate(f); err != nil {
		return err
	}
	if err := f.State.validate(f); err != nil {
		return err
	}
	if _, err := f.rules(); err != nil {
		return err
	}
	return nil
}

// rules turns the rules into policy rules, compiled against every known
// check, or an error at the rule's line.
func (f *File) rules() ([]checks.Rule, error) {
	var out []checks.Rule
	for _, r := range f.Rules {
		a, err := checks.ParseAction(r.Action)
		if err != nil {
			return nil, &Error{File: r.file, Line: r.line, Msg: fmt.Sprintf("rule %q: %v", r.Name, err)}
		}
		rule := checks.Rule{Name: r.Name, If: r.If, Action: a}
		if r.Reply != "" {
			class := byte('5')
			if a == checks.Tempfail {
				class = '4'
			}
			code, text, err := splitReply(r.Reply, class)
			if err != nil {
				return nil, &Error{File: r.file, Line: r.line, Msg: fmt.Sprintf("rule %q: %v", r.Name, err)}
			}
			if a == checks.Reject && code[0] != '5' || a == checks.Tempfail && code[0] != '4' {
				return nil, &Error{File: r.file, Line: r.line, Msg: fmt.Sprintf("rule %q: reply code %s does not fit action %s", r.Name, code, a)}
			}
			rule.Code, rule.Reply = code, text
		}
		out = append(out, rule)
	}
	p := &checks.Policy{Rules: out, Aliases: aliases(), Facts: facts()}
	if err := p.Compile(Names()); err != nil {
		var re *checks.RuleError
		if errors.As(err, &re) && re.Index < len(f.Rules) {
			r := f.Rules[re.Index]
			return nil, &Error{File: r.file, Line: r.line, Msg: err.Error()}
		}
		return nil, &Error{File: f.Path, Msg: err.Error()}
	}
	return p.Rules, nil
}

// enhancedCode is the RFC 3463 status code at the start of a reply text.
var enhancedCode = regexp.MustCompile(`^([245])\.[0-9]{1,3}\.[0-9]{1,3}(\s|$)`)

// splitReply splits "550 5.7.1 text" into code and "5.7.1 text"; a reply
// without a code gets the default code of its class.
func splitReply(s string, class byte) (code, text string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", fmt.Errorf("empty reply")
	}
	if len(s) >= 3 && isCode(s[:3]) && (len(s) == 3 || s[3] == ' ') {
		code, text = s[:3], strings.TrimSpace(s[3:])
		if text == "" {
			return "", "", fmt.Errorf("reply %q has no text", s)
		}
	} else {
		switch class {
		case '5':
			code = "550"
		case '4':
			code = "451"
		default:
			return "", "", fmt.Errorf("reply %q needs an SMTP code for this action", s)
		}
		text = s
	}
	// RFC 3463 §3: the class of the enhanced code is that of the reply.
	if m := enhancedCode.FindStringSubmatch(text); m != nil && m[1][0] != code[0] {
		return "", "", fmt.Errorf("reply %q: enhanced code class %s.x.x does not fit code %s", s, m[1], code)
	}
	return code, text, nil
}

func isCode(s string) bool {
	return (s[0] == '4' || s[0] == '5') && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}

// Marshal returns the effective configuration as YAML.
func (f *File) Marshal() ([]byte, error) {
	// A copy, so secrets are not printed: settings of type checks.Secret
	// print themselves as (hidden); in check options they are found by
	// the options' declared types (secret.go).
	o := *f
	o.Checks = make([]Check, len(f.Checks))
	for i, c := range f.Checks {
		if ctor, ok := table[c.Name]; ok && c.Options.Kind != 0 {
			c.Options = *hideSecrets(&c.Options, ctor.typ)
		}
		o.Checks[i] = c
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&o); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
