package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/dns"
	"chainmail/checks/history"
	"chainmail/checks/verdictlog"
	"chainmail/cmd/chainmail/console"
	"chainmail/milter"
	"chainmail/store"
)

// runtimeState is one loaded configuration with its logger.
type runtimeState struct {
	file   *config.File
	engine *checks.Engine
	log    *verdictlog.Logger
	// state is the open state store; nil when no check needs one.
	state *stateStore
	// feedbackToken is the feedback endpoint's token ("" = off).
	feedbackToken string
	// dns is the DNS client, shared by the next configuration when its
	// dns settings are the same.
	dns *dns.Client
	// history records the verdicts the console shows (nil when the
	// console is off).
	history *history.History
}

// load reads and builds a configuration; it never leaves anything open on
// error. reg takes the collectors of the state store and of the checks;
// logf their operational lines.
func load(path string, metrics *milter.Metrics, prev *runtimeState, reg prometheus.Registerer, logf func(string, ...any)) (*runtimeState, error) {
	f, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	deps, err := serveDependencies(f, prev)
	if err != nil {
		return nil, err
	}
	var prevState *stateStore
	if prev != nil {
		prevState = prev.state
	}
	state, err := openState(f, prevState, reg, logf)
	if err != nil {
		return nil, err
	}
	closeNew := func() {
		if state != nil && state != prevState {
			state.store.Close()
		}
	}
	if state != nil {
		deps.Store = state.store
	}
	deps.Registerer, deps.Logf = reg, logf
	eng, err := f.Build(deps)
	if err != nil {
		closeNew()
		return nil, err
	}
	token, err := f.FeedbackToken()
	if err != nil {
		closeChecks(eng, logf)
		closeNew()
		return nil, err
	}
	if token == "" {
		token = reputationToken(eng) // the older setting, kept working
	}
	var lg *verdictlog.Logger
	if prev != nil && reflect.DeepEqual(prev.file.Log, f.Log) {
		lg = prev.log
	} else if lg, err = verdictlog.New(f.Log, verdictlog.WithRegisterer(reg)); err != nil {
		closeNew()
		return nil, fmt.Errorf("%s: log: %v", nameOf(path), err)
	}
	var m checks.Observer
	if metrics != nil {
		m = metrics
	}
	eng.Observer = observer(lg, m)
	var hist *history.History
	if f.ConsoleOn() && state != nil {
		if prev != nil && prev.history != nil && prev.state == state && reflect.DeepEqual(prev.file.Console.History, f.Console.History) {
			hist = prev.history
		} else {
			hist = history.New(state.store, f.Console.History, historyHost(f), history.WithLogf(logf), history.WithRegisterer(reg))
		}
		eng.Observer = loggedHistory{eng.Observer, hist}
	}
	next := &runtimeState{file: f, engine: eng, log: lg, state: state, feedbackToken: token, history: hist}
	next.dns, _ = deps.Resolver.(*dns.Client)
	useDNS(reg, prev, next)
	return next, nil
}

