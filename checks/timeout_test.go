package checks

import (
	"context"
	"testing"
	"time"
)

func hamFake(name string) *fake {
	return newFake(name, func(context.Context, *Message, Results) Result {
		return Result{Status: StatusPass, Class: ClassHam, Symbols: []Symbol{{Name: "ALLOW", Score: -20}}}
	})
}

// A ham decision skips ordinary steps but not always-run ones; a spam
// decision skips both. A blocked finding of an always-run step still
// decides the message (through rules) after an allow, and its error still
// defers it.
func TestAlwaysRunAfterHam(t *testing.T) {
	blocked := newFake("attachment", func(context.Context, *Message, Results) Result {
		return Result{Status: StatusBlocked}
	})
	other := newFake("gtube", nil)
	c := &Chain{Steps: []Step{
		{Check: hamFake("lists"), Decisive: DecisiveBoth},
		{Check: other},
		{Check: blocked, AlwaysRun: true},
	}}
	rs := c.Run(context.Background(), &Message{})
	if got, want := statuses(rs), "lists=pass gtube=skipped attachment=blocked"; got != want {
		t.Fatalf("statuses %s, want %s", got, want)
	}
	p := DefaultPolicy()
	p.Rules = []Rule{{Name: "attachment-blocked", If: `attachment.status == "blocked"`, Action: Reject}}
	if err := p.Compile([]string{"lists", "gtube", "attachment"}); err != nil {
		t.Fatal(err)
	}
	if v := p.Decide(&Message{}, rs, nil); v.Action != Reject {
		t.Errorf("allowed message with a blocked attachment: %s (%s)", v.Action, v.Why)
	}

	spam := &Chain{Steps: []Step{
		{Check: newFake("lists", func(context.Context, *Message, Results) Result {
			return Result{Status: StatusListed, Class: ClassSpam}
		}), Decisive: DecisiveBoth},
		{Check: newFake("attachment", nil), AlwaysRun: true},
	}}
	if got, want := statuses(spam.Run(context.Background(), &Message{})), "lists=listed attachment=skipped"; got != want {
		t.Errorf("after spam: %s, want %s", got, want)
	}

	failing := &Chain{Steps: []Step{
		{Check: hamFake("lists"), Decisive: DecisiveBoth},
		{Check: newFake("antivirus", func(context.Context, *Message, Results) Result { panic("boom") }), AlwaysRun: true},
	}}
	if v := DefaultPolicy().Decide(&Message{}, failing.Run(context.Background(), &Message{}), nil); v.Action != Tempfail || v.Why.String() != "error:antivirus" {
		t.Errorf("always-run error after ham: %s %s, want tempfail error:antivirus", v.Action, v.Why)
	}
}

// A step cut by the chain deadline before it could start counts as timed
// out; on_timeout continue lets the message through, tempfail defers it
// with the error reply even after a ham decision.
func TestTimeoutBeforeStart(t *testing.T) {
	block := func(ctx context.Context, _ *Message, _ Results) Result { <-ctx.Done(); return Result{} }
	for _, tc := range []struct {
		on   OnTimeout
		want Action
	}{{TimeoutContinue, Accept}, {TimeoutTempfail, Tempfail}} {
		c := &Chain{Deadline: 30 * time.Millisecond, Steps: []Step{
			{Check: newFake("slowdep", block), Timeout: time.Minute, OnTimeout: TimeoutContinue, Decisive: DecisiveSpam},
			{Check: newFake("whaling", nil), OnTimeout: tc.on},
		}}
		rs := c.Run(context.Background(), &Message{})
		if rs[1].Status != StatusTimeout || rs[1].Reason != "chain deadline reached before start" {
			t.Fatalf("%s: %+v", tc.on, rs[1])
		}
		v := DefaultPolicy().Decide(&Message{}, rs, nil)
		if v.Action != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.on, v.Action, v.Why, tc.want)
		}
		if tc.want == Tempfail && (v.Why.String() != "timeout:whaling" || v.SMTPReply() != "451 4.7.1 Temporary failure while checking the message, try again later") {
			t.Errorf("why %q reply %q", v.Why, v.SMTPReply())
		}
	}
	// Ham does not excuse a content check that ran out of time.
	c := &Chain{Steps: []Step{
		{Check: hamFake("lists"), Decisive: DecisiveBoth},
		{Check: newFake("attachment", block), Timeout: 20 * time.Millisecond, AlwaysRun: true},
	}}
	if v := DefaultPolicy().Decide(&Message{}, c.Run(context.Background(), &Message{}), nil); v.Action != Tempfail {
		t.Errorf("ham with a timed-out attachment check: %s", v.Action)
	}
	if _, err := ParseOnTimeout("sometimes"); err == nil {
		t.Error("ParseOnTimeout accepted sometimes")
	}
}
