package config_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/gtube"
	"chainmail/store/storetest/memstore"
)

func parse(t *testing.T, text string) *config.File {
	t.Helper()
	f, err := config.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

// offline is a resolver for which no name exists: the DNS checks of the
// default chain build and run without the network.
type offline struct{}

func notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (offline) LookupTXT(_ context.Context, name string) ([]string, error) {
	return nil, notFound(name)
}
func (offline) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return nil, notFound(host)
}
func (offline) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return nil, notFound(name)
}
func (offline) LookupAddr(_ context.Context, addr string) ([]string, error) {
	return nil, notFound(addr)
}
func (offline) LookupHost(_ context.Context, host string) ([]string, error) {
	return nil, notFound(host)
}

var deps = config.Deps{Resolver: offline{}, Store: memstore.New()}

func build(t *testing.T, f *config.File) *checks.Engine {
	t.Helper()
	e, err := f.Build(deps)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return e
}

func message(t *testing.T, from, raw string) *checks.Message {
	t.Helper()
	s := checks.NewSpool(0, "")
	t.Cleanup(func() { s.Close() })
	m, err := checks.ReadMessage(strings.NewReader(raw), s)
	if err != nil {
		t.Fatal(err)
	}
	m.ClientIP = net.ParseIP("192.0.2.10")
	m.MailFrom = from
	m.Rcpts = []string{"user@example.org"}
	m.QueueID = "4ABC"
	return m
}

func evaluate(t *testing.T, e *checks.Engine, m *checks.Message) *checks.Verdict {
	t.Helper()
	v, _ := e.Evaluate(context.Background(), m)
	return v
}

// stepSummary is what a chain step is, without the check itself.
type stepSummary struct {
	Name     string
	Decisive checks.Decisive
	Timeout  time.Duration
	MaxSize  int64
	Scores   map[string]float64
}

func steps(e *checks.Engine) []stepSummary {
	var out []stepSummary
	for _, s := range e.Chain.Steps {
		sc := s.Scores
		if len(sc) == 0 {
			sc = nil
		}
		out = append(out, stepSummary{s.Check.Name(), s.Decisive, s.Timeout, s.MaxSize, sc})
	}
	return out
}

func TestDefault(t *testing.T) {
	f := config.Default()
	if f.Path != "" || f.Listen != "inet:127.0.0.1:10025" || f.Hostname != "" {
		t.Errorf("default: path %q listen %q hostname %q", f.Path, f.Listen, f.Hostname)
	}
	if g, err := config.Load(""); err != nil || !reflect.DeepEqual(g, f) {
		t.Errorf("Load(\"\") differs from Default(): %v", err)
	}
	if !strings.Contains(string(config.DefaultYAML()), "checks:") {
		t.Error("DefaultYAML lacks checks:")
	}
	names := config.Names()
	if !sort.StringsAreSorted(names) || !slices.Contains(names, "gtube") || !slices.Contains(names, "lists") {
		t.Errorf("Names() = %v", names)
	}
	e := build(t, f)
	// The default chain starts with the local lists; gtube comes later.
	got := steps(e)
	if len(got) < 2 || !reflect.DeepEqual(got[0], stepSummary{"lists", checks.DecisiveBoth, time.Second, 0, nil}) {
		t.Errorf("first step %+v, want lists (decisive both, 1s)", got)
	}
	found := false
	for _, s := range got {
		if s.Name == "gtube" {
			found = true
			if want := (stepSummary{"gtube", checks.DecisiveSpam, 5 * time.Second, 10 << 20, nil}); !reflect.DeepEqual(s, want) {
				t.Errorf("gtube step %+v, want %+v", s, want)
			}
		}
	}
	if !found {
		t.Errorf("no gtube step in %+v", got)
	}
	if !reflect.DeepEqual(e.Known, names) {
		t.Errorf("Known %v, want Names() %v", e.Known, names)
	}
	if e.Chain.Deadline != time.Minute {
		t.Errorf("deadline %v", e.Chain.Deadline)
	}
	p := e.Policy
	// An empty hostname means this machine's name.
	wantHost, _ := os.Hostname()
	if p.Tag != 5 || p.Quarantine != 10 || p.Reject != 15 || p.DecisiveSpam != checks.Reject || p.OnError != checks.Tempfail ||
		p.RejectCode != "550" || p.RejectReply != "5.7.1 Message rejected as spam" ||
		p.TempfailCode != "451" || p.ErrorCode != "451" || p.Headers != checks.HeadersAlways || p.Hostname != wantHost || p.Monitor {
		t.Errorf("policy %+v", p)
	}
	if len(p.Rules) < 1 || p.Rules[0].Name != "deny-list" || p.Rules[0].Action != checks.Reject || p.Rules[0].Code != "550" || p.Rules[0].Reply != "5.7.1 Message rejected by local policy" {
		t.Errorf("rules %+v", p.Rules)
	}

	// The default engine works end to end.
	v := evaluate(t, e, message(t, "a@example.com", "From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"))
	if v.Action != checks.Accept || v.Spam {
		t.Errorf("clean mail: %v spam=%v why=%q", v.Action, v.Spam, v.Why)
	}
	v = evaluate(t, e, message(t, "a@example.com", "From: a@example.com\r\n\r\n"+gtube.String+"\r\n"))
	if v.Action != checks.Reject || v.Why.String() != "decisive:gtube" || v.SMTPReply() != "550 5.7.1 Message rejected as spam" {
		t.Errorf("GTUBE: %v why=%q %q", v.Action, v.Why, v.SMTPReply())
	}
}

