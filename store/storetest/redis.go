package storetest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is a redis-server process a test started on 127.0.0.1, with its
// own port and directory; it is stopped in t.Cleanup.
type Redis struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// RedisBinary finds redis-server (Debian package redis-server). Without
// it the test is skipped, or fails when the CI variable is set.
func RedisBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/redis-server"); serr == nil {
			return "/usr/bin/redis-server"
		}
		msg := fmt.Sprintf("redis-server is not installed (%v); apt-get install redis-server", err)
		if os.Getenv("CI") != "" {
			t.Fatalf("storetest: %s (CI is set, so this is a failure, not a skip)", msg)
		}
		t.Skipf("!!! SKIPPING %s: %s !!!", t.Name(), msg)
	}
	return bin
}

// StartRedis starts a redis-server without persistence on a free port of
// 127.0.0.1; extra are more "--name value" arguments.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: RedisBinary(t), dir: t.TempDir(), args: extra}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		r.port = freePort(t)
		if err = r.start(); err == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("storetest: starting redis-server: %v\n%s", err, r.logTail())
	return nil
}

// Addr is HOST:PORT.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Port is the TCP port.
func (r *Redis) Port() int { return r.port }

// Dir is the server's working directory.
func (r *Redis) Dir() string { return r.dir }

func (r *Redis) start() error {
	args := []string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
		"--logfile", filepath.Join(r.dir, "redis.log"),
	}
	args = append(args, r.args...)
	return r.run(exec.Command(r.bin, args...))
}

func (r *Redis) run(cmd *exec.Cmd) error {
	cmd.Dir = r.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(r.Addr()) == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited at start", r.port)
		default:
		}
		if time.Now().After(deadline) {
			r.Kill()
			return fmt.Errorf("redis-server on port %d did not answer within 10s", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL (a crash) and waits for it.
func (r *Redis) Kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Process.Signal(syscall.SIGCONT) // a paused server ends too
	<-exited
}

// Pause stops the server with SIGSTOP: it keeps its port and accepts
// connections (the kernel does), but answers nothing: a hung Redis.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		r.t.Fatalf("storetest: redis-server on port %d is not running", r.port)
	}
	if err := syscall.Kill(cmd.Process.Pid, sig); err != nil {
		r.t.Fatalf("storetest: %v to redis-server: %v", sig, err)
	}
}

// Restart starts the server again on the same port and directory.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the port may linger a moment
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("storetest: restarting redis-server: %v\n%s", err, r.logTail())
}

// Stop is Kill, for t.Cleanup.
func (r *Redis) Stop() { r.Kill() }

func (r *Redis) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// ping sends PING in RESP and wants +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	// -NOAUTH: a server with requirepass is up too.
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("storetest: finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Cluster is a Redis Cluster of redis-servers started by a test.
type Cluster struct {
	Nodes []*Redis
}

// Addrs are the nodes' HOST:PORT.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// StartCluster starts n masters (no replicas), joins them and splits the
// 16384 slots between them.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		c.Nodes = append(c.Nodes, StartRedis(t, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	clients := make([]*goredis.Client, n)
	for i, node := range c.Nodes {
		clients[i] = goredis.NewClient(&goredis.Options{Addr: node.Addr(), DisableIdentity: true})
		defer clients[i].Close()
	}
	per := 16384 / n
	for i, cl := range clients {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		if err := cl.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("storetest: CLUSTER ADDSLOTSRANGE: %v", err)
		}
		if i > 0 {
			if err := cl.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[0].Port())).Err(); err != nil {
				t.Fatalf("storetest: CLUSTER MEET: %v", err)
			}
		}
	}
	for {
		ok := true
		for _, cl := range clients {
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				ok = false
				break
			}
		}
		if ok {
			return c
		}
		if ctx.Err() != nil {
			t.Fatalf("storetest: the cluster did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Sentinel is a master and one Sentinel that watches it.
type Sentinel struct {
	Master   *Redis
	Sentinel *Redis
	// Name is the master's name.
	Name string
}

// StartSentinel starts a master and a Sentinel monitoring it as "chainmail".
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := StartRedis(t)
	s := &Sentinel{Master: master, Name: "chainmail"}
	r := &Redis{t: t, bin: RedisBinary(t), dir: t.TempDir()}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		r.port = freePort(t)
		conf := filepath.Join(r.dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 2000\n",
			r.port, r.dir, filepath.Join(r.dir, "redis.log"), s.Name, master.Port(), s.Name)
		if err = os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err = r.run(exec.Command(r.bin, conf, "--sentinel")); err == nil {
			t.Cleanup(r.Stop)
			s.Sentinel = r
			return s
		}
	}
	t.Fatalf("storetest: starting redis-server --sentinel: %v\n%s", err, r.logTail())
	return nil
}
