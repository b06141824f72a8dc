package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/topology"
)

// topoCollector exports node and pool state straight from the live snapshot
// at scrape time (nothing to keep in sync, labels bounded by the config).
type topoCollector struct{ topo *topology.Topology }

var (
	descLagBytes = prometheus.NewDesc("pgrouter_replica_lag_bytes", "Replica replay lag behind its primary in bytes (-1 unknown).", []string{"shard", "node"}, nil)
	descLagSecs  = prometheus.NewDesc("pgrouter_replica_lag_seconds", "Replica replay lag in seconds (0 when the primary is idle; -1 unknown).", []string{"shard", "node"}, nil)
	descUp       = prometheus.NewDesc("pgrouter_node_up", "1 when the node answered its last health check.", []string{"shard", "node"}, nil)
	descBanned   = prometheus.NewDesc("pgrouter_node_banned", "1 while the node is banned.", []string{"shard", "node"}, nil)
	descRole     = prometheus.NewDesc("pgrouter_node_role", "Detected role of the node (1 for the labelled role).", []string{"shard", "node", "role"}, nil)
	descFailover = prometheus.NewDesc("pgrouter_failovers_total", "Primary changes detected.", nil, nil)
	descPool     = prometheus.NewDesc("pgrouter_pool_servers", "Backend connections per pool by state.", []string{"node", "pool", "state"}, nil)
	descWaiting  = prometheus.NewDesc("pgrouter_pool_clients_waiting", "Clients waiting for a backend.", []string{"node", "pool"}, nil)
	descTimeouts = prometheus.NewDesc("pgrouter_pool_acquire_timeouts_total", "Acquire timeouts (53300).", []string{"node", "pool"}, nil)
)

func (c *topoCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagBytes, descLagSecs, descUp, descBanned, descRole, descFailover, descPool, descWaiting, descTimeouts} {
		ch <- d
	}
}

func (c *topoCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.topo.Snapshot()
	ch <- prometheus.MustNewConstMetric(descFailover, prometheus.CounterValue, float64(c.topo.Failovers()))
	for _, sh := range snap.Shards {
		for _, n := range sh.Nodes {
			if n.Role() == topology.RoleReplica {
				lb, ls := float64(n.LagBytes()), n.LagSeconds()
				if !n.LagKnown() {
					lb, ls = -1, -1
				}
				ch <- prometheus.MustNewConstMetric(descLagBytes, prometheus.GaugeValue, lb, sh.Name, n.Name)
				ch <- prometheus.MustNewConstMetric(descLagSecs, prometheus.GaugeValue, ls, sh.Name, n.Name)
			}
			ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(n.Up()), sh.Name, n.Name)
			ch <- prometheus.MustNewConstMetric(descBanned, prometheus.GaugeValue, b2f(n.Banned()), sh.Name, n.Name)
			ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, 1, sh.Name, n.Name, n.Role().String())
			for _, p := range n.Pools() {
				st, name := p.Pool.Stats(), p.User+"/"+p.Database
				ch <- prometheus.MustNewConstMetric(descPool, prometheus.GaugeValue, float64(st.Active), n.Name, name, "active")
				ch <- prometheus.MustNewConstMetric(descPool, prometheus.GaugeValue, float64(st.Idle), n.Name, name, "idle")
				ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(st.Waiting), n.Name, name)
				ch <- prometheus.MustNewConstMetric(descTimeouts, prometheus.CounterValue, float64(st.AcquireTimeouts), n.Name, name)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