func TestDenyListRule(t *testing.T) {
	// A denied sender is decisive spam (reject) and matches the default
	// deny-list rule, whose reply is the one the sender sees.
	f := parse(t, `
checks:
  - name: lists
    decisive: both
    options:
      deny: {senders: [spammer.example]}
      allow: {clients: [192.0.2.0/24]}
  - name: gtube
`)
	e := build(t, f)
	v := evaluate(t, e, message(t, "boss@spammer.example", "From: boss@spammer.example\r\n\r\nhi\r\n"))
	if v.Action != checks.Reject || v.Why.String() != "rule:deny-list" || v.SMTPReply() != "550 5.7.1 Message rejected by local policy" {
		t.Errorf("denied sender: %v why=%q %q", v.Action, v.Why, v.SMTPReply())
	}
	// An allowed client is ham: gtube does not even run.
	v = evaluate(t, e, message(t, "a@example.com", "From: a@example.com\r\n\r\n"+gtube.String+"\r\n"))
	if v.Action != checks.Accept || v.Why.String() != "decisive:lists" {
		t.Errorf("allowed client: %v why=%q", v.Action, v.Why)
	}
	if r, _ := v.Results.Get("gtube"); r.Status != checks.StatusSkipped || r.Reason != "decisive lists" {
		t.Errorf("gtube after an allowed client: %+v", r)
	}
}

