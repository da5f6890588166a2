package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/reputation"
	rep "chainmail/reputation"
)

// learn is "submit as good/bad": explicit feedback for the reputation
// history.
//
//	chainmail learn --good|--bad [-c FILE] FILE.eml...            write to the state store
//	chainmail learn --good|--bad --url URL --token-file F FILE... post to a feedback endpoint
//	chainmail learn --listen 127.0.0.1:PORT [-c FILE]             serve the feedback endpoint
//
// Each message counts for its sender domains, addresses and client
// network (taken from Return-Path, From, Reply-To and the topmost
// Received, or the NAME.eml.envelope sidecar, as replay reads them), dated
// by its Date field. With a bbolt store, only one process can hold the
// file: post to the endpoint of the process that has it.
func learn(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("learn", flag.ContinueOnError)
	fl.SetOutput(stderr)
	cfgPath := fl.String("c", "", "configuration `FILE`")
	good := fl.Bool("good", false, "report the messages as good (wanted)")
	bad := fl.Bool("bad", false, "report the messages as bad (spam, phishing)")
	endpoint := fl.String("url", "", "post the reports to the feedback endpoint at `URL` (…/learn)")
	tokenFile := fl.String("token-file", "", "bearer token `FILE` for --url and --listen")
	listen := fl.String("listen", "", "serve the feedback endpoint on loopback `ADDR` until stopped")
	if err := fl.Parse(args); err != nil {
		return exitUsage
	}
	if *listen != "" {
		if *good || *bad || *endpoint != "" || fl.NArg() > 0 {
			fmt.Fprintln(stderr, "chainmail learn: --listen takes no reports")
			return exitUsage
		}
		return learnServe(*cfgPath, *listen, *tokenFile, stderr)
	}
	if *good == *bad {
		fmt.Fprintln(stderr, "chainmail learn: say --good or --bad")
		return exitUsage
	}
	if fl.NArg() == 0 {
		fmt.Fprintln(stderr, "chainmail learn: no FILE.eml given")
		return exitUsage
	}
	files, err := collect(fl.Args())
	status := exitOK
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		status = exitFiles
	}
	verdict := "bad"
	if *good {
		verdict = "good"
	}

	var report func(path string, raw []byte) error
	if *endpoint != "" {
		token, err := readToken(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
			return exitUsage
		}
		client := &http.Client{Timeout: 30 * time.Second}
		report = func(_ string, raw []byte) error { return postReport(client, *endpoint, token, verdict, raw) }
	} else {
		c, closeAll, err := reputationCheck(*cfgPath, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
			return exitUsage
		}
		defer closeAll()
		report = func(path string, raw []byte) error {
			m, err := feedbackMessage(raw, path+".envelope")
			if err != nil {
				return err
			}
			return c.Feedback(context.Background(), m, *good)
		}
	}
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err == nil {
			err = report(path, raw)
		}
		if err != nil {
			fmt.Fprintf(stderr, "chainmail learn: %s: %v\n", path, err)
			status = exitFiles
			continue
		}
		fmt.Fprintf(stdout, "%s: reported %s\n", path, verdict)
	}
	return status
}

// reputationCheck builds the configuration's reputation check with its
// state store.
func reputationCheck(cfgPath string, stderr io.Writer) (*reputation.Check, func(), error) {
	f, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	deps, err := dependencies(f, nil)
	if err != nil {
		return nil, nil, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "chainmail learn: "+format+"\n", args...) }
	st, err := openState(f, nil, nil, logf)
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() {}
	if st != nil {
		deps.Store = st.store
		closeAll = func() { st.store.Close() }
	}
	deps.Logf = logf
	eng, err := f.Build(deps)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	for _, s := range eng.Chain.Steps {
		if c, ok := s.Check.(*reputation.Check); ok {
			return c, closeAll, nil
		}
	}
	closeAll()
	return nil, nil, fmt.Errorf("%s: the reputation check is not enabled", nameOf(cfgPath))
}

// feedbackMessage reads a reported message with its envelope as replay
// derives it (sidecar, when the path has one, over the header).
func feedbackMessage(raw []byte, sidecar string) (*checks.Message, error) {
	m, err := checks.ReadMessage(bytes.NewReader(skipMboxFrom(raw)), checks.NewSpool(0, ""))
	if err != nil {
		return nil, err
	}
	env := envelopeFromMessage(m)
	if sidecar != "" {
		if err := applySidecar(&env, sidecar); err != nil {
			return nil, err
		}
	}
	m.Envelope = env
	if m.Get("From") == "" && env.MailFrom == "" {
		return nil, errors.New("the message names no sender (no From, no Return-Path)")
	}
	return m, nil
}

func readToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("--token-file is needed")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s: empty token", path)
	}
	return t, nil
}

// postReport sends one report to a feedback endpoint.
func postReport(client *http.Client, endpoint, token, verdict string, raw []byte) error {
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(http.MethodPost, endpoint+sep+"verdict="+verdict, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "message/rfc822")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// feedbackMux serves the check's endpoint at /learn; token "" is the
// check's feedback_token_file.
func feedbackMux(c *reputation.Check, token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/learn", c.FeedbackHandler(token, func(raw []byte) (*checks.Message, error) { return feedbackMessage(raw, "") }))
	return mux
}

// engineFeedback is the feedback endpoint for a running daemon: each
// request goes to the reputation check of the engine in force (so a
// reload takes effect), with its feedback_token_file. Mounted at /learn
// on the metrics listener it lets reports reach the process that holds
// the bbolt file; without an enabled reputation check it answers 404.
func engineFeedback(current func() *checks.Engine) http.Handler {
	parse := func(raw []byte) (*checks.Message, error) { return feedbackMessage(raw, "") }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e := current(); e != nil {
			for _, s := range e.Chain.Steps {
				if c, ok := s.Check.(*reputation.Check); ok {
					c.FeedbackHandler("", parse).ServeHTTP(w, r)
					return
				}
			}
		}
		http.Error(w, "the reputation check is not enabled", http.StatusNotFound)
	})
}

// learnServe runs the feedback endpoint until SIGINT or SIGTERM.
func learnServe(cfgPath, addr, tokenFile string, stderr io.Writer) int {
	if err := rep.CheckLoopback(addr); err != nil {
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
	c, closeAll, err := reputationCheck(cfgPath, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitUsage
	}
	defer closeAll()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "chainmail learn: %v\n", err)
		return exitUsage
	}
	srv := &http.Server{Handler: feedbackMux(c, token), ReadHeaderTimeout: 5 * time.Second}
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
