package wire

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/test/testenv"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// env: one shard (primary + replica) and the shared, long-lived ("warm")
// pgrouter, whose pool of 10 keeps a backend leaked by one buggy script from
// starving every later script (contention is the concurrent mode's job).
// Scripts also run on fresh instances from coldConfig and contendedConfig.
var (
	env             *testenv.Env
	coldConfig      *config.Config
	contendedConfig *config.Config
)

// poolSection: small pools so concurrent clients really share backends; a
// short acquire timeout and shutdown so a held backend shows up as an error
// in seconds instead of stalling the package.
const poolSection = "  size: %d\n  acquire_timeout: 5s\n  shutdown_timeout: 2s"

// healthSection: tests share two cores with Postgres and the race detector;
// a health check that misses the 1s default must not ban the primary and
// turn a script's answer into 57P03 (seen once under -race).
const healthSection = "  interval: 200ms\n  timeout: 5s\n  fail_threshold: 5"

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e, err := testenv.Start(ctx, testenv.Options{
		Shards: 1, Replicas: 1,
		Sections: map[string]string{
			"pool":     fmt.Sprintf(poolSection, 10),
			"replicas": "  lag_check_interval: 100ms",
			"health":   healthSection,
		},
	})
	cancel()
	if err == nil {
		if err = setup(e); err != nil {
			e.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test environment:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	teardown(e)
	if sharded.env != nil {
		teardown(sharded.env)
	}
	os.Exit(code)
}

// teardown does not wait on pgrouter's shutdown for ever: a session stuck
// on its backend (a bug the scripts report) would hang the package. The
// cluster stops next, which ends such sessions.
func teardown(e *testenv.Env) {
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		e.Proxy.Close(ctx)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(os.Stderr, "wire: pgrouter shutdown did not finish in 5s (a session holds its backend); stopping the cluster")
	}
	e.Cluster.Close()
}

// setup writes the configs of the per-script instances: "cold" (pool size
// 2 for three concurrent clients) and "contended" (pool size 1).
func setup(e *testenv.Env) error {
	var err error
	if coldConfig, err = instanceConfig(e, "cold", 2); err == nil {
		contendedConfig, err = instanceConfig(e, "contended", 1)
	}
	return err
}

func instanceConfig(e *testenv.Env, name string, poolSize int) (*config.Config, error) {
	yaml := e.Cluster.ConfigYAML(localpg.ConfigOptions{
		Listen: "127.0.0.1:0", Users: testenv.DefaultUsers(e.Cluster.Password),
		Sections: map[string]string{"pool": fmt.Sprintf(poolSection, poolSize), "replicas": "  lag_check_interval: 100ms",
			"health": healthSection},
	})
	path := filepath.Join(e.Cluster.Dir, "pgrouter-"+name+".yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	return config.Load(path)
}

// discardLog is the cold instances' logger (PGROUTER_TEST_LOG=1: stderr).
func discardLog() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("PGROUTER_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
