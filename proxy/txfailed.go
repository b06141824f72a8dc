package proxy

import (
	"fmt"
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
	if noStatement(plan) { // nothing is checked
		ss.out = append(ss.out, pgwire.EmptyQueryResponse, 0, 0, 0, 4)
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
		return ss.flushClient()
	}
	if !ss.endFailedTx(plan) {
		return ss.replyError(ss.abortedError(plan, sql), true)
	}
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("ROLLBACK")})
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}

// failedTxBatch answers an extended batch inside the failed transaction,
// message by message as Postgres checks them: the statement or portal
// named is looked up first (26000, 34000; without a backend only portals
// kept by the proxy exist), a Bind's parameter count checked (08P01), a
// text parsed first (its syntax error), then 25P02 — except for COMMIT
// and ROLLBACK, which may be parsed, bound and run: their Execute ends the
// transaction (as ROLLBACK) and the rest of the batch runs as usual. Close
// is answered, and so is a Describe that needs no catalog.
func (ss *session) failedTxBatch(sync bool) error {
	b := &ss.batch
	var exits map[string]*router.Plan // portals of this batch bound to COMMIT, ROLLBACK or ROLLBACK TO
	for i, m := range b.msgs {
		body := b.body(i)
		var object byte
		if (m.typ == pgwire.Describe || m.typ == pgwire.Close) && len(body) > 0 {
			object, body = body[0], body[1:]
		}
		name, _, _ := cstring(body)
		kept := ss.kept[name]
		exit := m.st != nil && m.st.plan != nil && (m.st.plan.Tx == router.TxCommit || m.st.plan.Tx == router.TxRollback || savepointMissing(m.st.plan) != nil)
		switch {
		case m.typ == pgwire.Sync || m.typ == pgwire.Flush:
		case m.typ == pgwire.Close:
			if object == pgwire.ObjectPortal {
				delete(ss.kept, name)
				delete(exits, name)
			}
			ss.out = append(ss.out, pgwire.MsgCloseComplete...)
		case m.typ == pgwire.Parse && (exit || m.st != nil && noStatement(m.st.plan)):
			ss.out = append(ss.out, pgwire.MsgParseComplete...) // (an empty one fails at Bind)
		case m.typ == pgwire.Parse && m.st != nil:
			return ss.refuseBatchAt(i, ss.abortedError(m.st.plan, m.st.query), sync)
		case m.typ == pgwire.Bind && m.st == nil && !m.raw:
			_, rest, _ := cstring(body)
			stmtName, _, _ := cstring(rest)
			return ss.refuseBatchAt(i, errNoStatement(stmtName), sync)
		case object == pgwire.ObjectStatement && m.st == nil && !m.raw:
			return ss.refuseBatchAt(i, errNoStatement(name), sync)
		case m.typ == pgwire.Bind && exit && bindAbortedError(body, m.st) == errTxAborted:
			if exits == nil {
				exits = map[string]*router.Plan{}
			}
			exits[name] = m.st.plan
			ss.out = append(ss.out, pgwire.MsgBindComplete...)
		case m.typ == pgwire.Bind && m.st != nil:
			return ss.refuseBatchAt(i, bindAbortedError(b.body(i), m.st), sync)
		case object == pgwire.ObjectStatement && m.st != nil && m.st.noRows():
			ss.out = appendNoRowsDescription(ss.out, m.st)
		case (m.typ == pgwire.Execute || object == pgwire.ObjectPortal) && exits[name] != nil:
			if m.typ == pgwire.Describe {
				ss.out = append(ss.out, pgwire.MsgNoData...)
				continue
			}
			if perr := savepointMissing(exits[name]); perr != nil {
				return ss.refuseBatchAt(i, perr, sync)
			}
			ss.endFailedTx(&router.Plan{Tx: router.TxRollback})
			ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("ROLLBACK")})
			ss.forgetParses(i + 1) // the rest runs outside the transaction,
			b.msgs = b.msgs[i+1:]  // routed again (its Parses registered again)
			return ss.flushBatch(sync)
		case (m.typ == pgwire.Execute || object == pgwire.ObjectPortal) && kept == nil:
			return ss.refuseBatchAt(i, pgwire.Error(pgwire.InvalidCursorName, fmt.Sprintf("portal %q does not exist", name), ""), sync)
		case object == pgwire.ObjectPortal && kept.desc == nil:
			ss.out = append(ss.out, pgwire.MsgNoData...)
		default:
			return ss.refuseBatchAt(i, errTxAborted, sync)
		}
	}
	if sync {
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	}
	return ss.flushClient()
}

