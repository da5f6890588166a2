package holdqueue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// allowedGID is the group the helper of these tests admits besides root;
// no user has it, so only a process given it as its group gets in.
const allowedGID = 54321

// startHelper serves q on a socket in a directory every user may enter;
// the socket is mode 0666, so that only the helper's own peer check
// stands between another user and the hold queue.
func startHelper(t *testing.T, q *Queue, maxConns int) (string, *bytes.Buffer) {
	t.Helper()
	dir, err := os.MkdirTemp("", "holdqueue-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "holdqueue.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	var logBuf bytes.Buffer
	logs := make(chan string, 100)
	srv := &Server{Queue: q, Allow: AllowGroup(allowedGID), MaxConns: maxConns,
		Log: func(f string, a ...any) { logs <- fmt.Sprintf(f, a...) }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		close(logs)
		for l := range logs {
			logBuf.WriteString(l + "\n")
		}
		t.Logf("helper log:\n%s", logBuf.String())
	})
	return sock, &logBuf
}

// The console's whole path through the helper, against a real Postfix:
// list, read, release (delivered at once), delete; the package's errors
// come back as themselves.
func TestHelperRealPostfix(t *testing.T) {
	if os.Geteuid() != 0 {
		unavailableT(t, "the helper runs postsuper, which needs root (euid %d)", os.Geteuid())
	}
	pf, direct := startPostfix(t, nil)
	sock, _ := startHelper(t, direct, 0)
	q := New(Config{Socket: sock, ConfigDir: "/nonexistent/ignored/by/the/client"})
	ctx := context.Background()

	idA := send(t, pf, holdSender, []string{"bob@example.org", "carol@example.org"}, messageA())
	time.Sleep(1100 * time.Millisecond)
	idB := send(t, pf, holdSender, []string{"dave@example.org"}, messageB())
	waitFor(t, "two messages in the hold queue", func() bool { return len(pf.HoldQueue(t)) == 2 })

	t0 := time.Now()
	held, err := q.List(ctx)
	t.Logf("List through the helper took %v", time.Since(t0).Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	want, err := direct.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || held[0].QueueID != idB || held[1].QueueID != idA {
		t.Fatalf("List = %+v, want %s then %s", held, idB, idA)
	}
	for i := range held {
		if !held[i].Arrival.Equal(want[i].Arrival) || held[i].Sender != want[i].Sender ||
			strings.Join(held[i].Rcpts, ",") != strings.Join(want[i].Rcpts, ",") || held[i].Size != want[i].Size {
			t.Errorf("held %d through the helper %+v, directly %+v", i, held[i], want[i])
		}
	}

	t0 = time.Now()
	msg, err := q.Message(ctx, idA)
	t.Logf("Message through the helper took %v (%d bytes)", time.Since(t0).Round(time.Millisecond), len(msg))
	if err != nil {
		t.Fatal(err)
	}
	if _, rest := cutReceived(t, msg); !bytes.Equal(rest, lf(messageA())) {
		t.Errorf("message through the helper differs from the one sent:\n%q", rest)
	}
	// The client's own bound: a larger message is ErrTooLarge, not cut.
	small := New(Config{Socket: sock})
	small.maxMessage = 1000
	if _, err := small.Message(ctx, idA); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Message over the client's bound: %v, want ErrTooLarge", err)
	}
	// The helper's bound: its ErrTooLarge comes back as ErrTooLarge.
	smallSrv := New(Config{ConfigDir: direct.configDir})
	smallSrv.maxMessage = 1000
	sock2, _ := startHelper(t, smallSrv, 0)
	if _, err := New(Config{Socket: sock2}).Message(ctx, idA); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Message over the helper's bound: %v, want ErrTooLarge", err)
	}

	t0 = time.Now()
	if err := q.Release(ctx, idA); err != nil {
		t.Fatal(err)
	}
	got := pf.Delivered(t, 1, 20*time.Second)
	t.Logf("released through the helper, delivered %v after the call", time.Since(t0).Round(time.Millisecond))
	if got[0].Sender != holdSender || !bytes.Contains(got[0].Data, []byte("held.a@example.net")) {
		t.Errorf("delivered %+v, want message A", got[0])
	}
	if err := q.Release(ctx, idA); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Release: %v, want ErrNotFound", err)
	}

	if err := q.Delete(ctx, idB); err != nil {
		t.Fatal(err)
	}
	if ids := pf.HoldQueue(t); len(ids) != 0 {
		t.Errorf("hold queue after Delete: %v", ids)
	}
	if held, err := q.List(ctx); err != nil || len(held) != 0 {
		t.Errorf("List of the empty hold queue: %#v, %v; want none", held, err)
	}
	if _, err := q.Message(ctx, idB); !errors.Is(err, ErrNotFound) {
		t.Errorf("Message of a deleted message: %v, want ErrNotFound", err)
	}
	if err := q.Delete(ctx, idB); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete of a deleted message: %v, want ErrNotFound", err)
	}
	var re *RemoteError
	if err := q.Delete(ctx, idB); !errors.As(err, &re) || re.Code != CodeNotFound {
		t.Errorf("the helper's error: %#v", err)
	}
	// No helper on the socket: a clear error, nothing else.
	if _, err := New(Config{Socket: sock + ".none"}).List(ctx); err == nil || !strings.Contains(err.Error(), sock+".none") {
		t.Errorf("List without a helper: %v", err)
	}
}

