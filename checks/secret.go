package checks

// Secret is a configuration value that must never be printed: a password,
// a token, a header carrying credentials. Declaring a setting with this
// type is all it takes: `chainmail config check` prints "(hidden)" for it
// (MarshalYAML here for the top-level settings; checks/config applies the
// same to check options by their declared types), and so does fmt.
// Code that needs the value converts: string(s).
type Secret string

// Hidden is what is printed instead of a secret.
const Hidden = "(hidden)"

// MarshalYAML prints (hidden) for a set secret, "" for an empty one.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return Hidden, nil
}

// String hides the value from fmt's %s and %v.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Hidden
}

// GoString hides the value from fmt's %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }
