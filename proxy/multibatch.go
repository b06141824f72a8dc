package proxy

import (
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router"
)

// A batch whose statements need different shards — pgx.Batch, psycopg 3
// executemany and pipelines, asyncpg executemany (many Bind/Execute before
// one Sync), psycopg2 execute_batch ("a; b; c" in one Query) — runs as one
// transaction over those shards, as one Postgres runs it:
//
//   - outside a transaction it is an implicit transaction: it commits at
//     the client's Sync (two-phase commit when several shards wrote) and an
//     error rolls the whole batch back on every shard;
//   - inside the client's transaction its statements join the shards they
//     need (multitx.go) and an error fails the transaction.
//
// Each statement runs on its shard's backend of the transaction followed
// by a Sync of the proxy's own: inside a transaction block a Sync commits
// nothing, and its ReadyForQuery only the proxy sees. After an error the
// rest of the batch up to the client's Sync gets no answer, as in Postgres.

// spanBatch is a batch over shards in progress (until the client's Sync).
type spanBatch struct {
	implicit bool // the batch opened the transaction; it ends at the client's Sync
	failed   bool // a statement failed: skip to Sync
}

// segment is one execution of an extended batch: the messages up to and
// including an Execute (Parse, Bind, Describe, Close before it), and the
// route of its Bind.
type segment struct {
	from, to int // b.msgs[from:to]
	route    router.Route
	plan     *router.Plan
	bind     int // index of the Bind in b.msgs, -1 without one
	executes bool
	sends    bool // holds a message for the backend (not only Sync/Flush)
}

// spansShards reports whether the buffered extended batch must run as a
// transaction over several shards (or continues one).
func (ss *session) spansShards(route router.Route) bool {
	switch {
	case ss.span != nil:
		return true
	case ss.openBatch && ss.be != nil && !ss.failed:
		// Statements already sent to one shard without Sync: a batch for
		// another shard makes the whole pipeline span (adoptOpenBatch).
		return multiShardRoute(route) || (!route.Any && route.Shards.First() != ss.be.shard) ||
			(route.Any && route.Shards != 0 && !route.Shards.Has(ss.be.shard))
	}
	return ss.batch.executions() > 1 && multiShardRoute(route)
}

func multiShardRoute(r router.Route) bool {
	return r.Multi || r.Split || (!r.Any && r.Shards.Len() > 1)
}

// spanExtended runs an extended batch over shards; sync says the client's
// batch ends in Sync (else in Flush: the batch goes on).
func (ss *session) spanExtended(sync bool) error {
	segs, err := ss.segments()
	if err != nil {
		return ss.refuseBatch(err, sync)
	}
	if ss.span == nil && ss.openBatch {
		if err := ss.adoptOpenBatch(); err != nil {
			return err
		}
	}
	ss.beginSpan()
	segs = ss.beginInSpan(segs)
	if ss.span.failed { // skipping to Sync, as Postgres after an error
		ss.forgetParses(0)
	} else if perr := ss.spanAllowed(spanSteps(segs)); perr != nil {
		// Checked for each batch of the span, against what the
		// transaction has done so far: before anything of it runs.
		ss.forgetParses(0)
		return ss.spanRefused(perr, sync)
	}
	if err := ss.runSegments(segs); err != nil {
		return err
	}
	if !sync {
		return ss.flushClient()
	}
	return ss.endSpan()
}

func spanSteps(segs []segment) []spanStep {
	steps := make([]spanStep, len(segs))
	for i, s := range segs {
		steps[i] = spanStep{plan: s.plan, route: s.route, executes: s.executes}
	}
	return steps
}

// beginInSpan answers a BEGIN that opens the batch (JDBC sends it so with
// autocommit off) as deferTxControl does: the batch then runs inside the
// client's transaction, opened on each shard it reaches, and outlives the
// Sync. It returns the segments left to run.
func (ss *session) beginInSpan(segs []segment) []segment {
	sp := ss.span
	if len(segs) == 0 || !sp.implicit || sp.failed || len(ss.members) > 0 || segs[0].bind < 0 {
		return segs
	}
	p := segs[0].plan
	if p == nil || (p.Tx != router.TxBegin && p.Tx != router.TxBeginReadOnly) || !singleStatement(ss.batch.msgs[segs[0].bind].st.query) {
		return segs
	}
	sp.implicit = false
	ss.pendingBegin = strings.Clone(ss.batch.msgs[segs[0].bind].st.query)
	ss.pendingReadOnly = p.Tx == router.TxBeginReadOnly
	ss.answerLocally(&ss.batch, segs[0].from, segs[0].to, "BEGIN")
	return segs[1:]
}

