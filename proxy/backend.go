package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/pool"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/topology"
)

// binding is the backend a session is using for the current transaction.
type binding struct {
	conn     *pool.Conn
	pool     *pool.Pool
	node     *topology.Node
	shard    int
	primary  bool
	wrote    bool // ran a statement that needs the primary (sets the RYW floor)
	rd       *frameReader
	txStatus byte
	timeout  time.Duration // timeouts.query: the longest wait for an answer (see next)
}

// backendReaders are shared by all sessions: a reader is needed only while a
// backend is bound, so memory follows active backends, not clients.
var backendReaders = sync.Pool{New: func() any { return newFrameReader(nil, 32<<10) }}

// acquireBackend binds a backend of shard in the wanted role.
func (ss *session) acquireBackend(shard int, primary bool) error {
	if err := ss.srv.waitResumed(ss.dbName, ss.st.cfg.Pool.AcquireTimeout.D()); err != nil {
		return err
	}
	b, reason, err := ss.bindShard(ss.srv.topo.Snapshot(), shard, primary)
	if err != nil {
		return err
	}
	ss.be = b
	ss.cancelMu.Lock()
	ss.running.Store(b)
	ss.runningMulti = nil // a cancel now targets this backend alone
	ss.cancelMu.Unlock()
	ss.srv.Metrics.routed(ss.st.cfg.Shards[shard].Name, roleName(b.primary), "single", reason)
	return nil
}

// bindShard picks a node of shard (its primary, or a replica fresh enough
// for the session's read-your-writes floor) and checks out a backend there.
// A replica that cannot be dialled (nothing was sent to it) has its breaker
// opened and the read goes to the next eligible node, or the primary per
// replicas.fallback; each node of the shard is tried at most once.
func (ss *session) bindShard(snap *topology.Snapshot, shard int, primary bool) (*binding, string, error) {
	for attempt := 1; ; attempt++ {
		node, reason, err := ss.pickNode(snap, shard, primary)
		if err != nil {
			return nil, "", err
		}
		b, err := ss.bindNode(node, shard, primary || reason != topology.ReasonReplica)
		if err != nil && reason == topology.ReasonReplica && pool.IsDialFailure(err) &&
			attempt < len(snap.Shards[shard].Nodes) {
			ss.srv.topo.TripReplica(node, err)
			continue
		}
		return b, reason, err
	}
}

func (ss *session) pickNode(snap *topology.Snapshot, shard int, primary bool) (*topology.Node, string, error) {
	if primary {
		n, err := snap.Primary(shard)
		return n, "primary", err
	}
	return snap.Replica(shard, ss.srv.readFloor(shard, ss.floor[shard]))
}

// bindNode checks out a backend of node.
func (ss *session) bindNode(node *topology.Node, shard int, primary bool) (*binding, error) {
	p := node.Pool(ss.user, ss.db)
	if p == nil { // node removed by a reload between the snapshot load and now
		return nil, pgwire.Error(pgwire.ConnectionFailure, fmt.Sprintf("node %s was removed from the topology", node.Name), "retry the statement")
	}
	fence := ss.srv.fence.now.Load()
	if fence.refusal != nil {
		return nil, ss.srv.fencedError()
	}
	start := time.Now()
	c, err := p.Acquire(fence.acquire) // a fence cancels it: waiters wake
	ss.srv.Metrics.poolWait(time.Since(start))
	if err != nil {
		if fence.acquire.Err() != nil {
			return nil, ss.srv.fencedError()
		}
		return nil, err
	}
	if fence.acquire.Err() != nil { // fenced while it acquired: the pool (capped to 0) closes it
		p.Release(c)
		return nil, ss.srv.fencedError()
	}
	if primary && node.Role() == topology.RoleReplica {
		// A failover demoted the node while we waited: never write to it.
		p.Release(c)
		return nil, pgwire.Error(pgwire.CannotConnectNow, fmt.Sprintf("node %s of shard %s is no longer the primary", node.Name, node.Shard), "retry: the new primary is being detected")
	}
	node.Acquired()
	rd := backendReaders.Get().(*frameReader)
	rd.reset(c.NetConn)
	rd.params = c.ServerParams // kept current by every read (see frameReader.params)
	b := &binding{conn: c, pool: p, node: node, shard: shard, primary: primary, rd: rd, txStatus: pgwire.TxIdle,
		timeout: ss.st.cfg.Timeouts.Query.D()}
	ss.notePrimary(b, true)
	return b, nil
}

