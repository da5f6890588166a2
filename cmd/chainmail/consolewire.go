package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/dnsbl"
	"chainmail/checks/history"
	"chainmail/checks/rbl"
	"chainmail/checks/uribl"
	"chainmail/cmd/chainmail/console"
	"chainmail/milter/holdqueue"
	"chainmail/store"
)

// The web console's collaborators in serve. Each reads the configuration
// in force at the time of the request, so a reload reaches the console
// without restarting it (its own listener and secrets need a restart).

// consoleConfig is the console's part of the configuration file.
func consoleConfig(f *config.File) console.Config {
	c := f.Console
	return console.Config{Listen: c.Listen, AllowRemote: c.AllowRemote, PasswordFile: c.PasswordFile,
		TokenFile: c.TokenFile, SessionTTL: checks.Duration(c.SessionTTL)}
}

// currentHistory is the history of the configuration in force.
type currentHistory func() *runtimeState

func (h currentHistory) get() (*history.History, error) {
	if st := h(); st != nil && st.history != nil {
		return st.history, nil
	}
	return nil, errors.New("history is off in the configuration in force (console.listen)")
}

func (h currentHistory) Search(ctx context.Context, q history.Query) ([]*history.Record, error) {
	hs, err := h.get()
	if err != nil {
		return nil, err
	}
	return hs.Search(ctx, q)
}

func (h currentHistory) Get(ctx context.Context, id string) (*history.Record, error) {
	hs, err := h.get()
	if err != nil {
		return nil, err
	}
	return hs.Get(ctx, id)
}

// currentHoldQueue is Postfix's hold queue with the commands of the
// configuration in force.
type currentHoldQueue func() *runtimeState

func (q currentHoldQueue) queue() console.HoldQueue {
	return console.AdaptHoldQueue[holdqueue.Held](holdqueue.New(q().file.Console.Postfix))
}

func (q currentHoldQueue) List(ctx context.Context) ([]console.Held, error) {
	return q.queue().List(ctx)
}

func (q currentHoldQueue) Message(ctx context.Context, id string) ([]byte, error) {
	return q.queue().Message(ctx, id)
}

func (q currentHoldQueue) Release(ctx context.Context, id string) error {
	return q.queue().Release(ctx, id)
}

func (q currentHoldQueue) Delete(ctx context.Context, id string) error {
	return q.queue().Delete(ctx, id)
}

// serveLearner trains every learner of the engine in force, the path the
// feedback endpoint takes.
type serveLearner func() *runtimeState

func (l serveLearner) Learn(ctx context.Context, raw []byte, spam bool) error {
	m, err := reportMessage(raw, "")
	if err != nil {
		return err
	}
	outs := trainAll(ctx, l().engine, m, spam)
	if len(outs) == 0 {
		return errors.New("no check in the chain learns (enable bayes or reputation)")
	}
	var failed []string
	for _, o := range outs {
		if o.Error != "" {
			failed = append(failed, o.Check+": "+o.Error)
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

func (l serveLearner) Stats(ctx context.Context) ([]console.LearnerStat, error) {
	var out []console.LearnerStat
	for _, s := range statsOf(ctx, l().engine) {
		out = append(out, console.LearnerStat(s))
	}
	return out, nil
}

// serveStatus reports the configuration in force (secrets hidden), its
// checks, the DNS lists suspended and the state store's health.
type serveStatus struct {
	current func() *runtimeState
	started time.Time
}

func (s serveStatus) Status(ctx context.Context) (console.StatusInfo, error) {
	st := s.current()
	info := console.StatusInfo{Version: version, Started: s.started, Store: console.StoreHealth{Backend: "none", OK: true, Detail: "no check keeps state"}}
	if out, err := st.file.Marshal(); err == nil {
		var tree any
		if yaml.Unmarshal(out, &tree) == nil {
			info.Config = tree
		}
	}
	enabled := map[string]bool{}
	for _, step := range st.engine.Chain.Steps {
		name := step.Check.Name()
		enabled[name] = true
		state := console.CheckState{Name: name, State: "ok", Detail: fmt.Sprintf("timeout %s", step.Timeout)}
		switch c := step.Check.(type) {
		case *rbl.Check:
			info.Suspended = append(info.Suspended, suspendedOf(name, c.Set().Health())...)
		case *uribl.Check:
			info.Suspended = append(info.Suspended, suspendedOf(name, c.Set().Health())...)
		}
		info.Checks = append(info.Checks, state)
	}
	for _, c := range st.file.Checks {
		if !enabled[c.Name] {
			info.Checks = append(info.Checks, console.CheckState{Name: c.Name, State: "disabled"})
		}
	}
	for i := range info.Checks {
		for _, l := range info.Suspended {
			if strings.HasPrefix(l.Name, info.Checks[i].Name+"/") {
				info.Checks[i].State, info.Checks[i].Detail = "degraded", "a DNS list is suspended"
			}
		}
	}
	if st.state != nil {
		info.Store = console.StoreHealth{Backend: st.file.State.Backend, OK: true, Detail: "answering"}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, _, err := store.Get(ctx, st.state.store, "console:ping"); err != nil {
			info.Store.OK, info.Store.Detail = false, err.Error()
		}
	}
	return info, nil
}

// suspendedOf lists the suspended DNS lists of one check's set.
func suspendedOf(check string, hs []dnsbl.Health) []console.SuspendedList {
	var out []console.SuspendedList
	for _, h := range hs {
		if h.Suspended {
			out = append(out, console.SuspendedList{Name: check + "/" + h.Name, Reason: h.Reason})
		}
	}
	return out
}

// historyHost names this instance in history records: the configured
// hostname, else the machine's.
func historyHost(f *config.File) string {
	if f.Hostname != "" {
		return f.Hostname
	}
	h, _ := os.Hostname()
	return h
}
