package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress is learn's progress line on a terminal: done/total, rate and
// time left, redrawn in place with \r at most ten times a second. Where
// stderr is not a terminal it writes nothing.
type progress struct {
	w          io.Writer
	total, n   int
	start, at  time.Time
	shown      bool
	onTerminal bool
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.onTerminal = true
		}
	}
	return p
}

func (p *progress) step() {
	p.n++
	if !p.onTerminal || (time.Since(p.at) < 100*time.Millisecond && p.n < p.total) {
		return
	}
	p.at = time.Now()
	el := time.Since(p.start).Seconds()
	rate := float64(p.n) / max(el, 1e-9)
	eta := time.Duration(float64(p.total-p.n)/max(rate, 1e-9)) * time.Second
	fmt.Fprintf(p.w, "\r\033[Klearning %d/%d  %.1f msg/s  ETA %s", p.n, p.total, rate, eta.Round(time.Second))
	p.shown = true
}

// clear removes the line before other output.
func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
