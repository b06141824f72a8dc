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
	results := make([]splitResult, len(parts))
	var failed *pgconn.PgError
	for i, p := range parts {
		b := ss.member(p.Shard)
		if b == nil {
			b = ss.be // the only backend: no join happened
		}
		b.wrote = true
		if err := writeAll(b.conn.NetConn, appendInsertPart(nil, p, resultFormats)); err != nil {
			b.txStatus = pgwire.TxFailed
			return nil, pgwire.Error(pgwire.ConnectionFailure, "connection to backend "+b.node.Name+" lost", "the transaction is rolled back")
		}
		if lost := readPart(b, &results[i]); lost != nil {
			return nil, pgwire.WithHint(lost, "the transaction is rolled back")
		}
		if results[i].err != nil && failed == nil {
			failed = results[i].err
		}
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
