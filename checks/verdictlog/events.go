package verdictlog

import (
	"strconv"
	"strings"

	"chainmail/checks"
)

// The events a check reports, each built here from typed values: its name
// (the JSON "event"), its exact line and its JSON facts. A check hands
// over the event these constructors return and never words a line
// itself, so one event reads the same, with the same facts, on every path.

// Infected is "Infected message <id> came from <client-ip>"; facts
// client_ip, virus, scanner.
func Infected(id, clientIP, virus, scanner string) checks.Event {
	return checks.Event{Name: "infected", Line: infectedLine(id, clientIP),
		Facts: infectedFacts{ClientIP: orUnknown(Sanitize(clientIP)), Virus: Sanitize(virus), Scanner: Sanitize(scanner)}}
}

// FileHit is a file an attachment rule matched.
type FileHit struct {
	// Filename is the name logged (for a member, archive/member).
	Filename string
	// Path is where the file sits in the message (MIME part, archive).
	Path string
	// Action is the rule's action (deny, deny+delete, rename, …).
	Action string
	// Text is the rule's log text.
	Text string
	// Rule is where the rule is written, file:line.
	Rule string
}

func (h FileHit) facts() fileFacts {
	return fileFacts{Filename: Sanitize(h.Filename), Path: Sanitize(h.Path), Action: Sanitize(h.Action),
		Text: Sanitize(h.Text), Rule: Sanitize(h.Rule)}
}

// Filename is "Filename Checks: <log text> (<id> <filename>)".
func Filename(id string, h FileHit) checks.Event {
	return checks.Event{Name: "filename", Line: filenameCheckLine(id, h.Filename, h.Text), Facts: h.facts()}
}

// Filetype is "Filetype Checks: <log text> (<id> <filename>)".
func Filetype(id string, h FileHit) checks.Event {
	return checks.Event{Name: "filetype", Line: filetypeCheckLine(id, h.Filename, h.Text), Facts: h.facts()}
}

// AttachmentOverflow is "Attachment Checks: <n> more findings not logged
// (<id>)", the line that stands for the findings over the check's
// max_events.
func AttachmentOverflow(id string, more int) checks.Event {
	return checks.Event{Name: "attachment",
		Line:  "Attachment Checks: " + strconv.Itoa(more) + " more findings not logged (" + queueID(id) + ")",
		Facts: overflowFacts{More: more}}
}

// AttachmentFinding is what the attachment scan found that no rule
// worded: a password-protected archive, a type mismatch, a limit reached.
type AttachmentFinding struct {
	// Category is the finding's category (unscannable, suspicious…) and
	// Kind its kind within it.
	Category, Kind string
	// Path is where it sits in the message, File the file's name ("" for
	// the message or an unnamed part) and Shown the name the line shows.
	Path, File, Shown string
	// Detail says what was found.
	Detail string
}

// Event is "Attachment Checks: <category>: <detail> (<id> <file>)".
func (f AttachmentFinding) Event(id string) checks.Event {
	ff := findingFacts{Category: Sanitize(f.Category), Kind: Sanitize(f.Kind), Path: Sanitize(f.Path),
		File: Sanitize(f.File), Detail: Sanitize(f.Detail)}
	return checks.Event{Name: "attachment",
		Line:  "Attachment Checks: " + ff.Category + ": " + ff.Detail + " (" + queueID(id) + " " + Sanitize(f.Shown) + ")",
		Facts: ff}
}

// Whaling is "Message <id> has been blocked as Whaling attack to <name>
// <address>"; it is logged only when the verdict blocks the message
// (IfBlocked): the check cannot know whether policy will. Facts target,
// target_address, match, from, the words of the whaling check's facts.
func Whaling(id, target, targetAddress, match, from string) checks.Event {
	return checks.Event{Name: "whaling", Line: whalingLine(id, target, targetAddress),
		Facts: whalingFacts{Target: strings.TrimSpace(Sanitize(target)), TargetAddress: Sanitize(stripBrackets(targetAddress)),
			Match: Sanitize(match), From: Sanitize(from)},
		IfBlocked: true}
}

// Event is the SDR domains line (see sdrDomainsLine); facts the domains.
func (d SDRDomains) Event(id string) checks.Event {
	return checks.Event{Name: "sdr_domains", Line: sdrDomainsLine(id, d), Facts: d.sanitized()}
}

