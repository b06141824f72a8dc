package fleet

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardFleetPanels: the Grafana dashboard (docker-compose.yml) has
// fleet panels, and every fleet metric they name is one a member exports
// (test/ops checks the other panels against a single pgrouter).
func TestDashboardFleetPanels(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/dashboards/pgrouter.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	exported := fleet[0].Scrape()
	fleetMetric := regexp.MustCompile(`pgrouter_(fleet_[a-z_]+|config_(refused_)?version)`)
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range fleetMetric.FindAllString(tg.Expr, -1) {
				used++
				if !strings.Contains(exported, "\n"+m+" ") {
					t.Errorf("panel %q uses %s, which a fleet member does not export", p.Title, m)
				}
			}
		}
	}
	if used < 4 {
		t.Errorf("the dashboard names %d fleet metrics; want the config version, refusals, etcd reachability and budget share", used)
	}
}