// noRows reports a statement known to return no rows (transaction
// control, or described NoData before): in an aborted transaction
// Postgres describes it without the catalog.
func (st *stmt) noRows() bool {
	return st.plan != nil && st.plan.Tx != router.TxNone || st.desc != nil && len(st.desc) == 0
}

// appendNoRowsDescription appends that description: the parameters the
// client was given before (none known: an empty list), and NoData.
func appendNoRowsDescription(dst []byte, st *stmt) []byte {
	if st.params != nil {
		dst = appendFrame(dst, pgwire.ParameterDescription, st.params)
	} else {
		dst = appendMsg(dst, &pgproto3.ParameterDescription{})
	}
	return append(dst, pgwire.MsgNoData...)
}

// noStatement reports a text without any statement (empty, comments,
// semicolons): Postgres checks it for nothing, in an aborted transaction too.
func noStatement(plan *router.Plan) bool {
	return plan != nil && !plan.Unparsed && plan.Stmts == 0
}

// savepointMissing is what ROLLBACK TO SAVEPOINT gets in a failed
// deferred transaction: Postgres runs it there (it may end the failure)
// and finds no such savepoint — none can exist, as the transaction failed
// before any backend saw it (a SAVEPOINT would have started it on one).
// The transaction stays failed. nil for any other statement.
func savepointMissing(plan *router.Plan) *pgconn.PgError {
	if plan == nil || plan.SavepointCmd == nil || plan.SavepointCmd.Kind != router.SavepointRollbackTo || plan.Stmts != 1 {
		return nil
	}
	return pgwire.Error(pgwire.InvalidSavepointSpec, fmt.Sprintf("savepoint %q does not exist", plan.SavepointCmd.Name), "")
}

// Postgres parses a statement before it checks for an aborted transaction,
// so a syntax error wins over 25P02. Text the router could not parse is
// therefore shown to a backend first (outside any transaction: a Parse
// of it as the unnamed statement, then Sync), and its syntax error is the
// client's answer.

// abortedError is what Postgres answers sql (planned as plan) with in an
// aborted transaction: its syntax error, if it has one, else 25P02.
func (ss *session) abortedError(plan *router.Plan, sql string) *pgconn.PgError {
	if perr := savepointMissing(plan); perr != nil {
		return perr
	}
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

// bindAbortedError is Postgres's error for a Bind of st in an aborted
// transaction: a wrong parameter count is reported first (08P01).
func bindAbortedError(body []byte, st *stmt) *pgconn.PgError {
	var args router.Args
	var formats []int16
	_, stmtName, _ := cstring(body)
	if _, err := decodeBind(body, &args, &formats); err == nil && len(args.Params) != st.numParams() {
		name, _, _ := cstring(stmtName)
		return pgwire.Error(pgwire.ProtocolViolation, fmt.Sprintf("bind message supplies %d parameters, but prepared statement %q requires %d",
			len(args.Params), name, st.numParams()), "")
	}
	return errTxAborted
}

// bindFailedBeforePortal reports whether a Bind that failed with errBody
// failed before Postgres created its portal (and so before it dropped an
// unnamed portal of the same name): an unknown statement, a bad parameter
// count or format, an aborted transaction, a named portal that exists.
// Later errors (a parameter's value) come after the portal replaced it.
func bindFailedBeforePortal(errBody []byte) bool {
	switch pgwire.DecodeError(errBody).Code {
	case pgwire.InvalidSQLStatementName, pgwire.ProtocolViolation, pgwire.InFailedSQLTransaction, pgwire.DuplicateCursor:
		return true
	}
	return false
}
