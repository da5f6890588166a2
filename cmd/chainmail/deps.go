package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"chainmail/checks/config"
	"chainmail/checks/dns"
	"chainmail/checks/dns/zoneserver"
	"chainmail/store"
	"chainmail/store/bolt"
	"chainmail/store/redis"
)

// dependencies builds the shared services of a configuration: the DNS
// resolver from the dns section (or the given servers, for replay).
func dependencies(f *config.File, servers []string) (config.Deps, error) {
	cfg := f.DNS
	if servers != nil {
		cfg.Servers = servers
	}
	r, err := dns.New(cfg)
	if err != nil {
		return config.Deps{}, fmt.Errorf("%s: dns: %v", nameOf(f.Path), err)
	}
	return config.Deps{Resolver: r}, nil
}

// serveDependencies is dependencies for serve: the DNS client of prev
// stays while the dns settings are the same, so a reload keeps its cache
// (and its counters). The metrics of a new client are registered once
// the configuration is taken (useDNS).
func serveDependencies(f *config.File, prev *runtimeState) (config.Deps, error) {
	if prev != nil && prev.dns != nil && reflect.DeepEqual(prev.file.DNS, f.DNS) {
		return config.Deps{Resolver: prev.dns}, nil
	}
	return dependencies(f, nil)
}

// useDNS puts the metrics of next's DNS client on reg in place of
// prev's, when next has a client of its own.
func useDNS(reg prometheus.Registerer, prev, next *runtimeState) {
	if reg == nil || next.dns == nil || (prev != nil && prev.dns == next.dns) {
		return
	}
	if prev != nil && prev.dns != nil {
		for _, c := range prev.dns.Collectors() {
			reg.Unregister(c)
		}
	}
	for _, c := range next.dns.Collectors() {
		_ = reg.Register(c)
	}
}

// replayDependencies is dependencies for replay: --zone starts an
// in-process DNS server on 127.0.0.1 serving the zone files and makes it
// the only resolver; --dns names one. What replay has to say about the
// state goes to stderr.
func replayDependencies(f *config.File, zones []string, dnsAddr string, stderr io.Writer) (config.Deps, func(), error) {
	closeDNS := func() {}
	var servers []string
	switch {
	case len(zones) > 0:
		srv, err := zoneserver.New(zones...)
		if err != nil {
			return config.Deps{}, func() {}, err
		}
		if err := srv.Start(); err != nil {
			return config.Deps{}, func() {}, err
		}
		servers, closeDNS = []string{srv.Addr()}, func() { srv.Close() }
	case dnsAddr != "":
		servers = []string{dnsAddr}
	}
	d, err := dependencies(f, servers)
	if err != nil {
		closeDNS()
		return config.Deps{}, func() {}, err
	}
	closeState, err := replayState(f, &d, stderr)
	if err != nil {
		closeDNS()
		return config.Deps{}, func() {}, err
	}
	return d, func() { closeState(); closeDNS() }, nil
}

// replayState opens the state store for replay (quotas count, reputation
// learns, as they would in the daemon) and returns its closer.
func replayState(f *config.File, d *config.Deps, stderr io.Writer) (func(), error) {
	st, err := openState(f, nil, nil, func(format string, args ...any) {
		fmt.Fprintf(stderr, "chainmail replay: "+format+"\n", args...)
	})
	if errors.Is(err, bolt.ErrLocked) {
		// A running daemon holds the file: replay still runs, and the
		// checks that keep state say temperror, as they would in the
		// daemon with its store down.
		fmt.Fprintf(stderr, "chainmail replay: %v; the checks that keep state (bayes, quota, greylist, reputation) answer temperror\n", err)
		d.Store = store.Unavailable(err)
		return func() {}, nil
	}
	if err != nil || st == nil {
		return func() {}, err
	}
	d.Store = st.store
	return func() { st.store.Close() }, nil
}

// stateStore is the open state store of a configuration; a reload keeps
// it while the state section stays the same.
type stateStore struct {
	cfg   config.State
	store store.Store
}

// openState opens the state store when an enabled check needs one (nil
// otherwise). prev's store is kept when the state section did not change,
// and also when a bbolt file stays where it is with other options (its
// lock cannot be taken twice; those options need a restart).
func openState(f *config.File, prev *stateStore, reg prometheus.Registerer, logf func(string, ...any)) (*stateStore, error) {
	if !f.UsesState() {
		return nil, nil
	}
	sc := f.State
	if prev != nil && reflect.DeepEqual(prev.cfg, sc) {
		return prev, nil
	}
	if prev != nil && prev.cfg.Backend == "bolt" && sc.Backend == "bolt" && filepath.Clean(prev.cfg.File()) == filepath.Clean(sc.File()) {
		logf("chainmail: state: changed bbolt options take effect after a restart")
		return prev, nil
	}
	metrics := store.NewMetrics(reg)
	var s store.Store
	switch sc.Backend {
	case "bolt":
		path := sc.File()
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("%s: state: %v", nameOf(f.Path), err)
		}
		b, err := bolt.Open(path, bolt.Options{FlushInterval: time.Duration(sc.FlushInterval), OnCorrupt: sc.OnCorrupt, Metrics: metrics, Logf: logf})
		var ce *bolt.CorruptError
		if errors.As(err, &ce) {
			return nil, err // one line naming the file and the way out
		}
		if err != nil {
			return nil, fmt.Errorf("%s: state: %w", nameOf(f.Path), err)
		}
		s = b
	case "redis":
		rs, err := redis.Open(redis.Options{
			Settings: sc.Redis,
			Metrics:  metrics, Logf: logf,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: state: %v", nameOf(f.Path), err)
		}
		s = rs
	default:
		return nil, fmt.Errorf("%s: state: unknown backend %q", nameOf(f.Path), sc.Backend)
	}
	return &stateStore{cfg: sc, store: s}, nil
}
