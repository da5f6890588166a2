package dnsbl

import (
	"strings"

	"chainmail/checks"
)

// Status is the status and reason every list check (rbl, uribl) gives
// for a lookup:
//
//   - listed: "listed on A, B" and, when listedDetail is not "", " (" +
//     listedDetail + ")";
//   - temperror when no list answered and some failed: "no list answered
//     (A, B)" — queries skipped for other reasons (a value a list cannot
//     be asked about) are no failure;
//   - clean otherwise: "not listed (" + cleanDetail + ")", then "; allowed
//     by A" when an allowlist matched.
//
// Lists that failed are named ("; failed: A") unless the status is
// temperror, which names them already.
func Status(outs []Outcome, sum Summary, listedDetail, cleanDetail string) (checks.Status, string) {
	answered := 0
	for _, o := range outs {
		if o.State == Listed || o.State == NotListed {
			answered++
		}
	}
	var st checks.Status
	var why string
	switch {
	case len(sum.Listed) > 0:
		st, why = checks.StatusListed, "listed on "+strings.Join(sum.Listed, ", ")
		if listedDetail != "" {
			why += " (" + listedDetail + ")"
		}
	case answered == 0 && len(sum.Failed) > 0:
		return checks.StatusTemperror, "no list answered (" + strings.Join(sum.Failed, ", ") + ")"
	default:
		st, why = checks.StatusClean, "not listed ("+cleanDetail+")"
		if len(sum.Allowed) > 0 {
			why += "; allowed by " + strings.Join(sum.Allowed, ", ")
		}
	}
	if len(sum.Failed) > 0 {
		why += "; failed: " + strings.Join(sum.Failed, ", ")
	}
	return st, why
}
