package integration

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// adminPsql runs one admin console command with psql (unaligned, tuples only).
func adminPsql(t *testing.T, user, password, command string) (string, error) {
	t.Helper()
	dsn := env.DSN(user, password, "pgrouter")
	out, err := exec.Command(pgTool(t, "psql"), "-X", "-A", "-t", "-F", "|", dsn, "-c", command).CombinedOutput()
	return string(out), err
}

func TestAdminConsole(t *testing.T) {
	connect(t, env.AppDSN()).Exec(context.Background(), "select 1") // make a pool exist
	for cmd, want := range map[string]string{
		"SHOW NODES":            "shard0-primary|shard0|",
		"SHOW SHARDS":           "0|shard0|shard0-primary|1|",
		"SHOW POOLS":            "app|app|",
		"SHOW SERVERS":          "|app|app|",
		"SHOW CLIENTS":          "|admin|pgrouter|",
		"SHOW STATS":            "queries_total|",
		"SHOW CONFIG":           "pool.mode|transaction",
		"SHOW VERSION":          "pgrouter",
		"show nodes;":           "shard0-replica1|shard0|",
		"RELOAD":                "RELOAD",
		"RESUME":                "RESUME",
		"UNBAN shard0-replica1": "UNBAN",
	} {
		out, err := adminPsql(t, "admin", "admin", cmd)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("%s: %v\n%s(want %q)", cmd, err, out, want)
		}
	}
	if out, err := adminPsql(t, "admin", "admin", "SHOW NONSENSE"); err == nil || !strings.Contains(out, "42601") && !strings.Contains(out, "unknown SHOW") {
		t.Errorf("unknown command: %v %s", err, out)
	}
	if out, err := adminPsql(t, "app", "app", "SHOW NODES"); err == nil || !strings.Contains(out, "not an admin") {
		t.Errorf("non-admin user reached the console: %v %s", err, out)
	}
}

func TestAdminBanAndPause(t *testing.T) {
	ctx := context.Background()
	replica := env.Cluster.Shards[0].Replicas[0]
	if out, err := adminPsql(t, "admin", "admin", "BAN shard0-replica1 60"); err != nil {
		t.Fatalf("BAN: %v %s", err, out)
	}
	c := connect(t, env.AppDSN())
	for i := 0; i < 10; i++ {
		var port int
		if err := c.QueryRow(ctx, "select inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
		if port == replica.Port {
			t.Fatal("a read went to the banned replica")
		}
	}
	if out, err := adminPsql(t, "admin", "admin", "UNBAN shard0-replica1"); err != nil {
		t.Fatalf("UNBAN: %v %s", err, out)
	}
	// PAUSE holds new transactions until RESUME.
	if out, err := adminPsql(t, "admin", "admin", "PAUSE app"); err != nil {
		t.Fatalf("PAUSE: %v %s", err, out)
	}
	done := make(chan error, 1)
	go func() {
		var one int
		done <- c.QueryRow(ctx, "select 1").Scan(&one)
	}()
	select {
	case err := <-done:
		t.Fatalf("a transaction ran while paused: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if out, err := adminPsql(t, "admin", "admin", "RESUME app"); err != nil {
		t.Fatalf("RESUME: %v %s", err, out)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("held transaction failed after RESUME: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("held transaction did not run after RESUME")
	}
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	c := connect(t, env.AppDSN())
	for i := 0; i < 5; i++ {
		c.Exec(context.Background(), "select 1")
	}
	c.Exec(context.Background(), "select 1/0")
	resp, err := http.Get("http://" + env.Proxy.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`pgrouter_queries_total{kind="single",role="replica",shard="shard0"}`,
		`pgrouter_route_decisions_total{reason="replica"}`,
		`pgrouter_plan_cache_hits_total{database="app"}`,
		`pgrouter_query_duration_seconds_bucket{role="replica",shard="shard0"`,
		`pgrouter_replica_lag_bytes{node="shard0-replica1",shard="shard0"}`,
		`pgrouter_node_up{node="shard0-primary",shard="shard0"} 1`,
		`pgrouter_pool_wait_seconds_count`,
		`pgrouter_clients`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
