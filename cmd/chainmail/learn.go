package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/reputation"
	"chainmail/checks/secret"
	"chainmail/store"
	"chainmail/store/bolt"
)

// learn is "this is spam / this is not": explicit reports for every
// learner of the configured chain (the bayes classifier, the reputation
// history).
//
//	chainmail learn --spam|--ham [-c FILE] PATH...                 train (--bad, --good: the same)
//	chainmail learn --stats [-c FILE]                             what each learner knows
//	chainmail learn --spam|--ham --url URL --token-file F PATH... post to a feedback endpoint
//	chainmail learn --listen 127.0.0.1:PORT [-c FILE]             serve the feedback endpoint
//
// PATH is a message file, an mbox, a Maildir or a directory holding them
// (read as replay reads them). learn opens the state store itself; when
// a running chainmail holds the bbolt file, it posts the reports to that
// process's endpoint (metrics.listen, feedback.token_file) instead, so
// the command is the same whether serve runs or not.
func learn(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("learn", flag.ContinueOnError)
	fl.SetOutput(stderr)
	cfgPath := fl.String("c", "", "configuration `FILE`")
	var spam, ham bool
	fl.BoolVar(&spam, "spam", false, "learn the messages as spam")
	fl.BoolVar(&ham, "ham", false, "learn the messages as ham (wanted mail)")
	fl.BoolVar(&spam, "bad", false, "the same as --spam")
	fl.BoolVar(&ham, "good", false, "the same as --ham")
	stats := fl.Bool("stats", false, "print what each learner knows")
	endpoint := fl.String("url", "", "post the reports to the feedback endpoint at `URL` (…/learn)")
	tokenFile := fl.String("token-file", "", "bearer token `FILE` for --url and --listen")
	listen := fl.String("listen", "", "serve the feedback endpoint on loopback `ADDR` until stopped")
	if err := fl.Parse(args); err != nil {
		return exitUsage
	}
	if *listen != "" {
		if spam || ham || *stats || *endpoint != "" || fl.NArg() > 0 {
			fmt.Fprintln(stderr, "chainmail learn: --listen takes no reports")
			return exitUsage
		}
		return learnServe(*cfgPath, *listen, *tokenFile, stderr)
	}
	if *stats {
		if spam || ham || fl.NArg() > 0 {
			fmt.Fprintln(stderr, "chainmail learn: --stats takes no reports")
			return exitUsage
		}
		return learnStats(*cfgPath, *endpoint, *tokenFile, stdout, stderr)
	}
	if spam == ham {
		fmt.Fprintln(stderr, "chainmail learn: say --spam or --ham")
		return exitUsage
	}
	if fl.NArg() == 0 {
		fmt.Fprintln(stderr, "chainmail learn: no PATH given (a message, an mbox, a Maildir, a directory)")
		return exitUsage
	}
	tg, err := learnTarget(*cfgPath, *endpoint, *tokenFile, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitUsage
	}
	defer tg.close()
	return learnPaths(tg, fl.Args(), spam, stdout, stderr)
}

// target is where reports go: the engine with its store open here, or
// an endpoint.
type target struct {
	engine *checks.Engine
	client *feedbackClient
	close  func()
}

func (t *target) train(item replayItem, spam bool) ([]trainOutcome, error) {
	if t.client != nil {
		return t.client.report(item.Raw, spam)
	}
	m, err := reportMessage(item.Raw, item.Sidecar)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return trainAll(ctx, t.engine, m, spam), nil
}

