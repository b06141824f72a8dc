// Package integration runs real clients (pgx, psql, pgbench) against pgrouter
// in front of a real local Postgres cluster started by topology/localpg.
package integration

import (
	"os"
	"testing"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// env is shared by the tests of this package: one shard, primary + replica,
// transaction pooling with small pools so clients really share backends.
var env *testenv.Env

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(m, testenv.Options{
		Shards: 1, Replicas: 1, TLS: true,
		Sections: map[string]string{
			"pool":     "  size: 10\n  acquire_timeout: 20s\n  max_waiters: 100000",
			"replicas": "  lag_check_interval: 100ms",
			"health":   "  interval: 200ms",
		},
	}, nil)
	os.Exit(run())
}