func unavailableT(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skipf("!!! SKIPPING %s: %s !!!", t.Name(), msg)
}

// raw sends one request line as is and returns the reply line.
func raw(t *testing.T, sock, req string) Reply {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req)
	c.(*net.UnixConn).CloseWrite()
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatalf("request %q: no reply: %v", req, err)
	}
	var rep Reply
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatalf("request %q: reply %q: %v", req, line, err)
	}
	return rep
}

// The helper checks every request itself: a client that skips ValidID,
// or speaks anything but the four requests, gets an error and no command
// runs.
func TestHelperRefusesBadRequests(t *testing.T) {
	cmd, log := probe(t)
	sock, _ := startHelper(t, New(Config{Postqueue: cmd, Postsuper: cmd, Postcat: cmd}), 0)
	for req, code := range map[string]string{
		"release ALL\n":                   CodeBadID,
		"delete ALL\n":                    CodeBadID,
		"delete -d\n":                     CodeBadID,
		"message ../../etc/shadow\n":      CodeBadID,
		"release 4jjc6T4ycdz1SD8x hold\n": CodeBadID,
		"delete 4jjc6T4ycdz1SD8x\r\n":     CodeBadID,
		"delete \n":                       CodeBadID,
		"delete\n":                        CodeBadRequest,
		"list -c /tmp/evil\n":             CodeBadRequest,
		"LIST\n":                          CodeBadRequest,
		"postsuper -d ALL\n":              CodeBadRequest,
		"\n":                              CodeBadRequest,
		strings.Repeat("A", 200) + "\n":   CodeBadRequest,
		"list":                            CodeBadRequest, // no LF before the client's half-close
	} {
		rep := raw(t, sock, req)
		if rep.Error != code {
			t.Errorf("request %q: reply %+v, want %s", req, rep, code)
		}
	}
	if b, err := os.ReadFile(log); !os.IsNotExist(err) {
		t.Errorf("a command ran for a bad request: %q %v", b, err)
	}
	// A good request does reach the command, with the helper's settings.
	if rep := raw(t, sock, "list\n"); rep.Error != "" {
		t.Errorf("list: %+v", rep)
	}
	if b, _ := os.ReadFile(log); string(b) != "-j\n" {
		t.Errorf("postqueue called with %q", b)
	}
}

