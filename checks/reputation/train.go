package reputation

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/mail"
	"strings"

	"chainmail/checks"
	rep "chainmail/reputation"
)

// Train implements checks.Trainer: a person's report that m is spam
// (bad) or not (good), counted once per message; reported again the
// other way it moves (rep.Reputation.Report). The report is dated by the
// message's Date field when it has one in the past, so an archive
// teaches history as it was.
func (c *Check) Train(ctx context.Context, m *checks.Message, spam bool) (checks.Trained, error) {
	s := Subject(m, nil)
	if t, err := mail.ParseDate(checks.Unfold(m.Get("Date"))); err == nil {
		s.At = t
	}
	id, err := MessageID(m)
	if err != nil {
		return "", err
	}
	out, err := c.rep.Report(ctx, s, id, !spam)
	if err != nil {
		return "", err
	}
	switch out {
	case rep.ReportedAlready:
		return checks.TrainedAlready, nil
	case rep.ReportedMoved:
		return checks.TrainedMoved, nil
	}
	return checks.TrainedNew, nil
}

// traceFields are header fields that relays, delivery agents and mail
// readers add or change on the way: the same message reported from two
// mailboxes, or exported twice, differs only in them.
var traceFields = map[string]bool{
	"received": true, "return-path": true, "delivered-to": true, "x-original-to": true,
	"authentication-results": true, "arc-seal": true, "arc-message-signature": true,
	"arc-authentication-results": true, "status": true, "x-status": true, "x-keywords": true,
	"x-uid": true, "content-length": true, "lines": true, "x-spam-status": true,
	"x-spam-flag": true, "x-spam-score": true, "x-spam-level": true, "x-chainmail": true,
}

// MessageID names m for the per-message report record: a digest of its
// header fields (trace fields left out, see traceFields; white space
// folded) and its body (line ends as LF, trailing white space left out).
func MessageID(m *checks.Message) (string, error) {
	h := sha256.New()
	for _, f := range m.Header {
		name := strings.ToLower(f.Name)
		if traceFields[name] || strings.HasPrefix(name, "x-chainmail-") {
			continue
		}
		io.WriteString(h, name)
		h.Write([]byte{':'})
		io.WriteString(h, strings.Join(strings.Fields(f.Value), " "))
		h.Write([]byte{'\n'})
	}
	h.Write([]byte{0})
	if m.Body != nil {
		// Line ends and trailing empty lines change with the way a
		// message is stored (an mbox entry, a file): not the message.
		b, err := io.ReadAll(io.NewSectionReader(m.Body, 0, m.Body.Size()))
		if err != nil {
			return "", err
		}
		h.Write(bytes.TrimRight(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), " \t\r\n"))
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// Stats are what the check can tell cheaply of its learning: the messages
// reported good and bad (moves counted in their new class).
type Stats = rep.ReportStats

// Stats reads the report counts.
func (c *Check) Stats(ctx context.Context) (Stats, error) { return c.rep.ReportStats(ctx) }

// FeedbackToken is the token of feedback_token_file ("" without one): the
// daemon's feedback endpoint takes it when feedback.token_file is not set.
func (c *Check) FeedbackToken() string { return c.token }
