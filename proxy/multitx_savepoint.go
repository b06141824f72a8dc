package proxy

import (
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// Savepoints of a transaction that spans shards span every shard it has
// touched or will touch: SAVEPOINT, RELEASE and ROLLBACK TO go to every
// member backend at once, and a shard joining later gets the savepoints
// still open replayed right after its BEGIN (joinShard). ROLLBACK TO then
// undoes on each shard exactly what one Postgres would undo: a shard that
// joined after the savepoint loses all it did, one that joined before
// keeps what preceded it.

// noteSavepoint keeps ss.savepoints in step with a statement that
// succeeded. A text holding savepoint commands among other statements
// cannot be followed: the transaction may then not move (txSavepoint).
func (t *txState) noteSavepoint(p *router.Plan) {
	cmd := p.SavepointCmd
	if cmd == nil {
		t.txSavepoint = t.txSavepoint || p.Savepoint
		return
	}
	i := len(t.savepoints) - 1 // the newest of that name
	for i >= 0 && t.savepoints[i] != cmd.Name {
		i--
	}
	switch {
	case cmd.Kind == router.SavepointSet:
		t.savepoints = append(t.savepoints, cmd.Name)
	case i < 0:
	case cmd.Kind == router.SavepointRelease:
		t.savepoints = t.savepoints[:i]
	case cmd.Kind == router.SavepointRollbackTo:
		t.savepoints = t.savepoints[:i+1]
	}
}

// savepointSQL is the statement that sets, releases or rolls back to cmd's
// savepoint (the name quoted: it is already case-folded).
func savepointSQL(cmd *router.SavepointCmd) string {
	switch cmd.Kind {
	case router.SavepointRelease:
		return "RELEASE SAVEPOINT " + quoteIdent(cmd.Name)
	case router.SavepointRollbackTo:
		return "ROLLBACK TO SAVEPOINT " + quoteIdent(cmd.Name)
	}
	return "SAVEPOINT " + quoteIdent(cmd.Name)
}

// replaySavepoints is the SQL that sets the transaction's open savepoints
// on a shard it joins.
func (t *txState) replaySavepoints() string {
	var q strings.Builder
	for _, name := range t.savepoints {
		q.WriteString(savepointSQL(&router.SavepointCmd{Kind: router.SavepointSet, Name: name}))
		q.WriteString(";")
	}
	return q.String()
}

// spanSavepoint runs a lone savepoint command of a transaction spread over
// shards on every member; ext is the batch for the extended protocol, nil
// for a query. An error (the savepoint does not exist, the transaction has
// failed) comes from the shards, as Postgres words it.
func (ss *session) spanSavepoint(plan *router.Plan, ext *batch) (bool, error) {
	if len(ss.members) == 0 || plan == nil || plan.SavepointCmd == nil {
		return false, nil
	}
	results := execAll(ss.members, savepointSQL(plan.SavepointCmd))
	for i, r := range results {
		if r.err != nil {
			ss.switchTo(ss.members[i]) // a failed member: what follows gets 25P02 there
			ss.failTx()
			return true, ss.replyError(r.err, true)
		}
	}
	ss.noteSavepoint(plan)
	tag := results[0].tag
	if ext != nil {
		ss.answerBatchLocally(ext, tag)
	} else {
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
	}
	ss.txStatus = pgwire.TxActive
	ss.out = pgwire.AppendReady(ss.out, pgwire.TxActive)
	return true, ss.flushClient()
}
