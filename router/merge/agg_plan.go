package merge

import (
	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// aggFn is how one output column of an aggregate query is computed from the
// shards' partial rows.
type aggFn int

const (
	fnPass          aggFn = iota // group key or expression of the keys: any row's value
	fnCount                      // count(*), count(x): sum of the partial counts
	fnSum                        // sum(x): sum of the partial sums (NULL if all are)
	fnMin                        // min(x)
	fnMax                        // max(x)
	fnAvg                        // avg(x): partial sum(x) at src, count(x) at src2
	fnBoolAnd                    // bool_and(x), every(x)
	fnBoolOr                     // bool_or(x)
	fnCountDistinct              // count(DISTINCT x): shards group by x, src holds x
)

// outCol is one output column (visible or hidden) of an aggregate query.
type outCol struct {
	fn        aggFn
	src, src2 int // shard columns
}

// aggPlan is the aggregate part of a Plan.
type aggPlan struct {
	outs      []outCol // the select list, then hidden outputs for ORDER BY / HAVING
	visible   int
	groupCols []int // shard columns of the GROUP BY key
	global    bool  // no GROUP BY: exactly one result row, even without input
	having    []havingCond
}

// planAggregate plans a query with aggregates and/or GROUP BY: the shards
// compute partial aggregates per group (avg as sum and count, count(DISTINCT
// x) as a GROUP BY on x); the merge combines groups, applies HAVING, ORDER BY,
// DISTINCT and LIMIT.
func (a *analyzer) planAggregate() error {
	a.snapshotTargets()
	ap := &aggPlan{visible: len(a.targets), global: len(a.sel.GroupClause) == 0}
	a.plan.agg, a.plan.mode = ap, modeAggregate
	for i, t := range a.sel.TargetList {
		rt := t.GetResTarget()
		if isStar(rt) {
			return unsupported("SELECT * with aggregates or GROUP BY", "list the columns")
		}
		fc := rt.Val.GetFuncCall()
		switch {
		case fc != nil && isAggCall(fc):
			ap.outs = append(ap.outs, a.aggOut(fc, rt, i))
		case containsAgg(rt.Val):
			return unsupported("expression over aggregate results in the select list",
				"select the aggregates themselves and compute on the client")
		default:
			ap.outs = append(ap.outs, outCol{fn: fnPass, src: i})
		}
	}
	a.groupKeys(ap)
	if err := a.having(a.sel.HavingClause); err != nil {
		return err
	}
	for _, s := range a.sel.SortClause {
		sb := s.GetSortBy()
		out, err := a.outFor(sb.Node, true)
		if err != nil {
			return err
		}
		a.plan.sort = append(a.plan.sort, newSortKey(out, sb))
	}
	if ap.global && len(a.distinctArgs) > 0 {
		for _, o := range ap.outs {
			if o.fn == fnPass {
				return unsupported("non-aggregate select-list item next to count(DISTINCT …) without GROUP BY", "")
			}
		}
	}
	// count(DISTINCT x): the shards group by x too, so each x arrives once
	// per shard and group; the merge counts the union.
	for _, d := range a.distinctArgs {
		a.sel.GroupClause = append(a.sel.GroupClause, proto.Clone(d).(*pg.Node))
	}
	// Shards return every partial group, unsorted, undeduplicated.
	a.sel.SortClause, a.sel.HavingClause, a.sel.DistinctClause = nil, nil, nil
	a.sel.LimitCount, a.sel.LimitOffset = nil, nil
	a.sel.LimitOption = pg.LimitOption_LIMIT_OPTION_DEFAULT
	return nil
}

// aggOut rewrites one aggregate call for the shards. slot is the
// select-list entry to rewrite in place (index i), or nil for a hidden
// output appended to the list.
func (a *analyzer) aggOut(fc *pg.FuncCall, slot *pg.ResTarget, i int) outCol {
	name := funcName(fc)
	place := func(val *pg.Node) int {
		if slot == nil {
			return a.addHidden(val)
		}
		if slot.Name == "" {
			slot.Name = name // keep the client's column name
		}
		slot.Val = val
		return i
	}
	orig := &pg.Node{Node: &pg.Node_FuncCall{FuncCall: fc}}
	switch {
	case name == "count" && fc.AggDistinct:
		a.distinctArgs = append(a.distinctArgs, fc.Args[0])
		return outCol{fn: fnCountDistinct, src: place(proto.Clone(fc.Args[0]).(*pg.Node))}
	case name == "avg":
		sum := place(makeFunc("sum", fc.Args))
		return outCol{fn: fnAvg, src: sum, src2: a.addHidden(makeFunc("count", fc.Args))}
	}
	fn := map[string]aggFn{"count": fnCount, "sum": fnSum, "min": fnMin, "max": fnMax,
		"bool_and": fnBoolAnd, "every": fnBoolAnd, "bool_or": fnBoolOr}[name]
	if fc.AggStar {
		fn = fnCount
	}
	if slot != nil {
		return outCol{fn: fn, src: i}
	}
	return outCol{fn: fn, src: place(orig)}
}

// groupKeys resolves the GROUP BY items to shard columns, adding hidden
// ones for keys not in the select list.
func (a *analyzer) groupKeys(ap *aggPlan) {
	for _, g := range a.sel.GroupClause {
		i := a.resolve(g)
		if i >= 0 && i < ap.visible && ap.outs[i].fn == fnPass {
			ap.groupCols = append(ap.groupCols, i)
			continue
		}
		ap.groupCols = append(ap.groupCols, a.addHidden(g))
	}
}

// outFor finds or adds the output column an ORDER BY (byName: output names
// and positions count) or HAVING operand denotes: a select-list item, a
// bare aggregate call, or an expression of the group keys.
func (a *analyzer) outFor(n *pg.Node, byName bool) (int, error) {
	ap := a.plan.agg
	key := exprKey(n)
	if byName {
		if i := a.resolve(n); i >= 0 && i < ap.visible {
			return i, nil
		}
	} else {
		for i, k := range a.keys {
			if k == key {
				return i, nil
			}
		}
	}
	if fc := n.GetFuncCall(); fc != nil && isAggCall(fc) {
		ap.outs = append(ap.outs, a.aggOut(fc, nil, -1))
		return len(ap.outs) - 1, nil
	}
	if containsAgg(n) {
		return 0, unsupported("expression over aggregate results in ORDER BY or HAVING",
			"put the aggregate itself in ORDER BY / HAVING")
	}
	ap.outs = append(ap.outs, outCol{fn: fnPass, src: a.addHidden(n)})
	return len(ap.outs) - 1, nil
}