// adoptOpenBatch turns a pipeline that has run statements on one shard
// (Flush, no Sync yet) into a batch over shards before it moves on. Outside
// a transaction a BEGIN sent mid-pipeline makes the open implicit
// transaction an explicit one (Postgres converts it, the statements already
// run included), so the client's Sync can still commit or roll back every
// shard together; a Sync of the proxy's own then ends the backend's batch
// without ending its transaction.
func (ss *session) adoptOpenBatch() error {
	b := ss.be
	if ss.pendingBegin != "" {
		// The open batch only parsed and described (postgres.js before
		// its first Bind in sql.begin): the client's deferred BEGIN is not
		// on b, which leaves; the span opens the transaction where its
		// statements run.
		if err := ss.endOpenBatch(); err != nil {
			return ss.backendLost(err)
		}
		return nil
	}
	implicit := ss.txBegin == "" && ss.txStatus == pgwire.TxIdle
	var msg []byte
	answers := 1 // the Sync's
	if implicit {
		msg, answers = appendQuery(msg, "BEGIN"), 2
	}
	msg = append(msg, pgwire.Sync, 0, 0, 0, 4)
	if err := writeAll(b.conn.NetConn, msg); err != nil {
		return ss.backendLost(err)
	}
	for range answers {
		if _, lost := b.readUntilReady(nil); lost != nil {
			return ss.backendLost(lost)
		}
	}
	ss.openBatch = false
	ss.span = &spanBatch{implicit: implicit}
	if implicit {
		ss.txBegin, ss.txStatus = "BEGIN", pgwire.TxActive
	}
	if len(ss.members) == 0 {
		ss.members = []*binding{b}
	}
	return nil
}

// forgetParses drops the client statements the buffered batch Parsed from
// its message from on: none of them ran (Postgres skips them after an
// error, up to Sync).
func (ss *session) forgetParses(from int) {
	for i := len(ss.batch.msgs) - 1; i >= max(from, 0); i-- { // latest first: see skipToSync
		m := ss.batch.msgs[i]
		switch body := ss.batch.body(i); {
		case m.typ == pgwire.Parse && m.st != nil:
			name, _, _ := cstring(body)
			ss.unregisterStmt(name, m.st, m.prev)
		case m.typ == pgwire.Close && m.prev != nil: // a Close of a statement
			name, _, _ := cstring(body[1:])
			ss.unregisterStmt(name, nil, m.prev)
		}
	}
}

// beginSpan starts a batch over shards: outside a transaction its own
// implicit one, opened (BEGIN) on each shard as the batch reaches it.
func (ss *session) beginSpan() {
	if ss.span != nil { // adopted from an open pipeline
		return
	}
	ss.span = &spanBatch{implicit: ss.be == nil && ss.pendingBegin == ""}
	if ss.span.implicit {
		ss.pendingBegin = "BEGIN"
		ss.txStatus = pgwire.TxActive // the batch's statements may move between shards
	}
}

// segments cuts the batch into executions, each routed by its own Bind.
// Messages after the last Execute (a Parse, a Describe of a statement)
// form a last segment that stays on the current shard.
func (ss *session) segments() ([]segment, error) {
	b := &ss.batch
	var segs []segment
	cur := segment{route: router.Route{Any: true}, bind: -1}
	for i, m := range b.msgs {
		switch m.typ {
		case pgwire.Bind:
			var args router.Args
			var formats []int16
			if _, err := decodeBind(b.body(i), &args, &formats); err != nil {
				return nil, err
			}
			args.ParamOIDs = m.st.oids
			rargs, perr := ss.routerArgs(args)
			if perr != nil {
				return nil, perr
			}
			r, err := ss.router.Route(m.st.plan, rargs, ss.hints)
			if err != nil {
				return nil, err
			}
			cur.route, cur.plan, cur.bind = r, m.st.plan, i
		case pgwire.Execute:
			cur.executes = true
		}
		if m.typ != pgwire.Sync && m.typ != pgwire.Flush {
			cur.sends = true
		}
		if (m.typ == pgwire.Execute || i == len(b.msgs)-1) && cur.sends {
			cur.to = i + 1
			segs = append(segs, cur)
			cur = segment{from: i + 1, route: router.Route{Any: true}, bind: -1}
		}
	}
	return segs, nil
}

// spanStep is what spanAllowed checks of one statement of the batch.
type spanStep struct {
	plan     *router.Plan
	route    router.Route
	executes bool
	local    bool // a DEALLOCATE of a simple Query's span, answered by the proxy (runPiece)
}

