package checks

import (
	"fmt"
	"net"
	"strings"
)

// ParseDaemonAddress reads the address of a daemon a check talks to
// (clamd, spamd): unix:/path or a bare absolute /path for a unix socket,
// tcp:HOST:PORT, inet:HOST:PORT (Postfix's and sendmail's spelling) or
// HOST:PORT for TCP.
func ParseDaemonAddress(a string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(a, "unix:"):
		p := strings.TrimPrefix(a, "unix:")
		if !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("address %q: want unix:/absolute/path", a)
		}
		return "unix", p, nil
	case strings.HasPrefix(a, "/"):
		return "unix", a, nil
	}
	hp := strings.TrimPrefix(strings.TrimPrefix(a, "tcp:"), "inet:")
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" || port == "" {
		return "", "", fmt.Errorf("address %q: want unix:/path, HOST:PORT or tcp:HOST:PORT", a)
	}
	return "tcp", hp, nil
}
