package fleet

import "github.com/prometheus/client_golang/prometheus"

func (f *Fleet) initMetrics() {
	f.versionGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_config_version",
		Help: "The fleet config version this pgrouter runs."})
	f.refusedGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_config_refused_version",
		Help: "The newest fleet config version this pgrouter refused to apply (0: none); above pgrouter_config_version, it runs an older version than the fleet's."})
	f.upGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_fleet_etcd_up",
		Help: "1 when etcd answered the last request, 0 while it does not (the last applied version keeps serving)."})
	f.membersGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_fleet_members",
		Help: "Live members of the fleet at the last look."})
	f.capGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_fleet_pool_cap",
		Help: "This member's share of cluster.pool_budget per (node, user, database); -1 without a budget."})
	f.fencedGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_fleet_fenced",
		Help: "1 while this member is fenced (cluster.fence: it could not renew its lease, so it holds no backend and refuses new ones)."})
	f.fencesTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_fleet_fences_total",
		Help: "Times this member fenced itself (cluster.fence)."})
	f.upGauge.Set(1)
	f.capGauge.Set(-1)
}

// Collectors are the fleet's metrics, for the instance's registry.
func (f *Fleet) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.versionGauge, f.refusedGauge, f.upGauge, f.membersGauge, f.capGauge, f.fencedGauge, f.fencesTotal}
}
