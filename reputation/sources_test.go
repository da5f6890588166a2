package reputation

import (
	"errors"
	"testing"
	"time"
)

// Each evidence source stands alone: given gathered inputs it adds its
// evidence, and the sum of all sources makes the verdict.
func TestEvidenceSources(t *testing.T) {
	in := &inputs{
		s:     Subject{Auth: Auth{DMARC: "fail"}},
		e:     entities{domains: []string{"new.example", "old.example"}, senders: []string{"new.example"}, from: "new.example"},
		now:   now0,
		lists: []List{{Name: "NRD", Kind: ListNew}, {Name: "DBL", Kind: ListBlock}},
		listed: [][]bool{
			{true, false},
			{false, false},
		},
		listErrs: [][]error{
			{nil, nil},
			{nil, errors.New("timeout")},
		},
		domRecs: make([]record, 2),
		ages:    []time.Time{{}, now0.AddDate(-3, 0, 0)},
		ageErrs: []string{"not found", ""},
	}
	a := &Assessment{}
	listEvidence(in, a)
	if len(a.Evidence) != 2 || a.Evidence[0].Text != "new.example newly registered per NRD" || a.Evidence[0].Points != ptsNewList ||
		a.Evidence[1].Input != "dns" || a.Evidence[1].Points != 0 || len(a.Failures) != 1 || a.Failures[0] != "list DBL old.example: timeout" {
		t.Errorf("lists: %+v %q", a.Evidence, a.Failures)
	}
	a = &Assessment{}
	ageEvidence(in, a)
	if !a.AgeKnown || a.Youngest != "old.example" || a.AgeDays < 365*3-1 || len(a.Failures) != 1 || a.Failures[0] != "rdap new.example: not found" {
		t.Errorf("ages: %+v", a)
	}
	a = &Assessment{}
	for _, src := range sources {
		src(in, a)
	}
	a.consolidate()
	// never seen (-1), newly registered (-3), DMARC fail (-3).
	if a.Score != ptsNoHistory+ptsNewList+ptsDMARCFail || a.Verdict != Awful || a.Threat != ThreatNew || len(a.Suspected) != 1 || a.Suspected[0] != "new.example" {
		t.Errorf("all: %v %s %s %v %+v", a.Score, a.Verdict, a.Threat, a.Suspected, a.Evidence)
	}
}
