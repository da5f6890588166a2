package verdictlog

import (
	"strconv"

	"chainmail/checks"
)

// htmlWords names each kind of active HTML in the line, as MailScanner
// words it.
var htmlWords = map[string]string{
	"script":  "HTML script tags",
	"iframe":  "HTML iframe tags",
	"form":    "HTML form tags",
	"object":  "HTML object codebase tags",
	"web-bug": "web bugs",
}

func htmlWord(kind string) string {
	if w, ok := htmlWords[kind]; ok {
		return w
	}
	return "HTML " + Sanitize(kind) + " tags"
}

type htmlFacts struct {
	Kind   string `json:"kind"`
	Count  int    `json:"count"`
	Action string `json:"action"`
	Detail string `json:"detail"`
}

// HTMLDisarmed is "Content Checks: Detected and have disabled <what> in
// <id>": the html check rewrote the message's HTML so that n tags of that
// kind do nothing. Facts kind, count, action "disarmed".
func HTMLDisarmed(id, kind string, n int) checks.Event {
	return checks.Event{Name: "html",
		Line:  "Content Checks: Detected and have disabled " + htmlWord(kind) + " in " + queueID(id),
		Facts: htmlFacts{Kind: Sanitize(kind), Count: n, Action: "disarmed"}}
}

// HTMLFound is "Content Checks: Detected <what> in <id>": tags of a kind
// whose switch is "no", left for the policy. Facts kind, count, action
// "found".
func HTMLFound(id, kind string, n int) checks.Event {
	return checks.Event{Name: "html",
		Line:  "Content Checks: Detected " + htmlWord(kind) + " in " + queueID(id) + " (" + strconv.Itoa(n) + ")",
		Facts: htmlFacts{Kind: Sanitize(kind), Count: n, Action: "found"}}
}

// HTMLUnscannable is "Content Checks: Could not check HTML in <id>:
// <detail>": a part too big, in an encoding or charset that cannot be
// rewritten, or not stored in place. Facts action "unscannable", detail.
func HTMLUnscannable(id, detail string) checks.Event {
	return checks.Event{Name: "html",
		Line:  "Content Checks: Could not check HTML in " + queueID(id) + ": " + Sanitize(detail),
		Facts: htmlFacts{Action: "unscannable", Detail: Sanitize(detail)}}
}
