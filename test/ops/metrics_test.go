package ops

import (
	"context"
	"fmt"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// Counters move with traffic, gauges describe the live topology, and no
// label carries query text.
func TestMetricsMoveWithTraffic(t *testing.T) {
	ctx := context.Background()
	c := connect(t, env.AppDSN())
	single := map[string]string{"shard": "shard0", "kind": "single"}
	replicaQ := map[string]string{"shard": "shard0", "role": "replica", "kind": "single"}
	primaryQ := map[string]string{"shard": "shard0", "role": "primary", "kind": "single"}
	byRole := func(role string) map[string]string { return map[string]string{"shard": "shard0", "role": role} }
	hits := map[string]string{"database": "app"}
	e26000 := map[string]string{"sqlstate": "26000"}

	before := scrape(t)
	// Simple protocol with different literals: one shape, so the plan cache hits.
	for i := 0; i < 20; i++ {
		if _, err := c.Exec(ctx, fmt.Sprintf("select %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Exec(ctx, "create table if not exists metrics_probe(x int)"); err != nil {
		t.Fatal(err)
	}
	// Bind to a statement that was never prepared: refused by pgrouter itself.
	if err := c.PgConn().ExecPrepared(ctx, "never_prepared", nil, nil, nil).Read().Err; err == nil {
		t.Fatal("Bind to an unknown statement succeeded")
	}
	after := scrape(t)

	for _, m := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"pgrouter_queries_total", replicaQ, 20},
		{"pgrouter_queries_total", primaryQ, 1},
		{"pgrouter_queries_total", single, 21},
		{"pgrouter_route_decisions_total", map[string]string{"reason": "replica"}, 20},
		{"pgrouter_route_decisions_total", map[string]string{"reason": "primary"}, 1},
		{"pgrouter_query_duration_seconds", byRole("replica"), 20},
		{"pgrouter_query_duration_seconds", byRole("primary"), 1},
		{"pgrouter_plan_cache_hits_total", hits, 15},
		{"pgrouter_pool_wait_seconds", nil, 21},
		{"pgrouter_errors_total", e26000, 1},
	} {
		b, _ := sample(before, m.name, m.labels)
		a, ok := sample(after, m.name, m.labels)
		if !ok || a-b < m.min {
			t.Errorf("%s%v: %v → %v (present %v), want +%v", m.name, m.labels, b, a, ok, m.min)
		}
	}
	for _, g := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pgrouter_node_up", map[string]string{"node": primary()}, 1},
		{"pgrouter_node_up", map[string]string{"node": replica1()}, 1},
		{"pgrouter_node_banned", map[string]string{"node": replica1()}, 0},
		{"pgrouter_node_in_rotation", map[string]string{"node": replica1()}, 1},
		{"pgrouter_node_role", map[string]string{"node": primary(), "role": "primary"}, 1},
		{"pgrouter_node_role", map[string]string{"node": replica1(), "role": "replica"}, 1},
		{"pgrouter_failovers_total", nil, 0},
		{"pgrouter_clients_paused", nil, 0},
		{"pgrouter_pool_size", map[string]string{"node": replica1(), "pool": "app/app"}, 10},
		{"pgrouter_pool_clients_waiting", map[string]string{"node": replica1(), "pool": "app/app"}, 0},
		{"pgrouter_pool_acquire_timeouts_total", map[string]string{"node": replica1(), "pool": "app/app"}, 0},
	} {
		if v, ok := sample(after, g.name, g.labels); !ok || v != g.want {
			t.Errorf("%s%v = %v (present %v), want %v", g.name, g.labels, v, ok, g.want)
		}
	}
	if v, ok := sample(after, "pgrouter_replica_lag_bytes", map[string]string{"shard": "shard0", "node": replica1()}); !ok || v < 0 {
		t.Errorf("pgrouter_replica_lag_bytes{%s} = %v (present %v), want a known lag ≥ 0", replica1(), v, ok)
	}
	if _, ok := sample(after, "pgrouter_replica_lag_seconds", map[string]string{"node": replica1()}); !ok {
		t.Errorf("pgrouter_replica_lag_seconds{%s} missing", replica1())
	}
	if _, ok := sample(after, "pgrouter_replica_lag_bytes", map[string]string{"node": primary()}); ok {
		t.Error("a primary has a replica lag series")
	}
	if v, _ := sample(after, "pgrouter_pool_servers", map[string]string{"node": replica1(), "state": "total"}); v < 1 {
		t.Errorf("pgrouter_pool_servers{%s,total} = %v, want ≥ 1", replica1(), v)
	}
	if v, _ := sample(after, "pgrouter_clients", nil); v < 1 {
		t.Errorf("pgrouter_clients = %v with a client connected", v)
	}
	checkLabelsBounded(t, after)
}

// checkLabelsBounded fails on label values that look like SQL: labels must
// stay bounded (shard, node, role, pool, …), never statement text.
func checkLabelsBounded(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for name, f := range fams {
		if !strings.HasPrefix(name, "pgrouter_") {
			t.Errorf("metric %s lacks the pgrouter_ prefix", name)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := strings.ToLower(l.GetValue())
				if strings.Contains(v, "select") || strings.Contains(v, "create") || strings.Contains(v, " ") || len(v) > 64 {
					t.Errorf("%s{%s=%q}: label looks like query text", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}
