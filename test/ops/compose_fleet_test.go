package ops

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/fleet"
)

// fleetService is what the fleet checks read of a compose service.
type fleetService struct {
	Hostname    string         `yaml:"hostname"`
	Command     []string       `yaml:"command"`
	Volumes     []string       `yaml:"volumes"`
	Ports       []string       `yaml:"ports"`
	DependsOn   any            `yaml:"depends_on"` // a list or a map of conditions
	Healthcheck map[string]any `yaml:"healthcheck"`
}

// The compose fleet is consistent: pgrouter-config pushes the mounted
// deploy/pgrouter.yaml (a valid config with a connection budget) to the etcd
// service once it is healthy, both members serve the same etcd URL after
// that push, each under its own host name and published ports, and
// Prometheus scrapes both. (docker-compose config validates the syntax where
// docker-compose is installed; this checks what it cannot.)
func TestComposeFleetIsConsistent(t *testing.T) {
	var c struct {
		Services map[string]fleetService `yaml:"services"`
	}
	readYAML(t, "docker-compose.yml", &c)
	etcd, ok := c.Services["etcd"]
	if !ok || etcd.Healthcheck == nil {
		t.Fatalf("docker-compose.yml: no etcd service with a healthcheck: %+v", etcd)
	}
	pusher := c.Services["pgrouter-config"]
	if len(pusher.Command) < 5 || pusher.Command[0] != "config" || pusher.Command[1] != "push" {
		t.Fatalf("pgrouter-config does not run `config push FILE --etcd URL`: %v", pusher.Command)
	}
	if !dependsOn(pusher, "etcd", "service_healthy") {
		t.Errorf("pgrouter-config must wait for etcd to be healthy: %v", pusher.DependsOn)
	}
	mounted := ""
	for _, v := range pusher.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == pusher.Command[2] {
			mounted = parts[0]
		}
	}
	if mounted != "./deploy/pgrouter.yaml" {
		t.Fatalf("pgrouter-config pushes %s, which mounts %q; want ./deploy/pgrouter.yaml", pusher.Command[2], mounted)
	}
	cfg, err := config.Load(repoFile("deploy/pgrouter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.PoolBudget <= 0 {
		t.Errorf("deploy/pgrouter.yaml sets no cluster.pool_budget: the two members would not share one budget")
	}
	url := flagValue(pusher.Command, "--etcd")
	endpoints, _, err := fleet.ParseURL(url)
	if err != nil || len(endpoints) != 1 || endpoints[0] != "http://etcd:2379" {
		t.Fatalf("pgrouter-config pushes to %q (%v); want the etcd service on 2379", url, err)
	}
	hosts := map[string]bool{}
	published := map[string]bool{}
	_, metricsPort, _ := net.SplitHostPort(cfg.Metrics.Listen)
	var prom promConfig
	readYAML(t, "deploy/prometheus.yml", &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, name := range []string{"pgrouter", "pgrouter2"} {
		m, ok := c.Services[name]
		if !ok {
			t.Errorf("docker-compose.yml has no member %s", name)
			continue
		}
		if got := flagValue(m.Command, "--config"); got != url {
			t.Errorf("%s serves %q; the config is pushed to %q", name, got, url)
		}
		if !dependsOn(m, "pgrouter-config", "service_completed_successfully") {
			t.Errorf("%s starts before the config is pushed: %v", name, m.DependsOn)
		}
		if m.Hostname == "" || hosts[m.Hostname] {
			t.Errorf("%s: hostname %q missing or shared (SHOW FLEET names members by it)", name, m.Hostname)
		}
		hosts[m.Hostname] = true
		for _, p := range m.Ports {
			host, _, _ := strings.Cut(p, ":")
			if published[host] {
				t.Errorf("%s publishes host port %s twice", name, host)
			}
			published[host] = true
		}
		if !slices.Contains(targets, name+":"+metricsPort) {
			t.Errorf("deploy/prometheus.yml does not scrape %s:%s: %v", name, metricsPort, targets)
		}
	}
}

// dependsOn reports whether s waits for dep in the given condition.
func dependsOn(s fleetService, dep, condition string) bool {
	deps, _ := s.DependsOn.(map[string]any)
	d, ok := deps[dep].(map[string]any)
	return ok && d["condition"] == condition
}

// flagValue is the word after flag in a command ("" when absent).
func flagValue(cmd []string, flag string) string {
	for i, w := range cmd {
		if w == flag && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}
