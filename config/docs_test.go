package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestEveryKeyDocumented keeps docs/CONFIG.md in step with types.go: each
// YAML key must appear in the docs as `key`.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for name, ft := range yamlFields(typ) {
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("key %q (%s) is not documented in docs/CONFIG.md", name, typ.Name())
			}
			walk(ft)
		}
	}
	walk(reflect.TypeOf(Config{}))
	if len(seen) < 10 {
		t.Fatalf("walked only %d types", len(seen))
	}
}
