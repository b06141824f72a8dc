package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/pool"
)

// checkSQL is the one round trip a monitor makes per check. The CASEs keep
// functions that error in recovery (pg_walfile_name) from running there.
// Column 4 is computed server-side so pgrouter's clock does not matter.
const checkSQL = `SELECT pg_is_in_recovery(),
  (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
  pg_last_wal_receive_lsn()::text,
  (extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000000)::bigint,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
  (CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn() END)::text`

// walGeometrySQL runs once per monitor connection: page and segment sizes,
// needed to map an insert LSN to the end of the last record (see floorLSN).
const walGeometrySQL = `SELECT current_setting('wal_block_size')::bigint,
  (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')`

// WAL page header sizes (SizeOfXLogShortPHD, SizeOfXLogLongPHD).
const (
	shortPageHeader = 24
	longPageHeader  = 40
)

// checkResult is one parsed answer to checkSQL.
type checkResult struct {
	inRecovery  bool
	lsn         uint64 // current WAL LSN (primary) or replay LSN (replica); 0 = NULL
	receiveLSN  uint64 // 0 = NULL
	replayAge   time.Duration
	replayAgeOK bool
	timeline    uint32
	insertLSN   uint64 // primary: pg_current_wal_insert_lsn()
}

// monitor owns one node's dedicated health connection (not from the pools,
// so a full pool never hides a healthy node). Used by one goroutine at a time.
type monitor struct {
	t    *Topology
	node *Node
	conn *pgconn.PgConn

	walBlock, walSegment uint64 // from walGeometrySQL on connect
	slow                 bool   // in a slow episode: checks time out, the node is kept in service (noteSlow)
}

// run checks the node every settings.loop, and when its breaker's cool-down
// ends, until ctx ends. The first check already ran synchronously in Start.
func (m *monitor) run(ctx context.Context) {
	defer m.closeConn()
	for {
		st := m.t.settings()
		timer := time.NewTimer(st.loop)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-m.node.probe: // the breaker's cool-down ended: probe now
			timer.Stop()
		}
		m.check(ctx, st, st.timeout)
	}
}

func (m *monitor) closeConn() {
	if m.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		m.conn.Close(ctx)
		cancel()
		m.conn = nil
	}
}

// check runs one health/role/lag check and updates the node's state.
func (m *monitor) check(ctx context.Context, st *settings, timeout time.Duration) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n := m.node
	var seq uint64
	if n.Role() == RolePrimary {
		seq = n.shard.claimSeq() // before the query: its LSN covers earlier commits
	}
	start := time.Now()
	res, err := m.query(qctx, st, timeout)
	switch {
	case err == nil:
		m.slow = false // answered in time: a slow episode is over
	case ctx.Err() != nil:
		return // shutting down, not a failure of the node
	case m.servingThoughSlow(err, start):
		m.noteSlow("health check timed out but the node kept serving: not marked down", timeout, err)
		return
	default:
		timedOut := err
		if res, err = m.patientCheck(ctx, st, err); err != nil {
			m.failed(st, err)
			return
		}
		m.noteSlow("health check timed out, then answered within pool.connect_timeout: not marked down", timeout, timedOut)
	}
	m.succeeded(st, res)
	n.shard.elect(st.failThreshold)
	if seq != 0 && !res.inRecovery && n.shard.elected.Load() == n {
		n.shard.publish(seq, res.lsn, m.floorLSN(res.insertLSN), time.Now())
	}
}

func (m *monitor) query(ctx context.Context, st *settings, timeout time.Duration) (checkResult, error) {
	if m.conn == nil || m.conn.IsClosed() {
		conn, err := m.connect(ctx, st, timeout)
		if err != nil {
			return checkResult{}, err
		}
		m.conn = conn
		if err := m.readWALGeometry(ctx); err != nil {
			m.closeConn()
			return checkResult{}, err
		}
	}
	r := m.conn.ExecParams(ctx, checkSQL, nil, nil, nil, nil).Read()
	if r.Err != nil {
		m.closeConn() // state unknown after an error or timeout: start afresh
		return checkResult{}, r.Err
	}
	if len(r.Rows) != 1 || len(r.Rows[0]) != 6 {
		m.closeConn()
		return checkResult{}, fmt.Errorf("health check: unexpected result shape")
	}
	return parseCheck(r.Rows[0])
}

