package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// flushBatch routes and sends the buffered batch. sync says it ends in Sync.
func (ss *session) flushBatch(sync bool) error {
	defer ss.endBatch()
	b := &ss.batch
	if done, err := ss.keptBatch(sync); done {
		return err
	}
	route, txStmt, err := ss.routeBatch()
	if ss.txFailed {
		return ss.failedTxBatch(sync)
	}
	if err != nil {
		if route, err = ss.refuseAt(route, err, sync); err != nil {
			return ss.refuseBatch(err, sync)
		}
	}
	if ss.spansShards(route) {
		return ss.spanExtended(sync)
	}
	if txStmt != nil && sync {
		if done, err := ss.multiTxControl(txStmt.plan, txStmt.query, b); done {
			return err
		}
	}
	if sync && ss.lastBound != nil && b.executions() == 1 {
		if done, err := ss.spanSavepoint(ss.lastBound.plan, b); done {
			return err
		}
	}
	// A multi-shard write runs at the client's Sync (its implicit
	// transaction commits there); a read also on Flush (its portal is kept).
	one := ss.lastBound != nil && b.executions() == 1
	write := one && sync && ss.multiWrite(ss.lastBound.plan, route)
	read := one && ss.multiRead(ss.lastBound.plan, route)
	if write || read {
		// The shards answer Describe(statement) alike: one of them does.
		if done, err := ss.describeOnOneShard(route.Shards.First(), sync); done {
			return err
		}
	}
	if write {
		if ok, err := ss.multiBatch(ss.lastBound, route); ok {
			return err
		}
	}
	if read {
		if ok, err := ss.scatterBatch(ss.lastBound, route, sync); ok {
			return err
		}
	}
	if one && !sync && ss.multiWrite(ss.lastBound.plan, route) {
		return ss.refuseBatch(errMultiWriteOnFlush, sync)
	}
	if err := ss.leaveReplicaBatch(route, b.binds()); err != nil {
		return err
	}
	if ss.be == nil {
		if ss.pendingBegin != "" && ss.lastBound != nil && ss.lastBound.plan != nil && ss.lastBound.plan.Tx == router.TxSetReadOnly {
			ss.pendingReadOnly = true
		}
		if ss.prepareOnly() {
			return ss.answerPrepareLocally(sync)
		}
		if txStmt != nil && sync && b.parsesClean() {
			if done, err := ss.deferTxControl(txStmt.plan, txStmt.query, b); done {
				return err
			}
		}
		if err := ss.bindFor(route); err != nil {
			return ss.refuseBatch(err, sync)
		}
	} else if err := ss.routeInTx(route, ss.lastBoundPlan(), b.executes()); err != nil {
		return ss.refuseBatch(err, sync)
	}
	if route, err = ss.checkResultTypes(route, sync); err != nil {
		return ss.refuseBatch(err, sync)
	}
	if route.Role == router.RolePrimary && b.executes() {
		ss.be.wrote = true
	}
	wasOpen := ss.openBatch
	ss.bout = ss.bout[:0]
	// A Bind creates a portal: it belongs to the client's transaction.
	deferred := ss.pendingBegin != ""
	ss.appendPreamble(b.executes() || b.binds())
	began := deferred && ss.pendingBegin == ""
	for i, m := range b.msgs {
		if err := ss.translate(m, b.body(i)); err != nil {
			// Only malformed messages get here: the stream cannot be trusted.
			ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.ProtocolViolation, err.Error())))
			return errClientGone
		}
	}
	ss.openBatch = !sync
	// (A deferred BEGIN sent just now leaves be.txStatus 'I' until answered.)
	if !sync && !wasOpen && ss.be.txStatus == pgwire.TxIdle && !began && !b.binds() {
		ss.appendOwnSync()
	}
	return ss.roundTrip()
}

// errMultiWriteOnFlush refuses a write over several shards executed before
// its batch's Sync: it runs, and commits, at that Sync (multiBatch).
var errMultiWriteOnFlush = pgwire.Error(pgwire.FeatureNotSupported,
	"a write over several shards runs at its batch's Sync: it cannot be executed on Flush",
	"send Sync after its Execute, or restrict it to one shard")

// endBatch forgets the batch once it is handled.
func (bs *batchState) endBatch() {
	bs.batch.reset()
	bs.refusal = bs.refusal[:0]
}

// lastBoundPlan is the plan of the batch's last Bind (nil without one).
func (bs *batchState) lastBoundPlan() *router.Plan {
	if bs.lastBound == nil {
		return nil
	}
	return bs.lastBound.plan
}