// learnTarget opens the configuration's store and engine, or, when a
// running chainmail holds the bbolt file, that process's endpoint.
func learnTarget(cfgPath, endpoint, tokenFile string, stderr io.Writer) (*target, error) {
	if endpoint != "" {
		token, err := readToken(tokenFile)
		if err != nil {
			return nil, err
		}
		return &target{client: newFeedbackClient(endpoint, token), close: func() {}}, nil
	}
	f, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	eng, closeAll, err := learnEngine(f, stderr)
	if errors.Is(err, bolt.ErrLocked) {
		c, eerr := runningEndpoint(f)
		if eerr != nil {
			return nil, fmt.Errorf("%v\n%v", err, eerr)
		}
		fmt.Fprintf(stderr, "chainmail learn: %s is held by a running chainmail: sending the reports to its endpoint %s\n", f.State.Path, c.endpoint)
		return &target{client: c, close: func() {}}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(trainers(eng)) == 0 {
		closeAll()
		return nil, fmt.Errorf("%s: no learner is enabled (the bayes or reputation check)", nameOf(cfgPath))
	}
	return &target{engine: eng, close: closeAll}, nil
}

// learnEngine builds the configuration's engine over its state store.
func learnEngine(f *config.File, stderr io.Writer) (*checks.Engine, func(), error) {
	deps, err := dependencies(f, nil)
	if err != nil {
		return nil, nil, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "chainmail learn: "+format+"\n", args...) }
	st, err := openState(f, nil, nil, logf)
	if err != nil {
		return nil, nil, err
	}
	closeStore := func() {}
	if st != nil {
		deps.Store = st.store
		closeStore = func() { st.store.Close() }
	}
	deps.Logf = logf
	eng, err := f.Build(deps)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return eng, func() {
		flushChecks(eng, logf)
		closeChecks(eng, logf)
		closeStore()
	}, nil
}

// runningEndpoint is the feedback endpoint of the chainmail that runs
// with configuration f: its metrics listener, its token.
func runningEndpoint(f *config.File) (*feedbackClient, error) {
	if f.Metrics.Listen == "" {
		return nil, errors.New("the running chainmail has no metrics listener (metrics.listen) to take the reports: set metrics.listen and feedback.token_file, or use redis")
	}
	token, err := endpointToken(f)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, errors.New("the running chainmail's feedback endpoint is off: set feedback.token_file (and reload it) to learn while it runs")
	}
	return newFeedbackClient("http://"+f.Metrics.Listen+"/learn", token), nil
}

// endpointToken is the token serve's endpoint takes with configuration
// f: feedback.token_file, or else the reputation check's
// feedback_token_file.
func endpointToken(f *config.File) (string, error) {
	token, err := f.FeedbackToken()
	if err != nil || token != "" {
		return token, err
	}
	deps, err := dependencies(f, nil)
	if err != nil {
		return "", err
	}
	deps.Store = store.Unavailable(errors.New("not opened"))
	eng, err := f.Build(deps)
	if err != nil {
		return "", err
	}
	defer closeChecks(eng, func(string, ...any) {})
	return reputationToken(eng), nil
}

// reputationToken is the feedback_token_file of eng's reputation check.
func reputationToken(eng *checks.Engine) string {
	for _, s := range eng.Chain.Steps {
		if c, ok := s.Check.(*reputation.Check); ok {
			return c.FeedbackToken()
		}
	}
	return ""
}

// tally counts the outcomes of one learner.
type tally struct {
	learned, already, moved, failed int
}

// learnPaths trains every message under paths and prints a summary per
// learner; the status is exitFiles when a message could not be learned.
func learnPaths(tg *target, paths []string, spam bool, stdout, stderr io.Writer) int {
	status := exitOK
	files, err := collect(paths)
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		status = exitFiles
	}
	for _, note := range skippedFiles(paths, files) {
		fmt.Fprintf(stderr, "chainmail learn: %s\n", note)
	}
	var items []replayItem
	for _, p := range files {
		its, err := readItems(p)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
			status = exitFiles
			continue
		}
		items = append(items, its...)
	}
	bar := newProgress(stderr, len(items))
	tallies := map[string]*tally{}
	var order []string
	unread := 0
	for _, it := range items {
		res, err := tg.train(it, spam)
		if err != nil {
			bar.clear()
			fmt.Fprintf(stderr, "chainmail learn: %s: %v\n", it.Name, err)
			unread++
			status = exitFiles
		}
		for _, o := range res {
			t, ok := tallies[o.Check]
			if !ok {
				t = &tally{}
				tallies[o.Check] = t
				order = append(order, o.Check)
			}
			switch checks.Trained(o.Outcome) {
			case checks.TrainedNew:
				t.learned++
			case checks.TrainedAlready:
				t.already++
			case checks.TrainedMoved:
				t.moved++
			default:
				t.failed++
				status = exitFiles
				bar.clear()
				fmt.Fprintf(stderr, "chainmail learn: %s: %s: %s\n", it.Name, o.Check, o.Error)
			}
		}
		bar.step()
	}
	bar.clear()
	class := "ham"
	if spam {
		class = "spam"
	}
	fmt.Fprintf(stdout, "%d messages reported as %s", len(items), class)
	if unread > 0 {
		fmt.Fprintf(stdout, ", %d could not be read or sent", unread)
	}
	fmt.Fprintln(stdout)
	for _, name := range order {
		t := tallies[name]
		fmt.Fprintf(stdout, "%s: %d learned, %d already learned, %d moved, %d failed\n", name, t.learned, t.already, t.moved, t.failed+unread)
	}
	return status
}

