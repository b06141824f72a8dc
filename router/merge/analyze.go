package merge

import (
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Analyze plans sql: a single SELECT on sharded tables that the router
// already decided must run on several shards. Shapes the engine cannot merge
// exactly return *pgconn.PgError with Code 0A000 naming the construct.
func Analyze(sql string) (*Plan, error) {
	tree, err := pg.Parse(sql)
	if err != nil {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: pgwire.SyntaxError, Message: err.Error()}
	}
	if len(tree.Stmts) != 1 {
		return nil, unsupported("several statements in one multi-shard query", "send them one by one")
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil {
		return nil, unsupported("this statement type", "only SELECT results are merged")
	}
	if err := checkShape(sel); err != nil {
		return nil, err
	}
	a := &analyzer{sel: sel, plan: &Plan{limit: -1}}
	if err := a.limits(); err != nil {
		return nil, err
	}
	a.plan.distinct = len(sel.DistinctClause) > 0
	if a.grouped() {
		err = a.planAggregate()
	} else {
		err = a.planRows()
	}
	if err != nil {
		return nil, err
	}
	if a.plan.mode != modeAggregate && a.plan.hidden == 0 && a.plan.offset == 0 {
		// Nothing was rewritten that changes the meaning (LIMIT n+0 is
		// LIMIT n): the shards run the client's text, and the Deparse,
		// a third of Analyze's cost, is saved.
		a.plan.ShardSQL = sql
		return a.plan, nil
	}
	a.plan.ShardSQL, err = pg.Deparse(tree)
	if err != nil {
		return nil, fmt.Errorf("merge: deparse rewritten statement: %w", err)
	}
	return a.plan, nil
}

// analyzer holds the statement being planned.
type analyzer struct {
	sel     *pg.SelectStmt
	plan    *Plan
	targets []*pg.ResTarget // the original select list (before rewriting)
	keys    []string        // exprKey of each original select-list value
	nhidden int             // helper columns appended so far

	distinctArgs []*pg.Node // count(DISTINCT x) arguments: extra shard GROUP BY items
}

func (a *analyzer) grouped() bool {
	if len(a.sel.GroupClause) > 0 || a.sel.HavingClause != nil {
		return true
	}
	for _, t := range a.sel.TargetList {
		if containsAgg(t) {
			return true
		}
	}
	for _, s := range a.sel.SortClause {
		if containsAgg(s) {
			return true
		}
	}
	return false
}

// limits reads constant LIMIT/OFFSET; parameters and expressions are refused
// because the merge must know the numbers.
func (a *analyzer) limits() error {
	read := func(n *pg.Node, what string) (int64, bool, error) {
		if n == nil {
			return 0, false, nil
		}
		if c := n.GetAConst(); c != nil && c.Isnull {
			return 0, false, nil // LIMIT ALL / LIMIT NULL
		}
		v, ok := intConst(n)
		if !ok {
			return 0, false, unsupported(what+" that is not an integer literal", "write the number in the query text")
		}
		if v < 0 {
			return 0, false, &pgconn.PgError{Severity: "ERROR", Code: pgwire.InvalidRowCountInLimitClause, Message: what + " must not be negative"}
		}
		return v, true, nil
	}
	limit, hasLimit, err := read(a.sel.LimitCount, "LIMIT")
	if err != nil {
		return err
	}
	offset, _, err := read(a.sel.LimitOffset, "OFFSET")
	if err != nil {
		return err
	}
	if hasLimit {
		a.plan.limit = limit
	}
	a.plan.offset = offset
	return nil
}

// snapshotTargets records the select list before any rewriting, for
// matching ORDER BY / GROUP BY / HAVING expressions against it.
func (a *analyzer) snapshotTargets() {
	for _, t := range a.sel.TargetList {
		rt := proto.Clone(t.GetResTarget()).(*pg.ResTarget)
		a.targets = append(a.targets, rt)
		a.keys = append(a.keys, exprKey(rt.Val))
	}
}

// resolve finds the select-list item an ORDER BY / GROUP BY item denotes: a
// position, an output column name, or an equal expression; -1 if none. Only
// items before any * have a known column position.
func (a *analyzer) resolve(n *pg.Node) int {
	limit := len(a.targets)
	for i, t := range a.targets {
		if isStar(t) {
			limit = i
			break
		}
	}
	if p, ok := intConst(n); ok {
		return int(p) - 1 // a position counts output columns, * expanded
	}
	if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
		name := cr.Fields[0].GetString_().Sval
		for i := 0; i < limit; i++ {
			if outputName(a.targets[i]) == name {
				return i
			}
		}
	}
	key := exprKey(n)
	for i := 0; i < limit; i++ {
		if a.keys[i] == key {
			return i
		}
	}
	return -1
}

// addHidden appends a helper column the client never sees and returns its
// index in the shard rows.
func (a *analyzer) addHidden(val *pg.Node) int {
	a.nhidden++
	name := fmt.Sprintf("__pgrouter_%d", a.nhidden)
	a.sel.TargetList = append(a.sel.TargetList,
		pg.MakeResTargetNodeWithNameAndVal(name, proto.Clone(val).(*pg.Node), -1))
	a.plan.hidden++
	return len(a.sel.TargetList) - 1
}

// planRows plans a query without aggregates: concatenation, or a k-way merge
// on the ORDER BY keys; LIMIT n OFFSET m becomes LIMIT n+m on the shards.
func (a *analyzer) planRows() error {
	a.snapshotTargets()
	a.plan.mode = modeConcat
	for _, s := range a.sel.SortClause {
		sb := s.GetSortBy()
		col := a.resolve(sb.Node)
		if col < 0 {
			// Hidden columns follow a * of unknown width: count from the end.
			a.addHidden(sb.Node)
			col = -a.nhidden
		}
		a.plan.sort = append(a.plan.sort, newSortKey(col, sb))
		a.plan.mode = modeMergeSort
	}
	if a.plan.limit >= 0 {
		a.sel.LimitCount = pg.MakeAConstIntNode(a.plan.limit+a.plan.offset, -1)
		a.sel.LimitOption = pg.LimitOption_LIMIT_OPTION_COUNT
	}
	a.sel.LimitOffset = nil
	return nil
}

func newSortKey(col int, sb *pg.SortBy) sortKey {
	k := sortKey{col: col, desc: sb.SortbyDir == pg.SortByDir_SORTBY_DESC}
	switch sb.SortbyNulls {
	case pg.SortByNulls_SORTBY_NULLS_FIRST:
		k.nullsFirst = true
	case pg.SortByNulls_SORTBY_NULLS_LAST:
	default:
		k.nullsFirst = k.desc // Postgres: NULLs sort as larger than any value
	}
	return k
}
