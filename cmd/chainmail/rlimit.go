package main

import "syscall"

// raiseNoFile raises the soft descriptor limit to the hard one and returns
// the limit in effect. Every milter connection holds a descriptor (two
// with a spooled body); a low soft limit (1024 is common) would make
// a few hundred idle connections enough to stop accepting. (Go's runtime
// does the same at start since Go 1.19; doing it here keeps it true
// whatever the runtime does, and gives the figure to log.)
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return l.Cur, err
		}
		l = want
	}
	return l.Cur, nil
}
