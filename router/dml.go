package router

import (
	pg "github.com/pganalyze/pg_query_go/v6"
)

func (b *builder) insertStmt(s *pg.InsertStmt, parent int32, positive bool) {
	lvl := b.newLevel(parent, positive)
	b.with(s.WithClause, lvl, positive)
	o := b.addRel(s.Relation, lvl, true)
	b.sublinks(s.ReturningList, lvl)
	if s.OnConflictClause != nil {
		b.sublinks(s.OnConflictClause.TargetList, lvl)
		b.sublinks([]*pg.Node{s.OnConflictClause.WhereClause}, lvl)
	}
	sel := s.SelectStmt.GetSelectStmt()
	if o < 0 {
		if sel != nil {
			b.selectStmt(sel, lvl, positive)
		}
		return
	}
	t := b.sp.occs[o].t
	if s.OnConflictClause != nil && setsColumn(s.OnConflictClause.TargetList, t.column) {
		b.failKey(codeFeatureNotSupported, "", "ON CONFLICT DO UPDATE cannot change shard key %q of table %q", t.column, t.display)
	}
	pos := -1
	for i, c := range s.Cols {
		if c.GetResTarget().GetName() == t.column {
			pos = i
		}
	}
	if sel == nil {
		b.failKey(codeFeatureNotSupported, "", "INSERT … DEFAULT VALUES into sharded table %q has no shard key", t.display)
		return
	}
	if len(s.Cols) == 0 {
		// The columns in the table's order: the catalog's (columns.go).
		known := false
		if pos, known = b.r.columnPos(t); !known {
			if b.fail == nil {
				b.fail, b.keyFail = &NeedColumnsError{Table: t.display, schema: t.schema, name: t.name, column: t.column}, true
			}
			return
		}
	}
	if pos < 0 {
		b.failKey(codeFeatureNotSupported, "include the shard key column in the INSERT",
			"INSERT into sharded table %q does not set shard key column %q", t.display, t.column)
		return
	}
	if len(sel.ValuesLists) > 0 && sel.Op == pg.SetOperation_SETOP_NONE {
		b.insertValues(o, sel, pos, lvl)
		return
	}
	b.insertSelect(o, sel, pos, lvl, positive)
}

// insertValues: one key per row; rows on several shards make a Split route.
func (b *builder) insertValues(o int32, sel *pg.SelectStmt, pos int, lvl int32) {
	t := b.sp.occs[o].t
	items := make([]*pg.Node, 0, len(sel.ValuesLists))
	for i, row := range sel.ValuesLists {
		cells := row.GetList().GetItems()
		if pos >= len(cells) {
			b.failKey(codeFeatureNotSupported, "", "INSERT row %d has no value for shard key %q", i+1, t.column)
			return
		}
		if _, ok := b.value(cells[pos], t); !ok {
			b.failKey(codeFeatureNotSupported, "use a constant or a parameter for the shard key",
				"cannot determine the shard of INSERT row %d: shard key %q is not a constant or parameter", i+1, t.column)
			return
		}
		items = append(items, cells[pos])
	}
	b.sublinks(sel.ValuesLists, lvl)
	root, _ := b.leaf(o, items, lvl)
	b.addRoot(lvl, root)
	b.sp.insert, b.sp.rowsLeaf = true, root
}

// insertSelect is allowed only when every inserted row provably goes to one
// shard: the key is a constant/parameter, or the key column of a co-located
// table the SELECT reads (then each shard inserts its own rows).
func (b *builder) insertSelect(o int32, sel *pg.SelectStmt, pos int, lvl int32, positive bool) {
	t := b.sp.occs[o].t
	child := b.selectStmt(sel, lvl, positive)
	refuse := func() {
		b.failKey(codeFeatureNotSupported, "insert the rows with VALUES, or select the key column of a co-located table",
			"INSERT … SELECT into sharded table %q: cannot prove which shard each row goes to", t.display)
	}
	if sel.Op != pg.SetOperation_SETOP_NONE || pos >= len(sel.TargetList) {
		refuse()
		return
	}
	for _, tl := range sel.TargetList {
		if cr := tl.GetResTarget().GetVal().GetColumnRef(); cr != nil && len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil {
			refuse()
			return
		}
	}
	val := sel.TargetList[pos].GetResTarget().GetVal()
	if _, ok := b.value(val, t); ok {
		root, _ := b.leaf(o, []*pg.Node{val}, lvl)
		b.addRoot(lvl, root)
		return
	}
	src, ok := b.keyRef(val, child)
	if !ok || b.sp.occs[src].t.coloc != t.coloc {
		refuse()
		return
	}
	b.union(o, src)
}

