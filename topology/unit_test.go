package topology

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/config"
)

// These tests exercise the pure parts (parsing, floors, choice, hysteresis)
// on node state set by hand, exactly as a monitor would store it. The
// behaviour against real servers is in integration_test.go.

func offlineConfig(strategy string, weights ...int) *config.Config {
	cfg := &config.Config{
		Users:     []config.User{{Name: "app", Password: "pw"}},
		Databases: []config.Database{{Name: "appdb"}},
		Replicas:  config.Replicas{Strategy: strategy, MaxLagBytes: 1000, MaxLag: config.Duration(10 * time.Second)},
		Shards: []config.Shard{{Name: "s0",
			Primary: config.Node{Name: "p", Addr: "127.0.0.1:1"}}},
	}
	for i, w := range weights {
		cfg.Shards[0].Replicas = append(cfg.Shards[0].Replicas,
			config.Node{Name: "r" + string(rune('1'+i)), Addr: "127.0.0.1:1", Weight: w})
	}
	return cfg
}

// markChecked stores what a successful check of n would.
func markChecked(n *Node, role Role, lsn uint64) {
	n.lsn.Store(lsn)
	n.lagKnown.Store(true)
	n.role.Store(int32(role))
	n.up.Store(true)
	n.checked.Store(true)
}

func newOffline(t *testing.T, cfg *config.Config) *Snapshot {
	t.Helper()
	topo, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(topo.Close)
	snap := topo.Snapshot()
	for i, n := range snap.Shards[0].Nodes {
		role := RoleReplica
		if i == 0 {
			role = RolePrimary
		}
		markChecked(n, role, 100)
	}
	return snap
}

func TestParseLSN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
	}{{"0/0", 0}, {"0/3000060", 0x3000060}, {"16/B374D848", 0x16_B374D848}, {"FFFFFFFF/FFFFFFFF", ^uint64(0)}} {
		got, err := parseLSN([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("parseLSN(%q) = %x, %v; want %x", tc.in, got, err, tc.want)
		}
		if FormatLSN(tc.want) != tc.in {
			t.Errorf("FormatLSN(%x) = %q, want %q", tc.want, FormatLSN(tc.want), tc.in)
		}
	}
	if got, err := parseLSN(nil); got != 0 || err != nil {
		t.Errorf("parseLSN(NULL) = %v, %v; want 0, nil", got, err)
	}
	if _, err := parseLSN([]byte("nonsense")); err == nil {
		t.Error("parseLSN accepted garbage")
	}
}

func TestFloorLSNSkipsPageHeaders(t *testing.T) {
	m := &monitor{walBlock: 8192, walSegment: 16 << 20}
	for _, tc := range []struct{ insert, want uint64 }{
		{3<<24 + 40, 3 << 24},                  // segment start: long header
		{3<<24 + 8192 + 24, 3<<24 + 8192},      // page start: short header
		{3<<24 + 8192 + 64, 3<<24 + 8192 + 64}, // mid-page: unchanged
	} {
		if got := m.floorLSN(tc.insert); got != tc.want {
			t.Errorf("floorLSN(%x) = %x, want %x", tc.insert, got, tc.want)
		}
	}
}

func TestResolvePicksOldestSampleAtOrAfterSeq(t *testing.T) {
	st := newShardState("s0", nil, nil)
	if _, ok := st.resolve(1); ok {
		t.Fatal("resolved with no samples")
	}
	now := time.Now()
	for seq := uint64(1); seq <= 40; seq++ { // wraps the ring
		st.publish(seq, seq*100, seq*100+5, now)
	}
	if lsn, ok := st.resolve(30); !ok || lsn != 3005 {
		t.Errorf("resolve(30) = %d, %v; want 3005, true", lsn, ok)
	}
	if lsn, ok := st.resolve(2); !ok || lsn != (40-sampleRing+1)*100+5 {
		t.Errorf("resolve(2) beyond the ring = %d, %v; want the oldest kept sample", lsn, ok)
	}
	if _, ok := st.resolve(41); ok {
		t.Error("resolve(41) succeeded before sample 41 exists")
	}
	st.publish(39, 1, 1, now) // late, out-of-order sample: latest must not move back
	if st.latest.Load().seq != 40 {
		t.Errorf("latest went back to %d", st.latest.Load().seq)
	}
}

