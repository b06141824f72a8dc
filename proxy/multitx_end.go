package proxy

import (
	"context"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// How a transaction spread over shards ends: COMMIT and ROLLBACK are
// answered here for all its backends at once (two-phase commit when
// several wrote), and a client that leaves has them all rolled back.

// multiTxControl answers COMMIT / ROLLBACK of a transaction spread over
// shards; ext is the batch for the extended protocol, nil for a query.
func (ss *session) multiTxControl(plan *router.Plan, sql string, ext *batch) (bool, error) {
	if len(ss.members) == 0 || plan == nil || plan.Stmts != 1 || plan.Role == router.RolePrimary {
		return false, nil // COMMIT PREPARED and the like are refused by multiTxAllows
	}
	var out commitOutcome
	switch plan.Tx {
	case router.TxCommit:
		out = ss.commitMembers()
	case router.TxRollback:
		out = ss.rollbackMembers()
	default:
		return false, nil
	}
	ss.endMulti(out.tag)
	if out.err != nil {
		return true, ss.replyError(out.err, true)
	}
	if out.warning != nil {
		ss.out = appendNotice(ss.out, out.warning)
	}
	if ext != nil {
		ss.answerBatchLocally(ext, out.tag)
	} else {
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(out.tag)})
	}
	ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
	return true, ss.flushClient()
}

// commitMembers commits every backend of the transaction: the shards that
// only read first (plain COMMIT), then the ones that wrote — one with a
// plain COMMIT, several with two-phase commit.
func (ss *session) commitMembers() commitOutcome {
	var readers, writers []*binding
	for _, m := range ss.members {
		if m.txStatus != pgwire.TxActive {
			return ss.rollbackMembers() // failed transaction: COMMIT means ROLLBACK
		}
		if m.wrote && m.primary {
			writers = append(writers, m)
		} else {
			readers = append(readers, m)
		}
	}
	for i, r := range execAll(readers, "COMMIT") {
		if r.err != nil || r.tag != "COMMIT" {
			ss.rollbackMembers()
			return commitOutcome{tag: "ROLLBACK", err: r.failure(ss.srv.shardName(readers[i]), "could not commit")}
		}
	}
	if len(writers) > 1 {
		if ss.srv.coord == nil { // refused at the second write; never commit half
			ss.rollbackMembers()
			return commitOutcome{tag: "ROLLBACK", err: pgwire.Error(pgwire.InternalError, "multi-shard write without two-phase commit", "")}
		}
		return ss.srv.coord.commit(ss, writers)
	}
	if len(writers) == 0 {
		return commitOutcome{tag: "COMMIT"}
	}
	r := execAll(writers, "COMMIT")[0] // the one writer: a plain COMMIT
	if r.err != nil {
		return commitOutcome{tag: "ROLLBACK", err: r.failure(ss.srv.shardName(writers[0]), "could not commit")}
	}
	return commitOutcome{tag: r.tag}
}

// rollbackMembers rolls back every backend still inside the transaction.
func (ss *session) rollbackMembers() commitOutcome {
	var open []*binding
	for _, m := range ss.members {
		if m.txStatus != pgwire.TxIdle {
			open = append(open, m)
		}
	}
	execAll(open, "ROLLBACK")
	return commitOutcome{tag: "ROLLBACK"}
}

// endMulti gives every backend of the finished transaction back and
// settles the session's transaction bookkeeping.
func (ss *session) endMulti(tag string) {
	if tag == "COMMIT" {
		var wrote []*binding
		for _, m := range ss.members {
			if m.wrote {
				wrote = append(wrote, m)
			}
		}
		ss.setWriteFloors(wrote)
	}
	ss.cancelMu.Lock()
	ss.running.Store(nil)
	ss.be = nil
	ss.cancelMu.Unlock()
	ss.releaseAll(ss.members)
	ss.members = nil
	ss.lastTag = append(ss.lastTag[:0], tag...)
	ss.readyForQuery(pgwire.TxIdle)
}

// abandonMembers rolls back a multi-shard transaction whose client left.
func (ss *session) abandonMembers() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range ss.members {
		if m.txStatus != pgwire.TxIdle && !ss.rollback(ctx, m) {
			m.txStatus = pgwire.TxFailed // discarded by releaseAll
		}
	}
	ss.endMulti("ROLLBACK")
}

// appendNotice encodes a warning or notice for the client.
func appendNotice(dst []byte, e *pgconn.PgError) []byte {
	return appendMsg(dst, &pgproto3.NoticeResponse{Severity: e.Severity, SeverityUnlocalized: e.Severity,
		Code: e.Code, Message: e.Message, Detail: e.Detail, Hint: e.Hint})
}
