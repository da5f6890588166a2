package checks

import "testing"

func TestParseDaemonAddress(t *testing.T) {
	for in, want := range map[string]string{
		"unix:/run/clamd.ctl": "unix /run/clamd.ctl", "/run/c.sock": "unix /run/c.sock",
		"tcp:127.0.0.1:3310": "tcp 127.0.0.1:3310", "inet:localhost:3310": "tcp localhost:3310",
		"127.0.0.1:783": "tcp 127.0.0.1:783", "[::1]:783": "tcp [::1]:783",
	} {
		n, a, err := ParseDaemonAddress(in)
		if err != nil || n+" "+a != want {
			t.Errorf("%s: %s %s %v", in, n, a, err)
		}
	}
	for _, bad := range []string{"", "clamd", "tcp:nohost", "unix:relative.sock", ":783", "host:", "tcp:"} {
		if _, _, err := ParseDaemonAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
