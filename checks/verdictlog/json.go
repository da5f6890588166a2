package verdictlog

import (
	"bytes"
	"encoding/json"
	"time"
)

// The JSON format writes one object per line: the common fields of
// jsonHead, then the event's facts (one of the *Facts types below) spliced
// into the same object. Keeping the two apart avoids Go's rule that
// clashing promoted field names silently vanish.

type jsonHead struct {
	Time    string `json:"time"`
	Host    string `json:"host"`
	Tag     string `json:"tag"`
	PID     int    `json:"pid"`
	Event   string `json:"event"`
	QueueID string `json:"queue_id,omitempty"`
	Line    string `json:"line"`
}

type symbolFact struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

type messageFacts struct {
	ClientIP    string       `json:"client_ip"`
	From        string       `json:"from"`
	Rcpt        []string     `json:"rcpt"`
	RcptDomains []string     `json:"rcpt_domains"`
	Subject     string       `json:"subject"`
	Spam        bool         `json:"spam"`
	Action      string       `json:"action"`
	Monitor     bool         `json:"monitor,omitempty"`
	Would       string       `json:"would,omitempty"`
	Why         string       `json:"why"`
	Score       float64      `json:"score"`
	Required    float64      `json:"required"`
	Symbols     []symbolFact `json:"symbols"`
	Listed      []string     `json:"listed"`
}

type rblFacts struct {
	Listed []string `json:"listed"`
}

type spamActionsFacts struct {
	Action  string   `json:"action"`
	Actions []string `json:"actions"`
}

type monitorFacts struct {
	Would string `json:"would"`
	Why   string `json:"why"`
}

type deliveryFacts struct {
	// Delivery is "delivery", "non-delivery" or "deferral".
	Delivery string   `json:"delivery"`
	Spam     bool     `json:"spam"`
	From     string   `json:"from"`
	Rcpt     []string `json:"rcpt"`
	Subject  string   `json:"subject"`
	Why      string   `json:"why,omitempty"`
}

type checkFacts struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

type infectedFacts struct {
	ClientIP string `json:"client_ip"`
	Virus    string `json:"virus"`
	Scanner  string `json:"scanner"`
}

type fileFacts struct {
	Filename string `json:"file"`
	Path     string `json:"path"`
	Action   string `json:"action"`
	Text     string `json:"log_text"`
	Rule     string `json:"rule"`
}

type findingFacts struct {
	Category string `json:"category"`
	Kind     string `json:"kind"`
	Path     string `json:"path"`
	File     string `json:"file,omitempty"`
	Detail   string `json:"detail"`
}

type overflowFacts struct {
	More int `json:"more"`
}

type whalingFacts struct {
	Target        string `json:"target"`
	TargetAddress string `json:"target_address"`
	Match         string `json:"match"`
	From          string `json:"from"`
}

// sdrShown is what the SDR verdict line shows.
type sdrShown struct {
	Verdict          string
	ThreatCategory   string
	SuspectedDomains []string
	YoungestDomain   string
	// AgeDays is nil when the age is unknown.
	AgeDays *int
}

type sdrVerdictFacts struct {
	Verdict        string   `json:"verdict"`
	Threat         string   `json:"threat"`
	Suspected      []string `json:"suspected"`
	YoungestDomain string   `json:"youngest_domain"`
	// AgeDays is -1 when the age is unknown.
	AgeDays  int     `json:"age_days"`
	Trust    float64 `json:"trust"`
	Evidence any     `json:"evidence"`
}

type greylistFacts struct {
	Action        string `json:"action"`
	Reason        string `json:"reason"`
	ClientAddress string `json:"client_address"`
	ClientNet     string `json:"client_net"`
	HELO          string `json:"helo"`
	Sender        string `json:"sender"`
	Recipient     string `json:"recipient"`
}

// ListFailFacts are the JSON facts of a DNS list warning.
type ListFailFacts struct {
	List   string `json:"list"`
	Zone   string `json:"zone"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// QuotaFacts are the JSON fields of a quota event.
type QuotaFacts struct {
	Action  string   `json:"action"`
	Host    string   `json:"host"`
	HELO    string   `json:"helo"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Reason  string   `json:"reason"`
	Policy  string   `json:"policy"`
	Quota   string   `json:"quota"`
	Limit   string   `json:"limit"`
	Track   string   `json:"track"`
	Counter string   `json:"counter"`
	Current float64  `json:"current"`
	Max     float64  `json:"max"`
	Percent *float64 `json:"percent"`
}

type logFacts struct {
	Level string `json:"level"`
}

// encodeJSON renders e as one JSON object without a line end. HTML
// escaping is off so that "<>" stays readable; encoding/json escapes every
// control character, so the object is always one line.
func encodeJSON(e entry, t time.Time, host, tag string, pid int) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	head := jsonHead{
		Time: t.Format(time.RFC3339Nano), Host: host, Tag: tag, PID: pid,
		Event: e.event, QueueID: e.queueID, Line: e.line,
	}
	if err := enc.Encode(head); err != nil {
		// Only strings and ints: cannot happen.
		panic("verdictlog: encoding JSON head: " + err.Error())
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	if e.facts == nil {
		return out
	}
	out = append([]byte(nil), out...)
	buf.Reset()
	if err := enc.Encode(e.facts); err != nil {
		// Facts hold no maps, channels or funcs; NaN or Inf scores are
		// the one thing that can fail: keep the line, drop the facts.
		return out
	}
	facts := bytes.TrimRight(buf.Bytes(), "\n")
	if len(facts) <= 2 { // "{}"
		return out
	}
	out = append(out[:len(out)-1], ',')
	return append(out, facts[1:]...)
}

type rcptErrorFacts struct {
	Check string `json:"check"`
	Rcpt  string `json:"rcpt"`
	Error string `json:"error"`
}

type rcptMonitorFacts struct {
	Rcpt  string `json:"rcpt"`
	Code  string `json:"code"`
	Reply string `json:"reply"`
}
