package proxy

import (
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/router"
)

// expect is one answer the session is waiting for from its backend, in the
// order the requests were sent. Entries answered by the proxy itself carry
// synth bytes and are emitted when they reach the head of the queue, so the
// client sees answers in exactly the order Postgres would give them.
type expect struct {
	kind    byte         // 'Q','F' end at ReadyForQuery; 'P','B','D','E','C' extended; 'S' Sync
	swallow bool         // answers consumed by the proxy (state sync, re-Parse, deferred BEGIN)
	synth   []byte       // answered locally
	stmt    string       // 'P': server statement to forget if the Parse fails; 'B', 'D': the statement bound or described
	client  string       // 'P' from the client: its statement name, forgotten too
	parsed  *stmt        // 'P' from the client: the statement registered under client; 'D': the statement described
	prev    *stmt        // 'P' from the client, 'C' of a statement: what client meant before (restored if skipped)
	plan    *router.Plan // the statement's plan, for SET/pin bookkeeping
	errOut  []byte       // the proxy's ErrorResponse, sent in place of the backend's (see refuseAt)
	replay  []string     // 'Q': the startup settings it set again after a RESET (reported.go)
	portal  string       // 'B': the portal it binds
	kept    *keptPortal  // 'B': the proxy's portal of that name it replaced (restored if the Bind made none)
	hide    *hiddenStmts // 'Q' of the client's: statements the proxy inserted into its text (reset_intext.go)
}

const clientFlushAt = 64 << 10

// roundTrip sends ss.bout to the backend and relays answers until every
// queued expectation is met.
func (ss *session) roundTrip() error {
	start := time.Now()
	var err error
	if ss.awaitsBackend() {
		err = ss.be.sendAwait(ss.bout)
	} else {
		err = writeAll(ss.be.conn.NetConn, ss.bout)
	}
	if err != nil {
		return ss.backendLost(err)
	}
	ss.failed, ss.copyBroken, ss.completed = false, false, false
	b := ss.be
	if err := ss.relay(); err != nil {
		return err
	}
	b.disarm()
	ss.observe(b, time.Since(start))
	ss.afterRoundTrip()
	return ss.flushClient()
}

// awaitsBackend reports whether the backend will answer something of the
// round trip (an expectation not answered by the proxy itself).
func (ss *session) awaitsBackend() bool {
	for i := range ss.queue {
		if ss.queue[i].synth == nil {
			return true
		}
	}
	return false
}

// observe records a round trip's duration and logs it when slow.
func (ss *session) observe(b *binding, d time.Duration) {
	shard := ss.st.cfg.Shards[b.shard].Name
	ss.srv.Metrics.observeQuery(shard, b.primary, d)
	if slow := ss.st.cfg.Log.SlowQuery.D(); slow > 0 && d >= slow {
		ss.srv.log.Warn("slow query", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName, "shard", shard,
			"node", b.node.Name, "role", roleName(b.primary), "duration_ms", d.Milliseconds(), "statement", ss.statementShape())
	}
}

// statementShape is the current statement without literal values (logs
// never print values): the normalised text, else its first word.
func (ss *session) statementShape() string {
	sql := ss.lastSQL
	if shape := router.Shape(sql); shape != "" {
		return shape
	}
	if f := strings.Fields(sql); len(f) > 0 {
		return f[0] + " …"
	}
	return ""
}

