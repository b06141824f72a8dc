package merge

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// walk calls fn on every message under m (m included); fn returning false
// skips that message's children.
func walk(m protoreflect.Message, fn func(protoreflect.Message) bool) {
	if !m.IsValid() || !fn(m) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fn)
			}
		case fd.Message() != nil && !fd.IsMap():
			walk(v.Message(), fn)
		}
		return true
	})
}

// walkNode walks n unless it is nil.
func walkNode(n proto.Message, fn func(protoreflect.Message) bool) {
	if n == nil {
		return
	}
	walk(n.ProtoReflect(), fn)
}

// exprKey is equal for two expressions that differ only in source
// positions, so ORDER BY x+1 matches a select-list x+1.
func exprKey(n *pg.Node) string {
	c := proto.Clone(n)
	walk(c.ProtoReflect(), func(m protoreflect.Message) bool {
		if fd := m.Descriptor().Fields().ByName("location"); fd != nil {
			m.Clear(fd)
		}
		return true
	})
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	return string(b)
}

// supportedAggs are the aggregates the engine combines across shards.
var supportedAggs = map[string]bool{
	"count": true, "sum": true, "min": true, "max": true, "avg": true,
	"bool_and": true, "every": true, "bool_or": true,
}

// otherAggs are built-in aggregates it refuses by name. A user-defined
// aggregate cannot be told from a function without the catalog; see doc.go.
var otherAggs = map[string]bool{
	"array_agg": true, "string_agg": true, "json_agg": true, "jsonb_agg": true, "json_agg_strict": true,
	"jsonb_agg_strict": true, "json_object_agg": true, "jsonb_object_agg": true, "xmlagg": true,
	"bit_and": true, "bit_or": true, "bit_xor": true, "stddev": true, "stddev_pop": true,
	"stddev_samp": true, "variance": true, "var_pop": true, "var_samp": true, "corr": true,
	"covar_pop": true, "covar_samp": true, "regr_avgx": true, "regr_avgy": true, "regr_count": true,
	"regr_intercept": true, "regr_r2": true, "regr_slope": true, "regr_sxx": true, "regr_sxy": true,
	"regr_syy": true, "percentile_cont": true, "percentile_disc": true, "mode": true, "rank": true,
	"dense_rank": true, "percent_rank": true, "cume_dist": true, "range_agg": true,
	"range_intersect_agg": true, "any_value": true,
}

// funcName is the lower-case name of a built-in function call ("" for a
// function in a schema other than pg_catalog).
func funcName(fc *pg.FuncCall) string {
	names := fc.Funcname
	if len(names) == 0 {
		return ""
	}
	if len(names) == 2 && names[0].GetString_().GetSval() != "pg_catalog" {
		return ""
	}
	return strings.ToLower(names[len(names)-1].GetString_().GetSval())
}

// isAggCall reports whether fc calls an aggregate the engine knows about
// (supported or not), outside any OVER clause.
func isAggCall(fc *pg.FuncCall) bool {
	if fc.Over != nil {
		return false
	}
	name := funcName(fc)
	return fc.AggStar || supportedAggs[name] || otherAggs[name]
}

// containsAgg reports whether n (not looking into subqueries) has an
// aggregate call.
func containsAgg(n proto.Message) bool {
	found := false
	walkNode(n, func(m protoreflect.Message) bool {
		switch x := m.Interface().(type) {
		case *pg.SubLink, *pg.SelectStmt:
			return false
		case *pg.FuncCall:
			if isAggCall(x) {
				found = true
			}
		}
		return !found
	})
	return found
}

// defaultColName is the output column name Postgres gives an unaliased
// select-list expression (FigureColname, for the shapes that matter here).
func defaultColName(n *pg.Node) string {
	switch x := n.Node.(type) {
	case *pg.Node_ColumnRef:
		f := x.ColumnRef.Fields
		if s := f[len(f)-1].GetString_(); s != nil {
			return s.Sval
		}
	case *pg.Node_FuncCall:
		f := x.FuncCall.Funcname
		return f[len(f)-1].GetString_().GetSval()
	case *pg.Node_TypeCast:
		if name := defaultColName(x.TypeCast.Arg); name != "?column?" {
			return name
		}
		names := x.TypeCast.TypeName.GetNames()
		if len(names) > 0 {
			return names[len(names)-1].GetString_().GetSval()
		}
	}
	return "?column?"
}

// outputName is the name of select-list item t.
func outputName(t *pg.ResTarget) string {
	if t.Name != "" {
		return t.Name
	}
	return defaultColName(t.Val)
}

// isStar reports whether t is * or rel.*.
func isStar(t *pg.ResTarget) bool {
	cr := t.Val.GetColumnRef()
	if cr == nil {
		return false
	}
	return cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

// intConst returns the value of an integer literal (or its negation).
func intConst(n *pg.Node) (int64, bool) {
	if c := n.GetAConst(); c != nil {
		if iv, ok := c.Val.(*pg.A_Const_Ival); ok && !c.Isnull {
			return int64(iv.Ival.Ival), true
		}
	}
	return 0, false
}

func makeFunc(name string, args []*pg.Node) *pg.Node {
	cloned := make([]*pg.Node, len(args))
	for i, a := range args {
		cloned[i] = proto.Clone(a).(*pg.Node)
	}
	n := pg.MakeFuncCallNode([]*pg.Node{pg.MakeStrNode(name)}, cloned, -1)
	n.GetFuncCall().Funcformat = pg.CoercionForm_COERCE_EXPLICIT_CALL
	return n
}