// bindShards checks out one backend on every shard of set, in ascending
// shard order: one global order means two sessions doing this at once
// cannot each hold what the other waits for. On error nothing stays bound.
func (ss *session) bindShards(set router.ShardSet, primary bool) ([]*binding, *pgconn.PgError) {
	if err := ss.srv.waitResumed(ss.dbName, ss.st.cfg.Pool.AcquireTimeout.D()); err != nil {
		return nil, toPgError(err)
	}
	snap := ss.srv.topo.Snapshot()
	var bs []*binding
	var perr *pgconn.PgError
	set.Each(func(shard int) {
		if perr != nil {
			return
		}
		b, reason, err := ss.bindShard(snap, shard, primary)
		if err != nil {
			perr = toPgError(err)
			return
		}
		every := set.Len() > 1 && set.Len() == len(ss.st.cfg.Shards)
		ss.srv.Metrics.routedMulti(ss.st.cfg.Shards[shard].Name, roleName(b.primary), reason, every)
		bs = append(bs, b)
	})
	if perr != nil {
		ss.releaseAll(bs)
		return nil, perr
	}
	ss.markRunning(bs)
	return bs, nil
}

// markRunning publishes the backends of a multi-shard statement: the admin
// console, PAUSE and shutdown see the client as active, and a cancel
// reaches every shard. releaseAll takes them back and records the duration.
func (ss *session) markRunning(bs []*binding) {
	ss.cancelMu.Lock()
	ss.running.Store(bs[0])
	ss.runningMulti = bs
	ss.multiStart = time.Now()
	ss.cancelMu.Unlock()
}

func roleName(primary bool) string {
	if primary {
		return "primary"
	}
	return "replica"
}

// release returns the backend to its pool.
func (ss *session) release() {
	b := ss.be
	ss.cancelMu.Lock()
	ss.running.Store(nil)
	ss.cancelMu.Unlock()
	ss.be = nil
	ss.notePrimary(b, false)
	b.node.Released()
	b.pool.Release(b.conn)
	putBackendReader(b.rd)
}

// discard closes a backend whose state is unknown.
func (ss *session) discard() {
	b := ss.be
	ss.dropMember(b)
	ss.cancelMu.Lock()
	ss.running.Store(nil)
	ss.cancelMu.Unlock()
	ss.be = nil
	ss.queue = ss.queue[:0]
	ss.notePrimary(b, false)
	b.node.Released()
	b.pool.Discard(b.conn)
	putBackendReader(b.rd)
}

// cancelRunning forwards a client's CancelRequest to the backend it is using
// right now; with nothing running it does nothing. Holding cancelMu keeps the
// backend from being released (and reused by another client) meanwhile.
func (ss *session) cancelRunning() {
	ss.cancelMu.Lock()
	defer ss.cancelMu.Unlock()
	ss.cancelLocked(ss.runningLocked(), 3*time.Second)
}

// interruptBackends makes a session blocked reading its backends give up
// (forced shutdown): the read fails and the backends are discarded.
func (ss *session) interruptBackends() {
	ss.cancelMu.Lock()
	defer ss.cancelMu.Unlock()
	interrupt(ss.runningLocked())
}

// interruptAndCancel interrupts the session's reads of its backends and
// cancels their statements, each cancel bounded by d. The session cannot
// discard a backend before the cancel was sent (it needs cancelMu), so the
// backend is idle when it gets the Terminate (fence.go).
func (ss *session) interruptAndCancel(d time.Duration) {
	ss.cancelMu.Lock()
	defer ss.cancelMu.Unlock()
	targets := ss.runningLocked()
	interrupt(targets)
	ss.cancelLocked(targets, d)
}

// runningLocked lists the backends the session is using (cancelMu held).
func (ss *session) runningLocked() []*binding {
	if ss.runningMulti != nil {
		return ss.runningMulti
	}
	if b := ss.running.Load(); b != nil {
		return []*binding{b}
	}
	return nil
}

// cancelLocked sends a cancel request for each of targets, bounded by d.
func (ss *session) cancelLocked(targets []*binding, d time.Duration) {
	if len(targets) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, b := range targets {
		if err := b.conn.Cancel(ctx); err != nil {
			ss.srv.log.Warn("cancel forward failed", "client_id", ss.pid, "shard", b.node.Shard, "node", b.node.Name, "err", err)
		}
	}
}

func interrupt(targets []*binding) {
	for _, b := range targets {
		b.conn.NetConn.SetDeadline(time.Now())
	}
}

// rollback ends an abandoned transaction so the backend can be reused.
// It reports whether the backend is clean afterwards.
func (ss *session) rollback(ctx context.Context, b *binding) bool {
	if len(ss.queue) > 0 {
		return false // answers still in flight: state unknown
	}
	deadline, _ := ctx.Deadline()
	b.conn.NetConn.SetDeadline(deadline)
	defer b.conn.NetConn.SetDeadline(time.Time{})
	// Sync ends a half-sent extended batch; ROLLBACK ends the transaction.
	msg := append([]byte{pgwire.Sync, 0, 0, 0, 4}, appendQuery(nil, "ROLLBACK")...)
	if err := writeAll(b.conn.NetConn, msg); err != nil {
		return false
	}
	for ready := 0; ready < 2; ready++ {
		if _, lost := b.readUntilReady(nil); lost != nil {
			return false
		}
	}
	return b.txStatus == pgwire.TxIdle
}