func (ss *session) relay() error {
	b := ss.be
	for {
		for len(ss.queue) > 0 && ss.queue[0].synth != nil {
			ss.out = append(ss.out, ss.queue[0].synth...)
			ss.pop()
		}
		if len(ss.queue) == 0 {
			return nil
		}
		typ, body, err := b.next()
		if err != nil && ss.copyBroken { // it closed after answering the client's broken COPY
			ss.flushClient()
			ss.discard()
			return errClientGone
		}
		if err != nil {
			return ss.backendLost(err)
		}
		if typ == pgwire.ErrorResponse && pgwire.IsFatal(body) && ss.copyBroken {
			// The client broke its COPY with a foreign message: Postgres
			// ends the client's connection, and so do we.
			ss.copyBroken = false
			ss.out = appendFrame(ss.out, typ, body)
			ss.flushClient()
			ss.discard()
			return errClientGone
		}
		if typ == pgwire.ErrorResponse && pgwire.IsFatal(body) {
			// The backend is going away (shutdown, pg_terminate_backend): that
			// ends the backend session, not the client's; backendLost reports
			// it when the socket closes.
			ss.backendFatal = pgwire.DecodeError(body)
			continue
		}
		head := ss.queue[0]
		if head.hide != nil && head.hide.drop(typ) {
			continue
		}
		// The proxy's own requests are answered to it alone, except an error of
		// a re-Parse: the client's Bind fails because of it and must say why.
		switch {
		case typ == pgwire.ErrorResponse && head.errOut != nil:
			ss.out = append(ss.out, head.errOut...) // the proxy's refusal, in the backend's error's place
		case typ == pgwire.ErrorResponse && head.kind == pgwire.Bind && head.stmt != "":
			ss.staleStatement(head.stmt, body)
			ss.out = appendRenamedError(ss.out, body, head.stmt, head.client)
		case typ == pgwire.ErrorResponse && head.kind == pgwire.Describe && head.stmt != "":
			ss.staleStatement(head.stmt, body)
			ss.out = appendFrame(ss.out, typ, body)
		case typ == pgwire.ErrorResponse && !head.swallow && ss.poolingError(body):
			ss.out = appendPoolingHint(ss.out, body)
		case typ == pgwire.ErrorResponse && head.hide != nil:
			ss.out = head.hide.appendError(ss.out, body)
		case typ == pgwire.ParameterStatus && !head.swallow:
			ss.params.backend(body) // sent before the ReadyForQuery (reported.go)
		case !head.swallow || (typ == pgwire.ErrorResponse && head.kind == pgwire.Parse):
			ss.out = appendFrame(ss.out, typ, body)
		}
		switch typ {
		case pgwire.ParseComplete, pgwire.BindComplete, pgwire.CloseComplete:
			ss.pop()
		case pgwire.NoData:
			if head.kind == pgwire.Describe && head.parsed != nil {
				noteDescription(head.parsed, typ, body)
			}
			ss.pop()
		case pgwire.ParameterDescription:
			if head.kind == pgwire.Describe && head.parsed != nil {
				noteDescription(head.parsed, typ, body)
			}
		case pgwire.RowDescription:
			if head.kind == pgwire.Describe {
				if head.parsed != nil {
					noteDescription(head.parsed, typ, body)
				}
				ss.pop()
			}
		case pgwire.CommandComplete:
			ss.lastTag = append(ss.lastTag[:0], body...)
			ss.completed = ss.completed || head.kind == pgwire.Query && !head.swallow
			if tagIs(body, "DEALLOCATE ALL") || tagIs(body, "DISCARD ALL") {
				ss.statementsDropped()
			}
			if head.kind == pgwire.Execute {
				ss.statementDone(head.plan)
				ss.pop()
			}
		case pgwire.EmptyQueryResponse, pgwire.PortalSuspended:
			if head.kind == pgwire.Execute {
				ss.pop()
			}
		case pgwire.ErrorResponse:
			ss.failed = true
			// A replay fails only in an aborted transaction, which its
			// ROLLBACK undoes together with the RESET: Settings stay right.
			if head.swallow && head.kind == pgwire.Query && head.replay == nil {
				ss.srv.log.Warn("session state sync failed", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName, "shard", b.node.Shard, "node", b.node.Name)
				clear(b.conn.Settings) // resync everything next time
			}
			if head.kind != pgwire.Query && head.kind != pgwire.FunctionCall {
				ss.skipToSync(body)
				// No Sync of the client's left: it must skip to its next one too.
				ss.skipping = ss.skipping || len(ss.queue) == 0 || ss.queue[0].swallow
			}
		case pgwire.ReadyForQuery:
			b.txStatus = body[0]
			if head.swallow {
				ss.replayed(head.replay, body[0])
			}
			if head.kind != pgwire.Query || !head.swallow {
				ss.openBatch = false // Sync, Query and FunctionCall end the extended batch
				ss.replicaReads = ss.replicaReads[:0]
			}
			if head.kind == pgwire.Query && !head.swallow && !ss.failed {
				ss.statementDone(head.plan)
			}
			ss.pop()
			if !head.swallow {
				status := body[0]
				if ss.pendingBegin != "" && status == pgwire.TxIdle {
					// The client's transaction is still only deferred (this
					// round trip just described statements): it must keep
					// seeing itself inside it.
					status = pgwire.TxActive
					if ss.failed { // and now it failed, as in Postgres
						ss.abortDeferredTx()
						status = pgwire.TxFailed
					}
					ss.out[len(ss.out)-1] = status
				}
				ss.out = ss.params.appendBefore(ss.out, ss.startup)
				ss.readyForQuery(status)
				if !ss.failed { // (replays inside the client's text: after its RESETs were applied)
					ss.replayed(head.replay, body[0])
				}
			}
		case pgwire.CopyInResponse:
			extended := head.kind == pgwire.Execute
			if extended {
				ss.dropCopySyncs()
			}
			if err := ss.copyIn(extended); err != nil {
				return err
			}
		case pgwire.ParameterStatus:
			ss.noteParameterStatus(body)
		}
		if len(ss.out) >= clientFlushAt {
			if err := ss.flushClient(); err != nil {
				return err
			}
		}
	}
}

