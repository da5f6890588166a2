package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the tests a state directory of their own: the embedded
// default configuration keeps state (the bayes check), and its automatic
// place is $STATE_DIRECTORY/state.db. Processes started by the tests get
// one each (startProcess).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chainmail-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("STATE_DIRECTORY", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
