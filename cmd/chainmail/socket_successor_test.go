package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"chainmail/checks"
	"chainmail/milter"
)

// A chainmail that stops while it finishes a message must not remove the
// unix socket of the chainmail started meanwhile on the same path (its
// own socket went when it stopped listening): the successor would go on
// running with no socket, and the MTA apply milter_default_action to all
// mail.
func TestServeShutdownKeepsSuccessorSocket(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	// A clamd that accepts and never answers: the first chainmail's
	// message stays in evaluation for a few seconds.
	hang, err := net.Listen("unix", filepath.Join(dir, "clamd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	connected := make(chan struct{})
	go func() {
		var held []net.Conn
		for {
			c, err := hang.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			if held = append(held, c); len(held) == 1 {
				close(connected)
			}
		}
	}()
	start := func(name, conf string) (*exec.Cmd, *bytes.Buffer, chan struct{}) {
		cfg := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(cfg, []byte("metrics: {listen: \"\"}\n"+conf), 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "serve", "-c", cfg, "-listen", "unix:"+sock)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		return cmd, &stderr, exited
	}
	dialable := func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}

	first, firstErr, firstExited := start("first", fmt.Sprintf("checks:\n  - name: antivirus\n    timeout: 10s\n    options: {address: %q, timeout: 3s}\n", "unix:"+filepath.Join(dir, "clamd.sock")))
	waitFor(t, "the first chainmail's socket", dialable)
	sent := make(chan *milter.Outcome, 1)
	go func() {
		env := checks.Envelope{MailFrom: "a@example.net", Rcpts: []string{"b@example.org"}}
		s, err := (&milter.Client{Network: "unix", Address: sock, Timeout: 30 * time.Second}).Dial(env)
		if err != nil {
			sent <- nil
			return
		}
		defer s.Close()
		out, _ := s.Send(env, strings.NewReader("Subject: hi\r\n\r\nbody\r\n"))
		sent <- out
	}()
	// The message is in evaluation (the clamd connection is made), then
	// the first chainmail is asked to stop and stops listening.
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatalf("the message did not reach clamd:\n%s", firstErr)
	}
	first.Process.Signal(syscall.SIGTERM)
	waitFor(t, "the first chainmail to stop listening", func() bool { return !dialable() })

	second, secondErr, secondExited := start("second", "checks:\n  - name: gtube\n")
	waitFor(t, "the second chainmail's socket", dialable)
	select {
	case <-firstExited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the first chainmail did not stop:\n%s", firstErr)
	}
	<-sent
	if _, err := os.Lstat(sock); err != nil || !dialable() {
		t.Fatalf("the second chainmail's socket is gone after the first stopped (%v):\nfirst:\n%s\nsecond:\n%s", err, firstErr, secondErr)
	}
	// Its own socket goes when it stops.
	second.Process.Signal(syscall.SIGTERM)
	select {
	case <-secondExited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the second chainmail did not stop:\n%s", secondErr)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("socket left behind by a stopped chainmail")
	}
}