// staleStatement retires a server statement the backend reports as
// outdated by a schema change (see stmtRegistry.retire).
func (ss *session) staleStatement(server string, body []byte) {
	if isStaleResultType(body) {
		ss.srv.stmts.retire(server)
	}
}

// skipToSync drops expectations up to the next Sync: after an error Postgres
// ignores everything until Sync, so those requests get no answer. The
// first is the message that failed, with errBody its ErrorResponse.
func (ss *session) skipToSync(errBody []byte) {
	var parses []expect
	for i := 0; len(ss.queue) > 0 && ss.queue[0].kind != pgwire.Sync; i++ {
		e := ss.queue[0]
		if e.kind == pgwire.Bind && e.kept != nil && (i > 0 || bindFailedBeforePortal(errBody)) {
			ss.keep(e.portal, e.kept) // the portal it would have replaced is still there
		}
		if e.kind == pgwire.Parse && e.stmt != "" && ss.be != nil {
			ss.be.conn.Prepared.Remove(e.stmt)
		}
		if e.kind == pgwire.Close && e.prev != nil {
			parses = append(parses, e) // a skipped Close: the name stays
		}
		if e.kind == pgwire.Parse && e.parsed != nil {
			if i == 0 {
				// It failed: its name is free (Postgres dropped an unnamed
				// statement before parsing its replacement; a driver will
				// Parse it again).
				e.prev = nil
			}
			parses = append(parses, e)
		}
		ss.pop()
	}
	// Latest first, so that each name a skipped Parse took means again
	// what it meant before the batch.
	for i := len(parses) - 1; i >= 0; i-- {
		ss.unregisterStmt(parses[i].client, parses[i].parsed, parses[i].prev)
	}
}

// unregisterStmt undoes a client Parse (st) or Close (st nil) of name:
// name means prev again (nothing if nil), provided it still means st.
func (ss *session) unregisterStmt(name string, st, prev *stmt) {
	switch {
	case st == nil && ss.stmts[name] == nil: // a Close undone
		ss.stmts[name] = prev
	case ss.stmts[name] != st:
	case prev != nil:
		ss.stmts[name] = prev
	default:
		delete(ss.stmts, name)
	}
}

// statementDone does the bookkeeping of a statement that succeeded.
func (ss *session) statementDone(p *router.Plan) {
	if p == nil {
		return
	}
	if p.SchemaChange { // statements prepared from now on see the new schema
		ss.srv.stmts.retireAll()
		ss.router.ForgetColumns()
	}
	ss.txSets = append(ss.txSets, p.Sets...)
	ss.params.note(p)
	ss.noteSavepoint(p)
	ss.txSetLocal = ss.txSetLocal || p.SetLocal
	if p.Unpin && ss.pinned != "" {
		ss.srv.log.Info("client unpinned", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName, "reason", ss.pinned)
		ss.pinned = ""
		ss.pinnedReason.Store(nil)
	}
	if p.Pin != "" && ss.pinned == "" {
		ss.pinned = p.Pin
		ss.pinnedReason.Store(&p.Pin)
		ss.srv.Metrics.pinned()
		ss.srv.log.Info("client pinned to its backend", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName, "reason", p.Pin, "shard", ss.be.node.Shard, "node", ss.be.node.Name)
	}
}

