package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/pool"
	"github.com/pgrouter/pgrouter/topology"
)

// topoCollector exports node, pool and session state straight from the live
// snapshot and session registry at scrape time (nothing to keep in sync,
// labels bounded by the config).
type topoCollector struct {
	topo *topology.Topology
	srv  *Server
}

var (
	descLagBytes = prometheus.NewDesc("pgrouter_replica_lag_bytes", "Replica replay lag behind its primary in bytes (-1 unknown).", []string{"shard", "node"}, nil)
	descLagSecs  = prometheus.NewDesc("pgrouter_replica_lag_seconds", "Replica replay lag in seconds (0 when the primary is idle; -1 unknown).", []string{"shard", "node"}, nil)
	descUp       = prometheus.NewDesc("pgrouter_node_up", "1 when the node answered its last health check.", []string{"shard", "node"}, nil)
	descBanned   = prometheus.NewDesc("pgrouter_node_banned", "1 while the node is banned.", []string{"shard", "node"}, nil)
	descInRot    = prometheus.NewDesc("pgrouter_node_in_rotation", "0 while the node is over a lag bound (replicas out of read rotation; hysteresis: back under half of it).", []string{"shard", "node"}, nil)
	descRole     = prometheus.NewDesc("pgrouter_node_role", "Detected role of the node (1 for the labelled role).", []string{"shard", "node", "role"}, nil)
	descFailover = prometheus.NewDesc("pgrouter_failovers_total", "Primary changes detected.", nil, nil)
	descPool     = prometheus.NewDesc("pgrouter_pool_servers", "Backend connections per pool by state (total includes dials in progress).", []string{"node", "pool", "state"}, nil)
	descWaiting  = prometheus.NewDesc("pgrouter_pool_clients_waiting", "Clients waiting for a backend of the pool.", []string{"node", "pool"}, nil)
	descClActive = prometheus.NewDesc("pgrouter_pool_clients_active", "Clients holding a backend of the pool.", []string{"node", "pool"}, nil)
	descPoolSize = prometheus.NewDesc("pgrouter_pool_size", "Configured maximum backend connections of the pool (pool.size).", []string{"node", "pool"}, nil)
	descTimeouts = prometheus.NewDesc("pgrouter_pool_acquire_timeouts_total", "Acquire timeouts (53300).", []string{"node", "pool"}, nil)
	descActive   = prometheus.NewDesc("pgrouter_clients_active", "Clients holding a backend right now (in a statement or transaction).", nil, nil)
	descBreaker  = prometheus.NewDesc("pgrouter_node_breaker_state", "Circuit breaker state of the node (1 for the labelled state: closed, open, half_open).", []string{"shard", "node", "state"}, nil)
	descBrkTrans = prometheus.NewDesc("pgrouter_node_breaker_transitions_total", "Circuit breaker transitions of the node, by the state it went to (open, closed).", []string{"shard", "node", "to"}, nil)
	descRetries  = prometheus.NewDesc("pgrouter_node_dial_retries_total", "Reads sent to another node because this replica could not be dialled (nothing had reached it).", []string{"shard", "node"}, nil)
	descQFull    = prometheus.NewDesc("pgrouter_pool_queue_full_total", "Acquires refused at once (53300) because pool.max_waiters clients were already waiting.", []string{"node", "pool"}, nil)
	descPinned   = prometheus.NewDesc("pgrouter_pinned_sessions", "Clients pinned to their backend right now because of session state.", nil, nil)
)

func (c *topoCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagBytes, descLagSecs, descUp, descBanned, descInRot, descRole, descFailover,
		descPool, descWaiting, descClActive, descPoolSize, descTimeouts, descActive, descPinned, descBreaker, descBrkTrans, descRetries, descQFull} {
		ch <- d
	}
}

func (c *topoCollector) Collect(ch chan<- prometheus.Metric) {
	holding, active, pinned := c.sessionCounts()
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(descPinned, prometheus.GaugeValue, float64(pinned))
	ch <- prometheus.MustNewConstMetric(descFailover, prometheus.CounterValue, float64(c.topo.Failovers()))
	size := float64(c.srv.Config().Pool.Size)
	snap := c.topo.Snapshot()
	for _, sh := range snap.Shards {
		for _, n := range sh.Nodes {
			c.collectNode(ch, sh.Name, n)
			for _, p := range n.Pools() {
				st, name := p.Pool.Stats(), p.User+"/"+p.Database
				ch <- prometheus.MustNewConstMetric(descPool, prometheus.GaugeValue, float64(st.Active), n.Name, name, "active")
				ch <- prometheus.MustNewConstMetric(descPool, prometheus.GaugeValue, float64(st.Idle), n.Name, name, "idle")
				ch <- prometheus.MustNewConstMetric(descPool, prometheus.GaugeValue, float64(st.Total), n.Name, name, "total")
				ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(st.Waiting), n.Name, name)
				ch <- prometheus.MustNewConstMetric(descClActive, prometheus.GaugeValue, float64(holding[p.Pool]), n.Name, name)
				ch <- prometheus.MustNewConstMetric(descPoolSize, prometheus.GaugeValue, size, n.Name, name)
				ch <- prometheus.MustNewConstMetric(descTimeouts, prometheus.CounterValue, float64(st.AcquireTimeouts), n.Name, name)
				ch <- prometheus.MustNewConstMetric(descQFull, prometheus.CounterValue, float64(st.QueueFull), n.Name, name)
			}
		}
	}
}

func (c *topoCollector) collectNode(ch chan<- prometheus.Metric, shard string, n *topology.Node) {
	if n.Role() == topology.RoleReplica {
		lb, ls := float64(n.LagBytes()), n.LagSeconds()
		if !n.LagKnown() {
			lb, ls = -1, -1
		}
		ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, lb, shard, n.Name)
		ch <- prometheus.MustNewConstMetric(descLagSecs, prometheus.GaugeValue, ls, shard, n.Name)
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(n.Up()), shard, n.Name)
	ch <- prometheus.MustNewConstMetric(descBanned, prometheus.GaugeValue, b2f(n.Banned()), shard, n.Name)
	ch <- prometheus.MustNewConstMetric(descInRot, prometheus.GaugeValue, b2f(n.InRotation()), shard, n.Name)
	ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, 1, shard, n.Name, n.Role().String())
	ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, 1, shard, n.Name, n.BreakerState().String())
	opened, closed := n.BreakerTransitions()
	ch <- prometheus.MustNewConstMetric(descBrkTrans, prometheus.CounterValue, float64(opened), shard, n.Name, "open")
	ch <- prometheus.MustNewConstMetric(descBrkTrans, prometheus.CounterValue, float64(closed), shard, n.Name, "closed")
	ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(n.DialRetries()), shard, n.Name)
}

// sessionCounts walks the session registry: clients holding a backend, per
// pool and in all, and clients pinned to their backend.
func (c *topoCollector) sessionCounts() (holding map[*pool.Pool]int, active, pinned int) {
	holding = map[*pool.Pool]int{}
	for _, s := range c.srv.Sessions() {
		if b := s.running.Load(); b != nil {
			holding[b.pool]++
			active++
		}
		if s.pinnedReason.Load() != nil {
			pinned++
		}
	}
	return holding, active, pinned
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