func (m *monitor) connect(ctx context.Context, st *settings, timeout time.Duration) (*pgconn.PgConn, error) {
	host, port, err := net.SplitHostPort(m.node.Addr)
	if err != nil {
		return nil, fmt.Errorf("node %s: bad addr %q: %w", m.node.Name, m.node.Addr, err)
	}
	// The monitor connects as the pools do (backend_tls / the shard's tls).
	bt := m.node.poolCfg.Load().BackendTLSFor(m.node.Shard)
	cfg, err := pool.ParseTLSConfig(host, bt.SSLMode, bt.CAFile)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", m.node.Name, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("node %s: bad port in %q", m.node.Name, m.node.Addr)
	}
	cfg.Port = uint16(p)
	cfg.RequireAuth = requireAuth(bt)
	cfg.User, cfg.Password, cfg.Database = st.monUser, st.monPassword, st.monDB
	cfg.ConnectTimeout = timeout
	cfg.RuntimeParams = map[string]string{"application_name": "pgrouter-monitor"}
	return pgconn.ConnectConfig(ctx, cfg)
}

func parseCheck(row [][]byte) (checkResult, error) {
	var res checkResult
	var err error
	res.inRecovery = string(row[0]) == "t"
	if res.lsn, err = parseLSN(row[1]); err != nil {
		return res, err
	}
	if res.receiveLSN, err = parseLSN(row[2]); err != nil {
		return res, err
	}
	if row[3] != nil {
		us, err := strconv.ParseInt(string(row[3]), 10, 64)
		if err != nil {
			return res, fmt.Errorf("health check: replay age %q: %w", row[3], err)
		}
		res.replayAge, res.replayAgeOK = max(time.Duration(us)*time.Microsecond, 0), true
	}
	if len(row[4]) >= 8 { // WAL file name: TTTTTTTTXXXXXXXXYYYYYYYY, timeline first
		tl, err := strconv.ParseUint(string(row[4][:8]), 16, 32)
		if err != nil {
			return res, fmt.Errorf("health check: wal file name %q: %w", row[4], err)
		}
		res.timeline = uint32(tl)
	}
	if res.insertLSN, err = parseLSN(row[5]); err != nil {
		return res, err
	}
	return res, nil
}

func (m *monitor) readWALGeometry(ctx context.Context) error {
	r := m.conn.ExecParams(ctx, walGeometrySQL, nil, nil, nil, nil).Read()
	if r.Err != nil {
		return r.Err
	}
	if len(r.Rows) != 1 || len(r.Rows[0]) != 2 {
		return fmt.Errorf("health check: unexpected WAL geometry result")
	}
	blk, err1 := strconv.ParseUint(string(r.Rows[0][0]), 10, 64)
	seg, err2 := strconv.ParseUint(string(r.Rows[0][1]), 10, 64)
	if err1 != nil || err2 != nil || blk == 0 || seg == 0 {
		return fmt.Errorf("health check: bad WAL geometry %q %q", r.Rows[0][0], r.Rows[0][1])
	}
	m.walBlock, m.walSegment = blk, seg
	return nil
}

// floorLSN maps a primary's insert LSN to an LSN every record inserted
// before it ends at or before. The insert LSN, not the write LSN, is needed
// because with synchronous_commit=off a commit is acknowledged before its
// record is written. But at a page start the insert LSN points past the page
// header, where no record can end; a replica that replayed everything stops
// at the page boundary, so the boundary is the right (and reachable) floor.
func (m *monitor) floorLSN(insert uint64) uint64 {
	switch {
	case m.walSegment > 0 && insert%m.walSegment == longPageHeader:
		return insert - longPageHeader
	case m.walBlock > 0 && insert%m.walBlock == shortPageHeader:
		return insert - shortPageHeader
	}
	return insert
}

// parseLSN parses pg_lsn text "X/Y"; NULL (nil) is 0.
func parseLSN(b []byte) (uint64, error) {
	if b == nil {
		return 0, nil
	}
	hi, lo, ok := strings.Cut(string(b), "/")
	if !ok {
		return 0, fmt.Errorf("health check: bad LSN %q", b)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("health check: bad LSN %q", b)
	}
	return h<<32 | l, nil
}

// FormatLSN renders an LSN as Postgres does ("16/B374D848").
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn))
}

// servingThoughSlow reports a check of a primary that timed out while
// backends of the node kept coming back from transactions: the node is slow — an overloaded host forks the check's
// connection late — not down. Opening its breaker would refuse every write
// and primary read of the shard (no other node can take them) and turn an
// overload into an outage. A frozen, hung or cut-off node completes no
// transaction, so its checks still fail; so do refused connections and
// every other error. Replicas get no such grace: a check that timed out
// leaves their lag unknown, and reads have somewhere else to go.
func (m *monitor) servingThoughSlow(err error, start time.Time) bool {
	n := m.node
	return n.Role() == RolePrimary && pgconn.Timeout(err) && n.servedSince(start)
}

