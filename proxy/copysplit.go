package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// COPY … FROM STDIN into a sharded table (router.Plan.Copy), outside an
// explicit transaction:
//
//	client ──CopyData──▶ copyRows (whole rows, key of each) ──▶ per-shard CopyData
//	          every shard's primary: BEGIN; <the client's COPY>; … CopyDone; COMMIT
//
// Each shard runs the unchanged statement in its own transaction; rows go to
// the shard of their key (every shard for a reference table, the one shard
// of SET pgrouter.shard). The COPY commits only when every shard accepted
// its rows: a bad key, a shard's error, a client CopyFail or a lost
// connection rolls every shard back. Without two-phase commit the final
// COMMITs are not atomic; a failure between them is reported (XX000).
// A watcher goroutine per shard drains the backend's answers while data
// flows, so a shard's error stops the COPY early and a backend never blocks
// on output nobody reads. Memory: one partial row plus a ~64 kB CopyData
// buffer per shard.

// copyFlushAt is the size of the CopyData messages sent to each shard.
const copyFlushAt = 64 << 10

// copyAbortWait bounds how long an aborted COPY waits for a backend.
const copyAbortWait = 10 * time.Second

// copyTarget is one shard's side of a split COPY.
type copyTarget struct {
	b      *binding
	out    []byte   // CopyData message being filled: 5-byte header, then rows
	pre    preamble // what precedes the COPY (readPreamble)
	copyIn []byte   // the shard's CopyInResponse frame
	sent   bool     // BEGIN + COPY were written
	inCopy bool     // the backend entered copy-in mode
	done   chan struct{}
	count  int64           // rows the shard's COPY reported
	err    *pgconn.PgError // the shard's error
	lost   error           // the connection failed
	member bool            // a backend of the client's transaction (copytx.go): not ended or released here
}

// copySplit executes a Plan.Copy statement; sql is the client's text.
func (ss *session) copySplit(sql string, plan *router.Plan) error {
	// (Route refuses Plan.Copy: that is the extended protocol's entry.)
	rsql, perr := ss.routerText(sql)
	if perr != nil {
		return ss.replyError(perr, true)
	}
	_, route, err := ss.router.RouteSimple(rsql, ss.hints, &ss.scratch)
	if err != nil {
		return ss.replyError(err, true)
	}
	var ts []*copyTarget
	if ss.be != nil || ss.pendingBegin != "" {
		ts, perr = ss.copyJoin(route.Shards, plan)
	} else {
		ts, perr = ss.copyAcquire(route.Shards)
	}
	defer ss.copyRelease(ts)
	if perr != nil {
		return ss.replyError(perr, true)
	}
	if perr := ss.copyStart(ts, sql); perr != nil {
		ss.copyAbort(ts, "pgrouter: COPY failed on another shard")
		return ss.replyError(perr, true)
	}
	fail := make(chan int, len(ts))
	for i, t := range ts {
		go t.watch(i, fail)
	}
	ss.out = append(ss.out, ts[0].copyIn...)
	if err := ss.flushClient(); err != nil {
		ss.copyAbort(ts, "pgrouter: client connection lost")
		return err
	}
	// Keys pick the shard unless every row goes everywhere (a reference
	// table); a route narrowed by a hint or SET pgrouter.shard refuses rows
	// of other shards.
	byKey := route.Copy && !plan.Copy.Reference
	return ss.copyStream(ts, newCopyRows(plan.Copy), byKey, fail)
}

// closeOpenBatch ends, with a Sync of the proxy's own, an extended batch
// left open (Flush, no Sync) outside a transaction block before a COPY
// over shards, which runs on backends of its own: asyncpg's
// copy_records_to_table describes its introspection query that way first.
// Postgres runs that COPY in the batch's implicit transaction; the batch
// here commits just before it instead. answered says the backend was lost
// (the client has its error).
func (ss *session) closeOpenBatch() (answered bool, err error) {
	if !ss.openBatch || ss.be == nil || ss.failed || ss.txStatus != pgwire.TxIdle || ss.pendingBegin != "" || len(ss.members) > 0 {
		return false, nil
	}
	if err := ss.endOpenBatch(); err != nil {
		return true, ss.backendLost(err)
	}
	return false, nil
}

