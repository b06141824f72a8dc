package topology

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/config"
)

// waitServing waits until every named replica may serve reads.
func waitServing(t *testing.T, snap *Snapshot, names ...string) {
	t.Helper()
	for _, name := range names {
		n := snap.Node(name)
		eventually(t, 10*time.Second, name+" serving reads", n.servesReads)
	}
}

func TestLiveRolesAndSpread(t *testing.T) {
	topo := startTopology(t, clusterConfig(shared, nil))
	snap := topo.Snapshot()
	waitServing(t, snap, "r1", "r2")

	p, err := snap.Primary(0)
	if err != nil || p.Name != "p" || p.Role() != RolePrimary || p.Timeline() == 0 || p.LSN() == 0 {
		t.Fatalf("Primary = %v (%v); want p detected primary with timeline and LSN", p, err)
	}
	for _, name := range []string{"r1", "r2"} {
		if n := snap.Node(name); n.Role() != RoleReplica || n.ReplayLSN() == 0 {
			t.Errorf("%s: role %v replay %x, want replica with a replay LSN", name, n.Role(), n.ReplayLSN())
		}
	}
	var prev *Node
	counts := map[string]int{}
	for range 100 {
		n, reason, err := snap.Replica(0, Floor{})
		if err != nil || reason != ReasonReplica {
			t.Fatalf("Replica = %v %q %v", n, reason, err)
		}
		if n == prev {
			t.Fatalf("round_robin chose %s twice in a row", n.Name)
		}
		prev = n
		counts[n.Name]++
	}
	if counts["r1"] != 50 || counts["r2"] != 50 {
		t.Errorf("round_robin counts %v, want 50/50", counts)
	}
}

func TestLiveWeighted(t *testing.T) {
	topo := startTopology(t, clusterConfig(shared, func(c *config.Config) {
		c.Shards[0].Strategy = StrategyWeighted
		c.Shards[0].Replicas[1].Weight = 3
	}))
	snap := topo.Snapshot()
	waitServing(t, snap, "r1", "r2")
	counts := map[string]int{}
	for range 4000 {
		n, _, err := snap.Replica(0, Floor{})
		if err != nil {
			t.Fatal(err)
		}
		counts[n.Name]++
	}
	// Expected r1 1000 (σ ≈ 27); ±200 allows for a moment out of rotation.
	if c := counts["r1"]; c < 800 || c > 1200 || counts["r1"]+counts["r2"] != 4000 {
		t.Errorf("weighted 1:3 counts %v", counts)
	}
}

func TestLagBoundTakesReplicaOutAndBack(t *testing.T) {
	topo := startTopology(t, clusterConfig(shared, nil)) // max_lag_bytes 64kB, checks every 100ms
	snap := topo.Snapshot()
	waitServing(t, snap, "r1", "r2")
	r1, pg1 := snap.Node("r1"), shared.Shards[0].Replicas[0]
	ctx := testCtx(t)
	if err := pg1.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg1.ResumeReplay(testCtx(t)) })

	writeWAL(t, shared, 256)
	eventually(t, 5*time.Second, "paused r1 out of rotation", func() bool { return !r1.InRotation() })
	if r1.LagBytes() <= 64<<10 {
		t.Errorf("r1 out of rotation with lag %d bytes", r1.LagBytes())
	}
	for range 200 {
		if n, _, _ := snap.Replica(0, Floor{}); n == r1 {
			t.Fatal("Replica chose r1 while it lags beyond max_lag_bytes")
		}
	}
	if err := pg1.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "r1 back in rotation", r1.servesReads)
	eventually(t, 5*time.Second, "Replica chooses r1 again", func() bool {
		n, _, _ := snap.Replica(0, Floor{})
		return n == r1
	})
}

