package dnsbl

import (
	"strings"

	"chainmail/checks"
	"chainmail/checks/verdictlog"
)

// Summary is the findings of one Lookup, ready for a checks.Result.
type Summary struct {
	// Symbols: one per matched symbol, its score once, its detail the
	// keys that matched as "value:source" joined by ","; one
	// <SYMBOL>_FAIL with score 0 per list that failed.
	Symbols []checks.Symbol
	// Listed names the blocklists with a hit, in configured order.
	Listed []string
	// Allowed names the allowlists with a hit.
	Allowed []string
	// Failed names the lists that failed or were suspended.
	Failed []string
	// Events are the warning lines, one per failed list.
	Events []checks.Event
	// Queries is how many outcomes there were; Hits how many of them
	// counted as listings (after allowlist overrides).
	Queries, Hits int
}

// Summarize turns outcomes into symbols, listed names and warnings. label
// starts the warning lines ("RBL", "URIBL"); the event name is label in
// lower case + "_fail".
func (s *Set) Summarize(outs []Outcome, label string) Summary {
	var sum Summary
	sum.Queries = len(outs)
	// Keys an overriding allowlist vouches for.
	allowed := map[string]bool{}
	for _, o := range outs {
		if o.State == Listed && s.Lists[o.List].Overrides {
			allowed[o.Value] = true
		}
	}
	index := map[string]int{}
	details := map[string]map[string]bool{}
	add := func(sym string, score float64, detail string) {
		i, ok := index[sym]
		if !ok {
			i = len(sum.Symbols)
			index[sym] = i
			details[sym] = map[string]bool{}
			sum.Symbols = append(sum.Symbols, checks.Symbol{Name: sym, Score: score})
		}
		if detail != "" && !details[sym][detail] && len(details[sym]) < maxDetails {
			details[sym][detail] = true
			if sum.Symbols[i].Detail != "" {
				sum.Symbols[i].Detail += ","
			}
			sum.Symbols[i].Detail += detail
		}
	}
	for li, l := range s.Lists {
		hit, failed := false, false
		for _, o := range outs {
			if o.List != li {
				continue
			}
			switch o.State {
			case Listed:
				if !l.Allow && allowed[o.Value] {
					continue
				}
				hit = true
				sum.Hits++
				for _, h := range o.Hits {
					add(h.Symbol, h.Score, o.Value+":"+o.Source)
				}
			case Failed, Skipped:
				if o.State == Skipped && !strings.HasPrefix(o.Reason, "suspended") && !strings.HasPrefix(o.Reason, "health") {
					continue
				}
				if !failed {
					failed = true
					add(l.FailSymbol, 0, o.Reason)
					sum.Events = append(sum.Events, verdictlog.ListWarning{Label: label, List: l.Name, Zone: l.Zone,
						Value: o.Value, Queried: o.State != Skipped, Reason: o.Reason}.Event())
				}
			}
		}
		switch {
		case hit && l.Allow:
			sum.Allowed = append(sum.Allowed, l.Name)
		case hit:
			sum.Listed = append(sum.Listed, l.Name)
		}
		if failed {
			sum.Failed = append(sum.Failed, l.Name)
		}
	}
	return sum
}

// maxDetails bounds the keys named in one symbol's detail.
const maxDetails = 20
