package proxy

import (
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router"
)

// A transaction may touch several shards: a statement of an open
// transaction that needs another shard opens a backend there on demand
// (BEGIN replayed with the transaction's own text) and the session switches
// between them; ss.members holds them all. Reads may spread freely; writes
// on a second shard need two_phase_commit, and COMMIT then runs PREPARE
// TRANSACTION / COMMIT PREPARED over the shards that wrote (twopc.go).

// routeInTx picks the backend of a statement inside an open transaction
// (switching shards when the statement needs another one), or refuses it
// before anything is sent. executes is false for a batch that only parses
// or describes: it writes nothing.
func (ss *session) routeInTx(route router.Route, plan *router.Plan, executes bool) error {
	target, err := ss.txTarget(route)
	if err != nil {
		return err
	}
	if len(ss.members) > 0 || target != ss.be.shard {
		if err := ss.multiTxAllows(plan, route.Role == router.RolePrimary && executes, target); err != nil {
			return err
		}
	}
	if target != ss.be.shard {
		if err := ss.joinShard(target); err != nil {
			return err
		}
	}
	if route.Role == router.RolePrimary && executes && !ss.be.primary {
		return pgwire.Error(pgwire.ReadOnlySQLTransaction, "cannot execute a write in a read-only transaction routed to a replica", "start the transaction with BEGIN (not READ ONLY) to write")
	}
	return nil
}

// txTarget is the shard a statement of the open transaction runs on: the
// current one when it will do, else one the transaction already uses.
func (t *txState) txTarget(route router.Route) (int, error) {
	cur := t.be.shard
	switch {
	case route.Any && (route.Shards == 0 || route.Shards.Has(cur)):
		return cur, nil
	case (route.Multi || route.Split || (route.Shards.Len() > 1 && !route.Any)) && t.txStatus == pgwire.TxFailed:
		// What one Postgres answers first; the statement never runs.
		return 0, pgwire.Error(pgwire.InFailedSQLTransaction, "current transaction is aborted, commands ignored until end of transaction block", "")
	case route.Multi || route.Split || (route.Shards.Len() > 1 && !route.Any):
		return 0, route.MultiShardError()
	case route.Any:
		for _, m := range t.members {
			if route.Shards.Has(m.shard) {
				return m.shard, nil
			}
		}
	}
	return route.Shards.First(), nil
}

// multiTxAllows refuses what a transaction spread over shards cannot do
// correctly, naming why.
func (ss *session) multiTxAllows(plan *router.Plan, write bool, target int) error {
	names := ss.st.cfg.Shards
	if target != ss.be.shard {
		switch {
		case ss.txStatus == pgwire.TxFailed:
			return pgwire.Error(pgwire.InFailedSQLTransaction, "current transaction is aborted, commands ignored until end of transaction block", "")
		case ss.db.CrossShard == "deny":
			return pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("transaction is running on shard %s and this statement needs shard %s; cross_shard is deny for database %s",
				names[ss.be.shard].Name, names[target].Name, ss.dbName), "keep each transaction on one shard, or set cross_shard: allow")
		case ss.pinned != "" || ss.st.cfg.Pool.Mode == "session" || ss.txStatus != pgwire.TxActive || ss.be.txStatus != pgwire.TxActive || ss.openBatch:
			return pgwire.Error(pgwire.InvalidTransactionState, fmt.Sprintf("transaction is running on shard %s and this statement needs shard %s", names[ss.be.shard].Name, names[target].Name),
				"only an explicit transaction (BEGIN … COMMIT) of a session that is not pinned may move between shards")
		}
	}
	if len(ss.members) > 0 || target != ss.be.shard {
		what := ""
		switch {
		case plan == nil:
		case plan.Tx != router.TxNone:
			what = "transaction control inside a multi-statement query or PREPARE TRANSACTION"
		case plan.Savepoint && plan.SavepointCmd == nil:
			what = "SAVEPOINT / RELEASE / ROLLBACK TO among other statements"
		case plan.SetLocal:
			what = "SET LOCAL / SET TRANSACTION (they would hold on one shard only)"
		case len(plan.Sets) > 0:
			what = "SET (set it before BEGIN)"
		case plan.Pin != "":
			what = plan.Pin
		}
		if what != "" {
			return pgwire.Error(pgwire.FeatureNotSupported, what+" is not supported in a transaction that spans shards",
				"send COMMIT / ROLLBACK as a statement of its own; keep session state out of multi-shard transactions")
		}
		if target != ss.be.shard && ss.txSavepoint {
			return pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("transaction with savepoints set among other statements of one query cannot move to shard %s", names[target].Name),
				"send SAVEPOINT, RELEASE and ROLLBACK TO as statements of their own")
		}
		if target != ss.be.shard && ss.txSetLocal {
			return pgwire.Error(pgwire.FeatureNotSupported, fmt.Sprintf("transaction that ran SET LOCAL or SET TRANSACTION cannot move to shard %s", names[target].Name),
				"put isolation level and access mode in BEGIN (it is replayed on every shard); set other GUCs before BEGIN")
		}
	}
	if write && !ss.twoPhase() {
		for _, m := range ss.txBackends() {
			if m.shard != target && m.wrote {
				return pgwire.Error(pgwire.InvalidTransactionState, fmt.Sprintf("transaction wrote on shard %s and this statement writes on shard %s", names[m.shard].Name, names[target].Name),
					"a transaction may write on one shard only unless two_phase_commit is enabled for the database; roll back and split the transaction")
			}
		}
	}
	return nil
}

