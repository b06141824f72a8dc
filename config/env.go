package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// lookupEnv is os.LookupEnv's signature; tests may pass their own.
type lookupEnv func(name string) (string, bool)

// expandTree replaces ${VAR} and ${VAR:-default} in every scalar value of
// the tree (mapping keys are left alone). It runs before decoding, so a
// variable may also supply a number or a duration ("size: ${POOL_SIZE:-20}").
func (c *checker) expandTree(path string, n *yaml.Node, lookup lookupEnv) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, child := range n.Content {
			c.expandTree(path, child, lookup)
		}
	case yaml.MappingNode:
		forEachPair(n, func(k, v *yaml.Node) {
			if v.Kind != yaml.AliasNode { // the anchor's own node is expanded where it is defined
				c.expandTree(joinKey(path, k.Value), v, lookup)
			}
		})
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if item.Kind != yaml.AliasNode {
				c.expandTree(idx(path, i), item, lookup)
			}
		}
	case yaml.ScalarNode:
		c.expandScalar(path, n, lookup)
	}
}

func (c *checker) expandScalar(path string, n *yaml.Node, lookup lookupEnv) {
	if !strings.Contains(n.Value, "${") {
		return
	}
	out, err := expandString(n.Value, lookup)
	if err != nil {
		c.add(path, n.Line, err.Error())
		n.Value = ""
		return
	}
	n.Value = out
	if n.Style == 0 {
		// A plain scalar was typed as a string because of the "${"; let
		// yaml.v3 resolve the expanded text afresh (so "20" can fill an int),
		// but never let an expanded value turn into null.
		n.Tag = ""
		if n.ShortTag() == "!!null" {
			n.Tag = "!!str"
		}
	}
}

// expandString expands ${NAME} and ${NAME:-default}. "$${" stands for a
// literal "${". A set-but-empty variable takes the default, as in sh. Errors
// name the variable, never its value.
func expandString(s string, lookup lookupEnv) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // "$${" → literal "${"
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in value (write $${ for a literal ${)")
		}
		ref := s[i+2 : i+end]
		val, err := resolveRef(ref, lookup)
		if err != nil {
			return "", err
		}
		b.WriteString(val)
		s = s[i+end+1:]
	}
}

func resolveRef(ref string, lookup lookupEnv) (string, error) {
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !validEnvName(name) {
		// The text is not echoed: it may be part of a password containing "${".
		return "", fmt.Errorf("invalid variable reference: want ${NAME} or ${NAME:-default} (write $${ for a literal ${)")
	}
	val, ok := lookup(name)
	if hasDefault && val == "" {
		return def, nil
	}
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} to give a default)", name, name)
	}
	return val, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
