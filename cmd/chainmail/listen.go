package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"chainmail/milter"
)

// socketPerm is how a unix socket is opened to the MTA.
type socketPerm struct {
	Mode  os.FileMode
	Group string // name or gid; "" keeps the process's group
}

// listenMilter opens the milter socket. For unix:PATH only a stale socket
// (a socket nobody answers on, left by a crashed process) is removed: a
// live socket, or anything at PATH that is not a socket, is an error and
// stays untouched.
func listenMilter(addr string, perm socketPerm) (net.Listener, error) {
	network, a, err := milter.ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if network != "unix" {
		ln, err := net.Listen(network, a)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %v", addr, err)
		}
		return ln, nil
	}
	gid := -1
	if perm.Group != "" {
		if gid, err = lookupGroup(perm.Group); err != nil {
			return nil, fmt.Errorf("listen %s: milter.socket_group: %v", addr, err)
		}
	}
	fi, err := os.Lstat(a)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("listen %s: %v", addr, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("listen %s: %s exists and is not a socket (%s); not removing it", addr, a, fi.Mode().Type())
	default:
		if c, err := net.DialTimeout("unix", a, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another process is serving that socket", addr)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			// Only "nobody listens" makes a socket stale; a timeout or a
			// permission error says nothing about it.
			return nil, fmt.Errorf("listen %s: cannot tell whether the socket is in use: %v", addr, err)
		}
		if err := os.Remove(a); err != nil {
			return nil, fmt.Errorf("listen %s: removing the stale socket: %v", addr, err)
		}
	}
	ln, err := bindUnix(a, perm.Mode)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %v", addr, err)
	}
	// Close removes the socket file.
	if gid >= 0 {
		if err := os.Lchown(a, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: milter.socket_group %s: %v", addr, perm.Group, err)
		}
	}
	if err := os.Chmod(a, perm.Mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: %v", addr, err)
	}
	return ln, nil
}

// bindUnix creates the socket at path with at most mode's permissions
// from the start. Linux gives a new socket 0777 less the umask, so a chmod
// after bind alone would leave a moment in which any local user could
// connect; the umask in effect during bind closes it. The umask is the
// process's: it is set only around this one call, made at start.
func bindUnix(path string, mode fs.FileMode) (net.Listener, error) {
	old := syscall.Umask(int(0o777 &^ mode.Perm()))
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}

// lookupGroup takes a group name or a numeric gid.
func lookupGroup(g string) (int, error) {
	if grp, err := user.LookupGroup(g); err == nil {
		return strconv.Atoi(grp.Gid)
	}
	if n, err := strconv.Atoi(g); err == nil && n >= 0 {
		return n, nil
	}
	return 0, fmt.Errorf("no group %q", g)
}
