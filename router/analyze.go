package router

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// builder turns one DML statement into a stmtPlan.
//
// Every query level (SELECT, subquery, CTE body, UPDATE/DELETE/INSERT) gets a
// level with the sharded tables of its FROM and the condition trees of its
// WHERE and inner-join ON clauses. Key equalities (a.k = b.k in an AND
// chain, JOIN … USING (k), k IN (SELECT k …)) merge occurrences of
// co-located tables into groups. A level is "positive" when its rows restrict
// the statement's result (top level, FROM subqueries, CTEs, EXISTS/IN in the
// WHERE's AND chain); only positive levels' conditions narrow a group that
// has a member in a positive level.
type builder struct {
	r      *Router
	sp     *stmtPlan
	levels []level
	uf     []int32
	ctes   map[string]bool
	fail   error

	refWrite       string // a reference table written by the statement
	refRead        bool
	onlyShard      int
	onlyTable      string
	seenShard      int // sharded RangeVars met structurally
	writeTable     string
	updOcc         int32
	multiInsertCTE bool
	keyFail        bool // fail is about keys of rows written into a sharded table (see failKey)
}

type level struct {
	parent   int32
	positive bool
	names    map[string]int32 // alias → occurrence, -1 for other relations
	occs     []int32
	roots    []int32
}

func (b *builder) failf(code, format string, args ...any) {
	if b.fail == nil {
		b.fail = pgError(code, fmt.Sprintf(format, args...), "")
	}
}

func (b *builder) failHint(code, hint, format string, args ...any) {
	if b.fail == nil {
		b.fail = pgError(code, fmt.Sprintf(format, args...), hint)
	}
}

// failKey fails a write whose rows' shard keys pgrouter cannot determine:
// no shard choice by the client (hint, SET pgrouter.shard) may route it
// either, since the rows could belong to any shard.
func (b *builder) failKey(code, hint, format string, args ...any) {
	if b.fail == nil {
		b.keyFail = true
	}
	b.failHint(code, hint, format, args...)
}

func (b *builder) newLevel(parent int32, positive bool) int32 {
	b.levels = append(b.levels, level{parent: parent, positive: positive, names: map[string]int32{}})
	return int32(len(b.levels) - 1)
}

// stmt analyses any statement that may carry a query.
func (b *builder) stmt(n *pg.Node, parent int32, positive bool) {
	switch s := n.Node.(type) {
	case *pg.Node_SelectStmt:
		b.selectStmt(s.SelectStmt, parent, positive)
	case *pg.Node_InsertStmt:
		b.insertStmt(s.InsertStmt, parent, positive)
	case *pg.Node_UpdateStmt:
		b.updateStmt(s.UpdateStmt, parent, positive)
	case *pg.Node_DeleteStmt:
		b.deleteStmt(s.DeleteStmt, parent, positive)
	case *pg.Node_MergeStmt:
		b.mergeStmt(s.MergeStmt, parent)
	case *pg.Node_ExplainStmt:
		b.stmt(s.ExplainStmt.Query, parent, positive)
	case *pg.Node_DeclareCursorStmt:
		b.stmt(s.DeclareCursorStmt.Query, parent, positive)
	case *pg.Node_CopyStmt:
		b.copyStmt(s.CopyStmt, parent)
	case *pg.Node_CreateTableAsStmt:
		b.stmt(s.CreateTableAsStmt.Query, parent, positive)
	default:
		b.failf(codeFeatureNotSupported, "cannot route %s", stmtName(n))
	}
}

func (b *builder) selectStmt(s *pg.SelectStmt, parent int32, positive bool) int32 {
	lvl := b.newLevel(parent, positive)
	b.with(s.WithClause, lvl, positive)
	if s.Op != pg.SetOperation_SETOP_NONE {
		b.selectStmt(s.Larg, lvl, positive)
		b.selectStmt(s.Rarg, lvl, positive)
	}
	for _, f := range s.FromClause {
		b.from(f, lvl, false, positive)
	}
	if s.WhereClause != nil {
		b.addRoot(lvl, b.cond(s.WhereClause, lvl, true, positive))
	}
	b.sublinksIn(lvl, s.TargetList, s.GroupClause, s.SortClause, s.DistinctClause, s.WindowClause, s.ValuesLists)
	b.sublinksIn(lvl, []*pg.Node{s.HavingClause, s.LimitCount, s.LimitOffset})
	return lvl
}

func (b *builder) addRoot(lvl, root int32) {
	if root >= 0 && b.sp.conds[root].op != cUnknown {
		b.levels[lvl].roots = append(b.levels[lvl].roots, root)
	}
}

func (b *builder) with(w *pg.WithClause, lvl int32, positive bool) {
	if w == nil {
		return
	}
	for _, c := range w.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			b.ctes[cte.Ctename] = true
			if _, ok := cte.Ctequery.Node.(*pg.Node_InsertStmt); ok {
				b.insertInCTE(cte.Ctequery.GetInsertStmt(), lvl, positive)
				continue
			}
			b.stmt(cte.Ctequery, lvl, positive)
		}
	}
}