// Event is the consolidated sender reputation line (see sdrVerdictLine);
// facts verdict, threat, suspected, youngest_domain, age_days (-1 when
// unknown), trust and evidence, the words of the reputation check's facts.
func (v SDRVerdict) Event(id string) checks.Event {
	f := sdrVerdictFacts{Verdict: Sanitize(v.Verdict), Threat: Sanitize(v.ThreatCategory),
		Suspected: uniqueSanitized(v.SuspectedDomains), YoungestDomain: Sanitize(v.YoungestDomain),
		AgeDays: -1, Trust: v.Trust, Evidence: v.Evidence}
	if v.AgeKnown {
		f.AgeDays = v.AgeDays
	}
	if f.Evidence == nil {
		f.Evidence = []any{}
	}
	return checks.Event{Name: "sdr_verdict", Line: sdrVerdictLine(id, v), Facts: f}
}

// SDREvidence is "MID <id> SDR: Evidence: <text>", the line that explains
// the verdict line above it.
func SDREvidence(id, text string) checks.Event {
	return checks.Event{Name: "sdr_evidence", Line: "MID " + queueID(id) + " SDR: Evidence: " + Sanitize(text)}
}

// Greylist is one greylisting decision, in the words of policyd's
// Greylisting module.
type Greylist struct {
	// Action is "defer" or "pass"; Reason why ("new triplet", "triplet
	// found, delay=300").
	Action, Reason string
	// ClientAddress is the client IP, ClientNet the network the triplet
	// is kept for.
	ClientAddress, ClientNet string
	// HELO, Sender (""  is logged as <>) and Recipient.
	HELO, Sender, Recipient string
}

// Event is "module=Greylist, action=<a>, reason=<r>, client_address=<ip>,
// client_net=<net>, helo=<h>, sender=<s>, recipient=<r>".
func (g Greylist) Event() checks.Event {
	f := greylistFacts{Action: Sanitize(g.Action), Reason: Sanitize(g.Reason), ClientAddress: Sanitize(g.ClientAddress),
		ClientNet: Sanitize(g.ClientNet), HELO: Sanitize(g.HELO), Sender: Sanitize(g.Sender), Recipient: Sanitize(g.Recipient)}
	if f.Sender == "" {
		f.Sender = "<>"
	}
	return checks.Event{Name: "greylist", Line: "module=Greylist, action=" + f.Action + ", reason=" + f.Reason +
		", client_address=" + f.ClientAddress + ", client_net=" + f.ClientNet + ", helo=" + f.HELO +
		", sender=" + f.Sender + ", recipient=" + f.Recipient, Facts: f}
}

// ListWarning is a DNS list that gave no usable answer.
type ListWarning struct {
	// Label starts the line ("RBL", "URIBL", "HELO"); the event is named
	// label in lower case + "_fail".
	Label string
	// List and Zone name the list; Value is what was looked up.
	List, Zone, Value string
	// Queried is false when the list was not asked at all (suspended).
	Queried bool
	// Reason is why the answer is not counted.
	Reason string
}

// Event is "<Label> warning: list <name> (<zone>) did not answer for
// <value>: <reason>; not counted as a listing" ("not queried for" when
// the list was not asked).
func (w ListWarning) Event() checks.Event {
	what := "did not answer for "
	if !w.Queried {
		what = "not queried for "
	}
	f := ListFailFacts{List: Sanitize(w.List), Zone: Sanitize(w.Zone), Value: Sanitize(w.Value), Reason: Sanitize(w.Reason)}
	return checks.Event{Name: strings.ToLower(w.Label) + "_fail",
		Line:  Sanitize(w.Label) + " warning: list " + f.List + " (" + f.Zone + ") " + what + f.Value + ": " + f.Reason + "; not counted as a listing",
		Facts: f}
}

// worded gives the engine's own RCPT-time events (checks.RcptError,
// checks.RcptMonitor), which carry facts only, their lines.
func worded(ev checks.Event) checks.Event {
	switch f := ev.Facts.(type) {
	case checks.RcptError:
		msg := ""
		if f.Err != nil {
			msg = f.Err.Error()
		}
		ff := rcptErrorFacts{Check: Sanitize(f.Check), Rcpt: Sanitize(f.Rcpt), Error: Sanitize(msg)}
		ev.Line, ev.Facts = "Check "+ff.Check+" on recipient "+ff.Rcpt+": "+ff.Error, ff
	case checks.RcptMonitor:
		ff := rcptMonitorFacts{Rcpt: Sanitize(f.Rcpt), Code: Sanitize(f.Code), Reply: Sanitize(f.Reply)}
		ev.Line, ev.Facts = "Monitor: recipient "+ff.Rcpt+" would get "+ff.Code+" "+ff.Reply, ff
	}
	return ev
}

// Text is the line ev is logged as (sanitised), for callers that show
// events outside a Logger.
func Text(ev checks.Event) string { return Sanitize(worded(ev).Line) }
