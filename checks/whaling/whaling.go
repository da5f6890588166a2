// Package whaling is the whaling check (name "whaling"): business e-mail
// compromise aimed at the organisation's "whales" (its executives) and
// look-alikes of its own domains.
//
// Three findings, each a symbol and facts for the rules:
//
//   - WHALING_NAME: a From display name matches a protected person (after
//     NFKC, removal of bidi and zero-width characters, UTS #39 confusable
//     folding, case folding, any token order, up to two extra tokens, a
//     small edit distance; see chainmail/reputation/lookalike), or holds
//     one of their addresses, while the address is not one of theirs;
//   - WHALING_COUSIN_DOMAIN: the From, envelope sender or Reply-To domain
//     is a cousin of one of the organisation's own domains (homograph,
//     typo, another TLD, a hyphenated addition);
//   - WHALING_REPLYTO: Reply-To diverts answers to a domain that is
//     neither the From's nor the organisation's.
//
// Facts (whaling.*): impersonated, target, target_address, match (how the
// name matched), cousin, cousin_domain, cousin_of, cousin_kind,
// reply_to_diverted, reply_to_domain. Status fail with a finding, else
// pass.
//
// When policy blocks a message with a name finding the log gets
// "Message <id> has been blocked as Whaling attack to <Full Name>
// <address>" (an Event with IfBlocked). A rule such as
//
//	whaling.impersonated || whaling.cousin → quarantine
//
// holds such mail.
package whaling

import (
	"context"
	"fmt"
	"strings"

	"chainmail/checks"
	"chainmail/checks/address"
	"chainmail/checks/verdictlog"
	"chainmail/reputation/lookalike"
)

// Name is the check's name.
const Name = "whaling"

// Person is one protected person.
type Person struct {
	// Name is the full name as the log shows it ("John Doe").
	Name string `yaml:"name"`
	// Addresses are the person's own addresses; the first is logged.
	Addresses []string `yaml:"addresses"`
	// Aliases are other names they go by ("Johnny Doe", "J. Doe").
	Aliases []string `yaml:"aliases"`
}

// Config configures the check.
type Config struct {
	Protected []Person `yaml:"protected"`
	// Domains are the organisation's own domains: cousins of them are
	// findings, and Reply-To may point to them.
	Domains []string `yaml:"domains"`
	// MaxDistance is the edit distance a display name may be from a
	// protected name (names of 6 letters or more).
	MaxDistance int `yaml:"max_distance"`
}

// DefaultConfig returns the defaults: nobody protected, no own domains.
func DefaultConfig() Config { return Config{MaxDistance: 1} }

// Default symbol scores (a step's scores override them).
const (
	scoreName    = 6
	scoreCousin  = 5
	scoreReplyTo = 1
)

type person struct {
	Person
	names []lookalike.Name
	addrs map[string]bool
}

// Check is the whaling check.
type Check struct {
	cfg     Config
	people  []person
	domains []lookalike.Own // registrable own domains
}

// New builds the check.
func New(cfg Config) (*Check, error) {
	if cfg.MaxDistance < 0 || cfg.MaxDistance > 3 {
		return nil, fmt.Errorf("max_distance %d (want 0 to 3)", cfg.MaxDistance)
	}
	c := &Check{cfg: cfg}
	for i, p := range cfg.Protected {
		if strings.TrimSpace(p.Name) == "" {
			return nil, fmt.Errorf("protected person %d has no name", i+1)
		}
		pp := person{Person: p, addrs: map[string]bool{}}
		for _, n := range append([]string{p.Name}, p.Aliases...) {
			nn := lookalike.NormalizeName(n)
			if len(nn.Tokens) == 0 {
				return nil, fmt.Errorf("protected name %q has no letters", n)
			}
			pp.names = append(pp.names, nn)
		}
		for _, a := range p.Addresses {
			a = strings.ToLower(strings.TrimSpace(a))
			if !strings.Contains(a, "@") {
				return nil, fmt.Errorf("protected person %q: %q is not an address", p.Name, a)
			}
			pp.addrs[a] = true
		}
		c.people = append(c.people, pp)
	}
	for _, d := range cfg.Domains {
		org := address.OrgDomain(d)
		if org == "" {
			return nil, fmt.Errorf("domain %q is not a registrable domain", d)
		}
		c.domains = append(c.domains, lookalike.NewOwn(org))
	}
	return c, nil
}

// Name implements checks.Check.
func (c *Check) Name() string { return Name }