func TestBehindSinceDatesFirstSamplePastReplay(t *testing.T) {
	st := newShardState("s0", nil, nil)
	t0 := time.Now().Add(-10 * time.Second)
	st.publish(1, 100, 100, t0)
	st.publish(2, 100, 100, t0.Add(time.Second))
	st.publish(3, 200, 200, t0.Add(2*time.Second))
	st.publish(4, 300, 300, t0.Add(3*time.Second))
	since, ok := st.behindSince(100)
	if !ok || !since.Equal(t0.Add(2*time.Second)) {
		t.Errorf("behindSince(100) = %v, %v; want sample 3's time", since, ok)
	}
	if _, ok := st.behindSince(50); ok {
		t.Error("behindSince(50): every kept sample is past replay, the start is unknown, want !ok")
	}
}

func TestRoundRobinAlternatesExactly(t *testing.T) {
	snap := newOffline(t, offlineConfig(StrategyRoundRobin, 1, 1))
	var prev *Node
	counts := map[string]int{}
	for range 100 {
		n, reason, err := snap.Replica(0, Floor{})
		if err != nil || reason != ReasonReplica {
			t.Fatalf("Replica = %v, %q, %v", n, reason, err)
		}
		if n == prev {
			t.Fatalf("round_robin chose %s twice in a row", n.Name)
		}
		prev = n
		counts[n.Name]++
	}
	if counts["r1"] != 50 || counts["r2"] != 50 {
		t.Errorf("counts %v, want 50/50", counts)
	}
}

func TestWeightedRatio(t *testing.T) {
	snap := newOffline(t, offlineConfig(StrategyWeighted, 1, 3))
	counts := map[string]int{}
	for range 8000 {
		n, _, _ := snap.Replica(0, Floor{})
		counts[n.Name]++
	}
	// Expected 2000/6000; σ ≈ 39, so ±250 is > 6σ.
	if c := counts["r1"]; c < 1750 || c > 2250 {
		t.Errorf("weighted 1:3 gave %v", counts)
	}
}

func TestLeastConnPrefersIdleNode(t *testing.T) {
	snap := newOffline(t, offlineConfig(StrategyLeastConn, 1, 1))
	r1 := snap.Node("r1")
	r1.Acquired()
	r1.Acquired()
	for range 20 {
		if n, _, _ := snap.Replica(0, Floor{}); n.Name != "r2" {
			t.Fatalf("least_conn chose %s with 2 active over r2 with 0", n.Name)
		}
	}
	r1.Released()
	r1.Released()
	seen := map[string]bool{}
	for range 20 {
		n, _, _ := snap.Replica(0, Floor{})
		seen[n.Name] = true
	}
	if !seen["r1"] || !seen["r2"] {
		t.Errorf("least_conn with equal load did not rotate: %v", seen)
	}
}

func TestReplicaFiltersAndFallbacks(t *testing.T) {
	cfg := offlineConfig(StrategyRoundRobin, 1, 1)
	snap := newOffline(t, cfg)
	r1, r2 := snap.Node("r1"), snap.Node("r2")

	r1.Ban(time.Minute)
	r2.lagKnown.Store(false)
	n, reason, err := snap.Replica(0, Floor{})
	if err != nil || n.Name != "p" || reason != ReasonLagFallback {
		t.Fatalf("banned + unknown lag: got %v %q %v, want primary lag_fallback", n, reason, err)
	}
	r1.Unban()
	for range 10 {
		if n, _, _ := snap.Replica(0, Floor{}); n != r1 {
			t.Fatalf("only r1 eligible, got %s", n.Name)
		}
	}
	r2.lagKnown.Store(true)
	// Floor: r1 at 100, r2 at 200; a floor of 150 only admits r2.
	r2.lsn.Store(200)
	for range 10 {
		if n, _, _ := snap.Replica(0, Floor{Seq: 1, LSN: 150}); n != r2 {
			t.Fatalf("floor 150: got %s (lsn %d)", n.Name, n.LSN())
		}
	}
	n, reason, _ = snap.Replica(0, Floor{Seq: 1, LSN: 300})
	if n.Name != "p" || reason != ReasonReadYourWrites {
		t.Errorf("floor above every replica: got %s %q, want primary read_your_writes", n.Name, reason)
	}
	n, reason, _ = snap.Replica(0, Floor{Seq: 1 << 40}) // never sampled
	if n.Name != "p" || reason != ReasonReadYourWrites {
		t.Errorf("unresolvable floor: got %s %q, want primary read_your_writes", n.Name, reason)
	}

	// fallback: error
	cfg.Replicas.Fallback = "error"
	snapErr := newOffline(t, cfg)
	for _, r := range []string{"r1", "r2"} {
		snapErr.Node(r).outOfRot.Store(true)
	}
	_, _, err = snapErr.Replica(0, Floor{})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P03" || pgErr.Hint == "" {
		t.Errorf("fallback error: got %v, want a 57P03 PgError with a hint", err)
	}
}