// from adds one FROM item. nullable marks the nullable side of an outer join:
// its ON conditions do not restrict the result.
func (b *builder) from(n *pg.Node, lvl int32, nullable, positive bool) {
	switch x := n.Node.(type) {
	case *pg.Node_RangeVar:
		b.addRel(x.RangeVar, lvl, false)
	case *pg.Node_JoinExpr:
		j := x.JoinExpr
		lnull, rnull := nullable, nullable
		switch j.Jointype {
		case pg.JoinType_JOIN_LEFT:
			rnull = true
		case pg.JoinType_JOIN_RIGHT:
			lnull = true
		case pg.JoinType_JOIN_FULL:
			lnull, rnull = true, true
		}
		a := len(b.sp.occs)
		b.from(j.Larg, lvl, lnull, positive)
		m := len(b.sp.occs)
		b.from(j.Rarg, lvl, rnull, positive)
		e := len(b.sp.occs)
		b.joinUsing(j, a, m, e)
		if j.Quals != nil {
			inner := j.Jointype == pg.JoinType_JOIN_INNER && !nullable
			root := b.cond(j.Quals, lvl, true, positive && inner)
			if inner {
				b.addRoot(lvl, root)
			}
		}
		if j.Alias != nil {
			b.levels[lvl].names[j.Alias.Aliasname] = -1
		}
	case *pg.Node_RangeSubselect:
		b.stmt(x.RangeSubselect.Subquery, lvl, positive && !nullable)
		if x.RangeSubselect.Alias != nil {
			b.levels[lvl].names[x.RangeSubselect.Alias.Aliasname] = -1
		}
	case *pg.Node_RangeFunction:
		b.sublinks(x.RangeFunction.Functions, lvl)
		if x.RangeFunction.Alias != nil {
			b.levels[lvl].names[x.RangeFunction.Alias.Aliasname] = -1
		}
	default:
		b.sublinks([]*pg.Node{n}, lvl)
	}
}

// joinUsing merges the key occurrences on both sides of JOIN … USING (key).
func (b *builder) joinUsing(j *pg.JoinExpr, a, m, e int) {
	for _, u := range j.UsingClause {
		col := u.GetString_().GetSval()
		l, r := int32(-1), int32(-1)
		for i := a; i < m && l < 0; i++ {
			if b.sp.occs[i].t.column == col {
				l = int32(i)
			}
		}
		for i := m; i < e && r < 0; i++ {
			if b.sp.occs[i].t.column == col {
				r = int32(i)
			}
		}
		if l >= 0 && r >= 0 {
			b.union(l, r)
		}
	}
}

// addRel registers a relation in a level: a sharded occurrence (returned),
// or a reference / unlisted / catalog / CTE relation (-1).
func (b *builder) addRel(rv *pg.RangeVar, lvl int32, write bool) int32 {
	alias := rv.Relname
	if rv.Alias != nil {
		alias = rv.Alias.Aliasname
	}
	names := b.levels[lvl].names
	if rv.Schemaname == "" && b.ctes[rv.Relname] {
		names[alias] = -1
		return -1
	}
	if t := b.r.shardedTableFor(rv); t != nil {
		b.seenShard++
		b.sp.occs = append(b.sp.occs, occ{t: t, level: lvl})
		b.uf = append(b.uf, int32(len(b.uf)))
		i := int32(len(b.sp.occs) - 1)
		names[alias] = i
		b.levels[lvl].occs = append(b.levels[lvl].occs, i)
		if write && b.writeTable == "" {
			b.writeTable = t.display
		}
		return i
	}
	names[alias] = -1
	b.otherRel(rv, write)
	return -1
}

// otherRel applies the reference-table and unlisted-table policies.
func (b *builder) otherRel(rv *pg.RangeVar, write bool) {
	kind, shard := b.r.relKind(rv)
	name := relName(rv)
	switch kind {
	case relCatalog:
	case relReference:
		if write && b.refWrite == "" {
			b.refWrite = name
		}
		b.refRead = true
	case relUnlistedShard:
		if b.onlyShard >= 0 && b.onlyShard != shard {
			b.failf(codeFeatureNotSupported, "tables %s and %s live on different shards (unlisted_tables)", b.onlyTable, name)
		}
		b.onlyShard, b.onlyTable = shard, name
	case relUnlistedError:
		b.failHint(codeUndefinedTable,
			"add it to sharded_tables or reference_tables, or set unlisted_tables in the database config",
			"table %q is not listed in the pgrouter configuration of database %q", name, b.r.dbName)
	}
}

func (b *builder) find(i int32) int32 {
	for b.uf[i] != i {
		b.uf[i] = b.uf[b.uf[i]]
		i = b.uf[i]
	}
	return i
}

// union merges the groups of two occurrences when their tables are co-located.
func (b *builder) union(x, y int32) {
	if b.sp.occs[x].t.coloc != b.sp.occs[y].t.coloc {
		return
	}
	rx, ry := b.find(x), b.find(y)
	if rx == ry {
		return
	}
	if rx > ry {
		rx, ry = ry, rx
	}
	b.uf[ry] = rx
}

// sublinksIn analyses subqueries inside expression lists as non-restricting levels.
func (b *builder) sublinksIn(lvl int32, lists ...[]*pg.Node) {
	for _, l := range lists {
		b.sublinks(l, lvl)
	}
}

func (b *builder) sublinks(list []*pg.Node, lvl int32) {
	for _, n := range list {
		walkNode(n, func(x *pg.Node) bool {
			if sl := x.GetSubLink(); sl != nil {
				b.sublink(sl, lvl, false, false)
				return false
			}
			return true
		})
	}
}