// spanAllowed refuses, before anything runs, a batch over shards that
// pgrouter cannot run exactly as one Postgres would.
func (ss *session) spanAllowed(steps []spanStep) *pgconn.PgError {
	var all, writers router.ShardSet
	for _, m := range ss.txBackends() {
		if m != nil && m.wrote {
			writers = writers.Add(m.shard)
		}
	}
	for _, s := range steps {
		if s.route.Any {
			continue // runs where the batch already is (routeInTx checks it there)
		}
		all |= s.route.Shards
		if s.executes && s.plan != nil && s.plan.Role == router.RolePrimary {
			writers |= s.route.Shards
		}
	}
	for _, s := range steps {
		if what := spanForbids(s.plan); what != "" && !s.local {
			return pgwire.Error(pgwire.FeatureNotSupported, what+" is not supported in a batch whose statements run on different shards",
				"send it as a statement of its own")
		}
	}
	names := ss.shardList(all)
	switch {
	case ss.db.CrossShard == "deny":
		return pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("batch runs on shards %s; cross_shard is deny for database %s", names, ss.dbName),
			"keep each batch on one shard, or set cross_shard: allow")
	case ss.pinned != "" || ss.st.cfg.Pool.Mode == "session":
		return pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("batch runs on shards %s, but this session is tied to one backend", names),
			"only sessions that are not pinned (pool mode transaction) may run batches over shards")
	case writers.Len() > 1 && !ss.twoPhase():
		return pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("batch writes on shards %s; without two-phase commit pgrouter cannot make it atomic", ss.shardList(writers)),
			fmt.Sprintf("enable two_phase_commit for database %s, or send the writes of each shard in a transaction of their own", ss.dbName))
	}
	return nil
}

// spanForbids names what a statement of a batch over shards may not be.
func spanForbids(p *router.Plan) string {
	switch {
	case p == nil:
	case p.Tx != router.TxNone:
		return "transaction control (BEGIN, COMMIT, ROLLBACK, PREPARE TRANSACTION)"
	case p.Savepoint:
		return "SAVEPOINT / RELEASE / ROLLBACK TO"
	case p.SetLocal || len(p.Sets) > 0:
		return "SET"
	case p.Pin != "":
		return p.Pin
	case p.Copy != nil || p.Local || p.Deallocate != nil:
		return "COPY, DEALLOCATE or SET/SHOW pgrouter.*"
	}
	return ""
}

// shardList names the shards of set: "[shard0, shard1]".
func (ss *session) shardList(set router.ShardSet) string {
	var names []string
	set.Each(func(i int) { names = append(names, ss.st.cfg.Shards[i].Name) })
	return "[" + strings.Join(names, ", ") + "]"
}

// spanBackend makes the backend of route's shard in the batch's
// transaction the current one (opening the transaction there first).
func (ss *session) spanBackend(route router.Route, plan *router.Plan, executes bool) error {
	if ss.be == nil {
		shard := route.Shards.First()
		if shard < 0 {
			shard = 0
		}
		if err := ss.openTx(shard); err != nil {
			return err
		}
		ss.members = []*binding{ss.be} // ended together by endSpan / COMMIT
		return nil
	}
	return ss.routeInTx(route, plan, executes)
}

// runSegment sends one execution to its shard with a Sync of the proxy's
// own, relaying every answer but that Sync's ReadyForQuery.
func (ss *session) runSegment(s segment) error {
	if multiShardRoute(s.route) {
		if perr := ss.multiSegment(s); perr != nil {
			ss.spanFailed(perr)
		}
		return nil
	}
	ss.bout = ss.bout[:0]
	if ok, err := ss.encodeSegment(s); !ok || err != nil {
		return err
	}
	return ss.spanRoundTrip()
}

// encodeSegment makes the backend of s's shard the current one and
// appends s to ss.bout (statements renamed, expectations queued), with a
// Sync of the proxy's own; ok is false when the batch failed instead.
func (ss *session) encodeSegment(s segment) (ok bool, err error) {
	if err := ss.spanBackend(s.route, s.plan, s.executes); err != nil {
		ss.spanFailed(toPgError(err))
		return false, nil
	}
	return true, ss.appendSegment(s)
}

// appendSegment appends s to ss.bout for the current backend, followed by
// a Sync of the proxy's own.
func (ss *session) appendSegment(s segment) error {
	if s.executes && s.route.Role == router.RolePrimary {
		ss.be.wrote = true
	}
	b := &ss.batch
	for i := s.from; i < s.to; i++ {
		if m := b.msgs[i]; m.typ != pgwire.Sync && m.typ != pgwire.Flush {
			if err := ss.translate(m, b.body(i)); err != nil {
				ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.ProtocolViolation, err.Error())))
				return errClientGone
			}
		}
	}
	ss.bout = append(ss.bout, pgwire.Sync, 0, 0, 0, 4)
	ss.push(expect{kind: pgwire.Sync, swallow: true})
	return nil
}

