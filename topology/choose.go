package topology

import (
	"fmt"
	"math/rand/v2"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

// Reasons Replica gives for its choice (bounded set: usable as a metric label).
const (
	ReasonReplica        = "replica"          // a replica within bounds and floor
	ReasonLagFallback    = "lag_fallback"     // no replica healthy/within lag: the primary
	ReasonReadYourWrites = "read_your_writes" // no replica has reached the session's floor: the primary
	ReasonNoReplicas     = "no_replicas"      // the shard has no replicas configured: the primary
)

// Load-balancing strategies for reads.
const (
	StrategyRoundRobin = "round_robin"
	StrategyRandom     = "random"
	StrategyLeastConn  = "least_conn"
	StrategyWeighted   = "weighted"
)

func (s *Snapshot) shard(i int) (*Shard, error) {
	if i < 0 || i >= len(s.Shards) {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: pgwire.InternalError,
			Message: fmt.Sprintf("pgrouter: shard index %d out of range (%d shards)", i, len(s.Shards))}
	}
	return s.Shards[i], nil
}

// Primary returns the node currently acting as primary of shard, or an error
// (*pgconn.PgError 57P03) when the shard has no reachable primary. It never
// blocks: it reads the monitors' latest verdict.
func (s *Snapshot) Primary(shard int) (*Node, error) {
	sh, err := s.shard(shard)
	if err != nil {
		return nil, err
	}
	if n := sh.primary(s.settings.failThreshold); n != nil {
		return n, nil
	}
	return nil, sh.errNoPrimary
}

// primary returns the elected node if it may take writes now. Before its
// first check answers, the configured primary is trusted unless banned.
func (sh *Shard) primary(failThreshold int) *Node {
	n := sh.state.elected.Load()
	if n == nil {
		return nil
	}
	if !n.checked.Load() {
		if n.Banned() || !n.up.Load() {
			return nil
		}
		return n
	}
	if n.writable(failThreshold) {
		return n
	}
	return nil
}

// Replica picks a node for a read on shard honouring lag bounds, bans, the LB
// strategy and floor; it falls back to the primary per config. reason says
// why (Reason* constants). A floor whose LSN is not known yet is resolved
// here; while it cannot be, the read goes to the primary whatever
// replicas.fallback says (read-your-writes is a correctness rule, the
// fallback setting is about lag). Lock-free and allocation-free.
func (s *Snapshot) Replica(shard int, floor Floor) (n *Node, reason string, err error) {
	sh, err := s.shard(shard)
	if err != nil {
		return nil, "", err
	}
	if sh.replicas == 0 {
		return s.fallbackPrimary(sh, ReasonNoReplicas)
	}
	floorLSN := floor.LSN
	if floor.Seq != 0 && floorLSN == 0 {
		lsn, ok := sh.state.resolve(floor.Seq)
		if !ok {
			return s.rywPrimary(sh)
		}
		floorLSN = lsn
	}
	count, healthy := sh.countEligible(floorLSN)
	if count > 0 {
		// nil only when every candidate went away between counting and picking.
		if n := sh.pick(count, floorLSN); n != nil {
			return n, ReasonReplica, nil
		}
	}
	if healthy > 0 && floorLSN != 0 {
		return s.rywPrimary(sh)
	}
	if s.settings.fallbackError {
		return nil, "", sh.errNoReplica
	}
	return s.fallbackPrimary(sh, ReasonLagFallback)
}

// countEligible counts replicas that may serve reads (healthy) and, of those,
// the ones that reached floorLSN.
func (sh *Shard) countEligible(floorLSN uint64) (count, healthy int) {
	for _, m := range sh.Nodes {
		if m.servesReads() {
			healthy++
			if m.lsn.Load() >= floorLSN {
				count++
			}
		}
	}
	return count, healthy
}

func (s *Snapshot) fallbackPrimary(sh *Shard, reason string) (*Node, string, error) {
	if n := sh.primary(s.settings.failThreshold); n != nil {
		return n, reason, nil
	}
	return nil, "", sh.errNoPrimary
}

func (s *Snapshot) rywPrimary(sh *Shard) (*Node, string, error) {
	if n := sh.primary(s.settings.failThreshold); n != nil {
		return n, ReasonReadYourWrites, nil
	}
	return nil, "", sh.errFloorReplay
}

func (n *Node) eligible(floorLSN uint64) bool {
	return n.servesReads() && n.lsn.Load() >= floorLSN
}

// pick applies the shard's strategy to the count eligible nodes. Node state
// may change between counting and picking; then the last eligible node seen
// is returned, or nil when none is left.
func (sh *Shard) pick(count int, floorLSN uint64) *Node {
	switch sh.Strategy {
	case StrategyRandom:
		return sh.kth(rand.IntN(count), floorLSN)
	case StrategyLeastConn:
		return sh.leastConn(floorLSN)
	case StrategyWeighted:
		return sh.weighted(floorLSN)
	default:
		return sh.kth(int(sh.state.rr.Add(1)%uint64(count)), floorLSN)
	}
}

// kth returns the k-th (from 0) eligible node.
func (sh *Shard) kth(k int, floorLSN uint64) *Node {
	var last *Node
	for _, n := range sh.Nodes {
		if !n.eligible(floorLSN) {
			continue
		}
		if k == 0 {
			return n
		}
		k--
		last = n
	}
	return last
}

// leastConn returns the eligible node with the fewest checked-out backends;
// ties rotate so that an idle shard still spreads its reads.
func (sh *Shard) leastConn(floorLSN uint64) *Node {
	start := int(sh.state.rr.Add(1) % uint64(len(sh.Nodes)))
	var best *Node
	for i := range sh.Nodes {
		n := sh.Nodes[(start+i)%len(sh.Nodes)]
		if n.eligible(floorLSN) && (best == nil || n.active.Load() < best.active.Load()) {
			best = n
		}
	}
	return best
}

// weighted is weighted random: node i is chosen with probability
// weight_i / Σ weights of the eligible nodes.
func (sh *Shard) weighted(floorLSN uint64) *Node {
	total := 0
	for i, n := range sh.Nodes {
		if n.eligible(floorLSN) {
			total += sh.weights[i]
		}
	}
	if total == 0 {
		return nil
	}
	r := rand.IntN(total)
	var last *Node
	for i, n := range sh.Nodes {
		if !n.eligible(floorLSN) {
			continue
		}
		last = n
		if r < sh.weights[i] {
			return n
		}
		r -= sh.weights[i]
	}
	return last
}