func TestPrimaryRefusesNodeInRecovery(t *testing.T) {
	snap := newOffline(t, offlineConfig(StrategyRoundRobin, 1))
	p := snap.Node("p")
	if n, err := snap.Primary(0); err != nil || n != p {
		t.Fatalf("Primary = %v, %v", n, err)
	}
	p.role.Store(int32(RoleReplica))
	_, err := snap.Primary(0)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P03" {
		t.Fatalf("primary in recovery: got %v, want 57P03", err)
	}
	// No replicas configured: reads go to the primary with reason no_replicas.
	snap1 := newOffline(t, offlineConfig(StrategyRoundRobin))
	if n, reason, err := snap1.Replica(0, Floor{}); err != nil || n.Name != "p" || reason != ReasonNoReplicas {
		t.Errorf("no replicas: got %v %q %v", n, reason, err)
	}
}

func TestLagHysteresis(t *testing.T) {
	topo, err := New(offlineConfig(StrategyRoundRobin, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	r1 := topo.Snapshot().Node("r1")
	m := &monitor{t: topo, node: r1}
	st := topo.settings() // max_lag_bytes 1000, max_lag 10s
	steps := []struct {
		bytes int64
		in    bool
	}{{100, true}, {1001, false}, {700, false}, {499, true}, {900, true}, {1001, false}}
	for i, s := range steps {
		m.applyLagBounds(st, s.bytes, 0)
		if r1.InRotation() != s.in {
			t.Fatalf("step %d (%d bytes): in rotation = %v, want %v", i, s.bytes, r1.InRotation(), s.in)
		}
	}
	m.applyLagBounds(st, 0, 11*time.Second)
	if r1.InRotation() {
		t.Error("11s over a 10s bound stayed in rotation")
	}
}

func TestElectionPrefersNewestTimeline(t *testing.T) {
	snap := newOffline(t, offlineConfig(StrategyRoundRobin, 1, 1))
	p, r1 := snap.Node("p"), snap.Node("r1")
	p.timeline.Store(1)
	st := snap.Shards[0].state
	st.elect(2)
	if got, _ := snap.Primary(0); got != p {
		t.Fatalf("Primary = %v, want p", got)
	}
	// r1 promoted (timeline 2) while p still answers as a primary: split brain.
	r1.role.Store(int32(RolePrimary))
	r1.timeline.Store(2)
	st.elect(2)
	if got, _ := snap.Primary(0); got != r1 {
		t.Fatalf("after promotion Primary = %v, want r1", got)
	}
	// r1 dies: p (older timeline) must not be written to.
	r1.Ban(time.Minute)
	st.elect(2)
	if got, err := snap.Primary(0); err == nil {
		t.Fatalf("Primary = %s, want an error: p is a stale primary", got.Name)
	}
	if st.failovers.Load() != 1 {
		t.Errorf("failovers = %d, want 1", st.failovers.Load())
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	for _, strategy := range []string{StrategyRoundRobin, StrategyRandom, StrategyLeastConn, StrategyWeighted} {
		snap := newOffline(t, offlineConfig(strategy, 1, 2))
		st := snap.Shards[0].state
		st.publish(st.claimSeq(), 100, 100, time.Now())
		floor := snap.WriteFloor(0)
		st.publish(st.claimSeq(), 100, 100, time.Now())
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := snap.Primary(0); err != nil {
				t.Fatal(err)
			}
			if _, _, err := snap.Replica(0, floor); err != nil {
				t.Fatal(err)
			}
			_ = snap.Resolve(0, snap.WriteFloor(0))
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Primary+Replica+WriteFloor+Resolve, want 0", strategy, allocs)
		}
	}
}
