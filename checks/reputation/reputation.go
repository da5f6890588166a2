// Package reputation is the reputation check (name "reputation", alias
// "sdr" in rules): a sender-domain verdict on Cisco's SDR scale from the
// chainmail/reputation library, with the two SDR log lines.
//
// The check runs after spf, dkim and dmarc (their outcomes are inputs)
// and reports; rules decide, e.g.
//
//	sdr.verdict in ["awful", "poor"] && !sdr.excepted → reject
//
// Facts, as rules see them under reputation.* and sdr.*:
//
//	verdict          awful, poor, tainted, weak, unknown, neutral, good
//	                 ("" when the verdict was skipped or could not be had)
//	threat           threat category ("" when none)
//	suspected        domains with evidence against them
//	age_days         age of the youngest domain, -1 when unknown
//	youngest_domain  that domain
//	excepted         a sender domain is on the exception list
//	exception_lists  the named exception lists a sender domain is on
//	unscannable      no verdict could be computed (no domain, store down)
//	trust            the sum of the evidence points
//	evidence         the evidence, one text each
//
// Symbols: SDR_AWFUL, SDR_POOR, SDR_TAINTED, SDR_WEAK, SDR_UNKNOWN,
// SDR_NEUTRAL, SDR_GOOD by verdict; SDR_RDAP_FAIL and SDR_LIST_FAIL
// (score 0) when an input could not be had.
//
// Status: fail (awful, poor, tainted, weak), pass (neutral, good),
// neutral (unknown), none (excepted or nothing to judge), temperror
// (state store unreachable: mail flows, DESIGN failure policy).
//
// The check learns from every final verdict (checks.Learner): the sender
// domains, addresses and network of a clean message count clean, of a
// spam message spam; the writes are batched off the hot path.
package reputation

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"chainmail/checks"
	"chainmail/checks/address"
	"chainmail/checks/auth"
	"chainmail/checks/secret"
	"chainmail/checks/verdictlog"
	rep "chainmail/reputation"
	"chainmail/store"
)

// Name is the check's name.
const Name = "reputation"

// RDAP configures domain-age lookups.
type RDAP struct {
	Enabled bool `yaml:"enabled"`
	// BootstrapFile is an IANA dns.json (RFC 9224) read at start; empty
	// means BootstrapURL, fetched at first use.
	BootstrapFile string `yaml:"bootstrap_file"`
	BootstrapURL  string `yaml:"bootstrap_url"`
	// Servers are RDAP base URLs by domain suffix that win over the
	// bootstrap data.
	Servers map[string]string `yaml:"servers"`
	Timeout time.Duration     `yaml:"timeout"`
}

