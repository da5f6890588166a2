package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileMode is a unix permission mode written in octal ("0660", 0o660).
type FileMode uint32

// UnmarshalYAML reads the octal mode. The digits are read as octal
// whatever YAML makes of them: 0660 and 660 both mean rw-rw----.
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimPrefix(strings.TrimPrefix(n.Value, "0o"), "0O")
	u, err := strconv.ParseUint(v, 8, 32)
	if n.Kind != yaml.ScalarNode || err != nil || u > 0o777 {
		return fmt.Errorf("line %d: %q is not a permission mode (octal, like 0660)", n.Line, n.Value)
	}
	*m = FileMode(u)
	return nil
}

// MarshalYAML writes the mode in octal.
func (m FileMode) MarshalYAML() (any, error) { return fmt.Sprintf("0%o", uint32(m)), nil }

// validate checks the milter section.
func (m *Milter) validate(f *File) error {
	for _, d := range []struct {
		key string
		v   Duration
	}{{"milter.timeout", m.Timeout}, {"milter.connect_timeout", m.ConnectTimeout}, {"milter.command_timeout", m.CommandTimeout}, {"milter.idle_timeout", m.IdleTimeout}} {
		if d.v <= 0 {
			return f.errAt(d.key, "must be positive (like 30s)")
		}
	}
	if m.MaxConnections <= 0 {
		return f.errAt("milter.max_connections", "must be 1 or more")
	}
	if m.SocketMode&0o600 != 0o600 {
		// chainmail must be able to use its own socket, and the MTA
		// connects through the group or other bits.
		return f.errAt("milter.socket_mode", "%04o leaves the owner without read and write (want like 0660)", uint32(m.SocketMode))
	}
	return nil
}
