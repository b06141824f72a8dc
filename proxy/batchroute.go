package proxy

import (
	"fmt"
	"slices"

	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/router"
)

// routeBatch registers Parsed statements and combines the routes of every
// Bind in the batch. txPlan is set when the batch only executes one
// transaction-control statement (candidate for local answering).
func (ss *session) routeBatch() (router.Route, *stmt, error) {
	out := router.Route{Any: true}
	var txStmt *stmt
	executes := 0
	ss.lastBound = nil
	var lastBound *stmt
	localPortal := false // the last Bind was answered locally (DEALLOCATE)
	b := &ss.batch
	for i := range b.msgs {
		m := &b.msgs[i]
		body := b.body(i)
		ss.refuseIdx = i // where an error returned now stands
		switch m.typ {
		case pgwire.Parse:
			pm, err := decodeParse(body)
			if err != nil {
				return out, nil, err
			}
			prev := ss.stmts[pm.name]
			if m.st, err = ss.registerStmt(pm); err != nil {
				return out, nil, err
			}
			m.prev = prev
			// A statement prepared now runs here later: describe it where it
			// will run. (Text the router cannot parse fails on any node.)
			if m.st.plan != nil && !m.st.plan.Unparsed && m.st.plan.Role > out.Role {
				out.Role = m.st.plan.Role
			}
		case pgwire.Bind:
			bm, err := decodeBind(body, &ss.args, &ss.resultFormats)
			if err != nil {
				return out, nil, err
			}
			st := ss.stmts[bm.stmt]
			if st == nil && ss.pinned != "" && ss.be != nil {
				// Maybe an SQL PREPAREd statement of the pinned backend:
				// it names it itself (or reports that it does not exist).
				m.raw, localPortal, lastBound, ss.lastBound = true, false, nil, nil
				ss.queries.Add(1)
				continue
			}
			if st == nil {
				return out, nil, errNoStatement(bm.stmt)
			}
			if st.plan == nil {
				return out, nil, st.planErr
			}
			m.st = st
			ss.lastSQL = st.query
			ss.queries.Add(1)
			ss.args.ParamOIDs = st.oids
			args, perr := ss.routerArgs(ss.args)
			if perr != nil {
				return out, nil, perr
			}
			r, err := ss.router.Route(st.plan, args, ss.hints)
			if retry, lerr := ss.learnColumns(err); retry {
				ss.replan(st)
				r, err = ss.router.Route(st.plan, args, ss.hints)
			} else {
				err = lerr
			}
			if err != nil {
				return out, nil, err
			}
			out = mergeRoutes(out, r)
			lastBound = st
			ss.lastBound = st
			d := st.plan.Deallocate
			localPortal = d != nil && (d.All && ss.pinned == "" || !d.All && ss.stmts[d.Name] != nil)
			m.local = localPortal
		case pgwire.Execute:
			executes++
			if lastBound != nil && lastBound.plan.Tx == router.TxBegin && ss.txStatus == pgwire.TxIdle &&
				(ss.be == nil || ss.openBatch && ss.pinned == "") {
				// A BEGIN run now (not deferred) may write later: the primary,
				// as for BEGIN in a multi-statement query (router); after an
				// open batch on a replica, see leaveReplicaBatch.
				out.Role = router.RolePrimary
			}
			if m.local = localPortal; localPortal {
				m.st = lastBound
				ss.deallocateLocally(lastBound.plan.Deallocate) // in order: later messages see it
			}
		case pgwire.Describe:
			m.local = localPortal && len(body) > 0 && body[0] == pgwire.ObjectPortal
			if len(body) > 0 && body[0] == pgwire.ObjectStatement {
				name, _, _ := cstring(body[1:])
				if m.st = ss.stmts[name]; m.st == nil && ss.pinned != "" && ss.be != nil {
					m.raw = true // see Bind
				} else if m.st == nil {
					return out, nil, errNoStatement(name)
				}
			}
		case pgwire.Close:
			if len(body) > 0 && body[0] == pgwire.ObjectStatement {
				// Server statements are shared; closing only forgets the client's
				// name (given back if Postgres would skip the Close).
				name, _, _ := cstring(body[1:])
				m.prev = ss.stmts[name]
				delete(ss.stmts, name)
			}
		}
	}
	if executes == 1 && lastBound != nil && lastBound.plan.Tx != router.TxNone {
		txStmt = lastBound
	}
	if lastBound == nil && !b.binds() {
		out = ss.unboundRoute()
	}
	return out, txStmt, nil
}

// errNoStatement is Postgres's error for a statement name it does not know.
func errNoStatement(name string) error {
	if name == "" {
		return pgwire.Error(pgwire.InvalidSQLStatementName, "unnamed prepared statement does not exist", "")
	}
	return pgwire.Error(pgwire.InvalidSQLStatementName, fmt.Sprintf("prepared statement %q does not exist", name), "")
}

// unboundRoute is where a batch without a Bind goes (one that only parses
// and describes: what drivers send to prepare): where its statements will
// run — any shard; the primary if one of them writes (a replica's catalog
// lags: a table another session just created may not be there yet), or if
// the session's SET pgrouter.role says so; the shard SET pgrouter.shard
// names.
func (ss *session) unboundRoute() router.Route {
	r := router.Route{Any: true}
	for _, m := range ss.batch.msgs {
		if m.st != nil && m.st.plan != nil && !m.st.plan.Unparsed { // (text the router cannot parse fails anywhere)
			r.Role = max(r.Role, m.st.plan.Role)
		}
	}
	if ss.hints.Role == "primary" {
		r.Role = router.RolePrimary
	}
	if ss.hints.Shard != "" {
		if i := slices.Index(ss.router.ShardNames(), ss.hints.Shard); i >= 0 {
			r.Any, r.Shards = false, router.Only(i)
		}
	}
	return r
}

// mergeRoutes combines the routes of the statements of one batch: the
// batch runs as one implicit transaction, so it needs one place.
func mergeRoutes(a, b router.Route) router.Route {
	role := max(a.Role, b.Role)
	switch {
	case b.Any:
		if a.Any && a.Shards == 0 {
			a.Shards = b.Shards
		}
	case a.Any:
		a = b
	default:
		if a.Shards != b.Shards {
			a.Multi = true
		}
		a.Shards |= b.Shards
		a.Multi = a.Multi || b.Multi
		a.Split = a.Split || b.Split
		if a.Table == "" {
			a.Table, a.Column = b.Table, b.Column
		}
	}
	a.Role = role
	return a
}
