package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// secretName is a setting name that carries a credential (a path to a
// file holding one, *_file, is not one).
var secretName = regexp.MustCompile(`(^|_)(password|passwd|token|secret|api_?key|credentials?)$`)

// Every setting named like a credential, at the top level and in every
// check's options, is declared checks.Secret, so config check hides it.
func TestSecretSettingsAreSecrets(t *testing.T) {
	types := map[string]reflect.Type{"(top level)": reflect.TypeOf(File{})}
	for name, c := range table {
		if c.typ == nil {
			t.Errorf("check %s: no options type: its secrets could not be hidden", name)
			continue
		}
		types[name] = c.typ
	}
	for name, typ := range types {
		walkFields(typ, name, map[reflect.Type]bool{}, func(path string, ft reflect.Type) {
			key := path[strings.LastIndexByte(path, '.')+1:]
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
				ft = ft.Elem()
			}
			if secretName.MatchString(key) && ft != secretType {
				t.Errorf("%s is a %v: declare it checks.Secret so it is never printed", path, ft)
			}
		})
	}
	// Header values are secrets by design (Authorization: Bearer …).
	wt := fieldType(table["quota"].typ, "webhook")
	if wt == nil || fieldType(wt, "headers") == nil || fieldType(wt, "headers").Elem() != secretType {
		t.Errorf("quota webhook header values are not secrets")
	}
}

func walkFields(t reflect.Type, path string, seen map[reflect.Type]bool, f func(string, reflect.Type)) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		fl := t.Field(i)
		name, _, _ := strings.Cut(fl.Tag.Get("yaml"), ",")
		if !fl.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(fl.Name)
		}
		f(path+"."+name, fl.Type)
		walkFields(fl.Type, path+"."+name, seen, f)
	}
}