// endOpenBatch ends the backend's open extended batch with a Sync of the
// proxy's own and gives the backend back if nothing holds it any more.
func (ss *session) endOpenBatch() error {
	b := ss.be
	if err := writeAll(b.conn.NetConn, []byte{pgwire.Sync, 0, 0, 0, 4}); err != nil {
		return err
	}
	if _, lost := b.readUntilReady(nil); lost != nil {
		return lost
	}
	ss.openBatch = false
	ss.afterRoundTrip()
	return nil
}

// copyAcquire binds the primary of every shard (see bindShards).
func (ss *session) copyAcquire(shards router.ShardSet) ([]*copyTarget, *pgconn.PgError) {
	bs, perr := ss.bindShards(shards, true)
	if perr != nil {
		return nil, perr
	}
	if len(bs) == 0 {
		return nil, pgwire.Error(pgwire.InternalError, "COPY routed to no shard", "")
	}
	ts := make([]*copyTarget, len(bs))
	for i, b := range bs {
		b.wrote = true
		ts[i] = &copyTarget{b: b, done: make(chan struct{})}
	}
	// A client's CancelRequest cancels shard 0's COPY, whose error then
	// aborts every shard.
	ss.cancelMu.Lock()
	ss.running.Store(ts[0].b)
	ss.cancelMu.Unlock()
	return ts, nil
}

// copyRelease gives the backends back (clean ones to their pools).
func (ss *session) copyRelease(ts []*copyTarget) {
	if len(ts) > 0 && ts[0].member {
		ss.copyLeaveTx(ts)
		return
	}
	ss.cancelMu.Lock()
	ss.running.Store(nil)
	ss.cancelMu.Unlock()
	bs := make([]*binding, len(ts))
	for i, t := range ts {
		t.b.conn.NetConn.SetDeadline(time.Time{})
		bs[i] = t.b
	}
	ss.releaseAll(bs)
}

// copyStart sends (GUC sync,) BEGIN and the COPY to every shard and waits
// for each CopyInResponse. On an error the targets that did enter copy-in
// mode have their watchers running, ready for copyAbort.
func (ss *session) copyStart(ts []*copyTarget, sql string) *pgconn.PgError {
	bs := make([]*binding, len(ts))
	for i, t := range ts {
		bs[i] = t.b
	}
	lost := sendEach(bs, func(i int, b *binding, msg []byte) []byte {
		begin := "BEGIN"
		if ts[i].member {
			begin = "" // already inside the client's transaction
		}
		msg, ts[i].pre = ss.appendPreambleFor(msg, b, begin)
		return appendQuery(msg, sql)
	})
	for i, t := range ts {
		if t.sent = lost == nil || lost[i] == nil; !t.sent {
			t.lost = lost[i]
		}
	}
	var first *pgconn.PgError
	for _, t := range ts {
		if t.sent {
			ss.readStart(t)
		}
		if first == nil {
			first = t.failure()
		}
	}
	if first != nil {
		for i, t := range ts {
			if t.inCopy {
				go t.watch(i, nil)
			} else {
				close(t.done)
			}
		}
	}
	return first
}

// readStart reads a shard's answers up to its CopyInResponse, or to the
// ReadyForQuery that ends a COPY that failed to start.
func (ss *session) readStart(t *copyTarget) {
	perr, lost := ss.readPreamble(t.b, t.pre)
	if lost != nil {
		t.lost = lost
		return
	}
	t.err = perr
	for {
		typ, body, err := t.b.next()
		if err != nil {
			t.lost = t.b.lost(err)
			return
		}
		switch typ {
		case pgwire.CopyInResponse:
			t.copyIn = appendFrame(nil, typ, body)
			t.inCopy = true
			return
		case pgwire.ErrorResponse:
			if t.err == nil {
				t.err = pgwire.DecodeError(body)
			}
		case pgwire.ReadyForQuery:
			t.b.txStatus = body[0]
			return
		}
	}
}