// insertInCTE: an INSERT inside WITH is routed like a top-level one but
// may not be split.
func (b *builder) insertInCTE(s *pg.InsertStmt, lvl int32, positive bool) {
	b.insertStmt(s, lvl, positive)
	if b.sp.insert {
		b.sp.insert = false
		b.multiInsertCTE = true
	}
}

func (b *builder) updateStmt(s *pg.UpdateStmt, parent int32, positive bool) {
	lvl := b.newLevel(parent, positive)
	b.with(s.WithClause, lvl, positive)
	o := b.addRel(s.Relation, lvl, true)
	for _, f := range s.FromClause {
		b.from(f, lvl, false, positive)
	}
	if s.WhereClause != nil {
		b.addRoot(lvl, b.cond(s.WhereClause, lvl, true, positive))
	}
	b.sublinks(s.ReturningList, lvl)
	for _, n := range s.TargetList {
		rt := n.GetResTarget()
		if o >= 0 && rt.GetName() == b.sp.occs[o].t.column {
			b.updateKey(o, rt.Val)
			continue
		}
		b.sublinks([]*pg.Node{rt.GetVal()}, lvl)
	}
}

// updateKey: SET key = v is allowed only when v is a constant or parameter
// whose shard equals the row's shard (checked at execution).
func (b *builder) updateKey(o int32, v *pg.Node) {
	t := b.sp.occs[o].t
	if v.GetMultiAssignRef() == nil {
		if val, ok := b.value(v, t); ok && b.sp.updVal < 0 {
			b.sp.vals = append(b.sp.vals, val)
			b.sp.updVal = int32(len(b.sp.vals) - 1)
			b.updOcc = o
			return
		}
	}
	b.failKey(codeFeatureNotSupported, "delete the row and insert it with the new key",
		"UPDATE cannot change shard key %q of table %q to a value pgrouter cannot place", t.column, t.display)
}

func setsColumn(targets []*pg.Node, col string) bool {
	for _, n := range targets {
		if n.GetResTarget().GetName() == col {
			return true
		}
	}
	return false
}

func (b *builder) deleteStmt(s *pg.DeleteStmt, parent int32, positive bool) {
	lvl := b.newLevel(parent, positive)
	b.with(s.WithClause, lvl, positive)
	b.addRel(s.Relation, lvl, true)
	for _, f := range s.UsingClause {
		b.from(f, lvl, false, positive)
	}
	if s.WhereClause != nil {
		b.addRoot(lvl, b.cond(s.WhereClause, lvl, true, positive))
	}
	b.sublinks(s.ReturningList, lvl)
}

// mergeStmt: MERGE into a sharded table may insert rows of any shard on the
// shard it runs on, so it is refused (a hint would not make its rows'
// placement right); into other tables it routes by its sources.
func (b *builder) mergeStmt(s *pg.MergeStmt, parent int32) {
	lvl := b.newLevel(parent, true)
	b.with(s.WithClause, lvl, true)
	if o := b.addRel(s.Relation, lvl, true); o >= 0 {
		b.failKey(codeFeatureNotSupported, "use INSERT … ON CONFLICT with the shard key, or run the MERGE on each shard directly",
			"MERGE into sharded table %q is not supported: it may insert rows that belong to other shards", b.sp.occs[o].t.display)
		return
	}
	b.from(s.SourceRelation, lvl, false, true)
	b.cond(s.JoinCondition, lvl, true, false)
	b.sublinks(s.MergeWhenClauses, lvl)
}

func (b *builder) copyStmt(s *pg.CopyStmt, parent int32) {
	if s.Query != nil {
		b.stmt(s.Query, parent, true)
		return
	}
	lvl := b.newLevel(parent, true)
	if o := b.addRel(s.Relation, lvl, s.IsFrom); o >= 0 && s.IsFrom {
		b.failHint(codeFeatureNotSupported, "COPY into each shard directly, or use INSERT",
			"COPY FROM into sharded table %q is not supported (rows would need splitting by shard)", b.sp.occs[o].t.display)
	}
}
