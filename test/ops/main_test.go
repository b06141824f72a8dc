// Package ops tests what operators touch: the admin console through psql,
// the Prometheus endpoint (parsed, and scraped by a real Prometheus), hot
// reload under load, and the Grafana dashboard shipped in deploy/.
//
// One environment is shared: one shard whose local cluster has a primary and
// two replicas, but whose config starts with only replica1 in it, so a test
// can add replica2 by editing the file and reloading.
package ops

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgrouter/pgrouter/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(m, testenv.Options{
		Shards: 1, Replicas: 2,
		Sections: map[string]string{
			"pool":     "  size: 10\n  acquire_timeout: 2s\n  shutdown_timeout: 3s",
			"replicas": "  lag_check_interval: 100ms",
			"health":   "  interval: 200ms",
		},
	}, dropSecondReplica)
	os.Exit(run())
}

// dropSecondReplica removes replica2 from the config and reloads, so the
// environment starts with one replica in the topology (and two running).
func dropSecondReplica(e *testenv.Env) error {
	orig, err := os.ReadFile(e.Path)
	if err != nil {
		return err
	}
	r2 := e.Cluster.Shards[0].Replicas[1]
	edited, n := withoutLine(string(orig), r2.Addr())
	if n != 1 {
		return fmt.Errorf("replica2 (%s) appears on %d lines of the generated config:\n%s", r2.Addr(), n, orig)
	}
	if err := os.WriteFile(e.Path, []byte(edited), 0o600); err != nil {
		return err
	}
	return e.Proxy.Reload(e.Path, false)
}

// withoutLine drops every line containing s and says how many it dropped.
func withoutLine(text, s string) (string, int) {
	var keep []string
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			n++
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n"), n
}

func primary() string  { return env.Cluster.Shards[0].Primary.Name }
func replica1() string { return env.Cluster.Shards[0].Replicas[0].Name }
func replica2() string { return env.Cluster.Shards[0].Replicas[1].Name }

// psqlPath finds psql: the PostgreSQL 15 binaries first, then PATH.
func psqlPath(t testing.TB) string {
	t.Helper()
	if p := "/usr/lib/postgresql/15/bin/psql"; fileExists(p) {
		return p
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql not found (apt-get install postgresql-client-15)")
	}
	return p
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// adminPsql runs one console command with psql -X -A -t (fields split by
// '|') as admin and returns stdout+stderr.
func adminPsql(t testing.TB, command string) (string, error) {
	t.Helper()
	return psqlAs(t, "admin", "admin", "pgrouter", command)
}

func psqlAs(t testing.TB, user, password, db, command string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psqlPath(t), "-X", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", env.DSN(user, password, db), "-c", command)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustAdmin runs a console command that must succeed.
func mustAdmin(t testing.TB, command string) string {
	t.Helper()
	out, err := adminPsql(t, command)
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return out
}

// adminRows runs a SHOW and splits its rows into fields.
func adminRows(t testing.TB, command string) [][]string {
	t.Helper()
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSpace(mustAdmin(t, command)), "\n") {
		if l != "" {
			rows = append(rows, strings.Split(l, "|"))
		}
	}
	return rows
}

// nodeRow is the SHOW NODES row of node, nil when absent.
func nodeRow(t testing.TB, node string) []string {
	t.Helper()
	for _, r := range adminRows(t, "SHOW NODES") {
		if r[0] == node {
			return r
		}
	}
	return nil
}

func connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// scrape reads /metrics and parses it with Prometheus' own text parser.
func scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + env.Proxy.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// sample is the value of the series of family name whose labels include
// want (counter, gauge, or a histogram's sample count); ok=false if absent.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	sum, found := 0.0, false
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum, found
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// repoFile is a path relative to the repository root.
func repoFile(rel string) string { return filepath.Join("..", "..", rel) }
