package config

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// index maps key paths ("shards[1].name") to the YAML nodes they came from,
// so that semantic checks made on typed structs can still report file:line.
// A nil *index (configs built in code) answers "absent, line 0" everywhere.
type index struct {
	// budget bounds the walk: aliases are followed, and a hostile file can
	// nest them to expand exponentially ("billion laughs").
	budget  int
	entries map[string]entry
	byLine  map[int]string // line → deepest key path starting on that line
}

type entry struct {
	key   *yaml.Node // the mapping key; nil for sequence items and the root
	value *yaml.Node
}

func newIndex(root *yaml.Node) *index {
	ix := &index{budget: maxIndexedNodes, entries: map[string]entry{}, byLine: map[int]string{}}
	ix.walk("", nil, root)
	return ix
}

const maxIndexedNodes = 1 << 20

// overflow reports whether the file expanded to more nodes than we index.
func (ix *index) overflow() bool { return ix.budget < 0 }

func (ix *index) walk(path string, key, n *yaml.Node) {
	n = resolveAlias(n)
	if n == nil || ix.budget < 0 {
		return
	}
	ix.budget--
	ix.entries[path] = entry{key: key, value: n}
	// For errors known only by line, prefer the last mapping key on that
	// line over a sequence item starting there.
	if key != nil {
		ix.byLine[key.Line] = path
	} else if _, taken := ix.byLine[n.Line]; !taken && path != "" {
		ix.byLine[n.Line] = path
	}
	switch n.Kind {
	case yaml.MappingNode:
		forEachPair(n, func(k, v *yaml.Node) {
			ix.walk(joinKey(path, k.Value), k, v)
		})
	case yaml.SequenceNode:
		for i, item := range n.Content {
			ix.walk(path+"["+strconv.Itoa(i)+"]", nil, item)
		}
	}
}

// has reports whether the key path was written in the file.
func (ix *index) has(path string) bool {
	if ix == nil {
		return false
	}
	_, ok := ix.entries[path]
	return ok
}

// line returns the line of the key path, or of its nearest written ancestor
// when the key itself is absent (e.g. a required key that is missing).
func (ix *index) line(path string) int {
	if ix == nil {
		return 0
	}
	for {
		if e, ok := ix.entries[path]; ok {
			if e.key != nil {
				return e.key.Line
			}
			return e.value.Line
		}
		if path == "" {
			return 0
		}
		path = parentKey(path)
	}
}

// pathAt returns the key path written on a line, for errors that yaml.v3
// reports by line only.
func (ix *index) pathAt(line int) string {
	if ix == nil {
		return ""
	}
	return ix.byLine[line]
}

// joinKey appends a mapping key to a path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// idx appends a sequence index to a path.
func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// parentKey drops the last segment: "a.b[2].c" → "a.b[2]" → "a.b" → "a" → "".
func parentKey(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// isUnder reports whether path is p itself or lies inside p.
func isUnder(path, p string) bool {
	if !strings.HasPrefix(path, p) {
		return false
	}
	rest := path[len(p):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// forEachPair visits the key/value pairs of a mapping, including those pulled
// in with YAML merge keys ("<<: *base"), which yaml.v3 also honours when decoding.
func forEachPair(m *yaml.Node, fn func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			for _, src := range mergeSources(v) {
				forEachPair(src, fn)
			}
			continue
		}
		fn(k, v)
	}
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	v = resolveAlias(v)
	switch {
	case v == nil:
		return nil
	case v.Kind == yaml.MappingNode:
		return []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range v.Content {
			if m := resolveAlias(item); m != nil && m.Kind == yaml.MappingNode {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}