// oneLine keeps s to one line, for a STATUS= notification.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func nameOf(path string) string {
	if path == "" {
		return "(default)"
	}
	return path
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "configuration `FILE` (default: the embedded configuration)")
	listen := fs.String("listen", "", "milter address `ADDR` (inet:HOST:PORT or unix:PATH), overrides the configuration")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chainmail serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}

	nofile, nofileErr := raiseNoFile()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := milter.NewMetrics(reg)

	var current atomic.Pointer[runtimeState]
	// Before the first configuration is loaded (the state store may log
	// while it opens) lines go to stderr.
	logf := func(format string, args ...any) {
		if st := current.Load(); st != nil {
			st.log.Printf(format, args...)
			return
		}
		fmt.Fprintf(stderr, "chainmail: "+format+"\n", args...)
	}
	st, err := load(*cfgPath, metrics, nil, reg, logf)
	if err != nil {
		fmt.Fprintf(stderr, "chainmail: %v\n", err)
		return exitUsage
	}
	current.Store(st)

	addr := st.file.Listen
	if *listen != "" {
		addr = *listen
	}
	ln, err := listenMilter(addr, socketPerm{Mode: os.FileMode(st.file.Milter.SocketMode), Group: st.file.Milter.SocketGroup})
	if err != nil {
		fmt.Fprintf(stderr, "chainmail: %v\n", err)
		return exitUsage
	}

	srv := milter.NewServer(milterOptions(st.file, func() *checks.Engine { return current.Load().engine }, logf, metrics))

	var httpSrv *http.Server
	if st.file.Metrics.Listen != "" {
		hl, err := net.Listen("tcp", st.file.Metrics.Listen)
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "chainmail: metrics listener: %v\n", err)
			return exitUsage
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if st.file.Metrics.PProf {
			// Profiles for the postmaster chasing a slow check, only when
			// asked for: stacks and heap may hold message data.
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		// Feedback ("this is spam / this is not") for every learner of
		// the engine in force: feedback.go.
		fb := feedbackHandler(func() feedbackTarget {
			st := current.Load()
			return feedbackTarget{engine: st.engine, token: st.feedbackToken}
		})
		mux.Handle("/learn", fb)
		mux.Handle("/learn/stats", fb)
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "ok sessions=%d\n", srv.Sessions())
		})
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go httpSrv.Serve(hl)
		logf("chainmail %s: metrics and health on http://%s/metrics /healthz", version, hl.Addr())
	}

	// The web console (consolewire.go), on its own listener.
	var cons *console.Console
	if st.file.ConsoleOn() {
		deps := console.Deps{History: currentHistory(current.Load), HoldQueue: currentHoldQueue(current.Load),
			Learner: serveLearner(current.Load), Status: serveStatus{current: current.Load, started: time.Now()}, Logf: logf}
		if cons, err = console.New(consoleConfig(st.file), deps); err == nil {
			err = cons.Start()
		}
		if err != nil {
			ln.Close()
			if httpSrv != nil {
				httpSrv.Close()
			}
			fmt.Fprintf(stderr, "chainmail: console: %v\n", err)
			return exitUsage
		}
		logf("chainmail %s: web console on http://%s/", version, st.file.Console.Listen)
	}

	logf("chainmail %s: milter listening on %s (configuration %s, %d checks)", version, ln.Addr(), nameOf(*cfgPath), len(st.engine.Chain.Steps))
	if nofileErr != nil {
		logf("chainmail: raising the descriptor limit: %v (limit %d)", nofileErr, nofile)
	}
	logf("chainmail: descriptor limit %d, milter.max_connections %d", nofile, st.file.Milter.MaxConnections)
	if uint64(st.file.Milter.MaxConnections)+64 > nofile {
		logf("chainmail: milter.max_connections %d is close to the descriptor limit %d: at the limit new connections wait until others close", st.file.Milter.MaxConnections, nofile)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// The socket is bound and the configuration loaded: under systemd
	// (Type=notify) the unit counts as started now, and units ordered
	// after it (postfix.service) find the socket.
	if err := sdNotify("READY=1", "STATUS=milter listening on "+ln.Addr().String()); err != nil {
		logf("chainmail: %v", err)
	}

	for {
		select {
		case err := <-serveErr:
			if err != nil {
				logf("chainmail: milter server stopped: %v", err)
				return exitServer
			}
			return exitOK
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				sdNotify("RELOADING=1", "MONOTONIC_USEC="+monotonicUsec(), "STATUS=reloading the configuration")
				old := current.Load()
				next, err := load(*cfgPath, metrics, old, reg, logf)
				if err != nil {
					logf("chainmail: configuration reload refused, keeping the running configuration: %v", err)
					sdNotify("READY=1", "STATUS=configuration reload refused, running the previous one: "+oneLine(err.Error()))
					continue
				}
				if next.file.Listen != old.file.Listen && *listen == "" {
					logf("chainmail: listen address changed to %s; it takes effect after a restart", next.file.Listen)
				}
				current.Store(next)
				// Like the logger: messages in progress may still use the
				// old engine's checks and store. The checks go first (bayes
				// learns what it queued), then the store.
				time.AfterFunc(time.Duration(old.file.Milter.Timeout)+5*time.Second, func() {
					if old.history != nil && old.history != next.history {
						old.history.Close()
					}
					closeChecks(old.engine, logf)
					if old.state != nil && next.state != old.state {
						old.state.store.Close()
					}
				})
				if next.log != old.log {
					// Messages in progress may still log through the old
					// logger: close it once they are surely done.
					time.AfterFunc(time.Duration(old.file.Milter.Timeout)+5*time.Second, func() { old.log.Close() })
				} else if err := next.log.Reopen(); err != nil {
					logf("chainmail: reopening log files: %v", err)
				}
				logf("chainmail: configuration reloaded (%d checks)", len(next.engine.Chain.Steps))
				sdNotify("READY=1", fmt.Sprintf("STATUS=configuration reloaded (%d checks)", len(next.engine.Chain.Steps)))
				continue
			}
			sdNotify("STOPPING=1", "STATUS=finishing messages in progress")
			logf("chainmail: %s received, finishing messages in progress", sig)
			grace := time.Duration(current.Load().file.Milter.Timeout) + 5*time.Second
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			err := srv.Shutdown(ctx)
			cancel()
			if httpSrv != nil {
				httpSrv.Close()
			}
			// A unix socket went when Shutdown closed its listener; the
			// path may since be another chainmail's socket: leave it.
			if err != nil && !errors.Is(err, net.ErrClosed) {
				logf("chainmail: shutdown: %v", err)
			}
			if cons != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				cons.Shutdown(ctx)
				cancel()
			}
			flushChecks(current.Load().engine, logf)
			closeChecks(current.Load().engine, logf)
			if h := current.Load().history; h != nil {
				h.Close() // what is queued is written before the store closes
			}
			if s := current.Load().state; s != nil {
				if err := s.store.Close(); err != nil {
					logf("chainmail: closing the state store: %v", err)
				}
			}
			logf("chainmail: stopped")
			current.Load().log.Close()
			return exitOK
		}
	}
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "configuration `FILE` (default: the embedded configuration)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	f, err := config.Load(*cfgPath)
	if err == nil {
		var deps config.Deps
		if deps, err = dependencies(f, nil); err == nil {
			// The store is not opened: a running daemon holds the bbolt
			// file's lock, and checking must not touch state.
			if f.UsesState() {
				deps.Store = store.Unavailable(errors.New("not opened by config check"))
			}
			_, err = f.Build(deps)
		}
	}
	if err == nil {
		var lg *verdictlog.Logger
		if lg, err = verdictlog.New(f.Log); err == nil {
			lg.Close()
		} else {
			err = fmt.Errorf("%s: log: %v", nameOf(*cfgPath), err)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "chainmail: %v\n", err)
		return exitUsage
	}
	out, err := f.Marshal()
	if err != nil {
		fmt.Fprintf(stderr, "chainmail: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "# configuration %s is valid; effective settings:\n", nameOf(*cfgPath))
	stdout.Write(out)
	return exitOK
}