// refuseBatch answers a batch the proxy cannot route: one error, then
// ReadyForQuery if the batch ended in Sync (Postgres skips to Sync after an error).
func (ss *session) refuseBatch(err error, sync bool) error {
	return ss.refuseBatchAt(0, err, sync) // nothing of the batch ran: its Parses created no statements
}

// refuseBatchAt refuses a batch at its message i, the messages before it
// answered by the proxy (their Parses stand). A refused Parse of the
// unnamed statement still dropped the one before it, as Postgres drops it
// before parsing the replacement.
func (ss *session) refuseBatchAt(i int, err error, sync bool) error {
	if err == errMalformed {
		ss.writeClient(pgwire.AppendError(nil, errMalformed))
		return errClientGone
	}
	ss.forgetParses(i)
	if i < len(ss.batch.msgs) && ss.batch.msgs[i].typ == pgwire.Parse {
		if name, _, _ := cstring(ss.batch.body(i)); name == "" {
			delete(ss.stmts, "")
		}
	}
	if ss.span != nil { // a batch over shards: it fails here, up to Sync
		return ss.spanRefused(toPgError(err), sync)
	}
	// Without Sync, the client's next messages are skipped until its Sync,
	// as Postgres would (the backend, if mid-batch, gets that Sync).
	ss.skipping = !sync
	return ss.replyError(err, sync)
}

func toPgError(err error) *pgconn.PgError {
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) {
		return pe
	}
	return pgwire.Error(pgwire.InternalError, err.Error(), "")
}

// registerStmt records a client's Parse under its client name.
func (ss *session) registerStmt(pm parseMsg) (*stmt, error) {
	st := &stmt{query: pm.query, oids: pm.oids, parse: append([]byte(nil), pm.rest...), gen: ss.srv.stmts.generation()}
	ss.escapeParse(st)
	st.server = ss.srv.stmts.name(ss.stmtKey(st.parse))
	ss.replan(st)
	if _, exists := ss.stmts[pm.name]; exists && pm.name != "" {
		// st is not stored: refuseAt has Postgres check its text first.
		return st, errDuplicateStatement(pm.name)
	}
	ss.stmts[pm.name] = st
	return st, nil
}

// errDuplicateStatement is Postgres's error for a Parse of a name in use.
func errDuplicateStatement(name string) *pgconn.PgError {
	return pgwire.Error(pgwire.DuplicatePreparedStatement, fmt.Sprintf("prepared statement %q already exists", name), "")
}

// replan plans st's text (again: the router learnt a table's columns).
func (ss *session) replan(st *stmt) {
	if text, perr := ss.routerText(st.query); perr != nil {
		st.planErr = perr
	} else {
		st.plan, st.planErr = ss.router.PrepareFor(text, ss.hints)
	}
}

