// Package history keeps the recent verdicts in the state store, so that
// the console shows what happened to each message (and several MTAs
// sharing Redis share one history): an Observer that records every
// verdict, bounded in number, searchable.
package history

import (
	"strings"
	"time"

	"chainmail/checks"
)

// Record is one message's verdict as history keeps it.
type Record struct {
	// ID is unique and orders records by time (newest sorts last).
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Host is the chainmail instance (hostname) that decided.
	Host       string   `json:"host"`
	QueueID    string   `json:"queue_id"`
	ClientIP   string   `json:"client_ip"`
	HELO       string   `json:"helo"`
	MailFrom   string   `json:"mail_from"`
	Rcpts      []string `json:"rcpts"`
	HeaderFrom string   `json:"header_from"`
	Subject    string   `json:"subject"`
	MessageID  string   `json:"message_id"`
	Size       int64    `json:"size"`
	// Action is what was done (accept, tag, quarantine, tempfail,
	// reject, discard); Why what decided it ("score", "rule:<name>").
	Action   string          `json:"action"`
	Why      string          `json:"why"`
	Score    float64         `json:"score"`
	Required float64         `json:"required"`
	Reply    string          `json:"reply,omitempty"`
	Took     time.Duration   `json:"took_ns"`
	Symbols  []checks.Symbol `json:"symbols"`
	Results  []CheckRecord   `json:"results"`
	// Lines are the verdict-log lines written for the message.
	Lines []string `json:"lines"`
	// Message is the message as received when it was small enough to
	// keep (history's keep_message), for "submit as good/bad".
	Message []byte `json:"message,omitempty"`
}

// CheckRecord is one check's result in a Record.
type CheckRecord struct {
	Check   string          `json:"check"`
	Status  string          `json:"status"`
	Score   float64         `json:"score"`
	Reason  string          `json:"reason,omitempty"`
	Symbols []checks.Symbol `json:"symbols,omitempty"`
	Took    time.Duration   `json:"took_ns"`
}

// Query selects records: each non-empty field must match (case-insensitive
// substring; Action and Symbol exact), newest first, at most Limit
// (default 100), skipping Offset.
type Query struct {
	Sender, Rcpt, Subject, QueueID, Action, Symbol string
	Since, Until                                   time.Time
	Limit, Offset                                  int
}

// Match reports whether r is selected by q (Limit and Offset aside).
func (q Query) Match(r *Record) bool {
	has := func(s, sub string) bool {
		return sub == "" || strings.Contains(strings.ToLower(s), strings.ToLower(sub))
	}
	if !has(r.MailFrom+" "+r.HeaderFrom, q.Sender) || !has(r.Subject, q.Subject) || !has(r.QueueID, q.QueueID) {
		return false
	}
	if q.Rcpt != "" && !has(strings.Join(r.Rcpts, " "), q.Rcpt) {
		return false
	}
	if q.Action != "" && !strings.EqualFold(r.Action, q.Action) {
		return false
	}
	if q.Symbol != "" {
		found := false
		for _, s := range r.Symbols {
			found = found || strings.EqualFold(s.Name, q.Symbol)
		}
		if !found {
			return false
		}
	}
	if !q.Since.IsZero() && r.Time.Before(q.Since) || !q.Until.IsZero() && r.Time.After(q.Until) {
		return false
	}
	return true
}
