// Package secret is the type of a configuration value that must never be
// printed: a password, a token, a header carrying credentials. It is a
// leaf, so that libraries (the state store) can declare their settings
// with it; checks.Secret is the same type.
package secret

// Value is a secret. Declaring a setting with this type is all it takes:
// `chainmail config check` prints "(hidden)" for it (MarshalYAML here for
// the top-level settings; checks/config applies the same to check options
// by their declared types), and so does fmt. Code that needs the value
// converts: string(v).
type Value string

// Hidden is what is printed instead of a secret.
const Hidden = "(hidden)"

// MarshalYAML prints (hidden) for a set secret, "" for an empty one.
func (v Value) MarshalYAML() (any, error) {
	if v == "" {
		return "", nil
	}
	return Hidden, nil
}

// String hides the value from fmt's %s and %v.
func (v Value) String() string {
	if v == "" {
		return ""
	}
	return Hidden
}

// GoString hides the value from fmt's %#v.
func (v Value) GoString() string { return `"` + v.String() + `"` }
