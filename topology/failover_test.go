package topology

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// TestFailoverFollowsPromotion stops the primary of a cluster of its own,
// promotes a replica, then brings the old primary back as a second primary.
func TestFailoverFollowsPromotion(t *testing.T) {
	ctx := testCtx(t)
	c, err := localpg.Start(ctx, localpg.Options{Shards: 1, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	topo := startTopology(t, clusterConfig(c, nil))
	snap := topo.Snapshot()
	waitServing(t, snap, "r1", "r2")
	p, r1 := snap.Node("p"), snap.Node("r1")
	if n, err := snap.Primary(0); err != nil || n != p {
		t.Fatalf("Primary = %v, %v; want p", n, err)
	}

	if err := c.Shards[0].Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "Primary() errors once p is down", func() bool {
		_, err := snap.Primary(0)
		return err != nil
	})
	_, err = snap.Primary(0)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P03" {
		t.Fatalf("no primary: got %v, want *pgconn.PgError 57P03", err)
	}
	// Graceful degradation: reads still go to replicas.
	eventually(t, 5*time.Second, "reads served by a replica without a primary", func() bool {
		n, reason, err := snap.Replica(0, Floor{})
		return err == nil && reason == ReasonReplica && n.Role() == RoleReplica
	})

	promoted := time.Now()
	if err := c.Shards[0].Replicas[0].Promote(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Primary() returns the promoted r1", func() bool {
		n, err := snap.Primary(0)
		return err == nil && n == r1
	})
	t.Logf("promoted r1 became Primary() %v after pg_promote was called", time.Since(promoted).Round(time.Millisecond))
	if topo.Failovers() != 1 {
		t.Errorf("Failovers() = %d, want 1", topo.Failovers())
	}
	if err := c.Shards[0].Replicas[0].Exec(ctx, "CREATE TABLE after_failover (id int)"); err != nil {
		t.Fatalf("write on the promoted node: %v", err)
	}

	// The old primary returns, still a primary on the old timeline: split
	// brain. It must be seen, and never chosen for writes.
	if err := c.Shards[0].Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "old primary detected up as a primary", func() bool {
		return p.Up() && p.Role() == RolePrimary
	})
	if p.Timeline() >= r1.Timeline() {
		t.Fatalf("timelines: old primary %d, promoted %d", p.Timeline(), r1.Timeline())
	}
	eventually(t, 5*time.Second, "old primary's ban over", func() bool { return !p.Banned() })
	for range 20 {
		if n, err := snap.Primary(0); err != nil || n != r1 {
			t.Fatalf("split brain: Primary = %v, %v; want r1", n, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
