package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// promServer is a real Prometheus subprocess scraping pgrouter.
type promServer struct {
	addr string
	log  string
}

// startPrometheus runs the Debian prometheus binary with a config scraping
// the proxy's metrics every 200ms; it is killed when the test ends.
func startPrometheus(t *testing.T) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("the prometheus binary is not installed: run `make deps` as root (Debian package prometheus); this test needs a real Prometheus")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n  evaluation_interval: 1s\n"+
		"scrape_configs:\n  - job_name: pgrouter\n    static_configs:\n      - targets: [%q]\n", env.Proxy.MetricsAddr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p := &promServer{addr: addr, log: logPath}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	eventually(t, 60*time.Second, "prometheus ready", func() error {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s\n%s", resp.Status, p.logTail())
		}
		return nil
	})
	return p
}

func (p *promServer) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// promSample is one element of an instant-vector answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float(t testing.TB) float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", s.Value, err)
	}
	return v
}

// query runs an instant PromQL query; an error means Prometheus refused it.
func (p *promServer) query(expr string) ([]promSample, error) {
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, ans.Error)
	}
	if ans.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %s", expr, ans.Data.ResultType)
	}
	return ans.Data.Result, nil
}

// A real Prometheus scrapes pgrouter and answers PromQL for the lag gauge
// of a replica whose replay is paused; the dashboard's queries run on it.
func TestRealPrometheusScrapesReplicaLag(t *testing.T) {
	prom := startPrometheus(t)
	ctx := context.Background()
	eventually(t, 30*time.Second, "pgrouter scraped", func() error {
		res, err := prom.query(`up{job="pgrouter"}`)
		if err != nil {
			return err
		}
		if len(res) != 1 || res[0].float(t) != 1 {
			return fmt.Errorf("up = %v\n%s", res, prom.logTail())
		}
		return nil
	})

	r1 := env.Cluster.Shards[0].Replicas[0]
	p := env.Cluster.Shards[0].Primary
	if err := r1.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r1.ResumeReplay(context.Background()) })
	if err := p.Exec(ctx, "create table if not exists prom_lag(x int); insert into prom_lag select generate_series(1, 20000)"); err != nil {
		t.Fatal(err)
	}
	lagQuery := fmt.Sprintf(`pgrouter_replica_lag_bytes{node=%q}`, replica1())
	var lag float64
	eventually(t, 60*time.Second, "Prometheus reports the paused replica's lag", func() error {
		res, err := prom.query(lagQuery)
		if err != nil {
			return err
		}
		if len(res) != 1 {
			return fmt.Errorf("%s: %d series", lagQuery, len(res))
		}
		if lag = res[0].float(t); lag <= 0 {
			return fmt.Errorf("%s = %v", lagQuery, lag)
		}
		if res[0].Metric["shard"] != "shard0" {
			return fmt.Errorf("series labels %v", res[0].Metric)
		}
		return nil
	})
	t.Logf("%s = %.0f bytes", lagQuery, lag)
	if err := r1.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "lag back under 64 kB after resume", func() error {
		res, err := prom.query(lagQuery)
		if err != nil {
			return err
		}
		if len(res) != 1 || res[0].float(t) >= 64<<10 {
			return fmt.Errorf("%s = %v", lagQuery, res)
		}
		return nil
	})
	checkDashboardOnPrometheus(t, prom)
}

// checkDashboardOnPrometheus runs every dashboard query (Grafana variables
// substituted) under read traffic: all must be valid PromQL, and the
// traffic and p99 panels must show data.
func checkDashboardOnPrometheus(t *testing.T, prom *promServer) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := connect(t, env.AppDSN())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.Exec(context.Background(), "select 1")
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	grafana := strings.NewReplacer("$__rate_interval", "5s", "$shard", ".*")
	for title, exprs := range dashboardExprs(t) {
		for _, e := range exprs {
			expr := grafana.Replace(e)
			mustHaveData := strings.HasPrefix(title, "Queries per second by shard") || strings.HasPrefix(title, "Query latency")
			eventually(t, 30*time.Second, "dashboard panel "+title, func() error {
				res, err := prom.query(expr)
				if err != nil {
					return err
				}
				if mustHaveData && len(res) == 0 {
					return fmt.Errorf("%s: no data under traffic", expr)
				}
				return nil
			})
		}
	}
}
