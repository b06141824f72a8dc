package proxy

import (
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
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
func (ss *session) failedTxQuery(plan *router.Plan, sql string) error {
	if !ss.endFailedTx(plan) {
		return ss.replyError(ss.abortedError(plan, sql), true)
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
		return ss.refuseBatch(ss.batchAbortedError(), sync)
	}
	ss.answerBatchLocally(&ss.batch, "ROLLBACK")
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}

// Postgres parses a statement before it checks for an aborted transaction,
// so a syntax error wins over 25P02. Text the router could not parse is
// therefore shown to a backend first (outside any transaction: a Parse
// of it as the unnamed statement, then Sync), and its syntax error is the
// client's answer.

// batchAbortedError is the error of a batch in the failed transaction:
// its first Parse's syntax error, else 25P02.
func (ss *session) batchAbortedError() *pgconn.PgError {
	for _, m := range ss.batch.msgs {
		if m.typ == pgwire.Parse && m.st != nil {
			return ss.abortedError(m.st.plan, m.st.query)
		}
		if m.typ != pgwire.Sync && m.typ != pgwire.Flush {
			break // 25P02 stands at an earlier message
		}
	}
	return errTxAborted
}

// abortedError is what Postgres answers sql (planned as plan) with in an
// aborted transaction: its syntax error, if it has one, else 25P02.
func (ss *session) abortedError(plan *router.Plan, sql string) *pgconn.PgError {
	if plan == nil || !plan.Unparsed || ss.be != nil {
		return errTxAborted
	}
	if perr := ss.syntaxError(sql); perr != nil {
		return perr
	}
	return errTxAborted
}

// syntaxError asks a backend (taken for this alone) whether sql parses; it
// returns the syntax error, or nil (it parses, or no backend answered).
func (ss *session) syntaxError(sql string) *pgconn.PgError {
	if err := ss.bindFor(router.Route{Any: true}); err != nil {
		return nil
	}
	b := ss.be
	out, pre := ss.appendPreambleFor(ss.bout[:0], b, "")
	out = appendParseAs(out, "", &stmt{parse: append(append([]byte(sql), 0), 0, 0)})
	out = append(out, pgwire.Sync, 0, 0, 0, 4)
	ss.bout = out[:0]
	if err := writeAll(b.conn.NetConn, out); err != nil {
		ss.discard()
		return nil
	}
	if _, lost := ss.readPreamble(b, pre); lost != nil {
		ss.discard()
		return nil
	}
	perr, lost := b.readUntilReady(nil)
	if lost != nil || b.txStatus != pgwire.TxIdle {
		ss.discard()
		return nil
	}
	ss.release()
	// (Postgres 15 parsed it: a text of several statements then fails
	// as a Parse only, with the same code.)
	if perr == nil || perr.Code != pgwire.SyntaxError || strings.HasPrefix(perr.Message, "cannot insert multiple commands") {
		return nil
	}
	return perr
}
