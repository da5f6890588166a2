package storetest

import (
	"fmt"
	"strings"
	"sync"
)

// Log collects the lines logged through its Logf (a store's or an
// engine's log function) for a test to count; safe for concurrent use.
// The zero value is ready to use.
type Log struct {
	mu    sync.Mutex
	lines []string
}

// Logf formats and keeps one line.
func (l *Log) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// Lines returns a copy of the lines logged so far.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Len returns how many lines were logged.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// Count returns how many lines contain s.
func (l *Log) Count(s string) int {
	n := 0
	for _, line := range l.Lines() {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// Has reports whether a line contains s.
func (l *Log) Has(s string) bool { return l.Count(s) > 0 }
