package reshard

import "github.com/prometheus/client_golang/prometheus"

// metrics are the engine's pgrouter_reshard_* series (the cutover's held
// time is proxy's pgrouter_reshard_held_write_seconds).
type metrics struct {
	rowsCopied prometheus.Counter
	lagBytes   prometheus.Gauge
	phase      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rowsCopied: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_reshard_rows_copied_total",
			Help: "Rows the reshard engine copied to target shards (a chunk redone after a restart counts again)."}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_reshard_lag_bytes",
			Help: "WAL bytes the catch-up is behind its source shards (largest over sources)."}),
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgrouter_reshard_phase",
			Help: "1 for the phase the last reshard is in (copy, catchup, cutover, cleanup, done, aborted), 0 for the others."}, []string{"phase"}),
	}
	reg.MustRegister(m.rowsCopied, m.lagBytes, m.phase)
	return m
}

func (m *metrics) setPhase(p Phase) {
	for _, q := range phases {
		v := 0.0
		if q == p {
			v = 1
		}
		m.phase.WithLabelValues(string(q)).Set(v)
	}
}