// translate appends one client message to bout under server-side statement
// names, re-Parsing statements this backend lacks, and queues its answers.
func (ss *session) translate(m batchMsg, body []byte) error {
	typ, st := m.typ, m.st
	if m.local {
		ss.answerDeallocate(m)
		return nil
	}
	if m.check { // (see refuseAt) answered by Postgres only if the text is wrong
		ss.bout = appendParseAs(ss.bout, "", st)
		ss.push(expect{kind: pgwire.Parse, swallow: true})
		return nil
	}
	if len(ss.kept) > 0 && (typ == pgwire.Execute || typ == pgwire.Describe || typ == pgwire.Close) && ss.keptTarget(typ, body) {
		ss.translateKept(typ, body)
		return nil
	}
	if m.raw {
		ss.bout = appendFrame(ss.bout, typ, body)
		ss.push(expect{kind: typ})
		if typ == pgwire.Bind {
			ss.boundPlan = nil
		}
		return nil
	}
	switch typ {
	case pgwire.Parse:
		client, _, _ := cstring(body)
		if ss.be.conn.Prepared.Contains(st.server) && ss.be.txStatus == pgwire.TxFailed {
			// Postgres refuses a Parse in a failed transaction (25P02, but
			// not of ROLLBACK or COMMIT): the backend says so, parsing the
			// text as its unnamed statement, which the proxy does not use.
			ss.bout = appendParseAs(ss.bout, "", st)
			ss.push(expect{kind: pgwire.Parse, client: client, parsed: st, prev: m.prev})
			return nil
		}
		if ss.be.conn.Prepared.Contains(st.server) {
			ss.push(expect{kind: pgwire.Parse, synth: pgwire.MsgParseComplete, client: client, parsed: st, prev: m.prev})
			return nil
		}
		ss.appendEnsureCapacity()
		ss.bout = appendParse(ss.bout, st)
		ss.be.conn.Prepared.Add(st.server, struct{}{})
		ss.push(expect{kind: pgwire.Parse, stmt: st.server, client: client, parsed: st, prev: m.prev})
	case pgwire.Bind:
		portal, rest, err := cstring(body)
		if err != nil {
			return err
		}
		name, rest, err := cstring(rest)
		if err != nil {
			return err
		}
		if ss.be.txStatus == pgwire.TxFailed && !ss.be.conn.Prepared.Contains(st.server) {
			// Its re-Parse would fail with 25P02, where Postgres (which
			// has the statement) reports a wrong parameter count first.
			if perr := bindAbortedError(body, st); perr != errTxAborted {
				ss.refusal = pgwire.AppendError(ss.refusal[:0], perr)
				ss.appendRefusal()
				return nil
			}
		}
		ss.ensurePrepared(st)
		start := len(ss.bout)
		ss.bout = append(ss.bout, pgwire.Bind, 0, 0, 0, 0)
		ss.bout = append(ss.bout, portal...)
		ss.bout = append(ss.bout, 0)
		ss.bout = append(ss.bout, st.server...)
		ss.bout = append(ss.bout, 0)
		ss.bout = append(ss.bout, rest...)
		binary.BigEndian.PutUint32(ss.bout[start+1:], uint32(len(ss.bout)-start-1))
		ss.push(expect{kind: pgwire.Bind, stmt: st.server, client: name, portal: portal, kept: ss.kept[portal]})
		delete(ss.kept, portal) // the backend's portal of that name is the client's now
		ss.boundPlan = st.plan
		ss.noteReplicaRead(portal, st.plan)
	case pgwire.Describe:
		if len(body) > 0 && body[0] == pgwire.ObjectStatement {
			if ss.be.txStatus == pgwire.TxFailed && !ss.be.conn.Prepared.Contains(st.server) && st.noRows() {
				// Its re-Parse would fail with 25P02, where Postgres (which
				// has the statement) describes it without the catalog.
				ss.push(expect{kind: pgwire.Describe, synth: appendNoRowsDescription(nil, st)})
				return nil
			}
			ss.ensurePrepared(st)
			start := len(ss.bout)
			ss.bout = append(ss.bout, pgwire.Describe, 0, 0, 0, 0, pgwire.ObjectStatement)
			ss.bout = append(ss.bout, st.server...)
			ss.bout = append(ss.bout, 0)
			binary.BigEndian.PutUint32(ss.bout[start+1:], uint32(len(ss.bout)-start-1))
			ss.push(expect{kind: pgwire.Describe, stmt: st.server, parsed: st})
			return nil
		}
		ss.bout = appendFrame(ss.bout, typ, body)
		ss.push(expect{kind: pgwire.Describe})
	case pgwire.Execute:
		ss.bout = appendFrame(ss.bout, typ, body)
		ss.push(expect{kind: pgwire.Execute, plan: ss.boundPlan})
	case pgwire.Close:
		if len(body) > 0 && body[0] == pgwire.ObjectStatement {
			name, _, _ := cstring(body[1:])
			ss.push(expect{kind: pgwire.Close, synth: pgwire.MsgCloseComplete, client: name, prev: m.prev})
			return nil
		}
		ss.bout = appendFrame(ss.bout, typ, body)
		ss.push(expect{kind: pgwire.Close})
		if name, _, err := cstring(body[1:]); err == nil {
			ss.forgetReplicaRead(name)
		}
	case pgwire.Sync:
		ss.bout = appendFrame(ss.bout, typ, body)
		ss.push(expect{kind: pgwire.Sync})
	case pgwire.Flush:
		ss.bout = appendFrame(ss.bout, typ, body)
	case msgRefused:
		ss.appendRefusal()
	}
	return nil
}

// ensurePrepared re-Parses st on this backend if it is not there.
func (ss *session) ensurePrepared(st *stmt) {
	if ss.be.conn.Prepared.Contains(st.server) {
		ss.be.conn.Prepared.Get(st.server) // mark recently used
		return
	}
	ss.appendEnsureCapacity()
	ss.bout = appendParse(ss.bout, st)
	ss.be.conn.Prepared.Add(st.server, struct{}{})
	ss.push(expect{kind: pgwire.Parse, swallow: true, stmt: st.server})
}

// appendEnsureCapacity closes the least recently used statement on the
// backend when its cache is full.
func (ss *session) appendEnsureCapacity() {
	p := ss.be.conn.Prepared
	if p.Len() < ss.preparedCap() {
		return
	}
	if name, _, ok := p.RemoveOldest(); ok {
		ss.bout = appendCloseStmt(ss.bout, name)
		ss.push(expect{kind: pgwire.Close, swallow: true})
	}
}

