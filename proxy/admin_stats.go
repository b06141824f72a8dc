package proxy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// statsFamily reports whether SHOW STATS lists a metric family.
func statsFamily(name string) bool {
	switch name {
	case "pgrouter_queries_total", "pgrouter_route_decisions_total", "pgrouter_errors_total",
		"pgrouter_query_duration_seconds", "pgrouter_pool_wait_seconds", "pgrouter_pinned_sessions_total":
		return true
	}
	return false
}

// showStats answers SHOW STATS as stat/value rows: totals first, then the
// routing counters per shard/role/kind, decisions, errors by SQLSTATE and
// latency (count, total seconds, average ms) per shard/role, all read from
// the same counters Prometheus scrapes.
func (ss *session) showStats() {
	srv := ss.srv
	all, dbs := srv.pause.state()
	paused := strings.Join(dbs, ",")
	if all {
		paused = "all"
	}
	rows := [][]string{{"clients", itoa(int(srv.clients.Load()))}, {"clients_paused", strconv.FormatInt(srv.pause.waiting.Load(), 10)},
		{"paused", paused}, {"queries_total", u64(srv.queriesTotal())}, {"failovers_total", u64(srv.Topology().Failovers())}}
	var dbNames []string
	routers := srv.state.Load().routers
	for db := range routers {
		dbNames = append(dbNames, db)
	}
	sort.Strings(dbNames)
	for _, db := range dbNames {
		cs := routers[db].Stats()
		rows = append(rows, []string{"plan_cache_hits" + labels("database", db), u64(cs.Hits)},
			[]string{"plan_cache_misses" + labels("database", db), u64(cs.Misses)})
	}
	fams, err := srv.Metrics.Registry.Gather()
	if err != nil {
		srv.log.Warn("SHOW STATS: gathering metrics", "err", err)
	}
	for _, f := range fams {
		if statsFamily(f.GetName()) {
			rows = append(rows, statRows(f)...)
		}
	}
	ss.adminTable([]string{"stat", "value"}, rows)
}

// statRows turns one metric family into rows: counters as they are,
// histograms as _count, _sum (seconds) and avg_ms.
func statRows(f *dto.MetricFamily) [][]string {
	name := strings.TrimPrefix(f.GetName(), "pgrouter_")
	var rows [][]string
	for _, m := range f.GetMetric() {
		var kv []string
		for _, l := range m.GetLabel() {
			kv = append(kv, l.GetName(), l.GetValue())
		}
		lb := ""
		if len(kv) > 0 {
			lb = labels(kv...)
		}
		switch {
		case m.GetCounter() != nil:
			rows = append(rows, []string{name + lb, strconv.FormatFloat(m.GetCounter().GetValue(), 'f', -1, 64)})
		case m.GetHistogram() != nil:
			h := m.GetHistogram()
			avg := 0.0
			if h.GetSampleCount() > 0 {
				avg = h.GetSampleSum() / float64(h.GetSampleCount()) * 1000
			}
			rows = append(rows, []string{name + "_count" + lb, u64(h.GetSampleCount())},
				[]string{name + "_sum" + lb, strconv.FormatFloat(h.GetSampleSum(), 'f', 6, 64)},
				[]string{name + "_avg_ms" + lb, fmt.Sprintf("%.3f", avg)})
		}
	}
	return rows
}
