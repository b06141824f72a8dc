package router

import (
	"fmt"
)

// Route decides where one execution of a prepared plan goes.
//
// A Plan.Copy statement is executed by the proxy only as a simple-protocol
// query (its data must be split as it arrives); through Route — the
// extended protocol's entry — it is refused with 0A000 rather than sent to
// several shards that would each wait for data.
func (r *Router) Route(p *Plan, args Args, s Session) (Route, error) {
	if nr := r.moved(); nr != nil {
		return nr.Route(nr.replan(p), args, s)
	}
	rt, err := r.route(p, &args, s)
	if err == nil && rt.Copy {
		return Route{}, pgError(codeFeatureNotSupported,
			fmt.Sprintf("COPY FROM STDIN into table %q through the extended query protocol is not supported: pgrouter splits COPY data only for simple-protocol queries", p.Copy.Table),
			"send the COPY as a simple query (psql \\copy, pgx CopyFrom, libpq PQexec)")
	}
	return rt, err
}

// route applies, in order: hint shard, session shard, hint key, then the
// statements' own shard keys. Roles: the plan's, raised to primary by
// SET pgrouter.role = primary or a role=primary hint; lowered to replica by
// either only for statements that are reads.
func (r *Router) route(p *Plan, args *Args, s Session) (Route, error) {
	rt, err := r.routePlain(p, args, s)
	if err != nil || r.hold == nil {
		return rt, err
	}
	return r.guard(p, args, s, rt)
}

func (r *Router) routePlain(p *Plan, args *Args, s Session) (Route, error) {
	a := p.a
	if a.err != nil {
		return Route{}, a.err
	}
	rt := Route{Role: p.Role}
	switch s.Role {
	case "primary":
		rt.Role = RolePrimary
	case "replica":
		rt.Role = p.Role
	}
	if a.hasRole && (a.hintRole == RolePrimary || p.Role == RoleReplica) {
		rt.Role = a.hintRole
	}
	// COPY into a sharded table under a shard choice still goes row by row:
	// the proxy refuses rows whose key belongs to another shard.
	rt.Copy = p.Copy != nil && !p.Copy.Reference
	rt.Multi = rt.Copy // outside explicit transactions only, like every split COPY
	switch {
	case a.hintShard >= 0:
		rt.Shards, rt.Reason = Only(a.hintShard), a.hintReason
		return rt, r.checkOverride(p, args, rt.Shards, a.hintReason)
	case s.Shard != "":
		if !r.shardHints {
			return Route{}, shardHintsOff("SET pgrouter.shard is")
		}
		i, ok := r.shardIdx[s.Shard]
		if !ok {
			return Route{}, pgError(codeInvalidParameter, fmt.Sprintf("pgrouter.shard names unknown shard %q", s.Shard), "")
		}
		rt.Shards, rt.Reason = Only(i), "SET pgrouter.shard"
		return rt, r.checkOverride(p, args, rt.Shards, "SET pgrouter.shard = "+s.Shard)
	case a.hintKey && a.hintKeyDir != nil:
		set, err := lookupText(a.hintKeyDir, a.hintKeyTxt)
		rt.Shards, rt.Reason = set, a.hintReason
		if err == nil {
			err = r.checkOverride(p, args, set, a.hintReason)
		}
		return rt, err
	case a.hintKey:
		rt.Shards, rt.Reason = a.hintKeySet, a.hintReason
		if a.hintKeyErr != nil {
			return rt, a.hintKeyErr
		}
		return rt, r.checkOverride(p, args, rt.Shards, a.hintReason)
	case r.trivial:
		rt.Shards, rt.Any, rt.Reason = r.all, true, "single shard, no sharded tables"
		return rt, nil
	}
	var out Route
	for i, sp := range a.stmts {
		sr, err := r.routeStmt(sp, args)
		if err != nil {
			return Route{}, err
		}
		if i == 0 {
			out = sr
			continue
		}
		if out, err = combine(out, sr); err != nil {
			return Route{}, err
		}
	}
	out.Role = rt.Role
	return out, nil
}

// combine merges the routes of the statements of one simple-protocol text.
func combine(x, y Route) (Route, error) {
	switch {
	case y.Any:
		return x, nil
	case x.Any:
		return y, nil
	case x.Split || y.Split:
		return Route{}, pgError(codeFeatureNotSupported,
			"a multi-row INSERT spanning shards must be sent on its own, not in a multi-statement query", "")
	case !x.Multi && !y.Multi && x.Shards == y.Shards:
		return x, nil
	case x.Multi || y.Multi:
		m := x
		if !x.Multi {
			m = y
		}
		m.Shards = x.Shards | y.Shards
		m.Reference = x.Reference && y.Reference
		return m, nil
	}
	return Route{}, pgError(codeFeatureNotSupported,
		fmt.Sprintf("the statements of this query go to different shards (%d and %d)", x.Shards.First(), y.Shards.First()),
		"send them as separate queries")
}

