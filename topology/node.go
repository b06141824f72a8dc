package topology

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgrouter/pgrouter/config"
)

// Role is what a node is, either as configured or as detected by its monitor.
type Role int32

const (
	RoleUnknown Role = iota
	RolePrimary
	RoleReplica
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	}
	return "unknown"
}

// Node is one Postgres server; its live state is updated by the monitors.
// Every getter is a lock-free atomic load so the hot path never blocks on a
// monitor. A Node outlives snapshots: Reload keeps it (with its pools and
// monitor) while its (shard, addr, name) stays in the configuration.
type Node struct {
	Name  string
	Addr  string
	Shard string

	configured Role        // role in the configuration file
	shard      *shardState // per-shard state shared by the shard's monitors (samples, election)

	checked     atomic.Bool   // at least one check answered; until then the configured role is trusted
	role        atomic.Int32  // detected Role
	up          atomic.Bool   // last check succeeded
	failures    atomic.Int32  // consecutive failed checks
	bannedUntil atomic.Int64  // unix nanoseconds; 0 = not banned (admin BAN)
	brk         breaker       // opened by failures, closed by a successful probe
	probe       chan struct{} // capacity 1: asks the monitor to check now (breaker cool-down over)
	timeline    atomic.Uint32

	lsn        atomic.Uint64 // primary: pg_current_wal_lsn(); replica: pg_last_wal_replay_lsn()
	receiveLSN atomic.Uint64 // replica: pg_last_wal_receive_lsn()
	replayAge  atomic.Int64  // replica: nanoseconds since the last replayed commit, -1 = none yet
	lagBytes   atomic.Int64
	lagNanos   atomic.Int64
	lagKnown   atomic.Bool
	outOfRot   atomic.Bool  // over a lag bound; back only under half of it (hysteresis)
	lastCheck  atomic.Int64 // unix nanoseconds of the last successful check

	active atomic.Int64 // backends checked out via Acquired/Released (least_conn)

	poolMu  sync.Mutex
	pools   atomic.Pointer[map[poolKey]*poolEntry]
	poolCfg atomic.Pointer[config.Config] // config used for pools created from now on
	closed  atomic.Bool                   // removed by Reload or Close: no new pools
}

func newNode(cn config.Node, shard string, role Role, st *shardState, cfg *config.Config) *Node {
	n := &Node{Name: cn.Name, Addr: cn.Addr, Shard: shard, configured: role, shard: st, probe: make(chan struct{}, 1)}
	n.role.Store(int32(role))
	n.up.Store(true)
	n.replayAge.Store(-1)
	n.poolCfg.Store(cfg)
	empty := map[poolKey]*poolEntry{}
	n.pools.Store(&empty)
	return n
}

// ConfiguredRole is the role the configuration file gives this node.
func (n *Node) ConfiguredRole() Role { return n.configured }

// Role is the detected role; until the first check answers it is the configured role.
func (n *Node) Role() Role { return Role(n.role.Load()) }

// Checked reports whether any health check has answered yet.
func (n *Node) Checked() bool { return n.checked.Load() }

// Up reports whether the last health check succeeded (true before the first check).
func (n *Node) Up() bool { return n.up.Load() }

// Failures is the number of consecutive failed health checks.
func (n *Node) Failures() int { return int(n.failures.Load()) }

// Banned reports whether the node is out of use now: banned by an admin,
// or its circuit breaker is open (see BreakerState).
func (n *Node) Banned() bool { return n.adminBanned() || n.breakerOpen() }

func (n *Node) adminBanned() bool {
	until := n.bannedUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

// BannedUntil is the end of the current admin ban or breaker cool-down,
// whichever is later (zero time when not banned). An open breaker stays
// open after its cool-down until a health check succeeds.
func (n *Node) BannedUntil() time.Time {
	var t time.Time
	if n.adminBanned() {
		t = time.Unix(0, n.bannedUntil.Load())
	}
	if b := n.breakerUntil(); b.After(t) {
		t = b
	}
	return t
}

// Ban takes the node out of use for d (admin command); health failures open
// the breaker instead, which a successful check closes.
func (n *Node) Ban(d time.Duration) { n.bannedUntil.Store(time.Now().Add(d).UnixNano()) }

// Unban lifts a ban, closes the breaker and forgets past failures; a node
// still failing opens its breaker again on its next failed checks.
func (n *Node) Unban() {
	n.bannedUntil.Store(0)
	n.closeBreaker()
	n.failures.Store(0)
}

// Timeline is the WAL timeline a primary reported (0 for replicas / unknown).
func (n *Node) Timeline() uint32 { return n.timeline.Load() }

// LSN is the node's last sampled WAL position: the current WAL write LSN for
// a primary, the replay LSN for a replica.
func (n *Node) LSN() uint64 { return n.lsn.Load() }

// ReplayLSN is the last replay LSN a replica reported (0 when unknown or a primary).
func (n *Node) ReplayLSN() uint64 {
	if n.Role() != RoleReplica {
		return 0
	}
	return n.lsn.Load()
}

// LagKnown reports whether the last lag measurement succeeded.
func (n *Node) LagKnown() bool { return n.lagKnown.Load() }

// LagBytes is the replica's replay distance behind the primary (0 for primaries).
func (n *Node) LagBytes() int64 { return n.lagBytes.Load() }

// LagSeconds is the replica's time lag; zero while the primary has no WAL the
// replica has not replayed (an idle cluster is not lagging).
func (n *Node) LagSeconds() float64 { return time.Duration(n.lagNanos.Load()).Seconds() }

// InRotation reports whether the lag bounds (with hysteresis) allow reads here.
func (n *Node) InRotation() bool { return !n.outOfRot.Load() }

// LastCheck is when the last successful health check answered.
func (n *Node) LastCheck() time.Time {
	t := n.lastCheck.Load()
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, t)
}

// Acquired records that the proxy checked a backend of this node out; it
// feeds the least_conn strategy. Every Acquired must be paired with Released.
func (n *Node) Acquired() { n.active.Add(1) }

// Released records that a backend checked out with Acquired went back.
func (n *Node) Released() { n.active.Add(-1) }

// Active is the number of backends currently checked out (Acquired − Released).
func (n *Node) Active() int64 { return n.active.Load() }

// servesReads reports whether a read may go to this node as a replica
// (floor aside): a checked, healthy replica within the lag bounds.
func (n *Node) servesReads() bool {
	return n.checked.Load() && Role(n.role.Load()) == RoleReplica && n.up.Load() &&
		n.lagKnown.Load() && !n.outOfRot.Load() && !n.Banned()
}

// writable reports whether the node may take writes if elected primary: not
// banned, not known to be in recovery, and not failing beyond the threshold.
func (n *Node) writable(failThreshold int) bool {
	if n.Banned() || Role(n.role.Load()) != RolePrimary {
		return false
	}
	return n.up.Load() || int(n.failures.Load()) < failThreshold
}