// A client that connects and says nothing is cut off after ReadTimeout;
// connections over MaxConns are answered busy at once.
func TestHelperLimits(t *testing.T) {
	cmd, _ := probe(t)
	sock, _ := startHelper(t, New(Config{Postqueue: cmd, Postsuper: cmd, Postcat: cmd}), 1)
	idle, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(100 * time.Millisecond) // the helper has accepted it
	t0 := time.Now()
	if rep := raw(t, sock, "list\n"); rep.Error != CodeBusy {
		t.Errorf("a second connection: %+v, want busy", rep)
	}
	if _, err := New(Config{Socket: sock}).List(context.Background()); !errors.Is(err, ErrBusy) {
		t.Errorf("List while busy: %v, want ErrBusy", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("busy answered after %v", d)
	}
	idle.SetDeadline(time.Now().Add(ReadTimeout + 5*time.Second))
	line, err := bufio.NewReader(idle).ReadBytes('\n')
	if d := time.Since(t0); err != nil || d < ReadTimeout-time.Second || !bytes.Contains(line, []byte(CodeBadRequest)) {
		t.Errorf("idle connection after %v: %q %v", d, line, err)
	}
	t.Logf("idle connection closed after %v", time.Since(t0).Round(time.Millisecond))
	// Then the slot is free again.
	waitFor(t, "the slot freed", func() bool { return raw(t, sock, "list\n").Error == "" })
}

// childEnv tells the test binary it runs as the peer of TestHelperPeers.
const childEnv = "HOLDQUEUE_TEST_PEER_SOCKET"

// TestHelperPeerChild is the client of TestHelperPeers, run as another
// user; it prints the result of List.
func TestHelperPeerChild(t *testing.T) {
	sock := os.Getenv(childEnv)
	if sock == "" {
		t.Skip("run by TestHelperPeers only")
	}
	held, err := New(Config{Socket: sock}).List(context.Background())
	fmt.Printf("RESULT uid=%d gid=%d held=%d denied=%v err=%v\n", os.Getuid(), os.Getgid(), len(held), errors.Is(err, ErrDenied), err)
}

// Only root and the helper's group get in: user nobody, with its own
// group, is refused even though the socket's mode would let it connect;
// the same user with the allowed group is served.
func TestHelperPeers(t *testing.T) {
	if os.Geteuid() != 0 {
		unavailableT(t, "running a client as another user needs root (euid %d)", os.Geteuid())
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		unavailableT(t, "no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	if gid == allowedGID {
		t.Fatalf("nobody's group is %d", gid)
	}
	cmd, log := probe(t)
	os.Chmod(filepath.Dir(log), 0o777) // the probe may write its log whoever runs it
	sock, _ := startHelper(t, New(Config{Postqueue: cmd, Postsuper: cmd, Postcat: cmd}), 0)

	// The test binary, where user nobody may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(filepath.Dir(sock), "holdqueue.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	asPeer := func(gid int) string {
		t.Helper()
		c := exec.Command(bin, "-test.run=^TestHelperPeerChild$", "-test.v")
		c.Env = []string{childEnv + "=" + sock, "PATH=/usr/bin:/bin"}
		c.Dir = "/"
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("the client as uid %d gid %d: %v\n%s", uid, gid, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "RESULT ") {
				return l
			}
		}
		t.Fatalf("the client printed no result:\n%s", out)
		return ""
	}
	out := asPeer(gid)
	if want := fmt.Sprintf("RESULT uid=%d gid=%d held=0 denied=true ", uid, gid); !strings.HasPrefix(out, want) {
		t.Errorf("user nobody: %q, want %q…", out, want)
	}
	if b, err := os.ReadFile(log); !os.IsNotExist(err) {
		t.Errorf("a command ran for a refused peer: %q %v", b, err)
	}
	out = asPeer(allowedGID)
	if want := fmt.Sprintf("RESULT uid=%d gid=%d held=0 denied=false err=<nil>", uid, allowedGID); out != want {
		t.Errorf("user nobody in the allowed group: %q, want %q", out, want)
	}
	if b, _ := os.ReadFile(log); string(b) != "-j\n" {
		t.Errorf("postqueue called with %q", b)
	}
}

// FuzzParseRequest: whatever the line, an accepted request is one of the
// four, with a valid queue id where one is needed, and is exactly the
// line it came from.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"list", "message 4jjc6T4ycdz1SD8x", "release 3F1A2B4C5D", "delete 4Y8q2M3ZlTzHx",
		"delete ALL", "list x", "release", "message -d 4jjc6T4ycdz1SD8x", "postsuper -d ALL hold"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		op, id, err := ParseRequest(line)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrBadID) {
				t.Fatalf("ParseRequest(%q): error %v of no protocol kind", line, err)
			}
			if op != "" || id != "" {
				t.Fatalf("ParseRequest(%q) = %q, %q with error %v", line, op, id, err)
			}
			return
		}
		switch op {
		case OpList:
			if id != "" || line != "list" {
				t.Fatalf("ParseRequest(%q) = list %q", line, id)
			}
		case OpMessage, OpRelease, OpDelete:
			if !ValidID(id) || line != op+" "+id {
				t.Fatalf("ParseRequest(%q) = %q %q", line, op, id)
			}
		default:
			t.Fatalf("ParseRequest(%q): operation %q", line, op)
		}
	})
}
