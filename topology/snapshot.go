package topology

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/config"
)

// Snapshot is one immutable configuration of the cluster. Sessions keep the
// snapshot they started a transaction with; the Nodes it points to carry the
// live state, which keeps changing underneath.
type Snapshot struct {
	Config *config.Config
	Shards []*Shard

	settings *settings
	nodes    []*Node
	byName   map[string]*Node
	spread   atomic.Uint64 // rotation of SpreadShard
}

// Shard is one primary with its replicas, as configured.
type Shard struct {
	Index    int
	Name     string
	Nodes    []*Node // configured primary first, then replicas
	Strategy string  // load-balancing strategy for reads (resolved default)

	weights  []int // per Nodes[i], for the weighted strategy (>= 1)
	replicas int   // configured replicas (len(Nodes) - 1)
	state    *shardState

	errNoPrimary   *pgconn.PgError
	errNoReplica   *pgconn.PgError
	errFloorReplay *pgconn.PgError
}

// Nodes lists every node of every shard (for metrics and the admin console).
func (s *Snapshot) Nodes() []*Node { return s.nodes }

// Node looks a node up by name; nil if absent.
func (s *Snapshot) Node(name string) *Node { return s.byName[name] }

// ShardByName returns the shard called name, or nil.
func (s *Snapshot) ShardByName(name string) *Shard {
	for _, sh := range s.Shards {
		if sh.Name == name {
			return sh
		}
	}
	return nil
}

// PrimaryNode is the node Primary() would return now, without the error
// (nil when none is writable); for the admin console.
func (sh *Shard) PrimaryNode() *Node { return sh.primary(0) }

// nodeKey identifies a node across reloads.
type nodeKey struct{ shard, addr, name string }

// buildSnapshot makes a snapshot of cfg, reusing nodes (and their shard
// state) from prev where (shard, addr, name) are unchanged.
func buildSnapshot(cfg *config.Config, st *settings, reuseNodes map[nodeKey]*Node,
	reuseShards map[string]*shardState, mk func(name string) *shardState) (*Snapshot, error) {
	snap := &Snapshot{Config: cfg, settings: st, byName: map[string]*Node{}}
	if len(cfg.Shards) == 0 {
		return nil, fmt.Errorf("topology: no shards configured")
	}
	for i, cs := range cfg.Shards {
		name := cs.Name
		if name == "" {
			name = fmt.Sprintf("shard%d", i)
		}
		ss := reuseShards[name]
		if ss == nil {
			ss = mk(name)
		}
		sh := &Shard{Index: i, Name: name, Strategy: st.strategyFor(cs), state: ss, replicas: len(cs.Replicas)}
		members := append([]config.Node{cs.Primary}, cs.Replicas...)
		for j, cn := range members {
			role := RoleReplica
			if j == 0 {
				role = RolePrimary
			}
			cn.Name = nodeName(cn.Name, name, j)
			if cn.Addr == "" {
				return nil, fmt.Errorf("topology: node %s of shard %s has no addr", cn.Name, name)
			}
			if _, dup := snap.byName[cn.Name]; dup {
				return nil, fmt.Errorf("topology: duplicate node name %q", cn.Name)
			}
			n := reuseNodes[nodeKey{name, cn.Addr, cn.Name}]
			if n == nil || n.configured != role {
				n = newNode(cn, name, role, ss, cfg)
			}
			n.poolCfg.Store(cfg)
			sh.Nodes = append(sh.Nodes, n)
			sh.weights = append(sh.weights, max(cn.Weight, 1))
			snap.byName[cn.Name] = n
			snap.nodes = append(snap.nodes, n)
		}
		sh.makeErrors()
		snap.Shards = append(snap.Shards, sh)
	}
	return snap, nil
}

// activate publishes the shard membership to the shard states (used by the
// monitors' elections). Called once the snapshot is the current one.
func (s *Snapshot) activate() {
	for _, sh := range s.Shards {
		members := sh.Nodes
		sh.state.nodes.Store(&members)
		if cur := sh.state.elected.Load(); cur == nil || !contains(members, cur) {
			sh.state.elected.Store(sh.Nodes[0]) // trust the configuration until checks say otherwise
		}
	}
}

func contains(nodes []*Node, n *Node) bool {
	for _, m := range nodes {
		if m == n {
			return true
		}
	}
	return false
}

func nodeName(name, shard string, i int) string {
	if name != "" {
		return name
	}
	if i == 0 {
		return shard + "-primary"
	}
	return fmt.Sprintf("%s-replica%d", shard, i)
}

// makeErrors pre-builds the client errors of this shard so that failing fast
// allocates nothing.
func (sh *Shard) makeErrors() {
	names := make([]string, 0, len(sh.Nodes))
	for _, n := range sh.Nodes {
		names = append(names, n.Name)
	}
	sh.errNoPrimary = &pgconn.PgError{Severity: "ERROR", Code: pgwire.CannotConnectNow,
		Message: fmt.Sprintf("pgrouter: shard %s has no reachable primary", sh.Name),
		Detail:  "nodes: " + strings.Join(names, ", "),
		Hint:    "The primary is down, banned or in recovery; writes succeed again once a node of the shard is promoted or comes back. Retry later."}
	sh.errNoReplica = &pgconn.PgError{Severity: "ERROR", Code: pgwire.CannotConnectNow,
		Message: fmt.Sprintf("pgrouter: shard %s has no replica within the lag bounds", sh.Name),
		Hint:    "Replicas are down, banned or lagging beyond replicas.max_lag/max_lag_bytes; set replicas.fallback: primary to read from the primary instead, or route this query to the primary."}
	sh.errFloorReplay = &pgconn.PgError{Severity: "ERROR", Code: pgwire.CannotConnectNow,
		Message: fmt.Sprintf("pgrouter: no replica of shard %s has replayed this session's last write yet", sh.Name),
		Hint:    "Read-your-writes needs a replica that caught up with the session's write; retry, route the query to the primary, or set replicas.fallback: primary."}
}
