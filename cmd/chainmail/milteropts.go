package main

import (
	"time"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/milter"
)

// milterOptions are the milter server's settings for configuration f.
// serve and replay both build their server from it, so replay applies
// the same limits (milter.max_header_bytes, the spool, the timeouts) as
// the daemon.
func milterOptions(f *config.File, engine func() *checks.Engine, logf func(string, ...any), metrics *milter.Metrics) milter.Options {
	return milter.Options{
		Engine:         engine,
		SpoolThreshold: int(f.Spool.Threshold),
		SpoolDir:       f.Spool.Dir,
		MaxHeaderBytes: int(f.Milter.MaxHeaderBytes),
		Timeout:        time.Duration(f.Milter.Timeout),
		Logf:           logf,
		Metrics:        metrics,
		MaxConcurrent:  f.Milter.MaxConcurrent,
		ConnectTimeout: time.Duration(f.Milter.ConnectTimeout),
		CommandTimeout: time.Duration(f.Milter.CommandTimeout),
		IdleTimeout:    time.Duration(f.Milter.IdleTimeout),
		MaxConnections: f.Milter.MaxConnections,
	}
}