// Facts implements checks.Factual: the facts, as rules see them when the
// check did not run.
func (*Check) Facts() map[string]any {
	return map[string]any{
		"impersonated": false, "target": "", "target_address": "", "match": "",
		"cousin": false, "cousin_domain": "", "cousin_of": "", "cousin_kind": "",
		"reply_to_diverted": false, "reply_to_domain": "",
	}
}

// Check implements checks.Check.
func (c *Check) Check(_ context.Context, m *checks.Message, _ checks.Results) checks.Result {
	facts := c.Facts()
	r := checks.Result{Status: checks.StatusPass, Facts: facts}
	froms := address.ParseMailboxes(checks.Unfold(m.Get("From")))
	replyTo := address.FirstMailbox(checks.Unfold(m.Get("Reply-To")))
	var reasons []string

	// Display names.
	for _, f := range froms {
		p, how, ok := c.impersonates(f)
		if !ok {
			continue
		}
		facts["impersonated"], facts["target"], facts["match"] = true, p.Name, how
		if len(p.Addresses) > 0 {
			facts["target_address"] = p.Addresses[0]
		}
		r.Symbols = append(r.Symbols, checks.Symbol{Name: "WHALING_NAME", Score: scoreName, Detail: p.Name + " (" + how + ")"})
		reasons = append(reasons, fmt.Sprintf("From %q <%s> impersonates %s (%s)", clip(f.Name, 60), f.Address, p.Name, how))
		addr := ""
		if len(p.Addresses) > 0 {
			addr = p.Addresses[0]
		}
		r.Events = append(r.Events, verdictlog.Whaling(m.QueueID, p.Name, addr, how, f.Address))
		break
	}

	// Cousin domains.
	var fromDomain string
	if len(froms) > 0 {
		fromDomain = froms[0].Domain()
	}
	for _, d := range []string{fromDomain, address.Domain(m.MailFrom), replyTo.Domain()} {
		org := address.OrgDomain(d)
		if org == "" {
			continue
		}
		if own, kind, ok := c.cousin(org); ok {
			facts["cousin"], facts["cousin_domain"], facts["cousin_of"], facts["cousin_kind"] = true, org, own, kind
			r.Symbols = append(r.Symbols, checks.Symbol{Name: "WHALING_COUSIN_DOMAIN", Score: scoreCousin, Detail: org + " ~ " + own + " (" + kind + ")"})
			reasons = append(reasons, fmt.Sprintf("%s looks like %s (%s)", org, own, kind))
			break
		}
	}

	// Reply-To diversion.
	if rt := address.OrgDomain(replyTo.Domain()); rt != "" && fromDomain != "" && rt != address.OrgDomain(fromDomain) && !c.own(rt) {
		facts["reply_to_diverted"], facts["reply_to_domain"] = true, rt
		r.Symbols = append(r.Symbols, checks.Symbol{Name: "WHALING_REPLYTO", Score: scoreReplyTo, Detail: rt})
		reasons = append(reasons, "Reply-To diverts to "+rt)
	}

	if len(r.Symbols) > 0 {
		r.Status = checks.StatusFail
		for _, s := range r.Symbols {
			r.Score += s.Score
		}
		r.Reason = strings.Join(reasons, "; ")
	}
	return r
}

// impersonates reports the protected person f's display name stands for
// when f's address is not theirs.
func (c *Check) impersonates(f address.Mailbox) (person, string, bool) {
	addr := strings.ToLower(f.Address)
	var dn lookalike.Name
	normalised := false
	for _, p := range c.people {
		if p.addrs[addr] {
			continue
		}
		// A display name that is, or holds, one of their addresses.
		low := strings.ToLower(f.Name)
		for a := range p.addrs {
			if strings.Contains(low, a) {
				return p, "address in name", true
			}
		}
		if !normalised {
			dn, normalised = lookalike.NormalizeName(f.Name), true
		}
		for _, n := range p.names {
			if how, ok := lookalike.MatchName(dn, n, c.cfg.MaxDistance); ok {
				return p, how, true
			}
		}
	}
	return person{}, "", false
}

// cousin reports which own domain org imitates.
func (c *Check) cousin(org string) (own, kind string, ok bool) {
	if c.own(org) {
		return "", "", false
	}
	for _, d := range c.domains {
		if kind, ok := d.Cousin(org); ok {
			return d.Name, kind, true
		}
	}
	return "", "", false
}

func (c *Check) own(org string) bool {
	for _, d := range c.domains {
		if org == d.Name {
			return true
		}
	}
	return false
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
