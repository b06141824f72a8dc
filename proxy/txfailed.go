package proxy

import (
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/router"
)

// A transaction whose BEGIN is still deferred (pendingBegin) can fail
// before any backend saw it: an error in a batch that only parsed or
// described, or a statement the proxy refused. The client then sees what
// Postgres shows for an aborted transaction block until it ends it.

var errTxAborted = pgwire.Error(pgwire.InFailedSQLTransaction, "current transaction is aborted, commands ignored until end of transaction block", "")

// abortDeferredTx turns the deferred transaction into a failed one.
func (t *txState) abortDeferredTx() {
	t.pendingBegin, t.pendingReadOnly = "", false
	t.txFailed = true
	t.txStatus = pgwire.TxFailed
}

// endFailedTx answers COMMIT or ROLLBACK of a failed deferred transaction:
// both end it as ROLLBACK. ok is false for any other statement.
func (t *txState) endFailedTx(plan *router.Plan) bool {
	if plan == nil || plan.Tx != router.TxCommit && plan.Tx != router.TxRollback {
		return false
	}
	t.txFailed = false
	t.txStatus = pgwire.TxIdle
	return true
}

// failedTxQuery answers a simple Query inside the failed transaction.
func (ss *session) failedTxQuery(plan *router.Plan) error {
	if !ss.endFailedTx(plan) {
		return ss.replyError(errTxAborted, true)
	}
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("ROLLBACK")})
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}

// onlySyncs reports whether the batch holds only Sync and Flush.
func (b *batch) onlySyncs() bool {
	for _, m := range b.msgs {
		if m.typ != pgwire.Sync && m.typ != pgwire.Flush {
			return false
		}
	}
	return true
}

// failedTxBatch answers an extended batch inside the failed transaction:
// the batch that runs COMMIT or ROLLBACK ends it, any other fails.
func (ss *session) failedTxBatch(txStmt *stmt, sync bool) error {
	if ss.batch.onlySyncs() {
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
		return ss.flushClient()
	}
	if txStmt == nil || !sync || !ss.endFailedTx(txStmt.plan) {
		return ss.refuseBatch(errTxAborted, sync)
	}
	ss.answerBatchLocally(&ss.batch, "ROLLBACK")
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}
