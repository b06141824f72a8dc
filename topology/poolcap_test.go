package topology

import "testing"

// TestPoolCapZeroHoldsNothing: under a fleet cap of 0 (no share of the
// budget granted yet) a pool created then may open no backend at all (the
// pool package turns a configured size of 0 into 1); later caps resize it,
// and removing the cap restores the configured size.
func TestPoolCapZeroHoldsNothing(t *testing.T) {
	cfg := offlineConfig("round_robin")
	cfg.Pool.Size = 5
	topo, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(topo.Close)
	topo.SetPoolCap(0)
	node := topo.Snapshot().Shards[0].Nodes[0]
	p := node.Pool(&cfg.Users[0], &cfg.Databases[0])
	if got := p.Size(); got != 0 {
		t.Fatalf("pool created under cap 0: size %d, want 0", got)
	}
	for _, step := range []struct{ cap, want int }{{2, 2}, {9, 5}, {-1, 5}, {0, 0}} {
		topo.SetPoolCap(step.cap)
		if got := p.Size(); got != step.want {
			t.Fatalf("cap %d: pool size %d, want %d", step.cap, got, step.want)
		}
	}
}
