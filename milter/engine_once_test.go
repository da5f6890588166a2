package milter_test

import (
	"context"
	"sync"
	"testing"

	"chainmail/checks"
	"chainmail/milter"
	"chainmail/milter/miltertest"
)

// spamCheck classifies every message spam.
type spamCheck struct{}

func (spamCheck) Name() string { return "spam" }
func (spamCheck) Check(context.Context, *checks.Message, checks.Results) checks.Result {
	return checks.Result{Status: checks.StatusSpam, Class: checks.ClassSpam}
}

// A message takes the engine once, at MAIL: a reload between its RCPTs
// and its end of body does not change the configuration under it (its
// recipients checked by one, its content by another); the next message
// takes the new one.
func TestOneEnginePerMessage(t *testing.T) {
	accepting := &checks.Engine{Chain: &checks.Chain{}, Policy: checks.DefaultPolicy()}
	rejecting := &checks.Engine{Chain: &checks.Chain{Steps: []checks.Step{{Check: spamCheck{}, Decisive: checks.DecisiveSpam}}}, Policy: checks.DefaultPolicy()}
	var mu sync.Mutex
	calls := 0
	// The configuration is "reloaded" right after the first message took
	// its engine.
	srv := miltertest.Start(t, nil, func(o *milter.Options) {
		o.Engine = func() *checks.Engine {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return accepting
			}
			return rejecting
		}
	})
	env := checks.Envelope{ClientIP: []byte{192, 0, 2, 1}, HELO: "client.example", MailFrom: "s@example.net", Rcpts: []string{"bob@example.org", "carol@example.org"}}
	msg := "From: s@example.net\r\nSubject: hi\r\n\r\nhello\r\n"
	if out := srv.Send(t, env, msg); out.Action != "accept" {
		t.Errorf("first message: %s %q, want accept (the engine taken at MAIL)", out.Action, out.Reply)
	}
	mu.Lock()
	if calls != 1 {
		t.Errorf("the first message took the engine %d times, want 1", calls)
	}
	mu.Unlock()
	if out := srv.Send(t, env, msg); out.Action != "reject" {
		t.Errorf("second message: %s %q, want reject (the new engine)", out.Action, out.Reply)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("two messages took the engine %d times, want 2", calls)
	}
}