// failure is the target's error for the client (nil when none).
func (t *copyTarget) failure() *pgconn.PgError {
	switch {
	case t.err != nil:
		return t.err
	case t.lost != nil && lostError(t.b.node.Name, t.lost, t.b.timeout).Code == pgwire.QueryCanceled:
		return lostError(t.b.node.Name, t.lost, t.b.timeout)
	case t.lost != nil:
		return pgwire.Error(pgwire.ConnectionFailure, fmt.Sprintf("connection to backend %s lost during COPY", t.b.node.Name), "the COPY was rolled back on every shard it reached")
	}
	return nil
}

// watch drains one backend's answers to the COPY until its ReadyForQuery,
// and reports a failure on fail (with its index) as soon as the COPY ends.
func (t *copyTarget) watch(i int, fail chan<- int) {
	defer close(t.done)
	// The backend answers only once the client's data ends: that wait is
	// the client's, not the backend's silence (timeouts.query).
	t.b.disarm() // readStart's deadline
	d := t.b.timeout
	t.b.timeout = 0
	defer func() { t.b.timeout = d }()
	perr, lost := t.b.readUntilReady(func(typ byte, body []byte) {
		if typ == pgwire.CommandComplete {
			_, t.count = splitTag(body)
		}
	})
	if t.err == nil {
		t.err = perr
	}
	if lost != nil {
		t.lost = lost
	}
	if fail != nil && (t.err != nil || t.lost != nil) {
		fail <- i // buffered for every target: never blocks
	}
}

// copyStream relays the client's copy data, row by row, to the shards.
func (ss *session) copyStream(ts []*copyTarget, rows *copyRows, byKey bool, fail <-chan int) error {
	for {
		typ, body, err := ss.rd.next()
		if err != nil {
			ss.copyAbort(ts, "pgrouter: client connection lost")
			return errClientGone
		}
		switch typ {
		case pgwire.CopyData:
			rows.feed(body)
			if perr := ss.copyRoute(ts, rows, byKey, false); perr != nil {
				return ss.copyFail(ts, perr)
			}
		case pgwire.CopyDone:
			if perr := ss.copyRoute(ts, rows, byKey, true); perr != nil {
				return ss.copyFail(ts, perr)
			}
			return ss.copyFinish(ts)
		case pgwire.CopyFail:
			msg, _, _ := cstring(body)
			ss.copyAbort(ts, msg)
			perr := ts[0].failure() // Postgres's own "COPY from stdin failed: …"
			if perr == nil {
				perr = pgwire.Error(pgwire.QueryCanceled, "COPY from stdin failed: "+msg, "")
			}
			return ss.replyError(perr, true)
		case pgwire.Flush, pgwire.Sync: // ignored in copy-in mode, as Postgres does
		default:
			return ss.copyFail(ts, pgwire.Error(pgwire.ProtocolViolation, fmt.Sprintf("unexpected message type 0x%02X during COPY from stdin", typ), ""))
		}
		select {
		case i := <-fail:
			return ss.copyFail(ts, ts[i].failure())
		default:
		}
	}
}

