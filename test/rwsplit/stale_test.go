package rwsplit

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRestartedReplicaNoStaleBackends: once a killed replica is back (up,
// ban over), reads sent to it do not fail on pooled connections that died
// with its previous incarnation (no load hit them during the outage).
func TestRestartedReplicaNoStaleBackends(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	r2 := env.Cluster.Shards[0].Replicas[1]
	ctx := testCtx(t, 2*time.Minute)
	t.Cleanup(func() {
		if !r2.Running() {
			r2.Start(context.Background())
		}
	})
	readLoad(env, pgx.QueryExecModeSimpleProtocol, 8, time.Now().Add(500*time.Millisecond), 5*time.Second) // fill r2's pool
	node := env.Proxy.Topology.Snapshot().Node(r2.Name)
	if err := r2.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "r2 banned", node.Banned)
	if err := r2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "r2 up and not banned", func() bool { return node.Up() && !node.Banned() })
	c := connect(t, env)
	served := 0
	for range 40 {
		s, err := who(ctx, c, whoSQL)
		if err != nil {
			t.Fatalf("read after r2 came back: %v (served by r2 so far: %d)", err, served)
		}
		if s.Port == tp.r2 {
			served++
		}
	}
	if served == 0 {
		t.Errorf("r2 up and not banned served none of 40 reads")
	}
}
