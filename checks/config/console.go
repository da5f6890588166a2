package config

import (
	"net"
	"path/filepath"

	"chainmail/checks/history"
	"chainmail/checks/secret"
	"chainmail/milter/holdqueue"
)

// Console configures serve's web console (cmd/chainmail/console): the
// verdict history it shows, kept in the state store (checks/history), and
// the Postfix commands behind its quarantine page (milter/holdqueue). The
// console is on when Listen is set; history is recorded only then.
type Console struct {
	// Listen is HOST:PORT, loopback unless AllowRemote.
	Listen      string `yaml:"listen"`
	AllowRemote bool   `yaml:"allow_remote"`
	// PasswordFile holds the login password, TokenFile the bearer token
	// for scripts; at least one, each at least 16 characters.
	PasswordFile string           `yaml:"password_file"`
	TokenFile    string           `yaml:"token_file"`
	SessionTTL   Duration         `yaml:"session_ttl"`
	History      history.Config   `yaml:"history"`
	Postfix      holdqueue.Config `yaml:"postfix"`
}

// ConsoleOn reports whether the web console (and so the history) is on.
func (f *File) ConsoleOn() bool { return f.Console.Listen != "" }

// validateConsole checks what the console needs before anything starts:
// a loopback address unless remote access is asked for, and readable
// secrets.
func (f *File) validateConsole() error {
	c := f.Console
	if c.Listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return f.errAt("console.listen", "%v (want HOST:PORT, like 127.0.0.1:8025)", err)
	}
	if ip := net.ParseIP(host); !c.AllowRemote && (ip == nil && host != "localhost" || ip != nil && !ip.IsLoopback()) {
		return f.errAt("console.listen", "%s is not a loopback address: the console manages quarantined mail; set console.allow_remote: true to serve it to the network (behind TLS)", c.Listen)
	}
	if c.PasswordFile == "" && c.TokenFile == "" {
		return f.errAt("console.listen", "the console needs console.password_file (a login) or console.token_file (scripts), or both")
	}
	for _, s := range []struct{ key, path string }{{"console.password_file", c.PasswordFile}, {"console.token_file", c.TokenFile}} {
		if s.path == "" {
			continue
		}
		if _, err := secret.ReadToken(s.path); err != nil {
			return f.errAt(s.key, "%v", err)
		}
	}
	if c.Postfix.Socket != "" && !filepath.IsAbs(c.Postfix.Socket) {
		return f.errAt("console.postfix.socket", "%q: want the absolute path of the hold queue helper's socket (like /run/chainmail-holdqueue/holdqueue.sock)", c.Postfix.Socket)
	}
	if c.History.Entries < 0 {
		return f.errAt("console.history.entries", "must not be negative (0 keeps the default, %d)", history.DefaultEntries)
	}
	return nil
}