func (r *Router) routeStmt(sp *stmtPlan, args *Args) (Route, error) {
	switch sp.kind {
	case spErr:
		return Route{}, sp.err
	case spAny:
		return Route{Shards: r.all, Any: true, Reason: sp.reason}, nil
	case spFixed:
		return Route{Shards: sp.set, Multi: sp.multi, Copy: sp.copy, Reason: sp.reason, Table: sp.table, Column: sp.column,
			Reference: sp.reference && sp.multi}, nil
	}
	return r.routeKeyed(sp, args)
}

func (r *Router) routeKeyed(sp *stmtPlan, args *Args) (Route, error) {
	var rt Route
	if len(sp.groups) == 1 {
		g := &sp.groups[0]
		set, known, err := r.evalGroup(sp, 0, args)
		switch {
		case err != nil:
			return Route{}, err
		case !known:
			rt = Route{Shards: g.t.owners, Multi: g.t.owners.Len() > 1, Reason: g.reason + ": not restricted", Table: g.t.display, Column: g.t.column}
		case set == 0:
			rt = Route{Shards: Only(0), Reason: g.reason + ": conditions contradict, no row can match"}
		default:
			rt = Route{Shards: set, Reason: g.reason}
			if set.Len() > 1 {
				if sp.oneShard {
					return Route{}, pgError(codeFeatureNotSupported,
						fmt.Sprintf("INSERT inside WITH puts rows of table %q on several shards", g.t.display),
						"insert rows of different shards in separate statements")
				}
				rt.Multi, rt.Split = true, sp.insert
				rt.Table, rt.Column = g.t.display, g.t.column
			}
		}
	} else {
		var common ShardSet
		for gi := range sp.groups {
			set, known, err := r.evalGroup(sp, gi, args)
			if err != nil {
				return Route{}, err
			}
			if !known || set.Len() > 1 || (set != 0 && common != 0 && set != common) {
				return Route{}, r.crossShardError(sp, gi)
			}
			if common == 0 {
				common = set
			}
		}
		if common == 0 {
			common = Only(0)
		}
		rt = Route{Shards: common, Reason: "all sharded tables keyed to one shard"}
	}
	if sp.onlyShard >= 0 && rt.Shards != Only(sp.onlyShard) {
		return Route{}, pgError(codeFeatureNotSupported,
			fmt.Sprintf("statement joins an unlisted table of shard %s with sharded rows elsewhere", r.shardNames[sp.onlyShard]), "")
	}
	if sp.updVal >= 0 {
		if err := r.checkKeyUpdate(sp, rt, args); err != nil {
			return Route{}, err
		}
	}
	return rt, nil
}

func (r *Router) checkKeyUpdate(sp *stmtPlan, rt Route, args *Args) error {
	g := &sp.groups[sp.updGroup]
	set, err := r.valSet(&sp.vals[sp.updVal], g.t, args)
	if err != nil {
		return err
	}
	if rt.Shards.Len() != 1 || set != rt.Shards {
		return pgError(codeFeatureNotSupported,
			fmt.Sprintf("UPDATE of shard key %q of table %q would move rows to another shard", g.t.column, g.t.display),
			"delete the row and insert it with the new key")
	}
	return nil
}

func (r *Router) crossShardError(sp *stmtPlan, gi int) error {
	t := sp.groups[gi].t
	return pgError(codeFeatureNotSupported,
		fmt.Sprintf("query combines sharded tables that are not joined on their shard key (table %q, key %q) and cannot be routed to one shard", t.display, t.column),
		"join co-located tables on the shard key, restrict every sharded table to the same shard, or use /* pgrouter: shard=NAME */")
}

func (r *Router) evalGroup(sp *stmtPlan, gi int, args *Args) (ShardSet, bool, error) {
	set, known := sp.groups[gi].t.owners, false
	for _, root := range sp.groups[gi].roots {
		s, k, err := r.eval(sp, root, int32(gi), args)
		if err != nil {
			return 0, false, err
		}
		if k {
			set &= s
			known = true
		}
	}
	return set, known, nil
}

// eval computes the shards a condition allows for group g (known=false:
// the condition says nothing about g).
func (r *Router) eval(sp *stmtPlan, ci, g int32, args *Args) (ShardSet, bool, error) {
	c := &sp.conds[ci]
	switch c.op {
	case cLeaf:
		if sp.occGroup[c.occ] != g {
			return 0, false, nil
		}
		t := sp.occs[c.occ].t
		var set ShardSet
		for i := c.first; i < c.first+c.n; i++ {
			s, err := r.valSet(&sp.vals[i], t, args)
			if err != nil {
				return 0, false, err
			}
			set |= s
		}
		return set, true, nil
	case cAnd:
		set, known := r.all, false
		for _, k := range sp.kids[c.first : c.first+c.n] {
			s, ok, err := r.eval(sp, k, g, args)
			if err != nil {
				return 0, false, err
			}
			if ok {
				set &= s
				known = true
			}
		}
		return set, known, nil
	case cOr:
		var set ShardSet
		for _, k := range sp.kids[c.first : c.first+c.n] {
			s, ok, err := r.eval(sp, k, g, args)
			if err != nil || !ok {
				return 0, false, err
			}
			set |= s
		}
		return set, true, nil
	}
	return 0, false, nil
}
