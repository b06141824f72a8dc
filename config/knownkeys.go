package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	durationType = reflect.TypeOf(Duration(0))
	nodeType     = reflect.TypeOf(Node{})
)

// checkShape walks the YAML tree alongside the Go type it will be decoded
// into and reports, with exact key paths, every key no struct field accepts,
// every key written twice, and every value of the wrong kind. yaml.v3 can
// report these too, but only by line, which is ambiguous in flow mappings
// ("pool: {size: x, mode: y}"). Offending nodes are removed or nulled so the
// decoder that runs next does not report them a second time.
func (c *checker) checkShape(path string, n *yaml.Node, t reflect.Type) {
	n = resolveAlias(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || n.ShortTag() == "!!null" {
		return // decodes to the zero value
	}
	if msg := c.kindProblem(n, t); msg != "" {
		c.add(path, n.Line, msg)
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
		return
	}
	switch {
	case n.Kind == yaml.MappingNode:
		c.checkMapping(path, n, t)
	case n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			c.checkShape(idx(path, i), item, t.Elem())
		}
	}
}

// kindProblem says what is wrong with the node's kind for type t, or "".
func (c *checker) kindProblem(n *yaml.Node, t reflect.Type) string {
	switch {
	case t == durationType:
		var d Duration
		if err := d.UnmarshalYAML(n); err != nil {
			msg := err.(*yaml.TypeError).Errors[0]
			_, msg, _ = strings.Cut(msg, ": ") // drop "line N: "
			return msg
		}
	case t == nodeType:
		if n.Kind != yaml.ScalarNode && n.Kind != yaml.MappingNode {
			return `want "host:port" or a mapping with name, addr, weight`
		}
	case t.Kind() == reflect.Struct && n.Kind != yaml.MappingNode:
		return "want a mapping of keys (" + validKeys(t) + ")"
	case t.Kind() == reflect.Slice && n.Kind != yaml.SequenceNode:
		return "want a list"
	case t.Kind() == reflect.String && n.Kind != yaml.ScalarNode:
		return "want a single value, not a list or mapping"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			return fmt.Sprintf("want an integer, got %s", describe(n))
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			return fmt.Sprintf("want true or false, got %s", describe(n))
		}
	}
	return ""
}

func (c *checker) checkMapping(path string, n *yaml.Node, t reflect.Type) {
	fields := yamlFields(t)
	first := map[string]int{} // key → line, for keys written directly here
	for i := 0; i+1 < len(n.Content); {
		k := n.Content[i]
		if line, dup := first[k.Value]; dup && k.Tag != "!!merge" {
			c.add(joinKey(path, k.Value), k.Line, fmt.Sprintf("key written twice (first at line %d)", line))
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			continue
		}
		first[k.Value] = k.Line
		i += 2
	}
	forEachPair(n, func(k, v *yaml.Node) {
		key := joinKey(path, k.Value)
		ft, ok := fields[k.Value]
		if !ok {
			c.add(key, k.Line, "unknown key (valid keys here: "+validKeys(t)+")")
			return
		}
		c.checkShape(key, v, ft)
	})
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// yamlFields maps the yaml tag names of a struct's fields to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name := yamlName(f); name != "" {
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