// appendStateSync makes the backend's session GUCs match the client's, as a
// pipelined query whose answers are swallowed (no extra round trip).
func (ss *session) appendStateSync() {
	if q := ss.syncSQL(ss.be.conn.Settings) + ss.stringsSync(); q != "" {
		ss.bout = appendQuery(ss.bout, q)
		ss.push(expect{kind: pgwire.Query, swallow: true})
	}
}

// syncSQL returns the statements that turn a backend's session GUCs (have)
// into the client's, and records them in have; "" when they already match.
func (ss *session) syncSQL(have map[string]string) string {
	var q strings.Builder
	for k, v := range ss.desired {
		if have[k] != v {
			q.WriteString(v)
			q.WriteString(";")
			have[k] = v
		}
	}
	for k := range have {
		if _, ok := ss.desired[k]; !ok {
			q.WriteString("RESET ")
			q.WriteString(quoteIdent(k))
			q.WriteString(";")
			delete(have, k)
		}
	}
	return q.String()
}

func quoteIdent(s string) string {
	if strings.ContainsAny(s, `"`) {
		s = strings.ReplaceAll(s, `"`, `""`)
	}
	// GUC names with a dot (custom.x) must stay unquoted parts; they are
	// plain identifiers, so quote each part.
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, ".")
}

// applySet records a session-level SET/RESET that succeeded on the backend.
func (ss *session) applySet(v router.SetVar) {
	have := map[string]string(nil)
	if ss.be != nil {
		have = ss.be.conn.Settings
	}
	switch {
	case v.All:
		clear(ss.desired)
		for k, sql := range ss.startup {
			ss.desired[k] = sql
		}
		if have != nil {
			// RESET ALL and DISCARD ALL alike; the statements DISCARD ALL
			// drops are handled by statementDone (RESET ALL keeps them).
			clear(have)
		}
	case v.Reset:
		if sql, ok := ss.startup[v.Name]; ok {
			ss.desired[v.Name] = sql
		} else {
			delete(ss.desired, v.Name)
		}
		if have != nil {
			delete(have, v.Name)
		}
	default:
		sql := "SET " + quoteIdent(v.Name) + " TO " + v.Value
		ss.desired[v.Name] = sql
		if have != nil {
			have[v.Name] = sql
		}
	}
}

// backendLost reports a dead backend to the client: inside a transaction
// the client connection ends too (its transaction is gone); otherwise the
// client gets 08006 and may go on.
func (ss *session) backendLost(err error) error {
	b := ss.be
	inTx := b.txStatus != pgwire.TxIdle || ss.txStatus != pgwire.TxIdle
	node, shard, timeout := b.node.Name, b.node.Shard, b.timeout
	ss.discard()
	if ss.endFenced() { // the fence took it: the client learns why, and the session ends
		return errClientGone
	}
	ss.srv.log.Warn("backend lost", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName, "shard", shard, "node", node, "err", err)
	pe := pgwire.Error(pgwire.ConnectionFailure, fmt.Sprintf("connection to backend %s lost", node), "the statement may or may not have been executed")
	if f := ss.backendFatal; f != nil { // what the backend said before closing
		ss.backendFatal = nil
		pe.Code, pe.Message = f.Code, fmt.Sprintf("backend %s: %s", node, f.Message)
	}
	if le := lostError(node, err, timeout); le.Code == pgwire.QueryCanceled {
		cp := *le // may be shared by the members of a multi-shard execution
		pe = &cp
	}
	ss.srv.Metrics.errors(pe.Code)
	if inTx {
		pe.Severity = "FATAL"
		pe.Message += " inside a transaction; the transaction is rolled back"
		ss.writeClient(pgwire.AppendError(nil, pe))
		return errClientGone
	}
	// The batch failed whole as far as the client knows, so its Parses are
	// undone even if the proxy answered them already: drivers prepare
	// again under the same name after a failed prepare (pgx's statement
	// cache does), and a kept name would fail every retry with 42P05.
	ss.forgetParses(0)
	ss.out = pgwire.AppendError(ss.out, pe)
	ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
	ss.txStatus = pgwire.TxIdle
	return ss.flushClient()
}

// releaseAll gives back the backends of a multi-shard execution: clean ones
// to their pools, the others closed.
func (ss *session) releaseAll(bs []*binding) {
	// The running set is the same backends, not necessarily the same slice
	// (COPY builds its own): a stale set would aim the client's next cancel
	// at backends other clients use by then.
	if ss.runningMulti != nil && len(bs) > 0 && ss.runningMulti[0] == bs[0] {
		d := time.Since(ss.multiStart)
		ss.cancelMu.Lock()
		ss.running.Store(nil)
		ss.runningMulti = nil
		ss.cancelMu.Unlock()
		for _, b := range bs {
			ss.observe(b, d)
		}
	}
	for _, b := range bs {
		ss.notePrimary(b, false)
		b.node.Released()
		if b.txStatus == pgwire.TxIdle {
			b.pool.Release(b.conn)
		} else {
			b.pool.Discard(b.conn)
		}
		putBackendReader(b.rd)
	}
}
