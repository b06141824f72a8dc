// Package topology is the live view of the cluster: nodes, their detected
// roles, health, replication lag and bans, and the choice of a node for a
// (shard, role) request. An immutable Snapshot is swapped atomically on reload.
package topology

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgrouter/pgrouter/config"
)

// firstCheckTimeout caps the synchronous first check in Start, so a dead
// node delays startup by at most this much.
const firstCheckTimeout = 2 * time.Second

// Topology owns the current Snapshot and the monitors that keep node state fresh.
type Topology struct {
	log       *slog.Logger
	snap      atomic.Pointer[Snapshot]
	failovers atomic.Uint64
	poolCap   atomic.Pointer[int] // nil: pools use their configured size (poolcap.go)

	mu       sync.Mutex // serialises Start, Reload, Close
	shards   map[string]*shardState
	monitors map[*Node]context.CancelFunc
	ctx      context.Context // monitors' parent, set by Start
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closed   bool
}

// New builds the topology for cfg. Call Start to begin monitoring. Until the
// first checks answer, the configured roles are trusted.
func New(cfg *config.Config, log *slog.Logger) (*Topology, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Topology{log: log, shards: map[string]*shardState{}, monitors: map[*Node]context.CancelFunc{}}
	snap, err := buildSnapshot(cfg, newSettings(cfg), nil, nil, t.newShardState)
	if err != nil {
		return nil, err
	}
	t.install(snap)
	return t, nil
}

func (t *Topology) newShardState(name string) *shardState {
	st := newShardState(name, &t.failovers, t.log)
	st.poolCap = &t.poolCap
	return st
}

// install makes snap current and remembers its shard states.
func (t *Topology) install(snap *Snapshot) {
	shards := map[string]*shardState{}
	for _, sh := range snap.Shards {
		shards[sh.Name] = sh.state
	}
	t.shards = shards
	snap.activate()
	t.snap.Store(snap)
}

// Snapshot returns the current immutable view (an atomic load).
func (t *Topology) Snapshot() *Snapshot { return t.snap.Load() }

func (t *Topology) settings() *settings { return t.snap.Load().settings }

// Failovers counts primary changes detected since New (for metrics).
func (t *Topology) Failovers() uint64 { return t.failovers.Load() }

// Start runs a first check of every node (in parallel, bounded by
// min(health.timeout, 2s)) so the view is real when it returns, then
// launches one monitor goroutine per node; they stop when ctx ends or on Close.
// Calling Start again does nothing.
func (t *Topology) Start(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx != nil || t.closed {
		return
	}
	t.ctx, t.cancel = context.WithCancel(ctx)
	t.startMonitors(t.snap.Load().nodes)
}

// startMonitors checks nodes once synchronously, then starts their loops.
// Called with t.mu held.
func (t *Topology) startMonitors(nodes []*Node) {
	st := t.settings()
	mons := make([]*monitor, 0, len(nodes))
	var first sync.WaitGroup
	for _, n := range nodes {
		if _, running := t.monitors[n]; running {
			continue
		}
		m := &monitor{t: t, node: n}
		mons = append(mons, m)
		first.Add(1)
		go func() {
			defer first.Done()
			m.check(t.ctx, st, min(st.timeout, firstCheckTimeout))
		}()
	}
	first.Wait()
	// Replicas checked before their primary in this parallel round measured
	// lag against their own receive LSN; their next check uses the primary's.
	for _, m := range mons {
		mctx, cancel := context.WithCancel(t.ctx)
		t.monitors[m.node] = cancel
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			m.run(mctx)
		}()
	}
}

// Close stops monitors and closes every pool. The last snapshot stays
// readable; nodes refuse to create new pools.
func (t *Topology) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	if t.cancel != nil {
		t.cancel()
	}
	t.mu.Unlock()
	t.wg.Wait()
	for _, n := range t.snap.Load().nodes {
		n.closePools()
	}
}

// Ban bans the node called name for d (admin console, which logs it with the
// client_id of whoever asked).
func (t *Topology) Ban(name string, d time.Duration) error {
	n := t.Snapshot().Node(name)
	if n == nil {
		return fmt.Errorf("topology: no node named %q", name)
	}
	n.Ban(d)
	n.shard.elect(t.settings().failThreshold)
	return nil
}

// Unban lifts the ban of the node called name (admin console, which logs it).
func (t *Topology) Unban(name string) error {
	n := t.Snapshot().Node(name)
	if n == nil {
		return fmt.Errorf("topology: no node named %q", name)
	}
	n.Unban()
	n.shard.elect(t.settings().failThreshold)
	return nil
}

// TripReplica opens the breaker of a replica the proxy could not connect to
// (nothing was sent to it) and counts the retry, so that reads go to other nodes until a health
// check finds it serving again. Primaries are left to their health checks:
// there is no other node to send writes to, and one failed dial under load
// must not stop a shard's writes.
func (t *Topology) TripReplica(n *Node, cause error) {
	if n.Role() != RoleReplica {
		return
	}
	n.brk.retries.Add(1)
	st := t.settings()
	if cool, opened := n.trip(st.breakerCooldown, st.banDuration); opened {
		t.log.Warn("node unreachable: breaker open", "shard", n.Shard, "node", n.Name, "role", n.Role().String(),
			"cooldown", cool.String(), "err", cause.Error())
	}
}
