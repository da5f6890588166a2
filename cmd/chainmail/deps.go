package main

import (
	"fmt"
	"time"

	"chainmail/checks/config"
	"chainmail/checks/dns"
	"chainmail/checks/dns/dnstest"
)

// dependencies builds the shared services of a configuration: the DNS
// resolver from the dns section (or the given servers, for replay).
func dependencies(f *config.File, servers []string) (config.Deps, error) {
	cfg := dns.Config{
		Servers: f.DNS.Servers,
		Timeout: time.Duration(f.DNS.Timeout),
		Retries: f.DNS.Retries,
	}
	if servers != nil {
		cfg.Servers = servers
	}
	r, err := dns.New(cfg)
	if err != nil {
		return config.Deps{}, fmt.Errorf("%s: dns: %v", nameOf(f.Path), err)
	}
	return config.Deps{Resolver: r}, nil
}

// replayDependencies is dependencies for replay: --zone starts an
// in-process DNS server on 127.0.0.1 serving the zone files and makes it
// the only resolver; --dns names one.
func replayDependencies(f *config.File, zones []string, dnsAddr string) (config.Deps, func(), error) {
	noop := func() {}
	switch {
	case len(zones) > 0:
		srv, err := dnstest.New(zones...)
		if err != nil {
			return config.Deps{}, noop, err
		}
		if err := srv.Start(); err != nil {
			return config.Deps{}, noop, err
		}
		d, err := dependencies(f, []string{srv.Addr()})
		if err != nil {
			srv.Close()
			return config.Deps{}, noop, err
		}
		return d, func() { srv.Close() }, nil
	case dnsAddr != "":
		d, err := dependencies(f, []string{dnsAddr})
		return d, noop, err
	}
	d, err := dependencies(f, nil)
	return d, noop, err
}