func TestParseOverlay(t *testing.T) {
	t.Run("keys replace, others stay", func(t *testing.T) {
		f := parse(t, "hostname: mx.example.net\npolicy:\n  tag: 7\n  subject_tag: '[SPAM] %s'\n")
		if f.Path != "test.yaml" || f.Hostname != "mx.example.net" || f.Listen != "inet:127.0.0.1:10025" {
			t.Errorf("path %q hostname %q listen %q", f.Path, f.Hostname, f.Listen)
		}
		if f.Policy.Tag != 7 || f.Policy.Quarantine != 10 || f.Policy.Reject != 15 || f.Policy.SubjectTag != "[SPAM] %s" || f.Policy.Headers != "always" {
			t.Errorf("policy %+v", f.Policy)
		}
		def := config.Default()
		if !reflect.DeepEqual(checkNames(f), checkNames(def)) || len(f.Rules) != len(def.Rules) || !reflect.DeepEqual(f.Log, def.Log) || !reflect.DeepEqual(f.DNS, def.DNS) {
			t.Errorf("untouched settings changed: checks %v, %d rules, log %+v", checkNames(f), len(f.Rules), f.Log)
		}
		e := build(t, f)
		if e.Policy.Tag != 7 || e.Policy.Hostname != "mx.example.net" || e.Policy.SubjectTag != "[SPAM] %s" {
			t.Errorf("built policy %+v", e.Policy)
		}
	})
	t.Run("checks replace whole", func(t *testing.T) {
		f := parse(t, "checks:\n  - name: gtube\n    timeout: 2s\n    scores: {GTUBE: 50}\n")
		want := []stepSummary{{"gtube", checks.DecisiveNone, 2 * time.Second, 0, map[string]float64{"GTUBE": 50}}}
		if got := steps(build(t, f)); !reflect.DeepEqual(got, want) {
			t.Errorf("steps %+v, want %+v", got, want)
		}
	})
	t.Run("disabled check", func(t *testing.T) {
		f := parse(t, "checks:\n  - name: gtube\n    enabled: false\n  - name: lists\n")
		if got := steps(build(t, f)); len(got) != 1 || got[0].Name != "lists" {
			t.Errorf("steps %+v", got)
		}
	})
	t.Run("rules replace whole", func(t *testing.T) {
		f := parse(t, "rules:\n  - name: mine\n    if: 'gtube.status == \"spam\"'\n    action: quarantine\n")
		if len(f.Rules) != 1 || f.Rules[0].Name != "mine" {
			t.Errorf("rules %+v", f.Rules)
		}
		if f := parse(t, "rules: []\n"); len(f.Rules) != 0 {
			t.Errorf("rules: [] left %+v", f.Rules)
		}
		if f := parse(t, "rules:\n"); len(f.Rules) != 0 {
			t.Errorf("rules: (null) left %+v", f.Rules)
		}
	})
	t.Run("log sinks replace whole, log keys merge", func(t *testing.T) {
		f := parse(t, "log:\n  format: json\n")
		if f.Log.Format != "json" || f.Log.Tag != "chainmail" || len(f.Log.Sinks) != 1 || f.Log.Sinks[0].Type != "stderr" {
			t.Errorf("log %+v", f.Log)
		}
		f = parse(t, "log:\n  sinks:\n    - type: file\n      path: /tmp/x.log\n")
		if len(f.Log.Sinks) != 1 || f.Log.Sinks[0].Type != "file" || f.Log.Sinks[0].Path != "/tmp/x.log" {
			t.Errorf("sinks %+v", f.Log.Sinks)
		}
	})
	t.Run("sizes and durations", func(t *testing.T) {
		f := parse(t, "spool: {threshold: 512KiB}\nmilter: {timeout: 90s}\n")
		if f.Spool.Threshold != 512<<10 || time.Duration(f.Milter.Timeout) != 90*time.Second || f.Milter.MaxHeaderBytes != 4<<20 {
			t.Errorf("spool %+v milter %+v", f.Spool, f.Milter)
		}
	})
	// An empty file is refused (at start and on reload), never taken as
	// "all defaults".
	for _, empty := range []string{"", "# nothing but a comment\n", "---\n", "~\n", "\n  \n"} {
		_, err := config.Parse("empty.yaml", []byte(empty))
		if err == nil || !strings.Contains(err.Error(), "empty.yaml:1: the configuration file is empty") {
			t.Errorf("%q: %v", empty, err)
		}
	}
}