// twoPhase reports whether writes on several shards commit atomically.
func (ss *session) twoPhase() bool { return ss.db.TwoPhaseCommit && ss.srv.coord != nil }

// txBackends is every backend of the open transaction.
func (ss *session) txBackends() []*binding {
	if len(ss.members) > 0 {
		return ss.members
	}
	return []*binding{ss.be}
}

// joinShard makes shard's backend of the transaction the current one,
// opening it (one round trip: GUC sync, BEGIN, the transaction's SETs) on
// first use.
func (ss *session) joinShard(shard int) error {
	if shard == ss.be.shard {
		return nil
	}
	if m := ss.member(shard); m != nil {
		ss.switchTo(m)
		return nil
	}
	if ss.txBegin == "" {
		if perr := ss.recoverBegin(); perr != nil {
			return perr
		}
	}
	b, reason, err := ss.bindShard(ss.srv.topo.Snapshot(), shard, ss.be.primary)
	if err != nil {
		return err
	}
	ss.srv.Metrics.routed(ss.st.cfg.Shards[shard].Name, roleName(b.primary), kindMulti, reason)
	if perr := ss.beginOn(b, ss.txBegin+";"+replaySets(ss.txSets)+ss.replaySavepoints()); perr != nil {
		ss.releaseAll([]*binding{b})
		return pgwire.WithMessage(perr, "could not join the transaction: "+perr.Message)
	}
	if len(ss.members) == 0 {
		ss.members = append(ss.members, ss.be)
	}
	ss.members = append(ss.members, b)
	ss.switchTo(b)
	return nil
}

// recoverBegin learns the BEGIN of a transaction the client opened in the
// same batch or query as its first statements (JDBC with autocommit off,
// "BEGIN; INSERT …"): it went to the first shard as it was, so the proxy
// asks that backend for the transaction's characteristics and replays them
// as one BEGIN on the shards the transaction moves to.
func (ss *session) recoverBegin() *pgconn.PgError {
	r := execOne(ss.be, "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'), current_setting('transaction_deferrable')")
	if r.err != nil || len(r.rows) != 1 || len(r.rows[0]) != 3 {
		return r.failure(ss.st.cfg.Shards[ss.be.shard].Name, "reading the transaction's characteristics")
	}
	row := r.rows[0]
	begin := "BEGIN ISOLATION LEVEL " + strings.ToUpper(row[0])
	if row[1] == "on" {
		begin += " READ ONLY"
	}
	if row[2] == "on" {
		begin += " DEFERRABLE"
	}
	ss.txBegin = begin
	return nil
}

func (ss *session) switchTo(b *binding) {
	ss.cancelMu.Lock()
	ss.be = b
	ss.running.Store(b)
	ss.cancelMu.Unlock()
}

// replaySets is the SQL of SETs already run in the transaction.
func replaySets(sets []router.SetVar) string {
	var q strings.Builder
	for _, v := range sets {
		switch {
		case v.All:
			q.WriteString("RESET ALL;")
		case v.Reset:
			q.WriteString("RESET " + quoteIdent(v.Name) + ";")
		default:
			q.WriteString("SET " + quoteIdent(v.Name) + " TO " + v.Value + ";")
		}
	}
	return q.String()
}
