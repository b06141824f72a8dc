package topology

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// shared is one cluster (1 shard: primary + 2 replicas) for the tests that
// leave it as they found it; destructive tests start their own.
var shared *localpg.Cluster

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localpg.Start(ctx, localpg.Options{Shards: 1, Replicas: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "topology tests need a local Postgres cluster:", err)
		return 1
	}
	defer c.Close()
	shared = c
	return m.Run()
}

// clusterConfig describes c's first shard with fast monitor settings; mod
// adjusts it. Defaults are filled here because config.Load is not used.
func clusterConfig(c *localpg.Cluster, mod func(*config.Config)) *config.Config {
	sh := c.Shards[0]
	cfg := &config.Config{
		Users:     []config.User{{Name: "postgres", Password: c.Password, Admin: true}},
		Databases: []config.Database{{Name: "postgres"}},
		Health: config.Health{
			Interval:      config.Duration(100 * time.Millisecond),
			Timeout:       config.Duration(time.Second),
			FailThreshold: 2,
			BanDuration:   config.Duration(2 * time.Second),
		},
		Replicas: config.Replicas{
			Strategy:         StrategyRoundRobin,
			MaxLagBytes:      64 << 10,
			MaxLag:           config.Duration(10 * time.Second),
			LagCheckInterval: config.Duration(100 * time.Millisecond),
			Fallback:         "primary",
		},
		Pool:   config.Pool{Size: 4, AcquireTimeout: config.Duration(5 * time.Second), ConnectTimeout: config.Duration(5 * time.Second)},
		Shards: []config.Shard{{Name: "s0", Primary: config.Node{Name: "p", Addr: sh.Primary.Addr()}}},
	}
	for i, r := range sh.Replicas {
		cfg.Shards[0].Replicas = append(cfg.Shards[0].Replicas,
			config.Node{Name: fmt.Sprintf("r%d", i+1), Addr: r.Addr(), Weight: 1})
	}
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

// startTopology builds and starts a topology for cfg, closed at test end.
func startTopology(t *testing.T, cfg *config.Config) *Topology {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	topo, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		topo.Close()
	})
	topo.Start(ctx)
	return topo
}

// testWriter sends log lines to t.Log so they show only on failure (or -v).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// eventually polls cond every 20ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// writeWAL inserts about kb kilobytes into a scratch table on the primary.
func writeWAL(t *testing.T, c *localpg.Cluster, kb int) {
	t.Helper()
	p := c.Shards[0].Primary
	ctx := testCtx(t)
	if err := p.Exec(ctx, "CREATE TABLE IF NOT EXISTS topo_wal (id bigserial, pad text)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "INSERT INTO topo_wal (pad) SELECT repeat('x', 1000) FROM generate_series(1, $1::int)", kb); err != nil {
		t.Fatal(err)
	}
}
