package proxy

import (
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// simpleQuery handles a Query message (one or more statements in one string).
func (ss *session) simpleQuery(body []byte) error {
	if ss.queryInSpan() {
		return nil // skipped after an error, up to Sync
	}
	sql := sqlString(body)
	ss.lastSQL = sql
	delete(ss.stmts, "") // a Query destroys the unnamed statement, as in Postgres
	unnamed := ss.kept[""]
	if ss.txStatus != pgwire.TxFailed {
		delete(ss.kept, "") // and, unless refused (25P02) first, the unnamed portal
	}
	ss.queries.Add(1)
	rsql, perr := ss.routerText(sql)
	if perr != nil {
		return ss.replyError(perr, true)
	}
	plan, route, err := ss.router.RouteSimple(rsql, ss.hints, &ss.scratch)
	if retry, lerr := ss.learnColumns(err); retry {
		plan, route, err = ss.router.RouteSimple(rsql, ss.hints, &ss.scratch)
	} else {
		err = lerr
	}
	if err == nil && noStatement(plan) && unnamed != nil && ss.kept[""] == nil {
		ss.keep("", unnamed) // no statement, no portal: the unnamed one stays
	}
	if ss.txFailed {
		return ss.failedTxQuery(plan, sql)
	}
	if (err != nil || multiShardRoute(route) || ss.deallocatesOwn(plan)) && !singleStatement(sql) {
		if done, err := ss.spanSimple(sql, unnamed); done {
			return err
		}
	}
	if err != nil {
		rerr := ss.replyError(err, true)
		ss.keepUnnamedAfterRefusal(unnamed, plan != nil && plan.Unparsed)
		return rerr
	}
	if plan.Local {
		return ss.localStatement(plan)
	}
	if plan.Copy != nil && multiShardRoute(route) {
		if answered, err := ss.closeOpenBatch(); answered {
			return err
		}
	}
	if plan.Copy != nil && ss.copySplits(route) {
		return ss.copySplit(sql, plan)
	}
	if d := plan.Deallocate; d != nil {
		if done, err := ss.deallocate(d); done {
			return err
		}
	}
	if done, err := ss.multiTxControl(plan, sql, nil); done {
		return err
	}
	if done, err := ss.spanSavepoint(plan, nil); done {
		return err
	}
	if ss.be == nil {
		if done, err := ss.deferTxControl(plan, sql, nil); done {
			return err
		}
	}
	if done, err := ss.sqlCursor(sql, route); done {
		return err
	}
	if ss.multiWrite(plan, route) {
		return ss.multiSimple(sql, route)
	}
	if ss.multiRead(plan, route) {
		return ss.scatterSimple(sql, plan, route)
	}
	if plan.Tx == router.TxBegin && ss.openBatch {
		// A transaction opened inside a batch left open on a replica may
		// write later: it runs on the primary (see routeBatch's Execute).
		route.Role = router.RolePrimary
	}
	before := ss.kept[""]
	if err := ss.leaveReplicaBatch(route, true); err != nil {
		return err
	}
	if p := ss.kept[""]; p != nil && p != before && ss.txStatus != pgwire.TxFailed {
		// Leaving the replica batch kept its unnamed portal (drained): this
		// Query replaces it like any other unnamed portal.
		unnamed = p
		delete(ss.kept, "")
	}
	if ss.be == nil {
		if ss.pendingBegin != "" && plan.Tx == router.TxSetReadOnly {
			ss.pendingReadOnly = true // the transaction may run on a replica
		}
		if err := ss.bindFor(route); err != nil {
			return ss.replyError(err, true)
		}
	} else if err := ss.routeInTx(route, plan, true); err != nil {
		return ss.replyError(err, true)
	}
	if route.Role == router.RolePrimary {
		ss.be.wrote = true
	}
	ss.bout = ss.bout[:0]
	ss.appendPreamble(true)
	if text, hide, ok := ss.replayInText(rsql, plan); ok {
		ss.bout = appendQuery(ss.bout, text)
		ss.push(expect{kind: pgwire.Query, plan: plan, hide: hide})
	} else {
		ss.bout = appendFrame(ss.bout, pgwire.Query, body)
		ss.push(expect{kind: pgwire.Query, plan: plan})
	}
	ss.appendResetReplay(plan)
	if err := ss.roundTrip(); err != nil {
		return err
	}
	return ss.keepUnnamedIfNotReplaced(unnamed, ss.be, ss.completed)
}

// appendPreamble queues what must run before the client's first statement on
// a freshly bound backend: GUC sync and, when the batch executes something, a
// deferred BEGIN. (A batch that only parses or describes does not open the
// transaction: its backend goes back to the pool and the transaction starts
// on the shard of its first real statement.)
func (ss *session) appendPreamble(executes bool) {
	ss.appendStateSync()
	if ss.pendingBegin != "" && executes {
		ss.bout = appendQuery(ss.bout, ss.pendingBegin)
		ss.push(expect{kind: pgwire.Query, swallow: true})
		ss.txBegin = ss.pendingBegin // replayed on shards the transaction moves to
		ss.pendingBegin = ""
	}
}

// deferTxControl answers BEGIN (and an immediately following COMMIT or
// ROLLBACK) locally when no backend is bound: the transaction's shard and
// role are only known at its first real statement. exec is non-nil for the
// extended protocol (the batch to answer), nil for a simple query.
func (ss *session) deferTxControl(plan *router.Plan, sql string, ext *batch) (bool, error) {
	var tag string
	var status byte
	switch {
	case (plan.Tx == router.TxBegin || plan.Tx == router.TxBeginReadOnly) && ss.pendingBegin == "" && plan.Stmts == 1:
		ss.pendingBegin = strings.Clone(sql)
		ss.pendingReadOnly = plan.Tx == router.TxBeginReadOnly
		tag, status = beginTag(sql), pgwire.TxActive
	case ss.pendingBegin != "" && plan.Tx == router.TxCommit && singleStatement(sql):
		ss.pendingBegin = ""
		tag, status = "COMMIT", pgwire.TxIdle
	case ss.pendingBegin != "" && plan.Tx == router.TxRollback && singleStatement(sql):
		ss.pendingBegin = ""
		tag, status = "ROLLBACK", pgwire.TxIdle
	default:
		return false, nil
	}
	if ext != nil {
		ss.answerBatchLocally(ext, tag)
		if status == pgwire.TxActive {
			ss.keepLocalPortals(ext)
		}
	} else {
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
	}
	ss.out = pgwire.AppendReady(ss.out, status)
	ss.txStatus = status
	return true, ss.flushClient()
}

// beginTag is the command tag Postgres gives the statement that opened a
// transaction block.
func beginTag(sql string) string {
	if f := strings.Fields(sql); len(f) > 0 && strings.EqualFold(strings.TrimRight(f[0], ";"), "start") {
		return "START TRANSACTION"
	}
	return "BEGIN"
}

// singleStatement reports whether sql holds one statement (a trailing ';' allowed).
func singleStatement(sql string) bool {
	s := strings.TrimRight(strings.TrimSpace(sql), ";")
	return !strings.Contains(s, ";")
}

// bindFor acquires a backend for the first statement of a transaction.
func (ss *session) bindFor(route router.Route) error {
	if route.Multi || route.Split || route.Shards.Len() > 1 && !route.Any {
		return route.MultiShardError()
	}
	primary := route.Role == router.RolePrimary || (ss.pendingBegin != "" && !ss.pendingReadOnly) ||
		ss.st.cfg.Pool.Mode == "session" // a session-long backend must be able to write
	shard := route.Shards.First()
	if route.Any && !primary { // a read any shard can serve: spread over every shard's replicas
		shard = ss.srv.topo.Snapshot().SpreadShard(uint64(route.Shards), ss.floor)
	}
	if shard < 0 {
		shard = 0
	}
	return ss.acquireBackend(shard, primary)
}

// deallocate answers DEALLOCATE of protocol-level statements locally: their
// server-side names are shared and managed by pgrouter, and the backend in
// use next may not be the one that prepared them.
func (ss *session) deallocate(d *router.Deallocate) (bool, error) {
	tag, ok := ss.deallocateLocally(d)
	if !ok {
		return false, nil
	}
	if ss.be != nil {
		// A Query drops the unnamed portal and ends the extended batch it
		// interrupts (its implicit transaction commits); its ReadyForQuery
		// tells where the batch left the transaction (a BEGIN run in it):
		// a Close and a Sync do all that.
		ss.bout = appendFrame(ss.bout[:0], pgwire.Close, []byte{pgwire.ObjectPortal, 0})
		ss.push(expect{kind: pgwire.Close, swallow: true})
		ss.appendOwnSync()
		b := ss.be
		if err := ss.roundTrip(); err != nil {
			return true, err
		}
		ss.readyForQuery(b.txStatus)
	}
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return true, ss.flushClient()
}

// deallocateLocally drops the client's statements a DEALLOCATE names and
// returns its command tag; ok is false when the backend must run it: a
// name the client did not prepare through the protocol (Postgres reports
// it, or it is a pinned session's SQL-level statement), or DEALLOCATE ALL
// in a pinned session (statementDone then forgets the client's statements).
func (ss *session) deallocateLocally(d *router.Deallocate) (tag string, ok bool) {
	switch {
	case ss.txStatus == pgwire.TxFailed:
		return "", false // the backend answers 25P02, as Postgres does
	case d.All && ss.pinned != "":
		return "", false
	case d.All:
		clear(ss.stmts)
		return "DEALLOCATE ALL", true
	}
	if _, ok := ss.stmts[d.Name]; !ok {
		return "", false
	}
	delete(ss.stmts, d.Name)
	return "DEALLOCATE", true
}

// leaveReplicaBatch ends an extended batch the client left open (Flush, no
// Sync) on a replica before a Query, or a batch that Binds, that must run
// on the primary. Postgres runs it in the open batch's implicit transaction
// (a Query commits it at its end, portals dropped): ending that read-only
// transaction first with a Sync of the proxy's own shows the client nothing
// different (unlike the 25006 this avoids), once the open SELECT portals
// the client may still Execute before its Sync were read into the proxy
// (drainReplicaReads).
func (ss *session) leaveReplicaBatch(route router.Route, binds bool) error {
	b := ss.be
	if b == nil || b.primary || !ss.openBatch || !binds || route.Role != router.RolePrimary ||
		ss.txStatus != pgwire.TxIdle || ss.pendingBegin != "" || len(ss.members) > 0 {
		return nil
	}
	if err := ss.drainReplicaReads(); err != nil {
		return err
	}
	ss.bout = ss.bout[:0]
	ss.appendOwnSync()
	return ss.roundTrip() // and gives the replica back (afterRoundTrip)
}

// deallocatesOwn reports whether a multi-statement text DEALLOCATEs one of
// the client's protocol-level statements: the backend knows them under
// other names, so the text runs statement by statement (spanSimple) and the
// proxy answers that DEALLOCATE itself, in its place (runPiece).
func (ss *session) deallocatesOwn(p *router.Plan) bool {
	if p == nil || spanForbids(p) != "" || ss.pinned != "" || ss.st.cfg.Pool.Mode == "session" || ss.db.CrossShard == "deny" {
		return false // a span would refuse the text: the backend says what it can
	}
	for _, name := range p.Deallocates {
		if _, ok := ss.stmts[name]; ok {
			return true
		}
	}
	return false
}