// patientCheck gives a primary whose check timed out, when that failure
// would open its breaker, one more check with the patience of a backend
// dial (pool.connect_timeout): the breaker is there to spare clients dials
// that will fail, and a node that answers within that time would serve
// them. An idle pgrouter whose primary is saturated by other clients (the
// members of a fleet, a batch job) then keeps it in service; a frozen or
// cut-off primary is still found down, connect_timeout later. It returns
// the patient check's answer or error, or err when it gives none.
func (m *monitor) patientCheck(ctx context.Context, st *settings, err error) (checkResult, error) {
	n := m.node
	patience := n.poolCfg.Load().Pool.ConnectTimeout.D()
	opens := int(n.failures.Load())+1 >= st.failThreshold || n.breakerOpen()
	if n.Role() != RolePrimary || !pgconn.Timeout(err) || !opens || patience <= st.timeout {
		return checkResult{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	return m.query(pctx, st, patience)
}

// noteSlow logs the first timed-out check of a slow episode that did not
// mark the node down; the episode ends when a check answers in time.
func (m *monitor) noteSlow(msg string, timeout time.Duration, err error) {
	if !m.slow {
		m.slow = true
		n := m.node
		m.t.log.Warn(msg, "shard", n.Shard, "node", n.Name, "role", n.Role().String(), "timeout", timeout.String(), "err", err.Error())
	}
}

// failed records a failed check: the node is down at once (replicas leave
// rotation), and its breaker opens when it refuses connections or failed
// fail_threshold checks in a row. A breaker in its cool-down is not
// extended by failures; a failed check after it (the half-open probe)
// reopens it with a longer cool-down.
func (m *monitor) failed(st *settings, err error) {
	n := m.node
	fails := n.failures.Add(1)
	wasUp := n.up.Swap(false)
	n.lagKnown.Store(false) // unknown lag is unhealthy, never zero
	refused := errors.Is(err, syscall.ECONNREFUSED)
	// A failed check while the breaker is open was its half-open probe: reopen.
	if refused || int(fails) >= st.failThreshold || n.breakerOpen() {
		if cool, opened := n.trip(st.breakerCooldown, st.banDuration); opened {
			m.t.log.Warn("node down: breaker open", "shard", n.Shard, "node", n.Name, "role", n.Role().String(),
				"failures", fails, "refused", refused, "cooldown", cool.String(), "err", err.Error())
		}
	} else if wasUp {
		m.t.log.Warn("node down: check failed", "shard", n.Shard, "node", n.Name, "role", n.Role().String(),
			"failures", fails, "err", err.Error())
	}
	if wasUp && n.Role() == RoleReplica {
		m.t.noteNoReadableReplica(st, n.Shard)
	}
	n.shard.elect(st.failThreshold)
	for _, pi := range n.Pools() {
		pi.Pool.CloseIdle() // their sockets are likely dead too
	}
}

// succeeded stores a check's answer. Lag fields are written before the role
// so a node turning replica is never briefly eligible with stale lag.
func (m *monitor) succeeded(st *settings, res checkResult) {
	n := m.node
	if !n.up.Load() && n.checked.Load() {
		role := RolePrimary
		if res.inRecovery {
			role = RoleReplica
		}
		m.t.log.Info("node up", "shard", n.Shard, "node", n.Name, "role", role.String())
	}
	if res.inRecovery {
		if old := n.Role(); old == RolePrimary && n.checked.Load() {
			m.t.log.Warn("node role changed: in recovery", "shard", n.Shard, "node", n.Name, "role", RoleReplica.String(), "from", old.String())
		}
		m.storeReplicaLag(st, res)
		n.timeline.Store(0)
		n.role.Store(int32(RoleReplica))
	} else {
		n.lsn.Store(res.lsn)
		n.receiveLSN.Store(0)
		n.lagBytes.Store(0)
		n.lagNanos.Store(0)
		n.outOfRot.Store(false)
		n.lagKnown.Store(true)
		n.timeline.Store(res.timeline)
		if old := n.Role(); old != RolePrimary && n.checked.Load() {
			m.t.log.Warn("node role changed: left recovery", "shard", n.Shard, "node", n.Name, "role", RolePrimary.String(), "from", old.String(), "timeline", res.timeline)
		}
		n.role.Store(int32(RolePrimary))
	}
	n.failures.Store(0)
	n.lastCheck.Store(time.Now().UnixNano())
	n.up.Store(true)
	n.checked.Store(true)
	if n.probeSucceeded() {
		m.t.log.Info("node recovered: breaker closed", "shard", n.Shard, "node", n.Name, "role", n.Role().String())
	}
}
