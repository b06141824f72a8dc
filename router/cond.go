package router

import (
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

func (b *builder) newCond(c cond) int32 {
	b.sp.conds = append(b.sp.conds, c)
	return int32(len(b.sp.conds) - 1)
}

func (b *builder) unknown() int32 { return b.newCond(cond{op: cUnknown}) }

// cond builds the condition tree of a WHERE/ON expression. andCtx is true
// while n sits in the top AND chain of its level (key equalities there merge
// groups); positive says whether EXISTS/IN subqueries there restrict rows.
func (b *builder) cond(n *pg.Node, lvl int32, andCtx, positive bool) int32 {
	switch x := n.Node.(type) {
	case *pg.Node_BoolExpr:
		switch x.BoolExpr.Boolop {
		case pg.BoolExprType_AND_EXPR:
			return b.boolCond(cAnd, x.BoolExpr.Args, lvl, andCtx, positive)
		case pg.BoolExprType_OR_EXPR:
			return b.boolCond(cOr, x.BoolExpr.Args, lvl, false, false)
		}
	case *pg.Node_AExpr:
		if c, ok := b.exprCond(x.AExpr, lvl, andCtx); ok {
			return c
		}
	case *pg.Node_SubLink:
		b.sublink(x.SubLink, lvl, andCtx, positive)
		return b.unknown()
	}
	b.sublinks([]*pg.Node{n}, lvl)
	return b.unknown()
}

func (b *builder) boolCond(op condOp, args []*pg.Node, lvl int32, andCtx, positive bool) int32 {
	kids := make([]int32, 0, len(args))
	for _, a := range args {
		kids = append(kids, b.cond(a, lvl, andCtx, positive))
	}
	first := int32(len(b.sp.kids))
	b.sp.kids = append(b.sp.kids, kids...)
	return b.newCond(cond{op: op, first: first, n: int32(len(kids))})
}

// exprCond recognises key = v, v = key, key = key, key IN (…), key = ANY(…).
func (b *builder) exprCond(e *pg.A_Expr, lvl int32, andCtx bool) (int32, bool) {
	if _, op := lastName(e.Name); op != "=" {
		return 0, false
	}
	switch e.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
		lo, lok := b.keyRef(e.Lexpr, lvl)
		ro, rok := b.keyRef(e.Rexpr, lvl)
		switch {
		case lok && rok:
			if andCtx {
				b.union(lo, ro)
			}
			return b.unknown(), true
		case lok:
			return b.leaf(lo, []*pg.Node{e.Rexpr}, lvl)
		case rok:
			return b.leaf(ro, []*pg.Node{e.Lexpr}, lvl)
		}
	case pg.A_Expr_Kind_AEXPR_IN:
		if o, ok := b.keyRef(e.Lexpr, lvl); ok && e.Rexpr.GetList() != nil {
			return b.leaf(o, e.Rexpr.GetList().Items, lvl)
		}
	case pg.A_Expr_Kind_AEXPR_OP_ANY:
		if o, ok := b.keyRef(e.Lexpr, lvl); ok {
			return b.anyLeaf(o, e.Rexpr, lvl)
		}
	}
	return 0, false
}

// leaf makes "occurrence's key ∈ values"; any non-constant value spoils it.
func (b *builder) leaf(o int32, items []*pg.Node, lvl int32) (int32, bool) {
	t := b.sp.occs[o].t
	first := int32(len(b.sp.vals))
	for _, it := range items {
		v, ok := b.value(it, t)
		if !ok {
			b.sp.vals = b.sp.vals[:first]
			b.sublinks(items, lvl)
			return b.unknown(), true
		}
		b.sp.vals = append(b.sp.vals, v)
	}
	return b.newCond(cond{op: cLeaf, occ: o, first: first, n: int32(len(b.sp.vals)) - first}), true
}

// anyLeaf handles key = ANY($n), = ANY(ARRAY[…]), = ANY('{…}').
func (b *builder) anyLeaf(o int32, n *pg.Node, lvl int32) (int32, bool) {
	var oid uint32
	if tc := n.GetTypeCast(); tc != nil {
		oid = typeOID(tc.TypeName)
		n = tc.Arg
	}
	switch x := n.Node.(type) {
	case *pg.Node_ParamRef:
		first := int32(len(b.sp.vals))
		b.sp.vals = append(b.sp.vals, valSrc{param: x.ParamRef.Number - 1, oid: oid, array: true})
		return b.newCond(cond{op: cLeaf, occ: o, first: first, n: 1}), true
	case *pg.Node_AArrayExpr:
		return b.leaf(o, x.AArrayExpr.Elements, lvl)
	case *pg.Node_AConst:
		if s := x.AConst.GetSval(); s != nil {
			elems, ok := parseArrayText([]byte(s.Sval))
			if !ok {
				return b.unknown(), true
			}
			t := b.sp.occs[o].t
			first := int32(len(b.sp.vals))
			for _, e := range elems {
				b.sp.vals = append(b.sp.vals, b.constVal(t, e))
			}
			return b.newCond(cond{op: cLeaf, occ: o, first: first, n: int32(len(elems))}), true
		}
	}
	return 0, false
}

