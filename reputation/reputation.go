// Package reputation gives sender-domain verdicts on Cisco's Sender Domain
// Reputation scale (Awful, Poor, Tainted, Weak, Unknown, Neutral, Good)
// from evidence this installation can explain line by line.
//
// # Mechanism
//
// A Subject names the senders of one message: the client's reverse-DNS
// host and HELO, and the domains of the envelope sender, the header From
// and the Reply-To (the five SDR "domains for which SDR is requested").
// Each is reduced to its registrable domain (public suffix list). Assess
// then gathers, for these domains, the sender addresses and the client's
// network (/24, /48):
//
//   - history: one record per entity in the store (first seen, decaying
//     counts of clean and spam verdicts, explicit good/bad feedback), all
//     read in one batched store round trip (Store.Do); a domain's record
//     also caches its RDAP answer, so the same read gives the age;
//   - domain age from RDAP (see rdap.go) when the record has none, each
//     answer, good or bad, written back to the record (a failure with a
//     back-off, Retry-After honoured);
//   - DNS domain lists (newly-registered-domain lists, domain blocklists);
//   - authentication outcomes (aligned DMARC pass builds trust, DMARC, SPF
//     and DKIM failures cost it).
//
// Every input that moves the verdict is an Evidence with points and a
// text; the sum maps to the verdict (see Verdict). Writes (Learn from
// final verdicts, RDAP answers) are queued and written in batches off the
// hot path; Feedback writes at once.
//
// Counts decay with a half-life, so a domain's past fades: with the
// default 60 days a clean streak of a year ago weighs 1/64 of today's.
// The library imports neither checks nor milter.
package reputation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"chainmail/checks/address"
	"chainmail/store"
)

// Verdict is a sender reputation on Cisco's SDR scale.
type Verdict string

// Verdicts, worst first. Unknown means there was nothing to judge by.
const (
	Awful   Verdict = "awful"
	Poor    Verdict = "poor"
	Tainted Verdict = "tainted"
	Weak    Verdict = "weak"
	Unknown Verdict = "unknown"
	Neutral Verdict = "neutral"
	Good    Verdict = "good"
)

// Verdicts lists the scale, worst first.
var Verdicts = []Verdict{Awful, Poor, Tainted, Weak, Unknown, Neutral, Good}

// verdictFor maps the sum of the evidence points to the scale: ≤ -7
// Awful, ≤ -4 Poor, ≤ -2 Tainted, < 0 Weak, ≥ 4 Good, else Neutral.
func verdictFor(score float64, informed bool) Verdict {
	switch {
	case !informed:
		return Unknown
	case score <= -7:
		return Awful
	case score <= -4:
		return Poor
	case score <= -2:
		return Tainted
	case score < 0:
		return Weak
	case score >= 4:
		return Good
	}
	return Neutral
}

// Threat categories.
const (
	ThreatSpam      = "Spam"
	ThreatSpoofing  = "Spoofing"
	ThreatMalicious = "Malicious"
	ThreatNew       = "Newly Registered Domain"
)

// Points of each kind of evidence. The README's "How the verdict is
// reached" gives the reasoning; in short: weak signals (never seen, DMARC
// failing under p=none, SPF or DKIM failing, the client's /24) cannot
// reach Poor together on first contact, one report cannot reach Awful,
// and an authenticated domain needs clearly more spam than one that is
// not.
const (
	ptsVeryYoung  = -4 // registered at most 7 days ago
	ptsYoung      = -2 // at most 30 days ago
	ptsOld        = 1  // the From domain is a year old or more
	ptsBlockList  = -8
	ptsNewList    = -3 // on a newly-registered-domain list, age unknown
	ptsNoHistory  = -1 // the From domain was never seen
	ptsCleanLong  = 4  // clean for 30 days or more
	ptsCleanSome  = 1
	ptsMostlySpam = -4
	ptsSomeSpam   = -2
	// ptsMostlySpamAuth is mostly spam on the authenticated bar (see
	// authBar): met only by a sender whose own mail is overwhelmingly spam.
	ptsMostlySpamAuth = -6
	ptsBad            = -3 // reported bad
	ptsVeryBad        = -6 // reported bad several times
	ptsReported       = 2  // reported good
	ptsDMARCPass      = 2
	ptsDMARCFail      = -3 // the domain enforces (quarantine, reject) or its policy is unknown
	ptsDMARCNone      = -1 // DMARC fail under p=none: forwarding and lists fail so
	ptsSPFFail        = -0.5
	ptsDKIMFail       = -0.5
	// Network history counts spam only, at this weight, and only for a
	// From domain without a history of its own (fewer than
	// plainBar.verdicts mail verdicts): a domain with history is judged by
	// it, not by its neighbours.
	networkWeight = 0.25
)

