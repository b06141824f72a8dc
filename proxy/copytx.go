package proxy

import (
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router"
)

// COPY … FROM STDIN into several shards inside the client's transaction
// (psycopg2 copy_expert, asyncpg copy_records_to_table in a transaction):
// it runs on the transaction's own backend of each shard, joined on demand
// as any statement of the transaction (writes on several shards need
// two_phase_commit, multiTxAllows), and its rows commit or roll back with
// the transaction. A failure fails the transaction, as on Postgres.

// copySplits reports whether pgrouter runs the COPY itself: outside a
// transaction on backends of its own, or over several shards inside a
// healthy transaction of a pooled session.
func (ss *session) copySplits(route router.Route) bool {
	if ss.be == nil && ss.pendingBegin == "" {
		return true
	}
	return multiShardRoute(route) && ss.txStatus == pgwire.TxActive && !ss.openBatch && ss.pinned == "" && ss.st.cfg.Pool.Mode != "session"
}

// copyJoin makes the transaction's backend of every shard of set a COPY
// target, in shard order.
func (ss *session) copyJoin(set router.ShardSet, plan *router.Plan) ([]*copyTarget, *pgconn.PgError) {
	if ss.be == nil { // the first statement after a deferred BEGIN
		if err := ss.openTx(set.First()); err != nil {
			return nil, toPgError(err)
		}
	}
	cur := ss.be
	var ts []*copyTarget
	var err error
	set.Each(func(shard int) {
		if err == nil {
			if err = ss.multiTxAllows(plan, true, shard); err == nil {
				err = ss.joinShard(shard)
			}
		}
		if err == nil {
			ss.be.wrote = true
			ts = append(ts, &copyTarget{b: ss.be, member: true, done: make(chan struct{})})
		}
	})
	ss.switchTo(cur)
	if err != nil {
		return nil, toPgError(err)
	}
	bs := make([]*binding, len(ts))
	for i, t := range ts {
		bs[i] = t.b
	}
	ss.markRunning(bs) // a cancel reaches every shard
	return ts, nil
}

// copyLeaveTx ends the COPY's hold on the transaction's backends: they
// stay with the transaction.
func (ss *session) copyLeaveTx(ts []*copyTarget) {
	for _, t := range ts {
		t.b.conn.NetConn.SetDeadline(time.Time{})
	}
	ss.cancelMu.Lock()
	ss.runningMulti = nil
	ss.running.Store(ss.be)
	ss.cancelMu.Unlock()
}
