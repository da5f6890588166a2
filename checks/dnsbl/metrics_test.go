package dnsbl

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// chainmail_dnsbl_list_suspended says which lists are suspended, follows
// the Set of the configuration in force, and forgets a closed Set.
func TestSuspendedMetric(t *testing.T) {
	newSet := func() *Set {
		s, err := NewSet([]ListConfig{
			{Name: "slow", Zone: "slow.test", Timeout: 20 * time.Millisecond},
			{Name: "fast", Zone: "fast.test", Timeout: time.Second},
		}, []bool{true, true}, "RBL_", slowResolver{}, HealthConfig{Failures: 1, Window: 1, Retry: time.Hour}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	reg := prometheus.NewPedanticRegistry()
	m := NewSuspendedMetric(reg)
	if again := NewSuspendedMetric(reg); again != m {
		t.Fatal("a second NewSuspendedMetric on one registry is not the registered collector")
	}
	old := newSet()
	m.Track("rbl", old)
	want := func(what, text string) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		for _, mf := range mfs {
			if mf.GetName() != "chainmail_dnsbl_list_suspended" || mf.GetType() != dto.MetricType_GAUGE {
				t.Errorf("%s: unexpected family %s %s", what, mf.GetName(), mf.GetType())
				continue
			}
			for _, mt := range mf.GetMetric() {
				l := mt.GetLabel()
				fmt.Fprintf(&got, "%s=%s %s=%s %g\n", l[0].GetName(), l[0].GetValue(), l[1].GetName(), l[1].GetValue(), mt.GetGauge().GetValue())
			}
		}
		if got.String() != text {
			t.Errorf("%s:\n%s\nwant\n%s", what, got.String(), text)
		}
	}
	want("fresh", "check=rbl list=fast 0\ncheck=rbl list=slow 0\n")

	old.Lookup(context.Background(), []Query{{List: 0, Key: "1.2.0.192", Value: "192.0.2.1"}, {List: 1, Key: "1.2.0.192", Value: "192.0.2.1"}})
	if !old.Health()[0].Suspended {
		t.Fatalf("the list that timed out is not suspended: %+v", old.Health())
	}
	want("after a timeout", "check=rbl list=fast 0\ncheck=rbl list=slow 1\n")

	// A reload: the new Set's lists, healthy, replace the old ones; the
	// old Set closing later does not remove them.
	next := newSet()
	m.Track("rbl", next)
	old.Close()
	want("after a reload", "check=rbl list=fast 0\ncheck=rbl list=slow 0\n")
	next.Close()
	want("all closed", "")
}
