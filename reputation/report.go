package reputation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"chainmail/store"
)

// Reported says what one report did to the history.
type Reported int

// What Report did.
const (
	// ReportedNew: the report was counted.
	ReportedNew Reported = iota
	// ReportedAlready: the message had been reported the same way before;
	// nothing changed.
	ReportedAlready
	// ReportedMoved: the message had been reported the other way; that
	// report was taken back and this one counted.
	ReportedMoved
)

// Report records an explicit report on s once per message, as sa-learn
// does for its Bayes database: id names the message (a digest of it).
//
// Each reported message leaves a small record in the store,
// <prefix>fb:m:<id> = "good|bad <unix time> <weight>", kept as long as
// history records are. Reporting the same message again the same way
// counts nothing; reporting it the other way moves it: the earlier
// report's weight is taken back, dated at the time it was counted, so it
// removes exactly what decay had left of it (apply discounts a delta older
// than the record by the same half-life), and the new report is counted.
// The weight taken back is the one recorded, so a feedback_weight changed
// in between undoes no more than was added.
//
// <prefix>fb:n:good and <prefix>fb:n:bad count the reported messages
// (Stats).
func (r *Reputation) Report(ctx context.Context, s Subject, id string, good bool) (Reported, error) {
	if len(r.learnKeys(s)) == 0 {
		return 0, errors.New("reputation: the message names no sender to report")
	}
	key := r.cfg.KeyPrefix + "fb:m:" + id
	at := r.at(s)
	mark := []byte(fmt.Sprintf("%s %d %s", feedbackClass(good), at, strconv.FormatFloat(r.cfg.FeedbackWeight, 'f', -1, 64)))
	fresh, err := store.SetNX(ctx, r.st, key, mark, r.cfg.RecordTTL)
	if err != nil {
		return 0, err
	}
	if fresh {
		if err := r.feedbackAt(ctx, s, at, r.cfg.FeedbackWeight, good); err != nil {
			// Not counted: forget the mark so that a retry counts.
			_ = store.Delete(ctx, r.st, key)
			return 0, err
		}
		_, err := store.IncrBy(ctx, r.st, r.cfg.KeyPrefix+"fb:n:"+feedbackClass(good), 1, 0)
		return ReportedNew, err
	}
	old, ok, err := store.Get(ctx, r.st, key)
	if err != nil {
		return 0, err
	}
	wasGood, oldAt, oldWeight, perr := parseMark(string(old))
	if ok && perr == nil && wasGood == good {
		return ReportedAlready, nil
	}
	if ok && perr == nil {
		// Take the earlier report back, then flush, so the undo is not
		// merged with (and dated like) the new report.
		if err := r.feedbackAt(ctx, s, oldAt, -oldWeight, wasGood); err != nil {
			return 0, err
		}
	}
	if err := store.Set(ctx, r.st, key, mark, r.cfg.RecordTTL); err != nil {
		return 0, err
	}
	if err := r.feedbackAt(ctx, s, at, r.cfg.FeedbackWeight, good); err != nil {
		return 0, err
	}
	ops := []*store.Op{{Kind: store.OpIncrBy, Key: r.cfg.KeyPrefix + "fb:n:" + feedbackClass(good), N: 1}}
	if ok && perr == nil {
		ops = append(ops, &store.Op{Kind: store.OpIncrBy, Key: r.cfg.KeyPrefix + "fb:n:" + feedbackClass(wasGood), N: -1})
	}
	return ReportedMoved, r.st.Do(ctx, ops...)
}

// feedbackAt adds weight (negative: takes it back) to s's records as a
// report of at, and writes it now.
func (r *Reputation) feedbackAt(ctx context.Context, s Subject, at int64, weight float64, good bool) error {
	one := 1.0
	if weight < 0 {
		one = -1
	}
	d := delta{at: at, spam: weight, bad: one}
	if good {
		d = delta{at: at, ham: weight, good: one}
	}
	for _, k := range r.learnKeys(s) {
		r.w.add(k, d)
	}
	return r.Flush(ctx)
}

func feedbackClass(good bool) string {
	if good {
		return "good"
	}
	return "bad"
}

func parseMark(s string) (good bool, at int64, weight float64, err error) {
	f := strings.Fields(s)
	if len(f) != 3 || (f[0] != "good" && f[0] != "bad") {
		return false, 0, 0, fmt.Errorf("reputation: report record %q", s)
	}
	if at, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return false, 0, 0, err
	}
	if weight, err = strconv.ParseFloat(f[2], 64); err != nil {
		return false, 0, 0, err
	}
	return f[0] == "good", at, weight, nil
}

// ReportStats are the counts of reported messages.
type ReportStats struct {
	Good, Bad int
}

// ReportStats reads the counts of reported messages.
func (r *Reputation) ReportStats(ctx context.Context) (ReportStats, error) {
	good := &store.Op{Kind: store.OpGet, Key: r.cfg.KeyPrefix + "fb:n:good"}
	bad := &store.Op{Kind: store.OpGet, Key: r.cfg.KeyPrefix + "fb:n:bad"}
	if err := r.st.Do(ctx, good, bad); err != nil {
		return ReportStats{}, err
	}
	n := func(op *store.Op) int {
		if op.Err != nil || !op.OK {
			return 0
		}
		f, _ := strconv.ParseFloat(string(op.Out), 64)
		return int(f)
	}
	return ReportStats{Good: n(good), Bad: n(bad)}, nil
}
