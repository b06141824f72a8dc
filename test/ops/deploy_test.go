package ops

import (
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pgrouter/pgrouter/config"
)

// compose is the part of docker-compose.yml the checks below read.
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
	} `yaml:"services"`
}

// promConfig is the part of deploy/prometheus.yml the checks read.
type promConfig struct {
	ScrapeConfigs []struct {
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func readYAML(t *testing.T, rel string, into any) {
	t.Helper()
	raw, err := os.ReadFile(repoFile(rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// There is no Docker engine in CI, so the compose deployment is kept
// consistent by reading it: every mounted file exists, pgrouter's config
// names compose services, Prometheus scrapes pgrouter's metrics port and
// Grafana's provisioning points at Prometheus and the mounted dashboards.
func TestComposeDeploymentIsConsistent(t *testing.T) {
	var c compose
	readYAML(t, "docker-compose.yml", &c)
	for _, s := range []string{"shard0-primary", "shard0-replica", "shard1-primary", "shard1-replica", "pgrouter", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("docker-compose.yml has no service %s", s)
		}
	}
	mounts := map[string]string{} // container path → repo path
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if !strings.HasPrefix(parts[0], "./") {
				continue
			}
			if _, err := os.Stat(repoFile(parts[0])); err != nil {
				t.Errorf("service %s mounts %s: %v", name, parts[0], err)
			}
			mounts[parts[1]] = parts[0]
		}
		if strings.Contains(name, "replica") {
			if p := s.Environment["PRIMARY_HOST"]; c.Services[p].Image == "" {
				t.Errorf("replica %s clones PRIMARY_HOST %q, not a service", name, p)
			}
		}
	}
	cfg, err := config.Load(repoFile("deploy/pgrouter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range cfg.Shards {
		for _, n := range append([]config.Node{sh.Primary}, sh.Replicas...) {
			host, port, _ := net.SplitHostPort(n.Addr)
			if _, ok := c.Services[host]; !ok || port != "5432" {
				t.Errorf("deploy/pgrouter.yaml node %s at %s: not a compose service on 5432", n.Name, n.Addr)
			}
		}
	}
	_, metricsPort, _ := net.SplitHostPort(cfg.Metrics.Listen)
	if !strings.Contains(strings.Join(c.Services["pgrouter"].Ports, ","), metricsPort+":"+metricsPort) {
		t.Errorf("pgrouter's metrics port %s is not published: %v", metricsPort, c.Services["pgrouter"].Ports)
	}
	var prom promConfig
	readYAML(t, "deploy/prometheus.yml", &prom)
	if len(prom.ScrapeConfigs) == 0 || len(prom.ScrapeConfigs[0].StaticConfigs) == 0 ||
		strings.Join(prom.ScrapeConfigs[0].StaticConfigs[0].Targets, ",") != "pgrouter:"+metricsPort {
		t.Errorf("deploy/prometheus.yml does not scrape pgrouter:%s: %+v", metricsPort, prom)
	}
	if mounts["/etc/prometheus/prometheus.yml"] != "./deploy/prometheus.yml" {
		t.Errorf("prometheus config mount: %v", mounts)
	}
	checkGrafanaProvisioning(t, c, mounts)
}

func checkGrafanaProvisioning(t *testing.T, c compose, mounts map[string]string) {
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != "prometheus" || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("grafana datasource: %+v", ds)
	}
	u, err := url.Parse(ds.Datasources[0].URL)
	if err != nil || u.Hostname() != "prometheus" || u.Port() != "9090" {
		t.Errorf("grafana datasource URL %q is not the prometheus service", ds.Datasources[0].URL)
	}
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/pgrouter.yml", &dp)
	if len(dp.Providers) != 1 || mounts[dp.Providers[0].Options.Path] != "./deploy/grafana/dashboards" {
		t.Errorf("dashboard provider path %+v is not where deploy/grafana/dashboards is mounted (%v)", dp, mounts)
	}
	if mounts["/etc/grafana/provisioning"] != "./deploy/grafana/provisioning" {
		t.Errorf("grafana provisioning mount: %v", mounts)
	}
	home := c.Services["grafana"].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	if home != dp.Providers[0].Options.Path+"/pgrouter.json" {
		t.Errorf("grafana home dashboard %q", home)
	}
}