// spamBar is how much mail history is needed before a share of spam
// counts against a sender, and the shares.
type spamBar struct {
	verdicts     float64 // mail verdicts (decayed) before the share is judged
	mostly, some float64 // spam shares for mostly spam, some spam
	mostlyPts    float64
}

var (
	// plainBar judges a sender whose message is not authenticated.
	plainBar = spamBar{verdicts: 3, mostly: 0.5, some: 0.2, mostlyPts: ptsMostlySpam}
	// authBar judges the From domain (and its addresses) of a message
	// with an aligned DMARC pass: the mail is provably the domain's own,
	// rejecting it hits the real sender, and mixed-use senders (ESPs,
	// newsletters, large providers) collect some spam verdicts. More
	// verdicts and a higher share are needed; then the penalty is higher.
	authBar = spamBar{verdicts: 10, mostly: 0.8, some: 0.4, mostlyPts: ptsMostlySpamAuth}
)

// Evidence is one input of a verdict.
type Evidence struct {
	// Input is "age", "list", "history", "feedback", "auth", or for an
	// input that could not be had, "rdap", "dns" (0 points).
	Input string `json:"input"`
	// Subject is the domain, address or network it is about ("" for
	// authentication).
	Subject string  `json:"subject,omitempty"`
	Points  float64 `json:"points"`
	Text    string  `json:"text"`
	Threat  string  `json:"threat,omitempty"`
	// domain marks evidence about a domain (for suspected domains).
	domain bool
}

// Assessment is the verdict on one Subject with how it was reached.
type Assessment struct {
	Domains Domains
	Verdict Verdict
	// Threat is the category of the weightiest threat found, "" when the
	// verdict is Unknown or better.
	Threat string
	// Suspected are the domains with evidence against them.
	Suspected []string
	// Youngest is the youngest domain with a known age, AgeDays its age.
	Youngest string
	AgeDays  int
	AgeKnown bool
	Score    float64
	Evidence []Evidence
	// Excepted is set when a sender domain is on the exception list: the
	// verdict was not computed. ExceptedBy is that domain.
	Excepted   bool
	ExceptedBy string
	// ExceptionLists are the named exception lists (rules' own lists) a
	// sender domain is on.
	ExceptionLists []string
	// Unscannable is set when no verdict could be computed: no domain to
	// judge, or the store was unreachable.
	Unscannable bool
	// Failures are the inputs that could not be had (RDAP, DNS lists),
	// also in Evidence with 0 points.
	Failures []string
}

// AgeSource tells when a domain was registered (RDAP implements it).
type AgeSource interface {
	Registered(ctx context.Context, domain string) (time.Time, error)
}

// Config configures a Reputation.
type Config struct {
	// KeyPrefix starts every store key ("rep:").
	KeyPrefix string
	// HalfLife is how fast history fades (60 days).
	HalfLife time.Duration
	// RecordTTL drops an entity not seen for this long (400 days).
	RecordTTL time.Duration
	// FlushInterval is how often queued writes go to the store (1s).
	FlushInterval time.Duration
	// AgeTTL is how long an RDAP registration date is trusted (30 days).
	AgeTTL time.Duration
	// Exceptions are domains (and their subdomains) whose mail gets no
	// verdict.
	Exceptions []string
	// ExceptionLists are named domain lists rules can test
	// (`"partners" in sdr.exception_lists`).
	ExceptionLists map[string][]string
	// Lists are DNS domain lists.
	Lists []List
	// FeedbackWeight is how many verdicts one feedback report adds to the
	// clean/spam counts (it also counts as a report). The spam share is
	// judged without the bad reports' weight (record.spamVerdicts), so a
	// bad report is counted once, as a report; a good report corrects
	// that many false spam verdicts.
	FeedbackWeight float64
	// Logf reports background failures (writes).
	Logf func(format string, args ...any)
	// Now is the clock (tests).
	Now func() time.Time
}