// sublink analyses a subquery expression. IN (SELECT key …) merges the key
// on both sides: every inner row that can match lives with the outer row.
func (b *builder) sublink(sl *pg.SubLink, lvl int32, andCtx, positive bool) {
	sel := sl.Subselect.GetSelectStmt()
	if sl.Testexpr != nil {
		b.sublinks([]*pg.Node{sl.Testexpr}, lvl)
	}
	if sel == nil {
		return
	}
	switch sl.SubLinkType {
	case pg.SubLinkType_EXISTS_SUBLINK:
		b.selectStmt(sel, lvl, andCtx && positive)
	case pg.SubLinkType_ANY_SUBLINK:
		child := b.selectStmt(sel, lvl, andCtx && positive)
		_, op := lastName(sl.OperName)
		if op != "" && op != "=" {
			return
		}
		lo, ok := b.keyRef(sl.Testexpr, lvl)
		if !ok || sel.Op != pg.SetOperation_SETOP_NONE || len(sel.TargetList) != 1 {
			return
		}
		if ro, ok := b.keyRef(sel.TargetList[0].GetResTarget().GetVal(), child); ok {
			b.union(lo, ro)
		}
	default:
		b.selectStmt(sel, lvl, false)
	}
}

// keyRef resolves a column reference to the occurrence whose shard key it
// names. Qualified names search the enclosing levels like Postgres does;
// an unqualified name only the current level (an outer match could be
// shadowed by a column of an unlisted table we know nothing about).
func (b *builder) keyRef(n *pg.Node, lvl int32) (int32, bool) {
	cr := n.GetColumnRef()
	if cr == nil {
		return 0, false
	}
	f := strs(cr.Fields)
	if len(f) != len(cr.Fields) || len(f) == 0 {
		return 0, false
	}
	col := f[len(f)-1]
	if len(f) == 1 {
		found := int32(-1)
		for _, o := range b.levels[lvl].occs {
			if b.sp.occs[o].t.column == col {
				if found >= 0 {
					b.union(found, o) // JOIN … USING, or Postgres reports ambiguity
					continue
				}
				found = o
			}
		}
		return found, found >= 0
	}
	alias := f[len(f)-2]
	for l := lvl; l >= 0; l = b.levels[l].parent {
		if o, ok := b.levels[l].names[alias]; ok {
			if o >= 0 && b.sp.occs[o].t.column == col {
				return o, true
			}
			return 0, false
		}
	}
	return 0, false
}

// value reads a constant or parameter (possibly cast or negated).
func (b *builder) value(n *pg.Node, t *shardedTable) (valSrc, bool) {
	var oid uint32
	if tc := n.GetTypeCast(); tc != nil {
		if len(tc.TypeName.GetArrayBounds()) > 0 {
			return valSrc{}, false
		}
		oid = typeOID(tc.TypeName)
		n = tc.Arg
	}
	switch x := n.Node.(type) {
	case *pg.Node_ParamRef:
		return valSrc{param: x.ParamRef.Number - 1, oid: oid}, true
	case *pg.Node_AConst:
		text, null, ok := constText(x.AConst)
		if !ok {
			return valSrc{}, false
		}
		if null {
			return b.constVal(t, nil), true
		}
		return b.constVal(t, []byte(text)), true
	case *pg.Node_AExpr:
		e := x.AExpr
		if _, op := lastName(e.Name); op == "-" && e.Lexpr == nil && e.Kind == pg.A_Expr_Kind_AEXPR_OP {
			v, ok := b.value(e.Rexpr, t)
			if !ok {
				return v, false
			}
			if v.param >= 0 {
				v.neg = !v.neg
				return v, true
			}
			if k := e.Rexpr.GetAConst(); k != nil {
				text, _, _ := constText(k)
				return b.constVal(t, []byte("-"+text)), true
			}
		}
	}
	return valSrc{}, false
}

// constVal precomputes the shard of a constant key (nil = NULL). The key of
// a directory-sharded table is kept and looked up at route time instead: a
// cached plan must follow the directory when a mapping changes.
func (b *builder) constVal(t *shardedTable, text []byte) valSrc {
	v := valSrc{param: -1, text: text, null: text == nil}
	if t.directory {
		v.lazy = true
		return v
	}
	k, err := keyFromText(t, text)
	if err == nil {
		var s int
		if s, err = t.fn.Shard(k); err == nil {
			v.set = Only(s)
		}
	}
	v.err = err
	return v
}

func constText(k *pg.A_Const) (text string, null, ok bool) {
	switch {
	case k.Isnull:
		return "", true, true
	case k.GetIval() != nil:
		return strconv.FormatInt(int64(k.GetIval().Ival), 10), false, true
	case k.GetFval() != nil:
		return k.GetFval().Fval, false, true
	case k.GetSval() != nil:
		return k.GetSval().Sval, false, true
	}
	return "", false, false
}

// typeOID maps the cast types that matter for shard keys to their OIDs.
func typeOID(tn *pg.TypeName) uint32 {
	_, name := lastName(tn.GetNames())
	switch strings.ToLower(name) {
	case "int2", "smallint":
		return 21
	case "int4", "integer", "int":
		return 23
	case "int8", "bigint":
		return 20
	case "text":
		return 25
	case "varchar":
		return 1043
	case "uuid":
		return 2950
	}
	return 0
}
