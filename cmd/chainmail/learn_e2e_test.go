package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/checks/checktest"
	"chainmail/milter"
	"chainmail/store/storetest"
)

// learnedAll is the summary line of a learn run that learned (or had
// learned: the corpus holds copies) every message.
var learnedAll = regexp.MustCompile(`(?m)^bayes: [1-9]\d* learned, \d+ already learned, 0 moved, 0 failed$`)

// learnSetup is a configuration with the bayes check over a store, and
// the corpus directories it learns from.
type learnSetup struct {
	dir, cfg, log, milterAddr string
	spam, ham, message        string // corpus directories, the message sent
}

// newLearnSetup writes a configuration: bayes (ready after 5 spam and 5
// ham) over state, the feedback endpoint on a loopback metrics listener,
// the verdict log in a file.
func newLearnSetup(t *testing.T, state, extraChecks string) *learnSetup {
	t.Helper()
	corpus := checktest.Corpus(t, "spamassassin-public-corpus-sample")
	s := &learnSetup{dir: t.TempDir(), milterAddr: freePort(t),
		spam: filepath.Join(corpus, "spam-1"), ham: filepath.Join(corpus, "easy-ham-1")}
	s.message = filepath.Join(s.spam, "00001.7848dde101aa985090474a91ec93fcf0.eml")
	if _, err := os.Stat(s.message); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(s.dir, "feedback.token")
	os.WriteFile(tok, []byte("0123456789abcdef0123456789\n"), 0o600)
	s.cfg = filepath.Join(s.dir, "chainmail.yaml")
	s.log = filepath.Join(s.dir, "verdicts.log")
	conf := fmt.Sprintf(`listen: inet:%s
metrics: {listen: %s}
feedback: {token_file: %q}
log:
  sinks: [{type: file, path: %q}]
policy: {subject_tag: "***SPAM*** %%s"}
%s
checks:
%s  - name: bayes
    options: {min_spam: 5, min_ham: 5}
`, s.milterAddr, freePort(t), tok, s.log, state, extraChecks)
	if err := os.WriteFile(s.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *learnSetup) logText() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// send sends the file at path through the milter protocol with queue id
// id and returns the outcome and the verdict line of the message.
func (s *learnSetup) send(t *testing.T, path, id string) (*milter.Outcome, string) {
	t.Helper()
	items, err := readItems(path) // without the corpus files' mbox From line
	if err != nil || len(items) != 1 {
		t.Fatalf("%s: %v (%d messages)", path, err, len(items))
	}
	raw := items[0].Raw
	env := checks.Envelope{ClientIP: net.ParseIP("192.0.2.25"), ClientName: "mail.sender.test", HELO: "mail.sender.test",
		MailFrom: "someone@sender.test", Rcpts: []string{"user@example.org"}, QueueID: id}
	c := &milter.Client{Network: "tcp", Address: s.milterAddr, Timeout: 30 * time.Second}
	out, err := replaySend(c, env, raw)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	waitFor(t, "the verdict line of "+id, func() bool {
		for _, l := range strings.Split(s.logText(), "\n") {
			if strings.Contains(l, "Message "+id+" ") && strings.Contains(l, " is ") {
				line = l
				return true
			}
		}
		return false
	})
	return out, line
}

func header(o *milter.Outcome, name string) string {
	for _, h := range o.Headers {
		// A change of an existing field is named "Name[index]".
		if n, _, _ := strings.Cut(h.Name, "["); strings.EqualFold(n, name) {
			return h.Value
		}
	}
	return ""
}

// runLearn runs the chainmail binary's learn command.
func runLearn(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"learn"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// The user's command while serve runs over bbolt: `chainmail learn`
// finds the file held, posts to serve's endpoint, and the next copy of a
// message the classifier did not judge is judged spam by it.
func TestLearnThroughServeEndpoint(t *testing.T) {
	bin := buildBinary(t)
	s := newLearnSetup(t, fmt.Sprintf("state: {backend: bolt, path: %q, flush_interval: 100ms}", filepath.Join(t.TempDir(), "state.db")), "")
	startProcess(t, exec.Command(bin, "serve", "-c", s.cfg), "tcp", s.milterAddr)

	out, line := s.send(t, s.message, "4BX1")
	if strings.Contains(line, "BAYES_") || !strings.Contains(line, "is not spam") || out.Action != "accept" {
		t.Fatalf("before learning: %s %+v", line, out)
	}
	if !strings.Contains(s.logText(), "with subject Life Insurance - Why Pay More?") {
		t.Fatalf("the message did not arrive whole:\n%s", s.logText())
	}

	code, stdout, stderr := runLearn(t, bin, "--spam", "-c", s.cfg, s.spam)
	if code != 0 || !strings.Contains(stderr, "held by a running chainmail: sending the reports to its endpoint http://") ||
		!learnedAll.MatchString(stdout) {
		t.Fatalf("learn --spam: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("a progress line on a stderr that is not a terminal: %q", stderr)
	}
	code, stdout, stderr = runLearn(t, bin, "--ham", "-c", s.cfg, s.ham)
	if code != 0 || !learnedAll.MatchString(stdout) {
		t.Fatalf("learn --ham: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// Reported again: counted once.
	code, stdout, _ = runLearn(t, bin, "--spam", "-c", s.cfg, s.message)
	if code != 0 || !strings.Contains(stdout, "bayes: 0 learned, 1 already learned, 0 moved, 0 failed") {
		t.Errorf("the same message again: exit %d\n%s", code, stdout)
	}
	code, stdout, stderr = runLearn(t, bin, "--stats", "-c", s.cfg)
	stdout0 := stdout
	if code != 0 || !regexp.MustCompile(`bayes: learned [1-9]\d spam and [1-9]\d ham; needs 5 and 5 \(min_spam, min_ham\): ready`).MatchString(stdout) {
		t.Errorf("learn --stats: exit %d\n%s\n%s", code, stdout, stderr)
	}

	out, line = s.send(t, s.message, "4BX2")
	if !strings.Contains(line, "is spam") || !strings.Contains(line, "BAYES_99 6.00, BAYES_999 4.00") {
		t.Fatalf("after learning, the verdict line: %s", line)
	}
	// All but certain (p >= 0.999): held in the quarantine.
	if fmt.Sprint(out.Action) != "quarantine" || !strings.HasPrefix(header(out, "X-Spam-Status"), "Yes") {
		t.Errorf("after learning, the milter's answer: %+v", out)
	}
	// A ham report of the same message moves it.
	code, stdout, _ = runLearn(t, bin, "--ham", "-c", s.cfg, s.message)
	if code != 0 || !strings.Contains(stdout, "bayes: 0 learned, 0 already learned, 1 moved, 0 failed") {
		t.Errorf("moved: exit %d\n%s", code, stdout)
	}
	_, after, _ := runLearn(t, bin, "--stats", "-c", s.cfg)
	var spam0, ham0, spam1, ham1 int
	fmt.Sscanf(strings.TrimPrefix(stdout0, "bayes: "), "learned %d spam and %d ham", &spam0, &ham0)
	fmt.Sscanf(strings.TrimPrefix(after, "bayes: "), "learned %d spam and %d ham", &spam1, &ham1)
	if spam1 != spam0-1 || ham1 != ham0+1 {
		t.Errorf("learn --stats after the move:\n%s\nbefore:\n%s", after, stdout0)
	}
}

// The same over a real Redis: learn writes to the store itself while
// serve runs, and serve's next verdict changes.
func TestLearnRedisWhileServing(t *testing.T) {
	bin := buildBinary(t)
	r := storetest.StartRedis(t)
	s := newLearnSetup(t, fmt.Sprintf("state: {backend: redis, redis: {addrs: [%q]}}", r.Addr()), "")
	startProcess(t, exec.Command(bin, "serve", "-c", s.cfg), "tcp", s.milterAddr)

	if _, line := s.send(t, s.message, "5CY1"); strings.Contains(line, "BAYES_") || !strings.Contains(line, "is not spam") {
		t.Fatalf("before learning: %s", line)
	}
	for _, a := range [][]string{{"--spam", s.spam}, {"--ham", s.ham}} {
		code, stdout, stderr := runLearn(t, bin, a[0], "-c", s.cfg, a[1])
		if code != 0 || strings.Contains(stderr, "endpoint") || !learnedAll.MatchString(stdout) {
			t.Fatalf("learn %s: exit %d\n%s\n%s", a[0], code, stdout, stderr)
		}
	}
	out, line := s.send(t, s.message, "5CY2")
	if !strings.Contains(line, "is spam") || !strings.Contains(line, "BAYES_99 6.00") || !strings.HasPrefix(header(out, "X-Spam-Status"), "Yes") {
		t.Fatalf("after learning: %s\n%+v", line, out)
	}
}

// learn over an mbox and a Maildir that each hold one message that is
// not one: it is reported, the others are learned by every learner, and
// the exit status says a message failed.
func TestLearnMailboxesWithABrokenMessage(t *testing.T) {
	corpus := checktest.Corpus(t, "spamassassin-public-corpus-sample")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state: {backend: bolt, path: %q}
checks:
  - name: bayes
    options: {min_spam: 5, min_ham: 5}
  - name: reputation
    options: {rdap: {enabled: false}}
`, filepath.Join(dir, "state.db"))), 0o644)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(corpus, "spam-2", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	names, _ := filepath.Glob(filepath.Join(corpus, "spam-2", "*.eml"))
	if len(names) < 4 {
		t.Fatalf("%d messages in spam-2", len(names))
	}
	broken := []byte("this is not a message at all\nand it goes on\n")
	sep := "From sender@example.test Thu Aug 22 10:00:00 2002\n"
	var mbox bytes.Buffer
	for _, part := range [][]byte{read(filepath.Base(names[0])), broken, read(filepath.Base(names[1]))} {
		mbox.WriteString(sep)
		mbox.Write(bytes.ReplaceAll(part, []byte("\nFrom "), []byte("\n>From ")))
		mbox.WriteString("\n")
	}
	mboxPath := filepath.Join(dir, "spam.mbox")
	os.WriteFile(mboxPath, mbox.Bytes(), 0o644)

	code, stdout, stderr := runCmd(t, "learn", "--spam", "-c", cfg, mboxPath)
	if code != exitFiles || !strings.Contains(stderr, "spam.mbox#2: not a message") ||
		!strings.Contains(stdout, "3 messages reported as spam, 1 could not be read or sent") ||
		!strings.Contains(stdout, "bayes: 2 learned, 0 already learned, 0 moved, 1 failed") ||
		!strings.Contains(stdout, "reputation: 2 learned, 0 already learned, 0 moved, 1 failed") {
		t.Errorf("mbox: exit %d\n%s\n%s", code, stdout, stderr)
	}

	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, sub), 0o755)
	}
	os.WriteFile(filepath.Join(md, "cur", "1.host:2,S"), read(filepath.Base(names[2])), 0o644)
	os.WriteFile(filepath.Join(md, "cur", "2.host:2,S"), broken, 0o644)
	os.WriteFile(filepath.Join(md, "new", "3.host"), read(filepath.Base(names[3])), 0o644)
	// The first mbox message again, as ham: it moves, for both learners.
	os.WriteFile(filepath.Join(md, "new", "4.host"), read(filepath.Base(names[0])), 0o644)
	code, stdout, stderr = runCmd(t, "learn", "--ham", "-c", cfg, md)
	if code != exitFiles || !strings.Contains(stderr, "2.host:2,S: not a message") ||
		!strings.Contains(stdout, "bayes: 2 learned, 0 already learned, 1 moved, 1 failed") ||
		!strings.Contains(stdout, "reputation: 2 learned, 0 already learned, 1 moved, 1 failed") {
		t.Errorf("Maildir: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// A directory: its *.eml files and Maildirs are read, and the files
	// left alone are counted aloud.
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	os.WriteFile(filepath.Join(tree, "sub", "a.eml"), read(filepath.Base(names[1])), 0o644)
	os.WriteFile(filepath.Join(tree, "notes.txt"), []byte("not mail"), 0o644)
	code, stdout, stderr = runCmd(t, "learn", "--spam", "-c", cfg, tree)
	if code != exitOK || !strings.Contains(stderr, "tree: 1 files left alone (not *.eml, *.mbox or in a Maildir)") ||
		!strings.Contains(stdout, "bayes: 0 learned, 1 already learned, 0 moved, 0 failed") {
		t.Errorf("directory: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "learn", "--stats", "-c", cfg)
	if code != exitOK || !strings.Contains(stdout, "bayes: learned 1 spam and 3 ham; needs 5 and 5 (min_spam, min_ham): not ready") ||
		!strings.Contains(stdout, "reputation: 1 messages reported as spam, 3 as ham") {
		t.Errorf("stats: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// Autolearn through the milter protocol: a message the deny list scores
// far above autolearn's spam threshold is learned as spam by bayes, and
// learn --stats (through serve's endpoint) shows it.
func TestAutolearnThroughMilter(t *testing.T) {
	bin := buildBinary(t)
	s := newLearnSetup(t, fmt.Sprintf("state: {backend: bolt, path: %q, flush_interval: 100ms}", filepath.Join(t.TempDir(), "state.db")),
		"  - name: lists\n    options: {deny: {senders: [\"*@sender.test\"]}}\n")
	b, _ := os.ReadFile(s.cfg)
	os.WriteFile(s.cfg, bytes.Replace(b, []byte("options: {min_spam: 5, min_ham: 5}"), []byte("options: {min_spam: 5, min_ham: 5, autolearn: {enabled: true, spam: 12, ham: 0.1}}"), 1), 0o644)
	p := startProcess(t, exec.Command(bin, "serve", "-c", s.cfg), "tcp", s.milterAddr)

	out, line := s.send(t, s.message, "6DZ1")
	if !strings.Contains(line, "is spam") || out.Action != "reject" {
		t.Fatalf("the deny-listed message: %s %+v", line, out)
	}
	waitFor(t, "autolearn", func() bool {
		_, stdout, _ := runLearn(t, bin, "--stats", "-c", s.cfg)
		return strings.Contains(stdout, "bayes: learned 1 spam and 0 ham")
	})

	// After a reload the endpoint serves the new engine, whose autolearn
	// learns in turn (the old one's was closed).
	b, _ = os.ReadFile(s.cfg)
	os.WriteFile(s.cfg, bytes.Replace(b, []byte("min_spam: 5, min_ham: 5"), []byte("min_spam: 3, min_ham: 3"), 1), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(s.logText(), "configuration reloaded") })
	if _, line := s.send(t, filepath.Join(filepath.Dir(s.message), "00002.d94f1b97e48ed3b553b3508d116e6a09.eml"), "6DZ2"); !strings.Contains(line, "is spam") {
		t.Fatalf("the second deny-listed message: %s", line)
	}
	waitFor(t, "autolearn after the reload", func() bool {
		_, stdout, _ := runLearn(t, bin, "--stats", "-c", s.cfg)
		return strings.Contains(stdout, "bayes: learned 2 spam and 0 ham; needs 3 and 3")
	})
}

// On a terminal learn shows its progress line; the summary is the same.
func TestLearnProgressOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give learn a terminal")
	}
	bin := buildBinary(t)
	corpus := checktest.Corpus(t, "spamassassin-public-corpus-sample")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state: {backend: bolt, path: %q}\nchecks: [{name: bayes}]\n", filepath.Join(dir, "state.db"))), 0o644)
	out, err := exec.Command(scriptBin, "-qec", fmt.Sprintf("%s learn --ham -c %s %s", bin, cfg, filepath.Join(corpus, "easy-ham-2")), "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "\r\x1b[Klearning ") || !strings.Contains(string(out), "learning 20/20") || !strings.Contains(string(out), "msg/s  ETA") {
		t.Errorf("no progress line on a terminal:\n%q", out)
	}
	if !learnedAll.MatchString(strings.ReplaceAll(string(out), "\r", "")) {
		t.Errorf("no summary:\n%q", out)
	}
}
