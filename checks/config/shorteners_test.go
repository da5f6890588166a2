package config_test

import (
	"testing"

	"chainmail/checks/uribl"
)

// TestURIBLShorteners: the default configuration leaves shortened links
// alone; shorteners.enabled with a list turns following on, hosts as
// configured.
func TestURIBLShorteners(t *testing.T) {
	list := "      lists: [{name: L, zone: l.test, probe_listed: '-', probe_unlisted: '-'}]\n"
	for _, c := range []struct {
		opts string
		want map[string]bool
	}{
		{list, nil},
		{list + "      shorteners: {enabled: true, hosts: [Bit.LY, t.co], max_hops: 3}\n", map[string]bool{"bit.ly": true, "t.co": true}},
		{"      shorteners: {enabled: true}\n", nil}, // no lists: nothing to look the hosts up on
	} {
		e := build(t, parse(t, "hostname: x\nchecks:\n  - name: uribl\n    options:\n"+c.opts))
		seen := false
		for _, s := range e.Chain.Steps {
			u, ok := s.Check.(*uribl.Check)
			if !ok {
				continue
			}
			seen = true
			got := u.Limits().Shorteners
			if len(got) != len(c.want) {
				t.Errorf("%q: shorteners %v, want %v", c.opts, got, c.want)
			}
			for h := range c.want {
				if !got[h] {
					t.Errorf("%q: %s missing from %v", c.opts, h, got)
				}
			}
		}
		if !seen {
			t.Errorf("%q: no uribl check in the chain", c.opts)
		}
	}
}
