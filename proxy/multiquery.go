package proxy

import (
	"strconv"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// A simple Query holding several statements for different shards (what
// psycopg2's execute_batch sends) runs statement by statement, each on
// its shard(s), as one transaction over them (see multibatch.go): the
// client gets each statement's answers in order and one ReadyForQuery.

// piece is one statement of a multi-statement Query.
type piece struct {
	sql   string
	plan  *router.Plan
	route router.Route
	err   error // the router could not route it: the query fails there
}

// spanSimple runs sql over shards when its statements need several;
// done is false when it holds one statement after all (a ';' in a
// literal), for the caller to handle. unnamed is the proxy's unnamed
// portal the Query set aside (see unnamedportal.go).
func (ss *session) spanSimple(sql string, unnamed *keptPortal) (done bool, err error) {
	rsql, cerr := ss.routerText(sql)
	if cerr != nil {
		return false, nil // the caller refuses it
	}
	texts, perr := router.SplitStatementsFor(rsql, ss.hints)
	if perr != nil || len(texts) < 2 {
		return false, nil
	}
	pieces := make([]piece, len(texts))
	steps := make([]spanStep, len(texts))
	for i, text := range texts {
		p := &pieces[i]
		p.sql = ss.clientText(text) // the backends speak the client's encoding
		p.plan, p.route, p.err = ss.router.RouteSimple(text, ss.hints, &ss.scratch)
		steps[i] = spanStep{plan: p.plan, route: p.route, executes: true}
		steps[i].local = p.plan != nil && p.plan.Deallocate != nil
		if p.err != nil {
			steps[i].plan = nil
		}
	}
	if !ss.twoPhase() && sameBroadcast(pieces) {
		// A script every statement of which runs on every shard (DDL, say)
		// runs whole in a transaction per shard, as a single broadcast
		// statement does: without two-phase commit a span could not run it.
		return false, nil
	}
	ss.beginSpan()
	if perr := ss.spanAllowed(steps); perr != nil {
		ss.spanFailed(perr) // inside the client's transaction, fails it
		return true, ss.endSpan()
	}
	for i, p := range pieces {
		b, err := ss.runPiece(p)
		if err != nil {
			return true, err
		}
		if ss.span.failed {
			if i == 0 { // (nothing runs after a failed statement)
				if err := ss.keepUnnamedIfNotReplaced(unnamed, b, false); err != nil {
					return true, err
				}
			}
			break
		}
	}
	return true, ss.endSpan()
}

// runPiece runs one statement of the query in the span's transaction:
// a multi-shard write or read with the proxy's own executors, anything
// else relayed from its shard (every answer but ReadyForQuery); relayed
// is that shard's backend.
func (ss *session) runPiece(p piece) (relayed *binding, err error) {
	switch {
	case p.err != nil:
		ss.spanFailed(toPgError(p.err))
	case p.plan.Deallocate != nil && ss.deallocateHere(p.plan.Deallocate):
	case ss.multiWrite(p.plan, p.route):
		results, perr := ss.runMulti(p.sql, router.Args{}, nil, p.route)
		if perr != nil {
			ss.spanFailed(perr)
			return nil, nil
		}
		ss.out = appendRowDesc(ss.out, results, false)
		ss.out = appendSplitRows(ss.out, results)
	case ss.multiRead(p.plan, p.route):
		n, _, perr := ss.scatterRead(p.sql, p.plan, nil, router.Args{}, nil, p.route, 0, nil, func(desc []byte) {
			ss.out = appendFrame(ss.out, pgwire.RowDescription, desc)
		})
		if perr != nil {
			ss.spanFailed(perr)
			return nil, nil
		}
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(n, 10))})
	default:
		if err := ss.spanBackend(p.route, p.plan, true); err != nil {
			ss.spanFailed(toPgError(err))
			return nil, nil
		}
		if p.route.Role == router.RolePrimary {
			ss.be.wrote = true
		}
		return ss.be, ss.relayPiece(p.sql)
	}
	return nil, nil
}

// relayPiece sends one statement as a Query and relays its answers up to
// (not including) ReadyForQuery. COPY FROM STDIN cannot take part: the
// client's data would follow the whole query, so the shard gets CopyFail.
func (ss *session) relayPiece(sql string) error {
	b := ss.be
	if err := writeAll(b.conn.NetConn, appendQuery(nil, sql)); err != nil {
		return ss.backendLost(err)
	}
	var ferr error
	perr, lost := b.readUntilReady(func(typ byte, body []byte) {
		switch typ {
		case pgwire.CopyInResponse:
			writeAll(b.conn.NetConn, appendMsg(nil, &pgproto3.CopyFail{Message: "COPY FROM STDIN is not supported in a query whose statements run on different shards"}))
			return
		case pgwire.ParameterStatus:
			ss.noteParameterStatus(body)
			ss.params.sent(body)
		}
		ss.out = appendFrame(ss.out, typ, body)
		if len(ss.out) >= clientFlushAt && ferr == nil {
			ferr = ss.flushClient()
		}
	})
	if lost != nil {
		return ss.backendLost(lost)
	}
	if perr != nil {
		ss.span.failed = true
	}
	return ferr
}

// sameBroadcast reports whether every piece is a write broadcast to the
// same shards.
func sameBroadcast(pieces []piece) bool {
	for _, p := range pieces {
		if p.err != nil || !p.route.Multi || p.route.Split || p.route.Shards != pieces[0].route.Shards || p.plan.Role != router.RolePrimary {
			return false
		}
	}
	return true
}

// deallocateHere answers a DEALLOCATE of the client's own statements in a
// multi-statement Query, as simpleQuery does for a lone one.
func (ss *session) deallocateHere(d *router.Deallocate) bool {
	tag, ok := ss.deallocateLocally(d)
	if ok {
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
	}
	return ok
}
