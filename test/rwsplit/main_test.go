// Package rwsplit proves read/write splitting end to end (issue 4): real pgx
// clients talk to pgrouter in front of a real primary with two streaming
// replicas, and every statement reports which node ran it through
// inet_server_port() and pg_is_in_recovery().
//
// The tests of this package share one cluster (started in TestMain); those
// that pause, kill or restart a node put it back before they return and
// every test first waits until both replicas serve reads again. The
// failover test breaks its cluster for good, so it starts its own.
package rwsplit

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/test/testenv"
)

var env *testenv.Env

// sections are the pgrouter settings under test: fast lag checks with a small
// byte bound, fast health checks with short bans, round-robin replicas.
func sections() map[string]string {
	return map[string]string{
		"replicas": "  lag_check_interval: 100ms\n  max_lag_bytes: 65536\n  strategy: round_robin",
		"health":   "  interval: 200ms\n  fail_threshold: 2\n  ban_duration: 2s",
		"pool":     "  size: 10",
	}
}

// schema is created on the primary directly (not through the proxy) so the
// tests' clients start without a read-your-writes floor.
const schema = `
CREATE TABLE items (id bigserial PRIMARY KEY, v text);
INSERT INTO items (v) SELECT 'seed' || g FROM generate_series(1, 10) g;
CREATE SEQUENCE s;
CREATE TABLE ryw (id bigint PRIMARY KEY, client text);
CREATE TABLE walfill (id bigserial PRIMARY KEY, pad text);
`

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e, err := startEnv(ctx, schema)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rwsplit environment:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	env.Close()
	os.Exit(code)
}

// startEnv starts 1 primary + 2 replicas behind pgrouter and creates ddl on
// the primary's "app" database, waiting until both replicas replayed it.
func startEnv(ctx context.Context, ddl string) (*testenv.Env, error) {
	e, err := testenv.Start(ctx, testenv.Options{Shards: 1, Replicas: 2, Sections: sections()})
	if err != nil {
		return nil, err
	}
	c, err := e.Cluster.Shards[0].Primary.Connect(ctx, "app")
	if err == nil {
		_, err = c.Exec(ctx, ddl)
		c.Close(ctx)
	}
	if err == nil {
		err = e.Cluster.WaitReplicated(ctx)
	}
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}
