package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"chainmail/milter/holdqueue"
)

// Default socket of the hold queue helper (the packaged
// chainmail-holdqueue.socket listens there).
const defaultHoldQueueSocket = "/run/chainmail-holdqueue/holdqueue.sock"

// holdQueueCmd runs `chainmail holdqueue serve`: the root helper that runs
// Postfix's queue commands for serve's console (milter/holdqueue, the
// helper protocol in doc.go).
func holdQueueCmd(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(stderr, "usage: chainmail holdqueue serve [--socket PATH] [--group NAME] [--config-dir DIR]")
		return exitUsage
	}
	fs := flag.NewFlagSet("holdqueue serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", defaultHoldQueueSocket, "the unix socket `PATH` to create, unless systemd passes one (socket activation: LISTEN_FDS=1, fd 3)")
	group := fs.String("group", "chainmail", "the group `NAME` (or gid) whose members may connect, besides root; also the socket's group")
	mode := fs.String("socket-mode", "0660", "the permissions `MODE` (octal) of the socket it creates")
	configDir := fs.String("config-dir", "", "Postfix's configuration directory `DIR`, passed as -c DIR (\"\" = Postfix's default)")
	maxConns := fs.Int("max-conns", 8, "`N` connections served at once; more are refused as busy")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chainmail holdqueue serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	logger := log.New(stderr, "", 0)
	gid, err := lookupGroup(*group)
	if err != nil {
		logger.Printf("chainmail holdqueue serve: --group: %v", err)
		return exitUsage
	}
	perm, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || perm > 0o777 {
		logger.Printf("chainmail holdqueue serve: --socket-mode %q is not an octal mode", *mode)
		return exitUsage
	}
	if os.Geteuid() != 0 {
		// Not fatal (a test may run it as anyone), but postsuper will refuse.
		logger.Printf("chainmail holdqueue serve: warning: running as uid %d; postsuper runs for root only", os.Geteuid())
	}
	ln, from, err := holdQueueListener(*socket, socketPerm{Mode: os.FileMode(perm), Group: *group})
	if err != nil {
		logger.Printf("chainmail holdqueue serve: %v", err)
		return exitServer
	}
	srv := &holdqueue.Server{
		Queue:    holdqueue.New(holdqueue.Config{ConfigDir: *configDir}),
		Allow:    holdqueue.AllowGroup(uint32(gid)),
		MaxConns: *maxConns,
		Log:      logger.Printf,
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sig
		logger.Printf("chainmail holdqueue serve: %v: stopping", s)
		ln.Close()
	}()
	logger.Printf("chainmail holdqueue serve: listening on %s (%s); root and group %s may connect", ln.Addr(), from, *group)
	if err := srv.Serve(ln); err != nil {
		logger.Printf("chainmail holdqueue serve: %v", err)
		return exitServer
	}
	return exitOK
}

// holdQueueListener takes the socket systemd passes (LISTEN_PID is this
// process, LISTEN_FDS=1: fd 3), else creates path with perm.
func holdQueueListener(path string, perm socketPerm) (net.Listener, string, error) {
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		n := os.Getenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
		if n != "1" {
			return nil, "", fmt.Errorf("systemd passed LISTEN_FDS=%q, want exactly one socket", n)
		}
		syscall.CloseOnExec(3)
		f := os.NewFile(3, "systemd socket")
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, "", fmt.Errorf("the socket systemd passed (fd 3): %v", err)
		}
		if _, ok := ln.(*net.UnixListener); !ok {
			ln.Close()
			return nil, "", fmt.Errorf("the socket systemd passed is not a unix stream socket (%s)", ln.Addr().Network())
		}
		return ln, "from systemd", nil
	}
	ln, err := listenMilter("unix:"+path, perm)
	if err != nil {
		return nil, "", err
	}
	return ln, "created", nil
}
