package ops

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

const dashboardPath = "deploy/grafana/dashboards/pgrouter.json"

// dashboardExprs parses the Grafana dashboard and returns every PromQL
// expression of its panels, by panel title.
func dashboardExprs(t testing.TB) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile(repoFile(dashboardPath))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr       string `json:"expr"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if dash.UID == "" {
		t.Errorf("%s has no uid (provisioning needs one)", dashboardPath)
	}
	out := map[string][]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "prometheus" {
				t.Errorf("panel %q: datasource uid %q, want the provisioned \"prometheus\"", p.Title, tg.Datasource.UID)
			}
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	return out
}

var metricName = regexp.MustCompile(`pgrouter_[a-zA-Z0-9_]+`)

// fleetOnly names the metrics only a fleet member exports (package fleet):
// test/fleet checks the dashboard's panels that use them against a member.
var fleetOnly = regexp.MustCompile(`^pgrouter_(fleet_.*|config_(refused_)?version)$`)

// The dashboard only names metrics pgrouter exports, and covers what the
// issue asks for: traffic per shard/role, p99 latency, pool saturation, lag.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	exprs := dashboardExprs(t)
	// Make every labelled family exist: traffic on both roles and an error.
	c := connect(t, env.AppDSN())
	ctx := context.Background()
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "create table if not exists dashboard_probe(x int)"); err != nil {
		t.Fatal(err)
	}
	c.PgConn().ExecPrepared(ctx, "never_prepared", nil, nil, nil).Read()
	fams := scrape(t)
	exported := map[string]bool{}
	for name, f := range fams {
		exported[name] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}
	all := ""
	for title, list := range exprs {
		for _, e := range list {
			all += e + "\n"
			for _, m := range metricName.FindAllString(e, -1) {
				if !exported[m] && !fleetOnly.MatchString(m) {
					t.Errorf("panel %q uses %s, which /metrics does not export", title, m)
				}
			}
		}
	}
	for _, want := range []string{"pgrouter_queries_total", "pgrouter_query_duration_seconds_bucket", "histogram_quantile(0.99",
		"pgrouter_pool_size", "pgrouter_pool_clients_waiting", "pgrouter_replica_lag_bytes", "pgrouter_replica_lag_seconds"} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard has no query with %s", want)
		}
	}
}