// Reputation computes verdicts. It is safe for concurrent use.
type Reputation struct {
	cfg   Config
	st    store.Store
	ages  AgeSource
	res   Resolver
	w     *writer
	group singleflight.Group
}

// New makes a Reputation over st. ages may be nil (no RDAP), res may be
// nil when there are no lists.
func New(cfg Config, st store.Store, ages AgeSource, res Resolver) (*Reputation, error) {
	if st == nil {
		return nil, errors.New("reputation: no store")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "rep:"
	}
	if cfg.HalfLife <= 0 {
		cfg.HalfLife = 60 * 24 * time.Hour
	}
	if cfg.RecordTTL <= 0 {
		cfg.RecordTTL = 400 * 24 * time.Hour
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.AgeTTL <= 0 {
		cfg.AgeTTL = 30 * 24 * time.Hour
	}
	if cfg.FeedbackWeight <= 0 {
		cfg.FeedbackWeight = 5
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	for _, l := range cfg.Lists {
		if err := l.validate(); err != nil {
			return nil, fmt.Errorf("reputation: %v", err)
		}
	}
	if len(cfg.Lists) > 0 && res == nil {
		return nil, errors.New("reputation: domain lists need a resolver")
	}
	norm := func(ds []string) []string {
		out := make([]string, 0, len(ds))
		for _, d := range ds {
			if d = strings.Trim(strings.ToLower(strings.TrimSpace(d)), "."); d != "" {
				out = append(out, d)
			}
		}
		return out
	}
	cfg.Exceptions = norm(cfg.Exceptions)
	lists := make(map[string][]string, len(cfg.ExceptionLists))
	for name, ds := range cfg.ExceptionLists {
		lists[name] = norm(ds)
	}
	cfg.ExceptionLists = lists
	r := &Reputation{cfg: cfg, st: st, ages: ages, res: res}
	r.w = &writer{st: st, half: cfg.HalfLife, ttl: cfg.RecordTTL, interval: cfg.FlushInterval, logf: cfg.Logf, maxPending: 100000}
	return r, nil
}

// Key kinds.
func (r *Reputation) domainKey(d string) string  { return r.cfg.KeyPrefix + "d:" + d }
func (r *Reputation) addressKey(a string) string { return r.cfg.KeyPrefix + "a:" + strings.ToLower(a) }
func (r *Reputation) netKey(n string) string     { return r.cfg.KeyPrefix + "n:" + n }

// entities are the store keys of one subject.
type entities struct {
	// all domains (five roles), sender domains (env-from, header-from,
	// reply-to), the From domain, addresses and the network.
	domains, senders []string
	from             string
	addresses        []string
	network          string
}

func (r *Reputation) entitiesOf(s Subject) entities {
	var e entities
	d := s.Domains()
	add := func(list []string, v string) []string {
		if v == "" {
			return list
		}
		for _, x := range list {
			if x == v {
				return list
			}
		}
		return append(list, v)
	}
	e.from = address.OrgDomain(d.HeaderFrom)
	if e.from == "" {
		e.from = address.OrgDomain(d.EnvFrom)
	}
	for _, h := range []string{d.HeaderFrom, d.EnvFrom, d.ReplyTo} {
		e.senders = add(e.senders, address.OrgDomain(h))
	}
	e.domains = append([]string(nil), e.senders...)
	for _, h := range []string{d.ReverseDNS, d.HELO} {
		e.domains = add(e.domains, address.OrgDomain(h))
	}
	for _, a := range []string{s.HeaderFrom, s.EnvFrom} {
		if address.Domain(a) != "" {
			e.addresses = add(e.addresses, strings.ToLower(strings.Trim(strings.TrimSpace(a), "<>")))
		}
	}
	e.network = prefixOf(s.ClientIP)
	return e
}

// matchDomain reports whether host is d or below it.
func matchDomain(host, d string) bool {
	return host == d || strings.HasSuffix(host, "."+d)
}

// Assess computes the verdict on s. The error wraps store.ErrUnavailable
// when the history could not be read; the Assessment is then Unscannable.
//
// It runs in three steps: the exceptions, the gathering of the inputs
// (DNS lists, the one store round trip, RDAP ages, concurrently; see
// gather), then each evidence source in turn (see sources), whose
// Evidence is summed into the verdict (consolidate). A new signal is a
// new source (and, when it needs I/O, a new input in gather).
func (r *Reputation) Assess(ctx context.Context, s Subject) (*Assessment, error) {
	a := &Assessment{Domains: s.Domains(), Verdict: Unknown}
	e := r.entitiesOf(s)
	if r.excepted(a) {
		return a, nil
	}
	if len(e.domains) == 0 && len(e.addresses) == 0 {
		a.Unscannable = true
		return a, nil
	}
	in, err := r.gather(ctx, s, e)
	if err != nil {
		a.Unscannable = true
		return a, err
	}
	for _, src := range sources {
		src(in, a)
	}
	a.consolidate()
	return a, nil
}

// excepted fills a's exceptions and reports whether a sender domain is
// on the exception list (no verdict then).
func (r *Reputation) excepted(a *Assessment) bool {
	// Exceptions: the sender domains, as written and registrable.
	for _, h := range []string{a.Domains.HeaderFrom, a.Domains.EnvFrom} {
		if h == "" {
			continue
		}
		for _, x := range r.cfg.Exceptions {
			if matchDomain(h, x) {
				a.Excepted, a.ExceptedBy = true, h
				return true
			}
		}
	}
	names := make([]string, 0, len(r.cfg.ExceptionLists))
	for name := range r.cfg.ExceptionLists {
		names = append(names, name)
	}
	sort.Strings(names)
	a.ExceptionLists = []string{}
	for _, name := range names {
	list:
		for _, x := range r.cfg.ExceptionLists[name] {
			for _, h := range []string{a.Domains.HeaderFrom, a.Domains.EnvFrom, a.Domains.ReplyTo} {
				if h != "" && matchDomain(h, x) {
					a.ExceptionLists = append(a.ExceptionLists, name)
					break list
				}
			}
		}
	}
	return false
}

// inputs is what Assess gathered about one Subject; the evidence sources
// read it. Slices indexed like entities.domains hold one value per
// domain.
type inputs struct {
	s     Subject
	e     entities
	now   time.Time
	lists []List
	// fbWeight is Config.FeedbackWeight: how many verdicts one report
	// added to a record's counts.
	fbWeight float64
	// listed[i][j] is whether domain i is on list j, listErr its failure.
	listed   [][]bool
	listErrs [][]error
	// The history records, decayed to now.
	domRecs, addrRecs []record
	netRec            record
	// ages are the registration dates (zero when unknown), ageErrs why
	// one could not be had.
	ages    []time.Time
	ageErrs []string
}

// gather asks the DNS lists, reads the history in one store round trip
// and looks up the ages not cached in it, concurrently. Its error wraps
// store.ErrUnavailable when the history could not be read.
func (r *Reputation) gather(ctx context.Context, s Subject, e entities) (*inputs, error) {
	in := &inputs{s: s, e: e, now: r.cfg.Now(), lists: r.cfg.Lists, fbWeight: r.cfg.FeedbackWeight}
	var wg sync.WaitGroup
	// Lists run while the store answers.
	r.askLists(ctx, in, &wg)
	if err := r.readHistory(ctx, in); err != nil {
		wg.Wait()
		return nil, err
	}
	r.lookupAges(ctx, in, &wg)
	wg.Wait()
	return in, nil
}

// askLists starts one query per domain and list.
func (r *Reputation) askLists(ctx context.Context, in *inputs, wg *sync.WaitGroup) {
	in.listed = make([][]bool, len(in.e.domains))
	in.listErrs = make([][]error, len(in.e.domains))
	if len(r.cfg.Lists) == 0 {
		return
	}
	for i, d := range in.e.domains {
		in.listed[i] = make([]bool, len(r.cfg.Lists))
		in.listErrs[i] = make([]error, len(r.cfg.Lists))
		for j, l := range r.cfg.Lists {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in.listed[i][j], in.listErrs[i][j] = listed(ctx, r.res, l, d)
			}()
		}
	}
}

// readHistory is the one store round trip: the records of the domains,
// the addresses and the network.
func (r *Reputation) readHistory(ctx context.Context, in *inputs) error {
	e := in.e
	ops := make([]*store.Op, 0, len(e.domains)+len(e.addresses)+1)
	for _, d := range e.domains {
		ops = append(ops, &store.Op{Kind: store.OpGet, Key: r.domainKey(d)})
	}
	for _, ad := range e.addresses {
		ops = append(ops, &store.Op{Kind: store.OpGet, Key: r.addressKey(ad)})
	}
	if e.network != "" {
		ops = append(ops, &store.Op{Kind: store.OpGet, Key: r.netKey(e.network)})
	}
	err := r.st.Do(ctx, ops...)
	if err != nil && errors.Is(err, store.ErrUnavailable) {
		return err
	}
	recs := make([]record, len(ops))
	for i, op := range ops {
		if op.Err == nil && op.OK {
			recs[i], _ = decodeRecord(op.Out)
		}
		recs[i] = recs[i].decay(in.now.Unix(), r.cfg.HalfLife)
	}
	in.domRecs = recs[:len(e.domains)]
	in.addrRecs = recs[len(e.domains) : len(e.domains)+len(e.addresses)]
	if e.network != "" {
		in.netRec = recs[len(recs)-1]
	}
	return nil
}

// lookupAges takes each domain's age from its record, else starts an
// RDAP lookup.
func (r *Reputation) lookupAges(ctx context.Context, in *inputs, wg *sync.WaitGroup) {
	now := in.now
	in.ages = make([]time.Time, len(in.e.domains))
	in.ageErrs = make([]string, len(in.e.domains))
	for i, d := range in.e.domains {
		rec := in.domRecs[i]
		switch {
		case rec.Reg != 0 && now.Unix()-rec.RegAt < int64(r.cfg.AgeTTL.Seconds()):
			in.ages[i] = time.Unix(rec.Reg, 0)
		case rec.RegNext > now.Unix():
			in.ageErrs[i] = rec.RegErr + " (cached)"
			if rec.Reg != 0 {
				in.ages[i] = time.Unix(rec.Reg, 0)
			}
		case r.ages != nil:
			wg.Add(1)
			go func() {
				defer wg.Done()
				t, err := r.lookupAge(ctx, d, rec, now)
				in.ages[i] = t
				if err != nil {
					in.ageErrs[i] = strings.TrimPrefix(err.Error(), "rdap: ")
				}
			}()
		}
	}
}

// A source turns gathered inputs into evidence (a.add, a.fail). Sources
// run in this order, which is the order of the evidence in log lines.
type source func(in *inputs, a *Assessment)

var sources = []source{ageEvidence, listEvidence, senderHistory, addressHistory, networkHistory, authEvidence}

// add appends one piece of evidence.
func (a *Assessment) add(x Evidence) { a.Evidence = append(a.Evidence, x) }

// fail records an input that could not be had: a failure and 0-point
// evidence.
func (a *Assessment) fail(input, subject, msg string) {
	a.Failures = append(a.Failures, msg)
	a.add(Evidence{Input: input, Subject: subject, Text: msg})
}

// ageEvidence: RDAP failures, the youngest domain (very young and young
// cost), and an old From domain (builds trust unless a domain is young).
func ageEvidence(in *inputs, a *Assessment) {
	now := in.now
	for i, d := range in.e.domains {
		if in.ageErrs[i] != "" {
			a.fail("rdap", d, "rdap "+d+": "+in.ageErrs[i])
		}
		if t := in.ages[i]; !t.IsZero() {
			days := int(now.Sub(t).Hours() / 24)
			if days < 0 {
				days = 0
			}
			if !a.AgeKnown || days < a.AgeDays {
				a.AgeKnown, a.AgeDays, a.Youngest = true, days, d
			}
		}
	}
	if a.AgeKnown {
		text := fmt.Sprintf("%s registered %d days ago", a.Youngest, a.AgeDays)
		switch {
		case a.AgeDays <= 7:
			a.add(Evidence{Input: "age", Subject: a.Youngest, Points: ptsVeryYoung, Text: text, Threat: ThreatNew, domain: true})
		case a.AgeDays <= 30:
			a.add(Evidence{Input: "age", Subject: a.Youngest, Points: ptsYoung, Text: text, Threat: ThreatNew, domain: true})
		}
	}
	for i, d := range in.e.domains {
		if d == in.e.from && !in.ages[i].IsZero() && now.Sub(in.ages[i]) >= 365*24*time.Hour && !(a.AgeKnown && a.AgeDays <= 30) {
			a.add(Evidence{Input: "age", Subject: d, Points: ptsOld, Text: fmt.Sprintf("%s registered %d years ago", d, int(now.Sub(in.ages[i]).Hours()/24/365))})
		}
	}
}

// listEvidence: list failures, blocklist listings, and newly-registered
// listings of domains whose age is unknown.
func listEvidence(in *inputs, a *Assessment) {
	for i, d := range in.e.domains {
		for j, l := range in.lists {
			if err := in.listErrs[i][j]; err != nil {
				a.fail("dns", d, "list "+l.Name+" "+d+": "+err.Error())
				continue
			}
			if !in.listed[i][j] {
				continue
			}
			if l.Kind == ListBlock {
				threat := l.Threat
				if threat == "" {
					threat = ThreatMalicious
				}
				a.add(Evidence{Input: "list", Subject: d, Points: ptsBlockList, Text: d + " listed on " + l.Name, Threat: threat, domain: true})
			} else if in.ages[i].IsZero() {
				a.add(Evidence{Input: "list", Subject: d, Points: ptsNewList, Text: d + " newly registered per " + l.Name, Threat: ThreatNew, domain: true})
			}
		}
	}
}

// authenticated reports whether the message has an aligned DMARC pass:
// its From domain (and addresses there) is judged on authBar.
func (in *inputs) authenticated() bool {
	return strings.EqualFold(in.s.Auth.DMARC, "pass") && in.e.from != ""
}

// barFor is the spam bar of the sender domain d.
func (in *inputs) barFor(d string) spamBar {
	if d == in.e.from && in.authenticated() {
		return authBar
	}
	return plainBar
}

// senderHistory: the sender domains' history (a From domain never seen
// costs a point).
func senderHistory(in *inputs, a *Assessment) {
	for i, d := range in.e.domains {
		if !contains(in.e.senders, d) {
			continue
		}
		rec := in.domRecs[i]
		if d == in.e.from && !rec.known() {
			a.add(Evidence{Input: "history", Subject: d, Points: ptsNoHistory, Text: d + " never seen before", domain: true})
		}
		for _, x := range historyEvidence(d, rec, in.now, judge{weight: 1, bar: in.barFor(d), fbWeight: in.fbWeight, reports: true}) {
			x.domain = true
			a.add(x)
		}
	}
}

// addressHistory: the sender addresses' history, at half weight, on the
// bar of their domain.
func addressHistory(in *inputs, a *Assessment) {
	for i, ad := range in.e.addresses {
		j := judge{weight: 0.5, bar: in.barFor(address.OrgDomain(address.Domain(ad))), fbWeight: in.fbWeight, reports: true}
		for _, x := range historyEvidence(ad, in.addrRecs[i], in.now, j) {
			a.add(x)
		}
	}
}

// networkHistory: the client network's spam history, at networkWeight,
// for a From domain without mail history of its own. Reports are about
// the sender they name and do not count here.
func networkHistory(in *inputs, a *Assessment) {
	if in.e.network == "" {
		return
	}
	for i, d := range in.e.domains {
		if d == in.e.from && atLeast(in.domRecs[i].mail(in.fbWeight), plainBar.verdicts) {
			return
		}
	}
	for _, x := range historyEvidence(in.e.network, in.netRec, in.now, judge{weight: networkWeight, bar: plainBar, fbWeight: in.fbWeight}) {
		if x.Points < 0 && x.Input == "history" {
			a.add(x)
		}
	}
}

// authEvidence: aligned DMARC pass builds trust, a DMARC fail costs;
// without a DMARC outcome SPF and DKIM failures cost a little.
func authEvidence(in *inputs, a *Assessment) {
	from := in.e.from
	switch strings.ToLower(in.s.Auth.DMARC) {
	case "pass":
		a.add(Evidence{Input: "auth", Subject: from, Points: ptsDMARCPass, Text: "aligned DMARC pass"})
	case "fail":
		if strings.EqualFold(in.s.Auth.DMARCPolicy, "none") {
			a.add(Evidence{Input: "auth", Subject: from, Points: ptsDMARCNone, Text: "DMARC fail (p=none)", Threat: ThreatSpoofing, domain: from != ""})
			break
		}
		a.add(Evidence{Input: "auth", Subject: from, Points: ptsDMARCFail, Text: "DMARC fail", Threat: ThreatSpoofing, domain: from != ""})
	default:
		if strings.EqualFold(in.s.Auth.SPF, "fail") {
			a.add(Evidence{Input: "auth", Subject: address.OrgDomain(a.Domains.EnvFrom), Points: ptsSPFFail, Text: "SPF fail", domain: true})
		}
		if strings.EqualFold(in.s.Auth.DKIM, "fail") {
			a.add(Evidence{Input: "auth", Points: ptsDKIMFail, Text: "DKIM fail"})
		}
	}
}

// consolidate sums the evidence into the score, the verdict, the
// weightiest threat and the suspected domains.
func (a *Assessment) consolidate() {
	informed := false
	worst := 0.0
	for _, x := range a.Evidence {
		a.Score += x.Points
		if x.Points != 0 {
			informed = true
		}
		if x.Points < 0 && x.domain && x.Subject != "" && !contains(a.Suspected, x.Subject) {
			a.Suspected = append(a.Suspected, x.Subject)
		}
		if x.Threat != "" && x.Points < worst {
			worst, a.Threat = x.Points, x.Threat
		}
	}
	a.Score = math.Round(a.Score*100) / 100
	a.Verdict = verdictFor(a.Score, informed)
	switch a.Verdict {
	case Awful, Poor, Tainted, Weak:
	default:
		a.Threat, a.Suspected = "", nil
	}
}

// judge is how historyEvidence weighs one entity.
type judge struct {
	// weight scales the points (addresses count half, networks less).
	weight float64
	bar    spamBar
	// fbWeight is how many verdicts a report added to the counts.
	fbWeight float64
	// reports: the entity's reports are evidence (domains, addresses).
	reports bool
}

// mail is the number of mail verdicts in r: the clean count (verdicts
// and good reports, which correct false spam verdicts) plus the spam
// verdicts without the bad reports' weight (a bad report is its own
// evidence, not also five verdicts).
func (r record) mail(fbWeight float64) float64 { return r.Ham + r.spamVerdicts(fbWeight) }

// spamVerdicts is the spam count without the bad reports' weight. The
// decay scales both alike, so the difference is the verdicts' share.
func (r record) spamVerdicts(fbWeight float64) float64 {
	return max(0, r.Spam-fbWeight*r.Bad)
}

// historyEvidence judges one entity's record.
func historyEvidence(subject string, rec record, now time.Time, j judge) []Evidence {
	var out []Evidence
	spam := rec.spamVerdicts(j.fbWeight)
	total := rec.Ham + spam
	ratio := 0.0
	if total > 0 {
		ratio = spam / total
	}
	days := 0
	if rec.First != 0 {
		days = int(now.Sub(time.Unix(rec.First, 0)).Hours() / 24)
	}
	counts := fmt.Sprintf("%s clean, %s spam", num(rec.Ham), num(spam))
	switch b := j.bar; {
	case atLeast(total, b.verdicts) && ratio >= b.mostly:
		out = append(out, Evidence{Input: "history", Subject: subject, Points: b.mostlyPts * j.weight, Text: subject + " mostly spam (" + counts + ")", Threat: ThreatSpam})
	case atLeast(total, b.verdicts) && ratio >= b.some:
		out = append(out, Evidence{Input: "history", Subject: subject, Points: ptsSomeSpam * j.weight, Text: subject + " some spam (" + counts + ")", Threat: ThreatSpam})
	case atLeast(rec.Ham, 10) && ratio < 0.1 && days >= 30 && rec.Bad < 0.5:
		out = append(out, Evidence{Input: "history", Subject: subject, Points: ptsCleanLong * j.weight, Text: fmt.Sprintf("%s clean for %d days (%s)", subject, days, counts)})
	case atLeast(rec.Ham, 3) && ratio < 0.2 && rec.Bad < 0.5:
		out = append(out, Evidence{Input: "history", Subject: subject, Points: ptsCleanSome * j.weight, Text: subject + " some clean history (" + counts + ")"})
	}
	if !j.reports {
		return out
	}
	switch {
	case rec.Bad >= 2.5:
		out = append(out, Evidence{Input: "feedback", Subject: subject, Points: ptsVeryBad * j.weight, Text: subject + " reported bad " + num(rec.Bad) + " times", Threat: ThreatSpam})
	case rec.Bad >= 0.5:
		out = append(out, Evidence{Input: "feedback", Subject: subject, Points: ptsBad * j.weight, Text: subject + " reported bad", Threat: ThreatSpam})
	case rec.Good >= 0.5:
		out = append(out, Evidence{Input: "feedback", Subject: subject, Points: ptsReported * j.weight, Text: subject + " reported good"})
	}
	return out
}

// atLeast reports whether the decayed count reaches n. It is the one
// place counts are compared with a threshold, and it compares them as
// the log prints them, rounded to one decimal (a tolerance of 0.05):
// three verdicts an hour apart are 2.999 after the decay and are three,
// and what the log shows is what was judged.
func atLeast(count, n float64) bool { return roundCount(count) >= n }

// roundCount rounds a decayed count to one decimal.
func roundCount(f float64) float64 { return math.Round(f*10) / 10 }

// num prints a decayed count to one decimal, without a trailing ".0".
func num(f float64) string {
	return strconv.FormatFloat(roundCount(f), 'f', -1, 64)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lookupAge asks RDAP (one query per domain in flight across messages)
// and queues the answer, or the failure with its back-off, for the
// domain's record. A stale date is kept when a refresh fails.
func (r *Reputation) lookupAge(ctx context.Context, d string, rec record, now time.Time) (time.Time, error) {
	v, err, _ := r.group.Do(d, func() (any, error) {
		return r.ages.Registered(ctx, d)
	})
	t, _ := v.(time.Time)
	upd := &record{Reg: t.Unix(), RegAt: now.Unix()}
	if t.IsZero() {
		upd.Reg = 0
	}
	if err != nil {
		upd.Reg = rec.Reg
		upd.RegErr = clip(strings.TrimPrefix(err.Error(), "rdap: "), 120)
		upd.RegNext = now.Add(backoff(err)).Unix()
		if rec.Reg != 0 {
			t = time.Unix(rec.Reg, 0)
		}
	}
	r.w.add(r.domainKey(d), delta{rdap: upd})
	return t, err
}

// backoff is how long a failed RDAP lookup is not repeated.
func backoff(err error) time.Duration {
	var re *RDAPError
	if errors.As(err, &re) && re.RetryAfter > 0 {
		return min(max(re.RetryAfter, time.Minute), 24*time.Hour)
	}
	switch {
	case errors.Is(err, ErrRDAPNotFound):
		return 24 * time.Hour
	case errors.Is(err, ErrRDAPNoServer), errors.Is(err, ErrRDAPNoDate):
		return 7 * 24 * time.Hour
	case errors.Is(err, ErrRDAPRateLimited):
		return 30 * time.Minute
	case errors.Is(err, ErrRDAPGarbage):
		return time.Hour
	}
	return 10 * time.Minute
}

// learnKeys are the entities a verdict or a report is about: the sender
// domains, the sender addresses, the network.
func (r *Reputation) learnKeys(s Subject) []string {
	e := r.entitiesOf(s)
	var keys []string
	for _, d := range e.senders {
		keys = append(keys, r.domainKey(d))
	}
	for _, a := range e.addresses {
		keys = append(keys, r.addressKey(a))
	}
	if e.network != "" {
		keys = append(keys, r.netKey(e.network))
	}
	return keys
}

func (r *Reputation) at(s Subject) int64 {
	now := r.cfg.Now()
	if s.At.IsZero() || s.At.After(now) {
		return now.Unix()
	}
	return s.At.Unix()
}

// Learn queues a final verdict (spam or clean) for s's entities. It does
// no I/O; the write happens within FlushInterval.
func (r *Reputation) Learn(s Subject, spam bool) {
	d := delta{at: r.at(s), ham: 1}
	if spam {
		d = delta{at: r.at(s), spam: 1}
	}
	for _, k := range r.learnKeys(s) {
		r.w.add(k, d)
	}
}

// Feedback records an explicit report about s (good or bad) and writes
// it at once. It counts FeedbackWeight verdicts and one report.
func (r *Reputation) Feedback(ctx context.Context, s Subject, good bool) error {
	d := delta{at: r.at(s), spam: r.cfg.FeedbackWeight, bad: 1}
	if good {
		d = delta{at: r.at(s), ham: r.cfg.FeedbackWeight, good: 1}
	}
	keys := r.learnKeys(s)
	if len(keys) == 0 {
		return errors.New("reputation: the message names no sender to report")
	}
	for _, k := range keys {
		r.w.add(k, d)
	}
	return r.Flush(ctx)
}

// Flush writes what is queued now.
func (r *Reputation) Flush(ctx context.Context) error { return r.w.flush(ctx) }
