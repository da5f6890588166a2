package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A unix:PATH that names a regular file is refused and the file stays.
func TestListenKeepsARegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "milter.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := listenMilter("unix:"+path, socketPerm{Mode: 0o660})
	if err == nil {
		ln.Close()
		t.Fatal("listened over a regular file")
	}
	if !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("error %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("file after the refusal: %q, %v", b, err)
	}
}

// A socket somebody answers on is refused; a stale one (nobody listens)
// is replaced.
func TestListenStaleAndLiveSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "milter.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if ln, err := listenMilter("unix:"+path, socketPerm{Mode: 0o660}); err == nil {
		ln.Close()
		t.Fatal("listened over a live socket")
	} else if !strings.Contains(err.Error(), "another process is serving") {
		t.Errorf("error %v", err)
	}
	// Leave the socket file behind, as a crashed process does.
	live.(*net.UnixListener).SetUnlinkOnClose(false)
	live.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatal(err)
	}
	ln, err := listenMilter("unix:"+path, socketPerm{Mode: 0o660})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// The socket gets the configured mode and group (name or gid).
func TestListenSocketModeAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a socket's group to another group needs root")
	}
	for _, tc := range []struct {
		group string
		gid   int
	}{{"", os.Getegid()}, {"65534", 65534}, {"nogroup", -1}} {
		if tc.gid == -1 {
			gid, err := lookupGroup(tc.group)
			if err != nil {
				continue // no such group on this system
			}
			tc.gid = gid
		}
		path := filepath.Join(t.TempDir(), "milter.sock")
		ln, err := listenMilter("unix:"+path, socketPerm{Mode: 0o640, Group: tc.group})
		if err != nil {
			t.Fatalf("group %q: %v", tc.group, err)
		}
		fi, err := os.Lstat(path)
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || int(st.Gid) != tc.gid {
			t.Errorf("group %q: mode %o gid %d, want 0640 and gid %d", tc.group, fi.Mode().Perm(), st.Gid, tc.gid)
		}
	}
	if _, err := listenMilter("unix:"+filepath.Join(t.TempDir(), "s"), socketPerm{Mode: 0o660, Group: "no-such-group-" + strconv.Itoa(os.Getpid())}); err == nil || !strings.Contains(err.Error(), "no group") {
		t.Errorf("unknown group: %v", err)
	}
}

// The socket never has wider permissions than socket_mode, not even
// between bind and chmod: under a umask of 000 a plain bind makes it 0777,
// and any local user could connect before the chmod.
func TestBindUnixCreatesWithMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "m.sock")
	ln, err := bindUnix(path, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o660 {
		t.Errorf("socket created %#o, want %#o before any chmod", got, 0o660)
	}
}