// TestBadConfigs reads every testdata/bad/NAME.yaml, which must fail to
// load with the error in NAME.want (file:line: reason).
func TestBadConfigs(t *testing.T) {
	yamls, _ := filepath.Glob("testdata/bad/*.yaml")
	wants, _ := filepath.Glob("testdata/bad/*.want")
	if len(yamls) == 0 || len(yamls) != len(wants) {
		t.Fatalf("%d .yaml and %d .want files", len(yamls), len(wants))
	}
	for _, path := range yamls {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".want")
			if err != nil {
				t.Fatal(err)
			}
			f, err := config.Load(path)
			if err == nil {
				_, err = f.Build(deps)
			}
			if err == nil {
				t.Fatal("loaded and built without an error")
			}
			w := strings.TrimSpace(string(want))
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, w)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.File != path || ce.Line <= 0 {
				t.Errorf("error %#v: want a *config.Error at a line of %s", err, path)
			}
		})
	}
}

func TestErrorsNameTheFileThatSetTheValue(t *testing.T) {
	// A rule from the default that fails only because of the user's file
	// is impossible; but an error in the user's checks must not name the
	// default, and a valid user file must not be blamed for the default.
	_, err := config.Parse("mine.yaml", []byte("hostname: x\nchecks:\n  - name: gtube\n    decisive: maybe\n"))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != "mine.yaml" || ce.Line != 4 {
		t.Errorf("%v", err)
	}
	if _, err := config.Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	custom := parse(t, `
hostname: mx.example.net
listen: unix:/run/chainmail.sock
policy:
  monitor: true
  tag: 4.5
  reject: 0
  on_error: accept
  deadline: 30s
  subject_tag: "***SPAM*** %s"
  headers: spam
  reject_reply: "5.7.1 Go away"
rules:
  - name: gtube-q
    if: 'gtube.status == "spam"'
    action: quarantine
  - name: deny
    if: 'lists.status == "listed"'
    action: tempfail
    reply: "4.7.1 later"
checks:
  - name: gtube
    decisive: spam
    timeout: 1500ms
    max_size: 2MiB
    scores: {GTUBE: 40}
    options:
      max_scan: 1048576
  - name: lists
    enabled: false
    options:
      deny: {senders: ["*@*.spam.example"], clients: ["2001:db8::/32"]}
`)
	for name, f := range map[string]*config.File{"default": config.Default(), "custom": custom} {
		t.Run(name, func(t *testing.T) {
			out, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			g, err := config.Parse("marshalled.yaml", out)
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, out)
			}
			again, err := g.Marshal()
			if err != nil || string(again) != string(out) {
				t.Errorf("Marshal is not a fixed point (%v):\n%s\n---\n%s", err, out, again)
			}
			e1, e2 := build(t, f), build(t, g)
			if !reflect.DeepEqual(steps(e1), steps(e2)) {
				t.Errorf("steps %+v, re-parsed %+v", steps(e1), steps(e2))
			}
			p1, p2 := *e1.Policy, *e2.Policy
			if len(p1.Rules) != len(p2.Rules) {
				t.Fatalf("rules %d, re-parsed %d", len(p1.Rules), len(p2.Rules))
			}
			for i := range p1.Rules {
				a, b := p1.Rules[i], p2.Rules[i]
				if a.Name != b.Name || a.If != b.If || a.Action != b.Action || a.Code != b.Code || a.Reply != b.Reply {
					t.Errorf("rule %d: %+v, re-parsed %+v", i, a, b)
				}
			}
			p1.Rules, p2.Rules = nil, nil
			if !reflect.DeepEqual(policyFields(&p1), policyFields(&p2)) {
				t.Errorf("policy %+v, re-parsed %+v", p1, p2)
			}
			if f.Listen != g.Listen || f.Hostname != g.Hostname || !reflect.DeepEqual(f.Log, g.Log) || f.Spool != g.Spool || f.Milter != g.Milter || f.Metrics != g.Metrics {
				t.Errorf("top-level settings differ after a round trip")
			}
		})
	}
	out, _ := custom.Marshal()
	for _, s := range []string{"max_scan: 1048576", "*@*.spam.example", "enabled: false", "timeout: 1.5s", "max_size: 2097152", "monitor: true"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("marshalled custom config lacks %q:\n%s", s, out)
		}
	}
}

