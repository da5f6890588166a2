package milter_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/milter"
	"chainmail/milter/miltertest"
)

// heavy is a local content check that does a fixed amount of CPU work per
// message (hashing), honouring ctx between rounds, and blocks messages
// whose Subject says "blocked", as the attachment check blocks an .exe.
type heavy struct {
	rounds  int
	checked atomic.Int64
}

func (h *heavy) Name() string { return "heavy" }

func (h *heavy) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	buf := make([]byte, 1<<20)
	for i := 0; i < h.rounds; i++ {
		if ctx.Err() != nil {
			return checks.Result{Status: checks.StatusTimeout, Err: ctx.Err()}
		}
		sum := sha256.Sum256(buf)
		buf[0] ^= sum[0]
	}
	h.checked.Add(1)
	if strings.Contains(m.Subject(), "blocked") {
		return checks.Result{Status: checks.StatusBlocked, Class: checks.ClassSpam, Reason: "blocked attachment"}
	}
	return checks.Result{Status: checks.StatusClean}
}

// stuck is a content check that never answers before its time is up.
type stuck struct{ name string }

func (s stuck) Name() string { return s.name }
func (s stuck) Check(ctx context.Context, _ *checks.Message, _ checks.Results) checks.Result {
	<-ctx.Done()
	return checks.Result{Status: checks.StatusClean}
}

func pressureMessage(i int) string {
	return fmt.Sprintf("From: <s%d@example.net>\r\nTo: <bob@example.org>\r\nSubject: blocked %d\r\n\r\nbody\r\n", i, i)
}

var pressureEnv = checks.Envelope{ClientIP: []byte{192, 0, 2, 1}, HELO: "client.example", MailFrom: "s@example.net", Rcpts: []string{"bob@example.org"}}

// A local content check that runs out of time (its own timeout, or the
// chain deadline cutting it) defers the message with the policy's error
// reply and the verdict says why; a check that waits on outside lists
// with on_timeout continue lets the chain go on.
func TestContentTimeoutTempfails(t *testing.T) {
	for _, tc := range []struct {
		name      string
		step      checks.Step
		deadline  time.Duration
		action    string
		wantReply string
	}{
		{"own timeout", checks.Step{Check: stuck{"attachment"}, Timeout: 50 * time.Millisecond}, 0, "tempfail", "451 4.7.1 Temporary failure while checking"},
		{"chain deadline", checks.Step{Check: stuck{"attachment"}, Timeout: time.Minute}, 50 * time.Millisecond, "tempfail", "451 4.7.1 Temporary failure while checking"},
		{"remote continues", checks.Step{Check: stuck{"rbl"}, Timeout: 50 * time.Millisecond, OnTimeout: checks.TimeoutContinue}, 0, "accept", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var whys []string
			var mu sync.Mutex
			eng := &checks.Engine{
				Chain:  &checks.Chain{Steps: []checks.Step{tc.step}, Deadline: tc.deadline},
				Policy: checks.DefaultPolicy(),
				Observer: checks.VerdictFunc(func(_ *checks.Message, v *checks.Verdict) []string {
					mu.Lock()
					whys = append(whys, v.Why.String())
					mu.Unlock()
					return nil
				}),
			}
			srv := miltertest.Start(t, eng)
			out := srv.Send(t, pressureEnv, pressureMessage(1))
			if out.Action != tc.action || !strings.HasPrefix(out.Reply, tc.wantReply) {
				t.Fatalf("outcome %s %q, want %s %q", out.Action, out.Reply, tc.action, tc.wantReply)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.action == "tempfail" && (len(whys) != 1 || whys[0] != "timeout:"+tc.step.Check.Name()) {
				t.Errorf("verdict why %q, want timeout:%s", whys, tc.step.Check.Name())
			}
		})
	}
}

// Under CPU pressure every message is checked: many concurrent messages,
// each with a blocked attachment and a CPU-heavy content check, through
// the real milter protocol. None is accepted; with admission (default:
// one message per core) every one is checked and rejected, none deferred
// for lack of time.
func TestPressureNoneUnchecked(t *testing.T) {
	const n = 150
	h := &heavy{rounds: 48}
	eng := &checks.Engine{
		Chain:  &checks.Chain{Steps: []checks.Step{{Check: h, Decisive: checks.DecisiveSpam, Timeout: 4 * time.Second}}},
		Policy: checks.DefaultPolicy(),
	}
	srv := miltertest.Start(t, eng, func(o *milter.Options) { o.Logf = func(string, ...any) {} })
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sess, err := srv.Client().Dial(pressureEnv)
			if err != nil {
				t.Error(err)
				return
			}
			defer sess.Close()
			out, err := sess.Send(pressureEnv, strings.NewReader(pressureMessage(i)))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[out.Action]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	t.Logf("%d blocked messages under pressure: %v, checked %d", n, counts, h.checked.Load())
	if counts["accept"] != 0 {
		t.Errorf("%d of %d blocked messages accepted", counts["accept"], n)
	}
	if counts["reject"] != n || h.checked.Load() != n {
		t.Errorf("rejected %d, checked %d of %d (%v)", counts["reject"], h.checked.Load(), n, counts)
	}
}