// Config configures the check.
type Config struct {
	// KeyPrefix starts the check's store keys.
	KeyPrefix string `yaml:"key_prefix"`
	// HalfLife is how fast history fades.
	HalfLife time.Duration `yaml:"half_life"`
	// Learn from final verdicts (off for replays that must not teach).
	Learn bool `yaml:"learn"`
	// FeedbackWeight is how many verdicts one report counts in the
	// record; the spam share is judged without the bad reports' weight
	// (a bad report is evidence as a report), so in effect a good report
	// counts as this many clean verdicts.
	FeedbackWeight float64 `yaml:"feedback_weight"`
	// Exceptions: mail from these domains (and subdomains) gets no
	// verdict.
	Exceptions []string `yaml:"exceptions"`
	// ExceptionLists are named lists rules test:
	// `"partners" in sdr.exception_lists`.
	ExceptionLists map[string][]string `yaml:"exception_lists"`
	// Lists are DNS domain lists.
	Lists []rep.List `yaml:"lists"`
	RDAP  RDAP       `yaml:"rdap"`
	// FeedbackTokenFile holds the bearer token of the feedback endpoint
	// ("submit as good/bad"); empty turns the endpoint off.
	FeedbackTokenFile string `yaml:"feedback_token_file"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		KeyPrefix:      "rep:",
		HalfLife:       60 * 24 * time.Hour,
		Learn:          true,
		FeedbackWeight: 5,
		RDAP:           RDAP{Enabled: true, BootstrapURL: rep.DefaultBootstrapURL, Timeout: 5 * time.Second},
	}
}

// Check is the reputation check.
type Check struct {
	cfg   Config
	rep   *rep.Reputation
	token string
}

// New builds the check over the state store st; res resolves the DNS
// lists. Background write failures go to logf (may be nil).
func New(cfg Config, st store.Store, res rep.Resolver, logf func(string, ...any)) (*Check, error) {
	if st == nil {
		return nil, errors.New("the reputation check needs the state store (state: in the configuration)")
	}
	var token string
	if cfg.FeedbackTokenFile != "" {
		t, err := secret.ReadToken(cfg.FeedbackTokenFile)
		if err != nil {
			return nil, fmt.Errorf("feedback_token_file: %v", err)
		}
		token = string(t)
	}
	var ages rep.AgeSource
	if cfg.RDAP.Enabled {
		r, err := rep.NewRDAP(rep.RDAPConfig{
			BootstrapFile: cfg.RDAP.BootstrapFile,
			BootstrapURL:  cfg.RDAP.BootstrapURL,
			Servers:       cfg.RDAP.Servers,
			Timeout:       cfg.RDAP.Timeout,
			UserAgent:     "chainmail",
		})
		if err != nil {
			return nil, err
		}
		ages = r
	}
	r, err := rep.New(rep.Config{
		KeyPrefix:      cfg.KeyPrefix,
		HalfLife:       cfg.HalfLife,
		FeedbackWeight: cfg.FeedbackWeight,
		Exceptions:     cfg.Exceptions,
		ExceptionLists: cfg.ExceptionLists,
		Lists:          cfg.Lists,
		Logf:           logf,
	}, st, ages, res)
	if err != nil {
		return nil, err
	}
	return &Check{cfg: cfg, rep: r, token: token}, nil
}

// NewWith builds the check on a ready library instance (tests).
func NewWith(cfg Config, r *rep.Reputation) *Check { return &Check{cfg: cfg, rep: r} }

// Name implements checks.Check.
func (c *Check) Name() string { return Name }

// Aliases implements checks.Aliased: rules say sdr.verdict.
func (*Check) Aliases() []string { return []string{"sdr"} }

// Facts implements checks.Factual: what rules see when the check did not
// run.
func (*Check) Facts() map[string]any {
	return map[string]any{
		"verdict": "", "threat": "", "suspected": []string{}, "age_days": -1, "youngest_domain": "",
		"excepted": false, "exception_lists": []string{}, "unscannable": false, "trust": 0.0, "evidence": []string{},
	}
}

// DependsOn implements checks.Dependent.
func (*Check) DependsOn() []string { return []string{"spf", "dkim", "dmarc"} }

// Subject is what the library is asked about m; results are the
// authentication checks' results (prior, or a verdict's results).
func Subject(m *checks.Message, results checks.Results) rep.Subject {
	s := rep.Subject{
		ClientIP:   m.ClientIP,
		ReverseDNS: m.ClientName,
		HELO:       m.HELO,
		EnvFrom:    m.MailFrom,
		HeaderFrom: address.FirstMailbox(checks.Unfold(m.Get("From"))).Address,
		ReplyTo:    address.FirstMailbox(checks.Unfold(m.Get("Reply-To"))).Address,
	}
	status := func(st checks.Status, ok bool) string {
		if ok && st != checks.StatusSkipped {
			return string(st)
		}
		return ""
	}
	spf, spfOK := auth.SPFOf(results)
	dkim, dkimOK := auth.DKIMOf(results)
	dmarc, dmarcOK := results.Get("dmarc")
	s.Auth = rep.Auth{DMARC: status(dmarc.Status, dmarcOK), SPF: status(spf.Status, spfOK), DKIM: status(dkim.Status, dkimOK)}
	if dmarcOK {
		// The policy the domain publishes, not the one sampled for this
		// message: p=none says failures are expected (forwarding, lists).
		s.Auth.DMARCPolicy, _ = dmarc.Facts["published_policy"].(string)
	}
	return s
}

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, prior checks.Results) checks.Result {
	a, err := c.rep.Assess(ctx, Subject(m, prior))
	return result(m.QueueID, a, err)
}

// symbolScores are the default scores of the verdict symbols.
var symbolScores = map[rep.Verdict]float64{
	rep.Awful: 5, rep.Poor: 3, rep.Tainted: 2, rep.Weak: 1,
	rep.Unknown: 0, rep.Neutral: 0, rep.Good: -1,
}

// result turns an assessment into the check's result and log lines.
func result(id string, a *rep.Assessment, err error) checks.Result {
	d := a.Domains
	doms := verdictlog.SDRDomains{ReverseDNS: d.ReverseDNS, HELO: d.HELO, EnvFrom: d.EnvFrom, HeaderFrom: d.HeaderFrom, ReplyTo: d.ReplyTo}
	events := []checks.Event{doms.Event(id)}
	ageDays := -1
	if a.AgeKnown {
		ageDays = a.AgeDays
	}
	evidence := make([]string, 0, len(a.Evidence))
	for _, e := range a.Evidence {
		evidence = append(evidence, evidenceText(e))
	}
	r := checks.Result{Facts: map[string]any{
		"verdict":         "",
		"threat":          a.Threat,
		"suspected":       nonNil(a.Suspected),
		"age_days":        ageDays,
		"youngest_domain": a.Youngest,
		"excepted":        a.Excepted,
		"exception_lists": nonNil(a.ExceptionLists),
		"unscannable":     a.Unscannable,
		"trust":           a.Score,
		"evidence":        evidence,
	}}
	switch {
	case err != nil:
		r.Status, r.Err = checks.StatusTemperror, err
		r.Reason = "state store: " + err.Error()
		events = append(events, verdictlog.SDREvidence(id, "state store unreachable, no verdict"))
		r.Events = events
		return r
	case a.Excepted:
		r.Status = checks.StatusNone
		r.Reason = a.ExceptedBy + " is on the exception list"
		events = append(events, verdictlog.SDREvidence(id, a.ExceptedBy+" is on the exception list, verdict skipped"))
		r.Events = events
		return r
	}
	r.Facts["verdict"] = string(a.Verdict)
	switch a.Verdict {
	case rep.Awful, rep.Poor, rep.Tainted, rep.Weak:
		r.Status = checks.StatusFail
	case rep.Neutral, rep.Good:
		r.Status = checks.StatusPass
	default:
		r.Status = checks.StatusNeutral
	}
	if a.Unscannable {
		r.Status = checks.StatusNone
	}
	r.Symbols = append(r.Symbols, checks.Symbol{Name: "SDR_" + strings.ToUpper(string(a.Verdict)), Score: symbolScores[a.Verdict], Detail: a.Threat})
	var rdapFail, listFail []string
	for _, e := range a.Evidence {
		switch e.Input {
		case "rdap":
			rdapFail = append(rdapFail, e.Text)
		case "dns":
			listFail = append(listFail, e.Text)
		}
	}
	if len(rdapFail) > 0 {
		r.Symbols = append(r.Symbols, checks.Symbol{Name: "SDR_RDAP_FAIL", Detail: strings.Join(rdapFail, "; ")})
	}
	if len(listFail) > 0 {
		r.Symbols = append(r.Symbols, checks.Symbol{Name: "SDR_LIST_FAIL", Detail: strings.Join(listFail, "; ")})
	}
	for _, s := range r.Symbols {
		r.Score += s.Score
	}
	r.Reason = fmt.Sprintf("%s (%s)", capital(string(a.Verdict)), strconv.FormatFloat(a.Score, 'f', -1, 64))
	v := verdictlog.SDRVerdict{
		Verdict: string(a.Verdict), ThreatCategory: a.Threat, SuspectedDomains: a.Suspected,
		YoungestDomain: a.Youngest, AgeDays: a.AgeDays, AgeKnown: a.AgeKnown, Trust: a.Score, Evidence: a.Evidence,
	}
	events = append(events, v.Event(id))
	if len(evidence) > 0 {
		events = append(events, verdictlog.SDREvidence(id, strings.Join(evidence, "; ")))
	}
	r.Events = events
	return r
}

// evidenceText is "text (+2)" or, for an input that failed, "text".
func evidenceText(e rep.Evidence) string {
	if e.Points == 0 {
		return e.Text
	}
	sign := ""
	if e.Points > 0 {
		sign = "+"
	}
	return e.Text + " (" + sign + strconv.FormatFloat(e.Points, 'f', -1, 64) + ")"
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Learn implements checks.Learner: a delivered clean message counts
// clean, a spam verdict spam. Authenticated submissions, tempfails and
// messages the check did not assess teach nothing, and neither does a
// spam verdict on a message the check itself judged Poor or Awful: that
// verdict may be the check's own opinion (the sdr-reject rule), and
// learning it back would keep a sender down for good on nothing new.
func (c *Check) Learn(_ context.Context, m *checks.Message, v *checks.Verdict) {
	if !c.cfg.Learn || m.AuthUser != "" {
		return
	}
	if v.Decided() == checks.Tempfail {
		return
	}
	r, ok := v.Results.Get(Name)
	if !ok || r.Status == checks.StatusTemperror || r.Status == checks.StatusSkipped || r.Status == checks.StatusTimeout || r.Status == checks.StatusError {
		return
	}
	if verdict, _ := r.Facts["verdict"].(string); v.Spam && (verdict == string(rep.Awful) || verdict == string(rep.Poor)) {
		return
	}
	c.rep.Learn(Subject(m, v.Results), v.Spam)
}

// Feedback records an explicit report on m (learn --good/--bad, the
// feedback endpoint). The report is dated by the message's Date field
// when it has one in the past, so an archive teaches history as it was.
func (c *Check) Feedback(ctx context.Context, m *checks.Message, good bool) error {
	s := Subject(m, nil)
	if t, err := mail.ParseDate(checks.Unfold(m.Get("Date"))); err == nil {
		s.At = t
	}
	return c.rep.Feedback(ctx, s, good)
}

// Flush writes the queued history now.
func (c *Check) Flush(ctx context.Context) error { return c.rep.Flush(ctx) }
