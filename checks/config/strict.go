package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is a configuration error at a place in a file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// decodeStrict decodes node into out after checking that every mapping
// key names a field of out's type (recursively), so a misspelt key is an
// error at its line instead of a silently ignored setting.
func decodeStrict(file string, node *yaml.Node, out any) error {
	if err := checkKeys(file, node, reflect.TypeOf(out)); err != nil {
		return err
	}
	if err := node.Decode(out); err != nil {
		return yamlError(file, err)
	}
	return nil
}

// yamlError turns yaml.v3's "line N: …" messages into file:line errors.
func yamlError(file string, err error) error {
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg := te.Errors[0]
		var line int
		if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
			msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		}
		return &Error{File: file, Line: line, Msg: msg}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return &Error{File: file, Line: line, Msg: msg}
}

// parserProblems are the messages of yaml.v3's parser (not scanner)
// errors. yaml.v3 v3.0.1 numbers their lines from 0 (its parser.fail adds
// 1 for scanner errors only), and leaves the line out for the first line.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError is yamlError for the errors of reading a document, with
// yaml.v3's line numbers corrected.
func syntaxError(file string, err error) error {
	e := yamlError(file, err)
	var ce *Error
	if errors.As(e, &ce) {
		if ce.Line > 0 && parserProblems[ce.Msg] {
			ce.Line++
		}
		if ce.Line == 0 {
			ce.Line = 1
		}
	}
	return e
}

var (
	nodeType     = reflect.TypeOf(yaml.Node{})
	durationType = reflect.TypeOf(time.Duration(0))
)

func checkKeys(file string, node *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node == nil || t == nodeType {
		return nil
	}
	if node.Kind == yaml.DocumentNode {
		for _, c := range node.Content {
			if err := checkKeys(file, c, t); err != nil {
				return err
			}
		}
		return nil
	}
	if node.Kind == yaml.AliasNode {
		return checkKeys(file, node.Alias, t)
	}
	if t == durationType && node.Kind == yaml.ScalarNode && node.Tag != "!!null" {
		// Settings typed time.Duration are spelt, and misspelt, as
		// checks.Duration is (their range is the setting's own).
		if _, err := time.ParseDuration(strings.TrimSpace(node.Value)); err != nil {
			return &Error{File: file, Line: node.Line, Msg: fmt.Sprintf("%q is not a duration (like 500ms, 10s, 2m)", node.Value)}
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			if node.Tag == "!!null" {
				return nil
			}
			return nil // type errors are reported by Decode with their line
		}
		fields := structFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				return &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("unknown key %q (known keys: %s)", k.Value, strings.Join(sortedKeys(fields), ", "))}
			}
			if err := checkKeys(file, v, ft); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if node.Kind == yaml.SequenceNode {
			for _, c := range node.Content {
				if err := checkKeys(file, c, t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if node.Kind == yaml.MappingNode {
			for i := 1; i < len(node.Content); i += 2 {
				if err := checkKeys(file, node.Content[i], t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// structFields maps yaml key names to field types, following inline
// fields.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
