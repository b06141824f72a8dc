package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// UnmarshalYAML reads "250ms", "5s", "1h30m"; a bare 0 is accepted too.
// Errors are returned as *yaml.TypeError so the decoder keeps going and
// every bad value in the file is reported, each with its line.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeErr(n, "want a duration such as \"250ms\" or \"5s\"")
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return typeErr(n, fmt.Sprintf("invalid duration %q: want a number with a unit, e.g. \"250ms\", \"5s\", \"1m\"", n.Value))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as "5s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts either "host:port" or {name, addr, weight}.
func (nd *Node) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*nd = Node{Addr: n.Value}
		return nil
	case yaml.MappingNode:
		type plain Node // no UnmarshalYAML method: avoids recursion
		var p plain
		if err := n.Decode(&p); err != nil {
			return err
		}
		*nd = Node(p)
		return nil
	}
	return typeErr(n, "want \"host:port\" or a mapping with name, addr, weight")
}

func typeErr(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}