// learnStats prints what every learner knows, from the store or, when a
// running chainmail holds it, from its endpoint.
func learnStats(cfgPath, endpoint, tokenFile string, stdout, stderr io.Writer) int {
	var stats []learnerStats
	if endpoint != "" {
		token, err := readToken(tokenFile)
		if err == nil {
			stats, err = newFeedbackClient(endpoint, token).stats()
		}
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
			return exitUsage
		}
	} else {
		tg, err := learnTarget(cfgPath, "", "", stderr)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
			return exitUsage
		}
		defer tg.close()
		if tg.client != nil {
			stats, err = tg.client.stats()
		} else {
			stats = statsOf(context.Background(), tg.engine)
		}
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
			return exitUsage
		}
	}
	status := exitOK
	for _, s := range stats {
		fmt.Fprintln(stdout, s.line())
		if s.Error != "" {
			status = exitFiles
		}
	}
	return status
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("--token-file is needed")
	}
	t, err := secret.ReadToken(path)
	return string(t), err
}

// learnServe runs the feedback endpoint until SIGINT or SIGTERM, for
// every learner of the configuration; the token is --token-file's, or
// else the configuration's.
func learnServe(cfgPath, addr, tokenFile string, stderr io.Writer) int {
	if err := checkLoopback(addr); err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitUsage
	}
	var token string
	if tokenFile != "" {
		t, err := readToken(tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
			return exitUsage
		}
		token = t
	}
	f, err := config.Load(cfgPath)
	if err == nil && token == "" {
		token, err = endpointToken(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitUsage
	}
	eng, closeAll, err := learnEngine(f, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitUsage
	}
	defer closeAll()
	if len(trainers(eng)) == 0 {
		fmt.Fprintf(stderr, "chainmail learn: %s: no learner is enabled (the bayes or reputation check)\n", nameOf(cfgPath))
		return exitUsage
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitUsage
	}
	h := feedbackHandler(func() feedbackTarget { return feedbackTarget{engine: eng, token: token} })
	mux := http.NewServeMux()
	mux.Handle("/learn", h)
	mux.Handle("/learn/stats", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stderr, "chainmail learn: feedback endpoint on http://%s/learn\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitServer
	}
	return exitOK
}

// skippedFiles says, per directory given, how many files below it were
// not read (collect takes *.eml, *.mbox and Maildir messages), so that a
// directory of messages named otherwise is not passed over in silence.
func skippedFiles(paths, taken []string) []string {
	seen := make(map[string]bool, len(taken))
	for _, f := range taken {
		seen[filepath.Clean(f)] = true
	}
	var notes []string
	for _, p := range paths {
		if st, err := os.Stat(p); err != nil || !st.IsDir() || isMaildir(p) {
			continue
		}
		n := 0
		filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if path != p && isMaildir(path) {
					return fs.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && !seen[filepath.Clean(path)] && !strings.HasSuffix(path, ".envelope") && !strings.HasPrefix(d.Name(), ".") {
				n++
			}
			return nil
		})
		if n > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d files left alone (not *.eml, *.mbox or in a Maildir)", p, n))
		}
	}
	return notes
}
