package verdictlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
)

// TestConcurrent writes from many goroutines at once (run it with -race)
// and checks that every line arrives whole and that the lines of one
// message stay together, in the file, on stderr and in syslog.
func TestConcurrent(t *testing.T) {
	const workers, perWorker = 32, 40
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	sock := filepath.Join(dir, "log")
	srv := listenUnixgram(t, sock)
	var stderr checktest.LockedBuffer
	l, err := New(Config{Sinks: []SinkConfig{{Type: "file", Path: path}, {Type: "stderr"}, {Type: "syslog", Address: "unix:" + sock}}},
		WithClock(func() time.Time { return fixed }), WithHostname("mx1"), WithPID(7), WithStderr(&stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	var got []string
	expect := make(chan int, 1) // how many datagrams to wait for
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 64*1024)
		total := -1
		_ = srv.SetReadDeadline(time.Now().Add(60 * time.Second))
		for total < 0 || len(got) < total {
			select {
			case total = <-expect:
				continue
			default:
			}
			if total < 0 {
				// Still writing: read with a short deadline so the count
				// can arrive.
				_ = srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			} else {
				_ = srv.SetReadDeadline(time.Now().Add(10 * time.Second))
			}
			n, _, err := srv.ReadFrom(buf)
			if err != nil {
				if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() && total < 0 {
					continue
				}
				return
			}
			got = append(got, string(buf[:n]))
		}
	}()

	want := map[string][]string{} // queue id -> lines
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				id := fmt.Sprintf("W%02dM%03d", w, i)
				m := msg(id, "192.0.2.1", "s@a.example", []string{"r@b.example", "q@c.example"}, strings.Repeat("subject ", i))
				v := &checks.Verdict{Spam: i%2 == 0, Action: checks.Action(i % 6), Score: float64(i), Required: 5,
					Listed: []string{"ZEN"}[:i%2], Symbols: []checks.Symbol{{Name: "X", Score: float64(i)}}}
				lines := l.Message(m, v)
				if i%5 == 0 {
					// A single event between messages: never inside a group.
					logEvent(l, id, Infected(id, "192.0.2.1", "", ""))
				}
				mu.Lock()
				want[id] = lines
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	n := workers * perWorker / 5 // the Infected lines
	for _, lines := range want {
		n += len(lines)
	}
	expect <- n

	verify := func(name string, lines []string, prefix string) {
		t.Helper()
		seen := 0
		for i := 0; i < len(lines); {
			line := lines[i]
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("%s: line %d has no prefix: %q", name, i+1, line)
			}
			bare := strings.TrimPrefix(line, prefix)
			if strings.HasPrefix(bare, "Infected message ") {
				i++
				continue
			}
			id := queueIDOf(bare)
			group, ok := want[id]
			if !ok {
				t.Fatalf("%s: line %d: unknown or interleaved: %q", name, i+1, line)
			}
			for j, w := range group {
				if i+j >= len(lines) || lines[i+j] != prefix+w {
					t.Fatalf("%s: message %s: line %d is %q, want %q", name, id, j+1, lines[i+j], prefix+w)
				}
			}
			i += len(group)
			seen++
		}
		if seen != len(want) {
			t.Errorf("%s: %d message groups, want %d", name, seen, len(want))
		}
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	verify("file", strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), "Mar  5 09:07:03 mx1 chainmail[7]: ")
	verify("stderr", strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n"), "Mar  5 09:07:03 mx1 chainmail[7]: ")
	<-recvDone
	if len(got) != n {
		t.Errorf("syslog received %d datagrams, want %d", len(got), n)
	}
	if l.Dropped() != 0 {
		t.Errorf("Dropped = %d", l.Dropped())
	}
	verify("syslog", got, "<22>Mar  5 09:07:03 chainmail[7]: ")
}

// queueIDOf finds the queue id in a per-message line.
func queueIDOf(line string) string {
	for _, p := range []string{"RBL checks: ", "Message ", "Spam Actions: message ", "Delivery of spam: message ",
		"Delivery of nonspam: message ", "Non-delivery of spam: message ", "Non-delivery of nonspam: message ", "Deferral of message: message "} {
		if strings.HasPrefix(line, p) {
			id, _, _ := strings.Cut(strings.TrimPrefix(line, p), " ")
			return id
		}
	}
	return ""
}