func TestReadYourWritesFloor(t *testing.T) {
	// No lag bounds: the floor alone must keep stale replicas away.
	topo := startTopology(t, clusterConfig(shared, func(c *config.Config) {
		c.Replicas.MaxLagBytes, c.Replicas.MaxLag = 0, 0
	}))
	snap := topo.Snapshot()
	ctx := testCtx(t)
	prim, pg1, pg2 := shared.Shards[0].Primary, shared.Shards[0].Replicas[0], shared.Shards[0].Replicas[1]
	// A fresh table: every INSERT below must write WAL (a conflicting one
	// would not, and a paused replica would legitimately be up to date).
	if err := prim.Exec(ctx, "DROP TABLE IF EXISTS topo_ryw; CREATE TABLE topo_ryw (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := shared.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	waitServing(t, snap, "r1", "r2")
	r1, r2 := snap.Node("r1"), snap.Node("r2")
	if err := pg1.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg1.ResumeReplay(testCtx(t)) })

	// A floor that is never sampled keeps reads on the primary.
	far := Floor{Seq: snap.WriteFloor(0).Seq + 1<<40}
	if n, reason, err := snap.Replica(0, far); err != nil || n.Name != "p" || reason != ReasonReadYourWrites {
		t.Fatalf("unresolved floor: got %v %q %v, want p read_your_writes", n, reason, err)
	}
	for id := 1; id <= 10; id++ {
		if err := prim.Exec(ctx, "INSERT INTO topo_ryw VALUES ($1)", id); err != nil {
			t.Fatal(err)
		}
		floor := snap.WriteFloor(0)
		sawR2 := false
		deadline := time.Now().Add(5 * time.Second)
		for !sawR2 && time.Now().Before(deadline) {
			n, reason, err := snap.Replica(0, floor)
			switch {
			case err != nil:
				t.Fatal(err)
			case n == r1:
				t.Fatalf("row %d: Replica chose paused r1 (replay %s < floor)", id, FormatLSN(r1.ReplayLSN()))
			case n == r2:
				sawR2 = true
				var found bool
				if err := pg2.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM topo_ryw WHERE id = $1)", id).Scan(&found); err != nil {
					t.Fatal(err)
				}
				if !found {
					t.Fatalf("row %d: Replica chose r2 (replay %s) which does not have the row yet", id, FormatLSN(r2.ReplayLSN()))
				}
			case reason != ReasonReadYourWrites:
				t.Fatalf("row %d: primary chosen with reason %q, want read_your_writes", id, reason)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !sawR2 {
			t.Fatalf("row %d: floor %+v never admitted r2 (replay %s)", id, snap.Resolve(0, floor), FormatLSN(r2.ReplayLSN()))
		}
	}
}

