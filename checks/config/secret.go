package config

import (
	"net/url"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"chainmail/checks"
)

var secretType = reflect.TypeOf(checks.Secret(""))

// hideSecrets returns a copy of a check's options node in which every
// value whose field in the check's configuration type t is a
// checks.Secret (directly, or as the element of a map, slice or pointer)
// reads (hidden). The options keep the user's shape otherwise, so the
// printed configuration still reads back; a new secret setting needs only
// its type, no list here.
func hideSecrets(n *yaml.Node, t reflect.Type) *yaml.Node {
	if n == nil || t == nil {
		return n
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	out := *n
	if t == secretType {
		if n.Kind == yaml.ScalarNode && n.Value == "" {
			return &out
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: checks.Hidden, Line: n.Line, Column: n.Column}
	}
	if t.Kind() == reflect.String && n.Kind == yaml.ScalarNode {
		// A URL's password (https://user:password@host/…) is sent as
		// basic authentication: hidden as net/url does.
		if u, err := url.Parse(n.Value); err == nil && u.User != nil {
			if _, set := u.User.Password(); set {
				out.Value = u.Redacted()
			}
		}
		return &out
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		out.Content = make([]*yaml.Node, len(n.Content))
		for i := 0; i+1 < len(n.Content); i += 2 {
			out.Content[i] = n.Content[i]
			out.Content[i+1] = hideSecrets(n.Content[i+1], fieldType(t, n.Content[i].Value))
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		out.Content = make([]*yaml.Node, len(n.Content))
		for i := 0; i+1 < len(n.Content); i += 2 {
			out.Content[i] = n.Content[i]
			out.Content[i+1] = hideSecrets(n.Content[i+1], t.Elem())
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		out.Content = make([]*yaml.Node, len(n.Content))
		for i, c := range n.Content {
			out.Content[i] = hideSecrets(c, t.Elem())
		}
	}
	return &out
}

// fieldType is the type of the field of struct t read from the YAML key
// (inline structs included); nil when there is none.
func fieldType(t reflect.Type, key string) reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if r := fieldType(ft, key); r != nil {
					return r
				}
			}
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type
		}
	}
	return nil
}