// copyRoute hands every complete buffered row to its shard's buffer and
// sends the buffers that are full.
func (ss *session) copyRoute(ts []*copyTarget, rows *copyRows, byKey bool, final bool) *pgconn.PgError {
	cp := rows.cp
	for {
		row, kind, err := rows.next(final)
		if err != nil {
			return copyLineError(cp, rows.line+1, err)
		}
		if kind == rowMore || kind == rowEnd {
			break
		}
		if kind == rowHeader || !byKey {
			for _, t := range ts {
				t.add(row)
			}
		} else {
			key, err := rows.key(row)
			if err == nil && cp.KeyType == sharding.TypeText && !cp.UTF8Data {
				key, err = ss.keyToUTF8(key) // hashed as the shard hashes it
			}
			if err != nil {
				return copyLineError(cp, rows.line, err)
			}
			shard, err := cp.Shard(key, cp.Format == router.CopyBinary)
			if err != nil {
				return copyLineError(cp, rows.line, err)
			}
			t := copyTargetOf(ts, shard)
			if t == nil { // the COPY was narrowed to other shards by a hint or SET pgrouter.shard
				return copyLineError(cp, rows.line, ss.copyElsewhere(ts, shard))
			}
			t.add(row)
		}
		for _, t := range ts {
			if len(t.out) >= copyFlushAt {
				if err := t.flush(nil); err != nil {
					return t.failure()
				}
			}
		}
	}
	rows.compact()
	return nil
}

// copyLineError words a row's error like Postgres's COPY context, without
// the value (keys may be personal data).
func copyLineError(cp *router.CopyPlan, line int64, err error) *pgconn.PgError {
	pe := toPgError(err)
	return &pgconn.PgError{Severity: "ERROR", Code: pe.Code, Hint: pe.Hint,
		Message: fmt.Sprintf("%s (COPY %s, line %d)", pe.Message, cp.Table, line)}
}

// add appends a row to the CopyData message being filled.
func (t *copyTarget) add(row []byte) {
	if len(t.out) == 0 {
		t.out = append(t.out, pgwire.CopyData, 0, 0, 0, 0)
	}
	t.out = append(t.out, row...)
}

// flush sends the pending CopyData (if any) followed by tail, in one write.
func (t *copyTarget) flush(tail []byte) error {
	if len(t.out) > 0 {
		n := len(t.out) - 1
		t.out[1], t.out[2], t.out[3], t.out[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	}
	t.out = append(t.out, tail...)
	if len(t.out) == 0 || t.lost != nil {
		t.out = t.out[:0]
		return t.lost
	}
	err := writeAll(t.b.conn.NetConn, t.out)
	t.out = t.out[:0]
	if err != nil {
		t.lost = err
	}
	return err
}

// copyFail aborts the COPY on every shard and reports perr (or, when nil,
// the error of the first shard that failed).
func (ss *session) copyFail(ts []*copyTarget, perr *pgconn.PgError) error {
	ss.copyAbort(ts, "pgrouter: COPY aborted")
	if perr == nil {
		perr = pgwire.Error(pgwire.InternalError, "COPY aborted", "")
	}
	return ss.replyError(perr, true)
}

// copyAbort ends copy-in mode with CopyFail where it is still on, waits
// for every shard's answer and rolls every transaction back.
func (ss *session) copyAbort(ts []*copyTarget, reason string) {
	msg := appendMsg(nil, &pgproto3.CopyFail{Message: reason})
	deadline := time.Now().Add(copyAbortWait)
	for _, t := range ts {
		select {
		case <-t.done:
		default:
			t.out = t.out[:0]
			t.flush(msg)
		}
		t.b.conn.NetConn.SetDeadline(deadline)
	}
	for _, t := range ts {
		<-t.done
	}
	ss.copyEnd(ts, "ROLLBACK")
}

// copyEnd sends COMMIT or ROLLBACK to every shard whose transaction is
// open (all writes first, then the answers) and reports the shards where
// the command did not succeed.
func (ss *session) copyEnd(ts []*copyTarget, cmd string) (failed []*copyTarget) {
	q := appendQuery(nil, cmd)
	var sent []*copyTarget
	for _, t := range ts {
		if t.member {
			continue // the client's COMMIT or ROLLBACK ends it
		}
		if t.lost == nil && t.b.txStatus != pgwire.TxIdle {
			if err := writeAll(t.b.conn.NetConn, q); err != nil {
				t.lost = err
			} else {
				sent = append(sent, t)
			}
		}
		if t.lost != nil {
			failed = append(failed, t)
		}
	}
	for _, t := range sent {
		ok, err := finishCopyEnd(t.b, cmd)
		if err != nil {
			t.lost = err
		}
		if !ok {
			failed = append(failed, t)
		}
	}
	return failed
}

// finishCopyEnd reads the answer to COMMIT/ROLLBACK up to ReadyForQuery.
func finishCopyEnd(b *binding, cmd string) (bool, error) {
	r := readResult(b)
	if r.err != nil && b.txStatus == pgwire.TxFailed {
		return false, r.err
	}
	return r.err == nil && r.tag == cmd && b.txStatus == pgwire.TxIdle, nil
}

// copyFinish ends the data on every shard and commits when all succeeded
// (atomically with two_phase_commit).
func (ss *session) copyFinish(ts []*copyTarget) error {
	done := []byte{pgwire.CopyDone, 0, 0, 0, 4}
	for _, t := range ts {
		t.flush(done)
	}
	var cause *pgconn.PgError
	var total int64
	for _, t := range ts {
		<-t.done
		if cause == nil {
			cause = t.failure()
		}
		total += t.count
	}
	if cause != nil {
		ss.copyEnd(ts, "ROLLBACK")
		return ss.replyError(cause, true)
	}
	if ts[0].member { // the rows commit with the client's transaction
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(total, 10))})
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
		return ss.flushClient()
	}
	if len(ts) > 1 && ss.twoPhase() {
		bs := make([]*binding, len(ts))
		for i, t := range ts {
			bs[i] = t.b
		}
		out := ss.srv.coord.commit(ss, bs)
		if out.err != nil {
			return ss.replyError(out.err, true)
		}
		if out.warning != nil {
			ss.out = appendNotice(ss.out, out.warning)
		}
	} else if failed := ss.copyEnd(ts, "COMMIT"); len(failed) > 0 {
		return ss.replyError(ss.commitFailure(ts, failed), true)
	}
	snap := ss.srv.topo.Snapshot()
	for _, t := range ts {
		ss.floor[t.b.shard] = snap.WriteFloor(t.b.shard)
	}
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(total, 10))})
	ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
	ss.txStatus = pgwire.TxIdle
	return ss.flushClient()
}