// prepareOnly reports whether the batch only prepares (and closes)
// statements the router could parse. Such a batch is answered without a
// backend; the statement is Parsed on whichever backend first executes it.
// Waiting for a backend here would deadlock clients such as pgbench
// -M prepared, which prepare synchronously while their other connections
// hold backends in open transactions.
func (bs *batchState) prepareOnly() bool {
	b := &bs.batch
	for _, m := range b.msgs {
		switch m.typ {
		case pgwire.Parse:
			if m.st == nil || m.st.plan == nil || m.st.plan.Unparsed || m.check {
				return false
			}
		case pgwire.Close, pgwire.Sync, pgwire.Flush, msgRefused:
		default:
			return false
		}
	}
	return true
}

func (ss *session) answerPrepareLocally(sync bool) error {
	for i, m := range ss.batch.msgs {
		switch m.typ {
		case pgwire.Parse:
			ss.out = append(ss.out, pgwire.MsgParseComplete...)
		case pgwire.Close:
			if body := ss.batch.body(i); len(body) > 0 && body[0] == pgwire.ObjectPortal {
				name, _, _ := cstring(body[1:])
				delete(ss.kept, name) // a portal the proxy kept is closed here; the backend has none
			}
			ss.out = append(ss.out, pgwire.MsgCloseComplete...)
		case msgRefused:
			ss.out = append(ss.out, ss.refusal...)
			ss.skipping = !sync
			if ss.txStatus == pgwire.TxActive {
				ss.abortDeferredTx()
			}
		case pgwire.Sync:
			ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
		}
	}
	return ss.flushClient()
}

// answerBatchLocally answers a batch that only runs BEGIN/COMMIT/ROLLBACK
// while no backend is bound (see deferTxControl). ReadyForQuery is added by the caller.
func (ss *session) answerBatchLocally(b *batch, tag string) {
	ss.answerLocally(b, 0, len(b.msgs), tag)
}

// answerLocally answers b.msgs[from:to] for a statement answered without
// a backend (tag: its CommandComplete); Sync and Flush are the caller's.
func (ss *session) answerLocally(b *batch, from, to int, tag string) {
	for i := from; i < to; i++ {
		switch m := b.msgs[i]; m.typ {
		case pgwire.Parse:
			ss.out = append(ss.out, pgwire.MsgParseComplete...)
		case pgwire.Bind:
			ss.out = append(ss.out, pgwire.MsgBindComplete...)
		case pgwire.Describe:
			if body := b.body(i); len(body) > 0 && body[0] == pgwire.ObjectStatement {
				ss.out = appendMsg(ss.out, &pgproto3.ParameterDescription{})
			}
			ss.out = append(ss.out, pgwire.MsgNoData...)
		case pgwire.Execute:
			ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
		case pgwire.Close:
			ss.out = append(ss.out, pgwire.MsgCloseComplete...)
		}
	}
}

// bindMsg is the part of a Bind the router needs.
type bindMsg struct {
	portal, stmt string
}

// decodeBind reads statement name, parameters (into args) and result
// formats, reusing the slices.
func decodeBind(body []byte, args *router.Args, resultFormats *[]int16) (bindMsg, error) {
	var m bindMsg
	portal, rest, err := cstring(body)
	if err != nil {
		return m, err
	}
	name, rest, err := cstring(rest)
	if err != nil {
		return m, err
	}
	m.portal, m.stmt = portal, name
	if len(rest) < 2 {
		return m, errMalformed
	}
	nf := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*nf+2 {
		return m, errMalformed
	}
	args.Formats = args.Formats[:0]
	for i := 0; i < nf; i++ {
		args.Formats = append(args.Formats, int16(binary.BigEndian.Uint16(rest[2*i:])))
	}
	rest = rest[2*nf:]
	np := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	args.Params = args.Params[:0]
	for i := 0; i < np; i++ {
		if len(rest) < 4 {
			return m, errMalformed
		}
		n := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if n < 0 {
			args.Params = append(args.Params, nil)
			continue
		}
		if len(rest) < int(n) {
			return m, errMalformed
		}
		args.Params = append(args.Params, rest[:n])
		rest = rest[n:]
	}
	*resultFormats = (*resultFormats)[:0]
	if len(rest) >= 2 {
		nr := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		for i := 0; i < nr && len(rest) >= 2*(i+1); i++ {
			*resultFormats = append(*resultFormats, int16(binary.BigEndian.Uint16(rest[2*i:])))
		}
	}
	return m, nil
}