func checkNames(f *config.File) []string {
	var out []string
	for _, c := range f.Checks {
		out = append(out, c.Name)
	}
	return out
}

// policyFields is the exported state of a policy.
func policyFields(p *checks.Policy) map[string]any {
	out := map[string]any{}
	v := reflect.ValueOf(p).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Type().Field(i); f.IsExported() {
			out[f.Name] = v.Field(i).Interface()
		}
	}
	return out
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"1048576", 1048576, false},
		{"512b", 512, false},
		{"1K", 1024, false},
		{"1kb", 1024, false},
		{"512KiB", 512 << 10, false},
		{"10MiB", 10 << 20, false},
		{"10 MiB", 10 << 20, false},
		{" 1MB ", 1 << 20, false},
		{"2GiB", 2 << 30, false},
		{"3g", 3 << 30, false},
		{"8589934591GiB", 8589934591 << 30, false},
		{"8589934592GiB", 0, true}, // overflows int64
		{"99999999999999999999", 0, true},
		{"", 0, true},
		{"MiB", 0, true},
		{"-1", 0, true},
		{"1.5MiB", 0, true},
		{"10XB", 0, true},
		{"1TiB", 0, true},
	} {
		got, err := config.ParseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// The effective configuration never prints the Redis passwords, and the
// File it came from keeps them.
func TestMarshalHidesSecrets(t *testing.T) {
	f, err := config.Parse("s.yaml", []byte("state:\n  backend: redis\n  redis:\n    addrs: [\"127.0.0.1:6379\"]\n    password: s3cret-one\n    sentinel_password: s3cret-two\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || strings.Count(string(out), "(hidden)") != 2 {
		t.Errorf("secrets in the effective configuration:\n%s", out)
	}
	if f.State.Redis.Password != "s3cret-one" || f.State.Redis.SentinelPassword != "s3cret-two" {
		t.Errorf("Marshal changed the configuration: %+v", f.State.Redis)
	}
}

// Secrets inside a check's options (declared with the checks.Secret type)
// are hidden too: a quota webhook's header values.
func TestMarshalHidesSecretsInCheckOptions(t *testing.T) {
	f := parse(t, `
checks:
  - name: quota
    options:
      quotas:
        - {name: out, track: sasl_user, messages: 100, period: 1h, action: alert}
      webhook:
        url: https://alerts.example/hook
        headers: {Authorization: "Bearer tok-s3cret", X-Api-Key: k3y-s3cret}
`)
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || strings.Count(string(out), "(hidden)") != 2 || !strings.Contains(string(out), "Authorization") {
		t.Errorf("secrets in the effective configuration:\n%s", out)
	}
	// The File keeps them: the check still sends the real header.
	again, _ := f.Marshal()
	if string(again) != string(out) || !strings.Contains(nodeText(t, &f.Checks[0].Options), "tok-s3cret") {
		t.Errorf("Marshal changed the configuration")
	}
}

func nodeText(t *testing.T, n *yaml.Node) string {
	t.Helper()
	b, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A password in a URL (https://user:password@host/…, which Go's HTTP
// client sends as basic authentication) is a secret too: the quota
// webhook's url prints with the password hidden.
func TestMarshalHidesURLPasswords(t *testing.T) {
	f := parse(t, `
checks:
  - name: quota
    options:
      quotas:
        - {name: out, track: sasl_user, messages: 100, period: 1h, action: alert}
      webhook:
        url: https://alerts:pw-s3cret@alerts.example/hook
`)
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "alerts.example/hook") {
		t.Errorf("URL password in the effective configuration:\n%s", out)
	}
	if !strings.Contains(nodeText(t, &f.Checks[0].Options), "pw-s3cret") {
		t.Errorf("Marshal changed the configuration")
	}
}
