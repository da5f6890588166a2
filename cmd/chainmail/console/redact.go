package console

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"chainmail/checks/secret"
)

// sensitiveKey reports whether a configuration key names a secret.
func sensitiveKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"token", "password", "secret", "key"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// redact returns a copy of a YAML-decoded tree with the value of every
// key naming a secret replaced by secret.Hidden (left "" when empty).
func redact(v any) any {
	hide := func(k string, val any) any {
		if !sensitiveKey(k) {
			return redact(val)
		}
		if val == nil || val == "" {
			return val
		}
		return secret.Hidden
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[k] = hide(k, val)
		}
		return out
	case map[any]any:
		out := make(map[any]any, len(t))
		for k, val := range t {
			out[k] = hide(fmt.Sprint(k), val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = redact(val)
		}
		return out
	}
	return v
}

// redactConfig turns any configuration value (a struct with yaml tags, a
// decoded tree) into a YAML tree through its YAML form, and redacts it.
func redactConfig(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return nil, err
	}
	return redact(tree), nil
}

// configText is the configuration as YAML.
func configText(tree any) (string, error) {
	if tree == nil {
		return "(none given)", nil
	}
	b, err := yaml.Marshal(tree)
	return string(b), err
}
