package verdictlog

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// failingWriter is a stderr that cannot be written.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// The lines that could not be written are a Prometheus counter, shared by
// the loggers of one registry (one per reload), so the count goes on.
func TestDroppedMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	l1, err := New(Config{}, WithStderr(failingWriter{}), WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l1.Printf("one")
	l1.Printf("two")
	if l1.Dropped() != 2 {
		t.Fatalf("Dropped = %d, want 2", l1.Dropped())
	}

	// A reload: a new logger, the same registry.
	l2, err := New(Config{Sinks: []SinkConfig{{Type: "file", Path: filepath.Join(t.TempDir(), "mail.log")}}}, WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	l2.Printf("after close")

	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != DroppedMetric || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, %v; want one %s series", mfs, err, DroppedMetric)
	}
	if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 3 {
		t.Errorf("%s = %v, want 3", DroppedMetric, got)
	}
}
