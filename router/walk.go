package router

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// walk calls f for every *pg.Node below m (depth first). When f returns
// false the node's children are skipped. Reflection keeps this complete for
// every node type of the grammar; it runs only when a plan is built.
func walk(m protoreflect.Message, f func(*pg.Node) bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message(), f)
			}
			return true
		}
		visit(v.Message(), f)
		return true
	})
}

func visit(m protoreflect.Message, f func(*pg.Node) bool) {
	if n, ok := m.Interface().(*pg.Node); ok && !f(n) {
		return
	}
	walk(m, f)
}

// walkNode walks n itself and everything below it.
func walkNode(n *pg.Node, f func(*pg.Node) bool) {
	if n != nil {
		visit(n.ProtoReflect(), f)
	}
}

// strs joins the String items of a name list ("pg_catalog.nextval").
func strs(list []*pg.Node) []string {
	out := make([]string, 0, len(list))
	for _, n := range list {
		if s := n.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

func lastName(list []*pg.Node) (schema, name string) {
	s := strs(list)
	switch len(s) {
	case 0:
		return "", ""
	case 1:
		return "", strings.ToLower(s[0])
	}
	return strings.ToLower(s[len(s)-2]), strings.ToLower(s[len(s)-1])
}

// walkMsgs calls f for every message below m (not only *pg.Node wrappers);
// returning false skips a message's children.
func walkMsgs(m protoreflect.Message, f func(protoreflect.Message) bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if c := l.Get(i).Message(); f(c) {
					walkMsgs(c, f)
				}
			}
			return true
		}
		if c := v.Message(); f(c) {
			walkMsgs(c, f)
		}
		return true
	})
}