// commitFailure words a COMMIT that failed on some shards: the others
// have committed their rows, and the client must know.
func (ss *session) commitFailure(ts, failed []*copyTarget) *pgconn.PgError {
	var ok, bad []string
	for _, t := range ts {
		name := ss.st.cfg.Shards[t.b.shard].Name
		if containsTarget(failed, t) {
			bad = append(bad, name)
		} else {
			ok = append(ok, name)
		}
	}
	return pgwire.Error(pgwire.InternalError, fmt.Sprintf("COPY: COMMIT failed on shard(s) [%s] after it succeeded on [%s]",
		strings.Join(bad, ", "), strings.Join(ok, ", ")),
		"enable two_phase_commit for atomic multi-shard writes; check the rows on each shard")
}

func containsTarget(ts []*copyTarget, t *copyTarget) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// copyTargetOf is the target of shard (ts is in shard order), nil if none.
func copyTargetOf(ts []*copyTarget, shard int) *copyTarget {
	if shard >= 0 && shard < len(ts) && ts[shard].b.shard == shard {
		return ts[shard] // every shard: the usual case
	}
	for _, t := range ts {
		if t.b.shard == shard {
			return t
		}
	}
	return nil
}

// copyElsewhere refuses a row whose key belongs to a shard the COPY was not
// sent to: a hint never puts a row on another shard than its key's.
func (ss *session) copyElsewhere(ts []*copyTarget, shard int) *pgconn.PgError {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = ss.st.cfg.Shards[t.b.shard].Name
	}
	return pgwire.Error(pgwire.InvalidParameterValue, fmt.Sprintf("row belongs to shard %s by its shard key, but pgrouter hint or SET pgrouter.shard sent this COPY to shard %s",
		ss.st.cfg.Shards[shard].Name, strings.Join(names, ", ")),
		"copy only the rows of that shard, or remove the hint; the COPY was rolled back on every shard")
}
