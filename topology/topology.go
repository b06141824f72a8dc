// Package topology is the live view of the cluster: nodes, their detected
// roles, health, replication lag and bans, and the choice of a node for a
// (shard, role) request. An immutable Snapshot is swapped atomically on reload.
package topology

import (
	"context"
	"log/slog"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/pool"
)

// Topology owns the current Snapshot and the monitors that keep node state fresh.
type Topology struct{}

// New builds the topology for cfg. Call Start to begin monitoring.
func New(cfg *config.Config, log *slog.Logger) (*Topology, error) { panic("todo") }

// Start launches the health, role and lag monitors; they stop when ctx ends.
func (t *Topology) Start(ctx context.Context) { panic("todo") }

// Snapshot returns the current immutable view.
func (t *Topology) Snapshot() *Snapshot { panic("todo") }

// Close stops monitors and closes every pool.
func (t *Topology) Close() { panic("todo") }

// Snapshot is one immutable configuration of the cluster.
type Snapshot struct {
	Config *config.Config
	Shards []*Shard
}

// Shard is one primary with its replicas, as configured.
type Shard struct {
	Index int
	Name  string
	Nodes []*Node // configured primary first, then replicas
}

// Node is one Postgres server; its live state is updated by the monitors.
type Node struct {
	Name  string
	Addr  string
	Shard string
}

// Pool returns the backend pool for (this node, user, database), creating it on first use.
func (n *Node) Pool(u *config.User, db *config.Database) *pool.Pool { panic("todo") }

// Floor is a read-your-writes token: reads must go to a node whose replay
// position has reached it. The zero Floor means "no constraint".
type Floor struct{ Seq, LSN uint64 }

// Primary returns the node currently acting as primary of shard, or an error
// (*pgconn.PgError) when the shard has no reachable primary.
func (s *Snapshot) Primary(shard int) (*Node, error) { panic("todo") }

// Replica picks a node for a read on shard honouring lag bounds, bans, the LB
// strategy and floor; it falls back to the primary per config. reason says why.
func (s *Snapshot) Replica(shard int, floor Floor) (n *Node, reason string, err error) { panic("todo") }

// WriteFloor returns the floor a client must wait for after a write commits on shard now.
func (s *Snapshot) WriteFloor(shard int) Floor { panic("todo") }