func TestIdleClusterIsNotLagging(t *testing.T) {
	topo := startTopology(t, clusterConfig(shared, func(c *config.Config) {
		c.Replicas.MaxLag = config.Duration(time.Second)
	}))
	snap := topo.Snapshot()
	// One commit so the replicas have a replay timestamp (NULL otherwise),
	// replicated everywhere, then no writes: after 1s every replayed commit
	// is older than max_lag, which must not matter while the primary has no
	// newer WAL.
	writeWAL(t, shared, 1)
	if err := shared.WaitReplicated(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitServing(t, snap, "r1", "r2")
	for _, name := range []string{"r1", "r2"} {
		if !snap.Node(name).InRotation() {
			t.Fatalf("%s out of rotation after catching up", name)
		}
	}
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		for _, name := range []string{"r1", "r2"} {
			n := snap.Node(name)
			if !n.servesReads() {
				t.Fatalf("idle %s not serving: in rotation %v, lag known %v, lag %.2fs %dB",
					name, n.InRotation(), n.LagKnown(), n.LagSeconds(), n.LagBytes())
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKilledReplicaIsBannedThenReturns(t *testing.T) {
	topo := startTopology(t, clusterConfig(shared, nil)) // threshold 2 × 100ms, ban 2s
	snap := topo.Snapshot()
	waitServing(t, snap, "r1", "r2")
	r2, pg2 := snap.Node("r2"), shared.Shards[0].Replicas[1]
	if err := pg2.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !pg2.Running() {
			_ = pg2.Start(testCtx(t))
		}
	})
	eventually(t, 3*time.Second, "killed r2 banned", r2.Banned)
	for range 100 {
		if n, _, _ := snap.Replica(0, Floor{}); n == r2 {
			t.Fatal("Replica chose the banned r2")
		}
	}
	if err := pg2.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "restarted r2 unbanned and serving", r2.servesReads)
	eventually(t, 5*time.Second, "Replica chooses r2 again", func() bool {
		n, _, _ := snap.Replica(0, Floor{})
		return n == r2
	})
}

func TestAdminBanAndUnban(t *testing.T) {
	topo := startTopology(t, clusterConfig(shared, nil))
	snap := topo.Snapshot()
	waitServing(t, snap, "r1", "r2")
	if err := topo.Ban("r1", time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if n, _, _ := snap.Replica(0, Floor{}); n.Name != "r2" {
			t.Fatalf("r1 banned, Replica chose %s", n.Name)
		}
	}
	if err := topo.Unban("r1"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := snap.Replica(0, Floor{}); n.Name != "r1" {
		if n, _, _ := snap.Replica(0, Floor{}); n.Name != "r1" {
			t.Errorf("r1 unbanned but not chosen in two round-robin picks")
		}
	}
	if err := topo.Ban("nope", time.Second); err == nil {
		t.Error("Ban of an unknown node succeeded")
	}
}

func TestReloadKeepsNodesAndPools(t *testing.T) {
	cfg := clusterConfig(shared, nil)
	topo := startTopology(t, cfg)
	snap := topo.Snapshot()
	p, r2 := snap.Node("p"), snap.Node("r2")
	user, db := &cfg.Users[0], &cfg.Databases[0]
	pl := p.Pool(user, db)
	if pl == nil || p.Pool(user, db) != pl || len(p.Pools()) != 1 {
		t.Fatalf("Pool not memoised: %p %d pools", pl, len(p.Pools()))
	}
	conn, err := pl.Acquire(testCtx(t))
	if err != nil {
		t.Fatalf("acquire from the node's pool: %v", err)
	}
	pl.Release(conn)

	next := clusterConfig(shared, func(c *config.Config) {
		c.Shards[0].Replicas = c.Shards[0].Replicas[:1]
		c.Shards[0].Replicas[0].Weight = 5
	})
	if err := topo.Reload(next, false); err != nil {
		t.Fatal(err)
	}
	snap2 := topo.Snapshot()
	if snap2.Node("p") != p || snap2.Node("p").Pool(user, db) != pl {
		t.Error("reload replaced an unchanged node or its pool")
	}
	if snap2.Node("r2") != nil || r2.Pool(user, db) != nil {
		t.Error("removed node still present or still creating pools")
	}
	if snap2.Shards[0].weights[1] != 5 {
		t.Errorf("weight not reloaded: %v", snap2.Shards[0].weights)
	}

	twoShards := clusterConfig(shared, func(c *config.Config) {
		c.Shards = append(c.Shards, config.Shard{Name: "s1",
			Primary: config.Node{Name: "q", Addr: shared.Shards[0].Primary.Addr()}})
	})
	if err := topo.Reload(twoShards, false); !errors.Is(err, ErrIncompatibleReload) {
		t.Fatalf("adding a shard: got %v, want ErrIncompatibleReload", err)
	}
	resharded := clusterConfig(shared, func(c *config.Config) {
		c.Databases[0].ShardedTables = []config.ShardedTable{{Table: "t", Column: "id", Function: "hash"}}
	})
	if err := topo.Reload(resharded, false); !errors.Is(err, ErrIncompatibleReload) {
		t.Fatalf("changing sharded tables: got %v, want ErrIncompatibleReload", err)
	}
	if err := topo.Reload(twoShards, true); err != nil {
		t.Fatalf("forced reload: %v", err)
	}
	q := topo.Snapshot().Node("q")
	eventually(t, 5*time.Second, "new node q checked by its monitor", q.Checked)
	if n, err := topo.Snapshot().Primary(1); err != nil || n != q {
		t.Errorf("Primary(1) = %v, %v; want q", n, err)
	}
}

func TestNoPrimaryFailsFast(t *testing.T) {
	topo := startTopology(t, clusterConfig(shared, nil))
	snap := topo.Snapshot()
	if err := topo.Ban("p", time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := snap.Primary(0)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P03" || pgErr.Hint == "" {
		t.Fatalf("Primary with p banned: %v, want 57P03 with a hint", err)
	}
	if _, err := snap.Primary(7); err == nil {
		t.Error("Primary(7) of a 1-shard snapshot succeeded")
	}
}
