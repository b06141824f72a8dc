package merge

import (
	"fmt"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkShape refuses the statement shapes whose per-shard results cannot be
// combined into the single-node answer.
func checkShape(sel *pg.SelectStmt) error {
	switch sel.Op {
	case pg.SetOperation_SETOP_UNION:
		return unsupported("UNION", "run each branch as its own query")
	case pg.SetOperation_SETOP_INTERSECT:
		return unsupported("INTERSECT", "run each branch as its own query")
	case pg.SetOperation_SETOP_EXCEPT:
		return unsupported("EXCEPT", "run each branch as its own query")
	}
	switch {
	case len(sel.ValuesLists) > 0:
		return unsupported("VALUES", "")
	case sel.IntoClause != nil:
		return unsupported("SELECT … INTO", "use CREATE TABLE … AS on one shard")
	case len(sel.LockingClause) > 0:
		return unsupported("FOR UPDATE/SHARE", "lock rows with a shard key in WHERE")
	case len(sel.DistinctClause) > 0 && sel.DistinctClause[0].Node != nil:
		return unsupported("DISTINCT ON", "")
	case len(sel.WindowClause) > 0:
		return unsupported("window function (WINDOW clause)", "")
	case sel.LimitOption == pg.LimitOption_LIMIT_OPTION_WITH_TIES:
		return unsupported("FETCH … WITH TIES", "")
	case sel.WithClause != nil && sel.WithClause.Recursive:
		return unsupported("WITH RECURSIVE", "")
	}
	for _, g := range sel.GroupClause {
		if g.GetGroupingSet() != nil {
			return unsupported("GROUPING SETS, ROLLUP or CUBE", "")
		}
	}
	for _, t := range sel.TargetList {
		if err := checkExpr(t.GetResTarget().GetVal(), true); err != nil {
			return err
		}
	}
	for _, s := range sel.SortClause {
		if s.GetSortBy().GetSortbyDir() == pg.SortByDir_SORTBY_USING {
			return unsupported("ORDER BY … USING", "")
		}
		if err := checkExpr(s.GetSortBy().GetNode(), false); err != nil {
			return err
		}
		if cc := s.GetSortBy().GetNode().GetCollateClause(); cc != nil {
			names := cc.Collname
			switch names[len(names)-1].GetString_().GetSval() {
			case "C", "POSIX", "ucs_basic":
			default:
				return unsupported("ORDER BY with a collation other than \"C\"",
					"the merge compares text bytewise, as the C collation does")
			}
		}
	}
	if err := checkExpr(sel.HavingClause, false); err != nil {
		return err
	}
	return checkNested(sel)
}

// checkExpr refuses window functions, aggregates the engine cannot combine
// and (in the select list) subqueries.
func checkExpr(n *pg.Node, selectList bool) error {
	var err error
	walkNode(n, func(m protoreflect.Message) bool {
		switch x := m.Interface().(type) {
		case *pg.SubLink:
			if selectList {
				err = unsupported("subquery in the select list", "")
			}
			return false
		case *pg.SelectStmt:
			return false
		case *pg.GroupingFunc:
			err = unsupported("GROUPING()", "")
		case *pg.FuncCall:
			err = checkFuncCall(x)
		}
		return err == nil
	})
	return err
}

func checkFuncCall(fc *pg.FuncCall) error {
	name := funcName(fc)
	switch {
	case fc.Over != nil:
		return unsupported(fmt.Sprintf("window function %s()", name), "")
	case otherAggs[name]:
		return unsupported(fmt.Sprintf("aggregate function %s()", name),
			"supported across shards: count, sum, min, max, avg, bool_and, bool_or")
	case !supportedAggs[name] && !fc.AggStar:
		return nil
	case fc.AggFilter != nil:
		return unsupported(fmt.Sprintf("aggregate with FILTER (%s)", name), "")
	case len(fc.AggOrder) > 0:
		return unsupported(fmt.Sprintf("aggregate with ORDER BY (%s)", name), "")
	case fc.AggWithinGroup:
		return unsupported(fmt.Sprintf("aggregate with WITHIN GROUP (%s)", name), "")
	case fc.AggDistinct && (name == "sum" || name == "avg"):
		return unsupported(fmt.Sprintf("%s(DISTINCT …)", name), "count(DISTINCT …), min and max are supported")
	case fc.AggDistinct && name == "count" && len(fc.Args) != 1:
		return unsupported("count(DISTINCT …) over several arguments", "")
	}
	return nil
}

// checkNested refuses subqueries (WITH, FROM, WHERE) whose results depend on
// rows of other shards: aggregates, GROUP BY, DISTINCT, LIMIT, window
// functions and set operations other than UNION ALL computed on one shard's
// rows only are wrong.
func checkNested(top *pg.SelectStmt) error {
	var err error
	walkNode(top, func(m protoreflect.Message) bool {
		s, ok := m.Interface().(*pg.SelectStmt)
		if !ok || s == top {
			return true
		}
		what := ""
		switch {
		case s.Op == pg.SetOperation_SETOP_UNION && !s.All, s.Op == pg.SetOperation_SETOP_INTERSECT,
			s.Op == pg.SetOperation_SETOP_EXCEPT:
			what = "set operation"
		case len(s.GroupClause) > 0 || s.HavingClause != nil:
			what = "GROUP BY"
		case len(s.DistinctClause) > 0:
			what = "DISTINCT"
		case s.LimitCount != nil || s.LimitOffset != nil:
			what = "LIMIT/OFFSET"
		case len(s.WindowClause) > 0 || hasWindowOrAgg(s):
			what = "aggregate or window function"
		}
		if what != "" {
			err = unsupported("subquery or WITH query with "+what,
				"a subquery is computed on each shard's rows only")
		}
		return err == nil
	})
	return err
}

// hasWindowOrAgg looks for aggregate or window calls in s's own clauses.
func hasWindowOrAgg(s *pg.SelectStmt) bool {
	found := false
	check := func(n *pg.Node) {
		walkNode(n, func(m protoreflect.Message) bool {
			switch x := m.Interface().(type) {
			case *pg.SubLink, *pg.SelectStmt:
				return false
			case *pg.FuncCall:
				found = found || x.Over != nil || isAggCall(x)
			}
			return !found
		})
	}
	for _, t := range s.TargetList {
		check(t)
	}
	for _, o := range s.SortClause {
		check(o)
	}
	return found
}
