package config

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// default.yaml and each check's DefaultConfig() say the same: the options
// default.yaml writes out, decoded over DefaultConfig(), change nothing.
// A default changed in one place only fails here.
func TestDefaultYAMLAgreesWithDefaultConfig(t *testing.T) {
	f := Default()
	for _, c := range f.Checks {
		ctor := table[c.Name]
		want := ctor.def()
		if c.Options.Kind == 0 {
			continue
		}
		got := reflect.New(reflect.TypeOf(want))
		got.Elem().Set(reflect.ValueOf(want))
		if err := decodeStrict("(default)", &c.Options, got.Interface()); err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		// Compared as YAML: default.yaml's [] and {} are DefaultConfig's
		// nil lists and maps.
		gy, err1 := yaml.Marshal(got.Elem().Interface())
		wy, err2 := yaml.Marshal(want)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v %v", c.Name, err1, err2)
		}
		if string(gy) != string(wy) {
			t.Errorf("%s: default.yaml's options differ from DefaultConfig():\n--- default.yaml\n%s--- DefaultConfig()\n%s", c.Name, gy, wy)
		}
	}
}

// The checks that need the state store are those whose constructor says
// so: built alone without a store, exactly they fail for want of one.
func TestUsesStateFromTable(t *testing.T) {
	for _, name := range Names() {
		f, err := Parse("test.yaml", []byte("checks:\n  - name: "+name+"\n    enabled: true\n"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = f.Build(Deps{Resolver: nil})
		needs := err != nil && strings.Contains(err.Error(), "store")
		if f.UsesState() != needs {
			t.Errorf("%s: UsesState %v, but built without a store: %v", name, f.UsesState(), err)
		}
	}
}
