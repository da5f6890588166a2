package reputation

import (
	"context"
	"math"
	"testing"
	"time"

	"chainmail/store"
)

// A message reported twice counts once; reported the other way it moves,
// and what the first report added is taken back whole, also after time
// has passed (decay) — as sa-learn does for its Bayes database.
func TestReportCountsOnceAndMoves(t *testing.T) {
	f := newFixture(t, Config{FeedbackWeight: 5, HalfLife: 30 * 24 * time.Hour})
	ctx := context.Background()
	s := subject("news@old.test", "pass")
	rec := func() record {
		t.Helper()
		b, ok, err := store.Get(ctx, f.st, f.rep.domainKey("old.test"))
		if err != nil || !ok {
			t.Fatalf("record: %v %v", ok, err)
		}
		r, err := decodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		return r.decay(f.clk.Now().Unix(), 30*24*time.Hour)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }

	if out, err := f.rep.Report(ctx, s, "m1", false); err != nil || out != ReportedNew {
		t.Fatalf("first report: %v %v", out, err)
	}
	if r := rec(); !near(r.Bad, 1) || !near(r.Spam, 5) {
		t.Fatalf("after the report: %+v", r)
	}
	if out, err := f.rep.Report(ctx, s, "m1", false); err != nil || out != ReportedAlready {
		t.Fatalf("the same report again: %v %v", out, err)
	}
	if r := rec(); !near(r.Bad, 1) || !near(r.Spam, 5) {
		t.Fatalf("a report counted twice: %+v", r)
	}
	// A month later (one half-life) the message is reported good.
	f.clk.Set(now0.AddDate(0, 0, 30))
	if r := rec(); !near(r.Bad, 0.5) {
		t.Fatalf("decay: %+v", r)
	}
	if out, err := f.rep.Report(ctx, s, "m1", true); err != nil || out != ReportedMoved {
		t.Fatalf("the other way: %v %v", out, err)
	}
	if r := rec(); !near(r.Bad, 0) || !near(r.Spam, 0) || !near(r.Good, 1) || !near(r.Ham, 5) {
		t.Fatalf("after the move: %+v", r)
	}
	// Another message from the same sender counts on its own.
	if out, err := f.rep.Report(ctx, s, "m2", true); err != nil || out != ReportedNew {
		t.Fatalf("another message: %v %v", out, err)
	}
	st, err := f.rep.ReportStats(ctx)
	if err != nil || st.Good != 2 || st.Bad != 0 {
		t.Errorf("stats %+v %v", st, err)
	}
	if _, err := f.rep.Report(ctx, Subject{}, "m3", true); err == nil {
		t.Error("a message without a sender was reported")
	}
}
