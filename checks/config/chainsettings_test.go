package config_test

import (
	"testing"

	"chainmail/checks"
)

// on_timeout and always_run default from the check (local content
// checks tempfail, network checks continue; attachment and antivirus
// always run) and a check entry overrides them.
func TestChainSettingDefaults(t *testing.T) {
	f := parse(t, `
checks:
  - name: lists
  - name: rbl
  - name: attachment
  - name: antivirus
  - name: whaling
    on_timeout: continue
  - name: uribl
    on_timeout: tempfail
  - name: gtube
    always_run: true
`)
	want := map[string]struct {
		on     checks.OnTimeout
		always bool
	}{
		"lists":      {checks.TimeoutTempfail, false},
		"rbl":        {checks.TimeoutContinue, false},
		"attachment": {checks.TimeoutTempfail, true},
		"antivirus":  {checks.TimeoutTempfail, true},
		"whaling":    {checks.TimeoutContinue, false},
		"uribl":      {checks.TimeoutTempfail, false},
		"gtube":      {checks.TimeoutTempfail, true},
	}
	e := build(t, f)
	if len(e.Chain.Steps) != len(want) {
		t.Fatalf("%d steps", len(e.Chain.Steps))
	}
	for _, s := range e.Chain.Steps {
		w := want[s.Check.Name()]
		if s.OnTimeout != w.on || s.AlwaysRun != w.always {
			t.Errorf("%s: on_timeout %s always_run %v, want %s %v", s.Check.Name(), s.OnTimeout, s.AlwaysRun, w.on, w.always)
		}
	}
}