// multiSegment runs an execution that itself needs several shards (a
// split INSERT, a keyless write, a cross-shard SELECT) with the proxy's
// multi-shard executors, inside the batch's transaction.
func (ss *session) multiSegment(s segment) *pgconn.PgError {
	b := &ss.batch
	if s.bind < 0 || !s.executes || b.describesStatement(s.from, s.to) {
		return s.route.MultiShardError()
	}
	st := b.msgs[s.bind].st
	var args router.Args
	var formats []int16
	if _, err := decodeBind(b.body(s.bind), &args, &formats); err != nil {
		return toPgError(err)
	}
	args.ParamOIDs = st.oids
	switch {
	case ss.multiWrite(st.plan, s.route):
		return ss.multiExec(s.from, s.to, st, args, formats, s.route)
	case ss.multiRead(st.plan, s.route):
		if ok, perr := ss.scatterExec(s.from, s.to, st, args, formats, s.route); ok {
			return perr
		}
	}
	return s.route.MultiShardError()
}

// spanRoundTrip sends ss.bout and relays the answers (the proxy's Sync
// swallowed); a failure ends the batch's run.
func (ss *session) spanRoundTrip() error {
	if err := writeAll(ss.be.conn.NetConn, ss.bout); err != nil {
		return ss.backendLost(err)
	}
	return ss.spanRelay()
}

// spanRelay relays the answers to what ss.queue expects from ss.be; a
// failure ends the batch's run.
func (ss *session) spanRelay() error {
	ss.failed = false
	if err := ss.relay(); err != nil {
		return err
	}
	if ss.failed {
		ss.span.failed = true
	}
	if len(ss.out) >= clientFlushAt {
		return ss.flushClient()
	}
	return nil
}

// spanFailed reports a statement pgrouter could not run in the batch: the
// batch fails there, as if the statement had.
func (ss *session) spanFailed(perr *pgconn.PgError) {
	ss.srv.Metrics.errors(perr.Code)
	ss.out = pgwire.AppendError(ss.out, perr)
	ss.span.failed = true
	if ss.span.implicit {
		return // rolled back at Sync
	}
	if ss.be == nil && ss.pendingBegin != "" && ss.openTx(0) == nil {
		// The client's transaction was still deferred: open it, so that
		// it fails like any other (25P02 until ROLLBACK).
		ss.members = []*binding{ss.be}
	}
	ss.failTx()
}

// spanRefused fails the batch over shards at a message pgrouter refused
// (its Bind names an unknown statement, say).
func (ss *session) spanRefused(perr *pgconn.PgError, sync bool) error {
	if !ss.span.failed {
		ss.spanFailed(perr)
	}
	if sync {
		return ss.endSpan()
	}
	return ss.flushClient()
}

// queryInSpan handles a simple Query sent in the middle of a batch over
// shards (before its Sync) as Postgres does: after an error it is
// skipped like every message up to Sync (skip is true: no answer at all);
// otherwise it ends the batch's implicit transaction, which commits, and
// then runs on its own (inside the client's transaction the batch just ends).
func (ss *session) queryInSpan() (skip bool) {
	sp := ss.span
	if sp == nil || sp.failed {
		return sp != nil
	}
	ss.span = nil
	if !sp.implicit {
		return false
	}
	ss.pendingBegin = ""
	if len(ss.members) == 0 {
		ss.readyForQuery(pgwire.TxIdle)
		return false
	}
	out := ss.commitMembers()
	ss.endMulti(out.tag)
	if out.err != nil { // the commit failed: say so before the Query's answers
		ss.out = pgwire.AppendError(ss.out, out.err)
	}
	return false
}

// endSpan answers the client's Sync: an implicit transaction commits (or,
// after an error, rolls back) on every shard it reached; inside the
// client's transaction the status says whether it failed.
func (ss *session) endSpan() error {
	sp := ss.span
	ss.span = nil
	if !sp.implicit {
		st := byte(pgwire.TxActive)
		if sp.failed {
			st = pgwire.TxFailed
		}
		ss.txStatus = st
		ss.out = pgwire.AppendReady(ss.out, st)
		return ss.flushClient()
	}
	ss.pendingBegin = ""
	if len(ss.members) == 0 && ss.be != nil {
		ss.members = []*binding{ss.be}
	}
	if len(ss.members) == 0 { // failed before any shard was reached
		ss.readyForQuery(pgwire.TxIdle)
		ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
		return ss.flushClient()
	}
	var out commitOutcome
	if sp.failed {
		out = ss.rollbackMembers()
	} else {
		out = ss.commitMembers()
	}
	ss.endMulti(out.tag)
	if out.err != nil {
		ss.srv.Metrics.errors(out.err.Code)
		ss.out = pgwire.AppendError(ss.out, out.err)
	}
	if out.warning != nil {
		ss.out = appendNotice(ss.out, out.warning)
	}
	ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
	return ss.flushClient()
}
