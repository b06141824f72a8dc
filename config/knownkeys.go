package config

import (
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkKnownKeys walks the YAML tree alongside the Go type it will be decoded
// into and reports every mapping key that no struct field accepts. yaml.v3's
// KnownFields does this too, but only when decoding from bytes and without
// the key path; doing it here gives "shards[0].primry: unknown key" with the
// list of keys that are valid at that spot.
func (c *checker) checkKnownKeys(path string, n *yaml.Node, t reflect.Type) {
	n = resolveAlias(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil {
		return
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		forEachPair(n, func(k, v *yaml.Node) {
			key := joinKey(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				c.add(key, k.Line, "unknown key (valid keys here: "+validKeys(t)+")")
				return
			}
			c.checkKnownKeys(key, v, ft)
		})
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			c.checkKnownKeys(idx(path, i), item, t.Elem())
		}
	}
	// Any other shape mismatch (a list where a mapping belongs, a scalar for a
	// struct without its own unmarshaler…) is reported by the decoder.
}

// yamlFields maps the yaml tag names of a struct's fields to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if name != "" {
			out[name] = f.Type
		}
	}
	return out
}

func validKeys(t reflect.Type) string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "-" {
		return ""
	}
	if tag == "" {
		return strings.ToLower(f.Name)
	}
	return tag
}
