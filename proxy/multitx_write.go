package proxy

import (
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router"
)

// execInTx runs the parts of a multi-shard write (split INSERT, keyless
// UPDATE/DELETE, reference-table write) inside the client's open
// transaction: each part on that shard's backend of the transaction,
// joined on demand. Nothing commits here; COMMIT decides for all (with
// two-phase commit, which a write on several shards needs).
func (ss *session) execInTx(parts []router.InsertPart, resultFormats []int16) ([]splitResult, *pgconn.PgError) {
	if len(parts) > 1 && !ss.twoPhase() {
		return nil, pgwire.Error(pgwire.InvalidTransactionState, fmt.Sprintf("statement writes on %d shards inside a transaction", len(parts)),
			"enable two_phase_commit for the database, or run the statement outside the transaction")
	}
	if ss.be == nil { // first statement after a deferred BEGIN
		if err := ss.openTx(parts[0].Shard); err != nil {
			return nil, toPgError(err)
		}
	}
	for _, p := range parts {
		if err := ss.multiTxAllows(nil, true, p.Shard); err != nil {
			return nil, toPgError(err)
		}
		if ss.openBatch {
			return nil, pgwire.Error(pgwire.InvalidTransactionState, "a multi-shard write cannot follow an unfinished pipelined batch", "send Sync first")
		}
		if err := ss.joinShard(p.Shard); err != nil {
			return nil, toPgError(err)
		}
	}
	bs := make([]*binding, len(parts))
	for i, p := range parts {
		if bs[i] = ss.member(p.Shard); bs[i] == nil {
			bs[i] = ss.be // the only backend: no join happened
		}
		bs[i].wrote = true
	}
	// Every part is written before any answer is read (one round trip); a
	// backend written to is read to its ReadyForQuery whatever happened to
	// the others, so none is left with answers pending in the transaction.
	lost := sendEach(bs, func(i int, _ *binding, dst []byte) []byte { return appendInsertPart(dst, parts[i], resultFormats) })
	results := make([]splitResult, len(parts))
	var failed, gone *pgconn.PgError
	for i, b := range bs {
		l := (*pgconn.PgError)(nil)
		if lost != nil {
			l = lost[i]
		}
		if l == nil {
			l = readPart(b, &results[i])
		}
		if l != nil && gone == nil {
			gone = l
		}
		if results[i].err != nil && failed == nil {
			failed = results[i].err
		}
	}
	if gone != nil {
		return nil, pgwire.WithHint(gone, "the transaction is rolled back")
	}
	return results, failed
}

// openTx binds shard's primary for a transaction whose BEGIN was deferred
// and opens it there (one round trip).
func (ss *session) openTx(shard int) error {
	if err := ss.acquireBackend(shard, true); err != nil {
		return err
	}
	if perr := ss.beginOn(ss.be, ss.pendingBegin); perr != nil {
		ss.discard()
		return perr
	}
	ss.txBegin, ss.pendingBegin = ss.pendingBegin, ""
	return nil
}

// beginOn opens the transaction on b (session settings synced first), in
// one round trip; begin may carry the transaction's SETs after BEGIN.
func (ss *session) beginOn(b *binding, begin string) *pgconn.PgError {
	msg, pre := ss.appendPreambleFor(nil, b, begin)
	if err := writeAll(b.conn.NetConn, msg); err != nil {
		b.txStatus = pgwire.TxFailed
		return pgwire.Error(pgwire.ConnectionFailure, "connection to backend "+b.node.Name+" lost", "")
	}
	perr, lost := ss.readPreamble(b, pre)
	if lost != nil {
		return lost
	}
	return perr
}