// statementsDropped follows a DISCARD ALL or DEALLOCATE ALL the backend
// ran (alone or inside a longer text): every prepared statement of the
// backend is gone, the client's protocol-level ones included. Their names
// are free again, as in Postgres, and the backend's shared server-side
// names must be parsed again before use.
func (ss *session) statementsDropped() {
	clear(ss.stmts)
	ss.be.conn.Prepared.Purge()
}

// readyForQuery settles transaction-scoped bookkeeping at the end of a round trip.
func (ss *session) readyForQuery(status byte) {
	ss.txStatus = status
	if status != pgwire.TxIdle {
		return
	}
	ss.stringsEnded()
	ss.txState.ended()
	if len(ss.txSets) > 0 {
		if !tagIs(ss.lastTag, "ROLLBACK") {
			for _, v := range ss.txSets {
				ss.applySet(v)
			}
		}
		ss.txSets = ss.txSets[:0]
	}
}

func tagIs(tag []byte, word string) bool {
	if len(tag) > 0 && tag[len(tag)-1] == 0 {
		tag = tag[:len(tag)-1]
	}
	return string(tag) == word
}

// afterRoundTrip gives the backend back when the transaction is over.
func (ss *session) afterRoundTrip() {
	b := ss.be
	if b == nil || len(ss.queue) > 0 || b.txStatus != pgwire.TxIdle || len(ss.members) > 0 || ss.openBatch {
		return // a multi-shard transaction ends in multiTxControl; an open batch at its Sync
	}
	if b.wrote {
		ss.floor[b.shard] = ss.srv.topo.Snapshot().WriteFloor(b.shard)
	}
	if ss.pinned != "" || ss.st.cfg.Pool.Mode == "session" {
		return
	}
	ss.release()
}

// noteParameterStatus keeps the backend's reported parameters current.
func (ss *session) noteParameterStatus(body []byte) {
	name, val, ok := paramPair(body)
	if ok && ss.be.conn.ServerParams != nil && ss.be.conn.ServerParams[name] != val {
		ss.be.conn.ServerParams[name] = val
	}
}

// dropCopySyncs forgets the Syncs queued behind an Execute that started
// COPY FROM STDIN: the backend reads them in copy mode, where Postgres
// ignores Sync and Flush, so they get no answer. The client's Sync after
// CopyDone ends the batch instead (it stays open until then).
func (ss *session) dropCopySyncs() {
	for len(ss.queue) > 1 && ss.queue[1].kind == pgwire.Sync && !ss.queue[1].swallow {
		ss.queue = append(ss.queue[:1], ss.queue[2:]...)
		ss.openBatch = true
	}
}

// copyIn streams the client's COPY data to the backend until CopyDone or
// CopyFail. In the extended protocol a Flush follows them: the backend
// would hold its answer until the client's next Sync, which the proxy
// reads only after that answer.
func (ss *session) copyIn(extended bool) error {
	if err := ss.flushClient(); err != nil {
		return err
	}
	buf := append(ss.bout[:0], ss.copyHead...) // copy data that came before the COPY started
	done := len(ss.copyHead) > 0 && (ss.copyHead[0] == pgwire.CopyDone || ss.copyHead[0] == pgwire.CopyFail)
	ss.copyHead = ss.copyHead[:0]
	for !done {
		typ, body, err := ss.rd.next()
		if err != nil {
			return errClientGone
		}
		buf = appendFrame(buf, typ, body)
		switch typ {
		case pgwire.CopyData, pgwire.Flush, pgwire.Sync: // data; Postgres ignores Flush and Sync in COPY
		case pgwire.CopyDone, pgwire.CopyFail:
			done = true
		default:
			// Any other message fails the COPY on the backend (Terminate
			// too, whose error Postgres sends before closing): relay
			// what the backend says, then end the client's connection
			// if the backend ends its own.
			done, ss.copyBroken = true, true
		}
		if !done && len(buf) >= 64<<10 {
			if err := writeAll(ss.be.conn.NetConn, buf); err != nil {
				ss.bout = buf
				return ss.backendLost(err)
			}
			buf = buf[:0]
		}
	}
	if extended {
		buf = append(buf, pgwire.Flush, 0, 0, 0, 4)
	}
	if err := writeAll(ss.be.conn.NetConn, buf); err != nil {
		ss.bout = buf
		return ss.backendLost(err)
	}
	ss.bout = buf[:0]
	return nil
}
