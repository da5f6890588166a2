package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/milter/holdqueue"
)

// chainmail holdqueue serve without systemd: it creates its socket with
// the group and mode asked for, answers a Queue with Config.Socket using
// its own Postfix configuration directory (not the client's), and stops
// on SIGTERM, removing the socket.
func TestHoldQueueServe(t *testing.T) {
	bin := buildBinary(t)
	sock := filepath.Join(t.TempDir(), "hq.sock")
	gid := os.Getgid()
	cmd := exec.Command(bin, "holdqueue", "serve", "--socket", sock, "--group", strconv.Itoa(gid),
		"--socket-mode", "0640", "--config-dir", "/nonexistent/helper-postfix")
	p := startProcess(t, cmd, "unix", sock)

	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o640 || int(st.Gid) != gid {
		t.Errorf("%s: %v gid %d, want a socket 0640 of group %d", sock, fi.Mode(), st.Gid, gid)
	}
	q := holdqueue.New(holdqueue.Config{Socket: sock, ConfigDir: "/nonexistent/client-postfix"})
	_, err = q.List(context.Background())
	var re *holdqueue.RemoteError
	if !errors.As(err, &re) || re.Code != holdqueue.CodeFailed || !strings.Contains(err.Error(), "/nonexistent/helper-postfix") ||
		strings.Contains(err.Error(), "client-postfix") {
		t.Errorf("List through the helper: %v, want postqueue's failure on the helper's configuration directory", err)
	}
	if _, err := q.Message(context.Background(), "ALL"); !errors.Is(err, holdqueue.ErrBadID) {
		t.Errorf("Message(ALL): %v", err)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", p.stderr.String())
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Error("the socket outlived the helper")
	}
	log := p.stderr.String()
	for _, want := range []string{"listening on " + sock + " (created)", "list: holdqueue: /usr/sbin/postqueue -c /nonexistent/helper-postfix -j"} {
		if !strings.Contains(log, want) {
			t.Errorf("the helper's log lacks %q:\n%s", want, log)
		}
	}
	// Usage errors.
	for _, args := range [][]string{{"holdqueue"}, {"holdqueue", "serve", "extra"}, {"holdqueue", "serve", "--group", "no-such-group-here"}, {"holdqueue", "serve", "--socket-mode", "999"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err == nil || err.(*exec.ExitError).ExitCode() != exitUsage {
			t.Errorf("chainmail %s: %v %s, want exit %d", strings.Join(args, " "), err, out, exitUsage)
		}
	}
}
