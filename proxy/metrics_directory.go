package proxy

import "github.com/prometheus/client_golang/prometheus"

// dirCollector exports the directory caches' counters of the config in
// force at scrape time, labelled by database and table (bounded by the
// config). A reload builds new directories, so the counters restart.
type dirCollector struct{ srv *Server }

var (
	descDirHits     = prometheus.NewDesc("pgrouter_directory_cache_hits_total", "Directory keys answered from the cache.", []string{"database", "table"}, nil)
	descDirMisses   = prometheus.NewDesc("pgrouter_directory_cache_misses_total", "Directory keys not in the cache (concurrent misses of one key share one lookup).", []string{"database", "table"}, nil)
	descDirLookups  = prometheus.NewDesc("pgrouter_directory_lookups_total", "Lookup queries run on the directory node.", []string{"database", "table"}, nil)
	descDirErrors   = prometheus.NewDesc("pgrouter_directory_lookup_errors_total", "Lookups that failed (unknown key, unknown shard name, node or query errors).", []string{"database", "table"}, nil)
	descDirAssigned = prometheus.NewDesc("pgrouter_directory_assigned_total", "Mappings inserted by auto_assign.", []string{"database", "table"}, nil)
	descDirEntries  = prometheus.NewDesc("pgrouter_directory_cache_entries", "Directory keys cached now.", []string{"database", "table"}, nil)
)

func (c *dirCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDirHits, descDirMisses, descDirLookups, descDirErrors, descDirAssigned, descDirEntries} {
		ch <- d
	}
}

func (c *dirCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.srv.state.Load().dirs {
		for _, st := range d.Stats() {
			l := []string{st.Database, st.Table}
			ch <- prometheus.MustNewConstMetric(descDirHits, prometheus.CounterValue, float64(st.Hits), l...)
			ch <- prometheus.MustNewConstMetric(descDirMisses, prometheus.CounterValue, float64(st.Misses), l...)
			ch <- prometheus.MustNewConstMetric(descDirLookups, prometheus.CounterValue, float64(st.Lookups), l...)
			ch <- prometheus.MustNewConstMetric(descDirErrors, prometheus.CounterValue, float64(st.LookupErrors), l...)
			ch <- prometheus.MustNewConstMetric(descDirAssigned, prometheus.CounterValue, float64(st.Assigned), l...)
			ch <- prometheus.MustNewConstMetric(descDirEntries, prometheus.GaugeValue, float64(st.Entries), l...)
		}
	}
}
