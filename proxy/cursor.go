package proxy

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// SQL cursors over several shards (SQLAlchemy stream_results, psycopg2
// named cursors: DECLARE … CURSOR FOR a cross-shard SELECT, then FETCH
// FORWARD n, then CLOSE, inside a transaction). The SELECT is merged once
// at DECLARE, on the transaction's backends, and its rows are kept in the
// session as a portal (scatter_portal.go: protocol Execute and Describe
// reach a DECLAREd cursor too, as in Postgres) until CLOSE or the end of
// the transaction. A merged cursor only moves forward and returns text:
// SCROLL and BINARY cursors are refused as before (0A000 at DECLARE), a
// backward or absolute FETCH gets 0A000; WITH HOLD stays what it was (the
// session is pinned). The extended protocol's DECLARE is refused as before.

// sqlCursor runs a cursor statement of the session's merged cursors (or a
// DECLARE that makes one); done is false for every other statement.
func (ss *session) sqlCursor(sql string, route router.Route) (done bool, err error) {
	inTx := ss.pendingBegin != "" || ss.txStatus == pgwire.TxActive
	if !inTx || !multiShardRoute(route) && len(ss.kept) == 0 {
		return false, nil
	}
	rsql, perr := ss.routerText(sql)
	if perr != nil {
		return false, nil
	}
	c, ok := router.ParseCursor(rsql)
	switch {
	case !ok:
		return false, nil
	case c.Kind == router.CursorDeclare:
		if !multiShardRoute(route) {
			return false, nil
		}
		return ss.declareMerged(c)
	case c.Kind == router.CursorClose && c.Name == "":
		ss.kept = nil // CLOSE ALL: ours here, the backend's own there
		return false, nil
	}
	p, ok := ss.kept[c.Name]
	if !ok || p.done { // (a BEGIN's portal: not a cursor over shards)
		return false, nil
	}
	switch {
	case c.Kind == router.CursorClose:
		delete(ss.kept, c.Name)
		return true, ss.cursorDone("CLOSE CURSOR")
	case !c.Forward:
		return true, ss.replyError(pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("cursor %q runs over several shards: it only moves forward (NEXT, FORWARD n, ALL)", c.Name), ""), true)
	}
	if c.Kind == router.CursorFetch {
		ss.out = appendFrame(ss.out, pgwire.RowDescription, p.desc)
	}
	var n int64
	ss.out, n = p.fetch(ss.out, c.Count, c.Kind == router.CursorFetch)
	tag := "FETCH "
	if c.Kind == router.CursorMove {
		tag = "MOVE "
	}
	return true, ss.cursorDone(tag + strconv.FormatInt(n, 10))
}

// declareMerged runs DECLARE of a cursor over several shards: the merge
// runs now, its rows are kept for FETCH.
func (ss *session) declareMerged(c router.CursorStmt) (bool, error) {
	plan, route, err := ss.router.RouteSimple(c.Query, ss.hints, &ss.scratch)
	if err != nil || !ss.multiRead(plan, route) {
		return false, nil // refused as before (not a SELECT pgrouter merges)
	}
	if c.Options&(router.CursorBinary|router.CursorScroll) != 0 {
		return false, nil // refused as before: a merged cursor moves forward, in text
	}
	if _, exists := ss.kept[c.Name]; exists {
		return true, ss.replyError(pgwire.Error(pgwire.DuplicateCursor, fmt.Sprintf("cursor %q already exists", c.Name), ""), true)
	}
	var desc []byte
	rows := new([][]byte)
	_, _, perr := ss.scatterRead(ss.clientText(c.Query), plan, nil, router.Args{}, nil, route, 0, rows, func(d []byte) {
		desc = bytes.Clone(d)
	})
	if perr != nil {
		return true, ss.replyError(perr, true)
	}
	ss.keepPortal(c.Name, desc, *rows)
	return true, ss.cursorDone("DECLARE CURSOR")
}

func (ss *session) cursorDone(tag string) error {
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}
