package topology

import (
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

// spreadConfig: shard s0 with two replicas, s1 with one, s2 with none.
func spreadConfig() *config.Config {
	cfg := offlineConfig("round_robin", 1, 1)
	cfg.Shards = append(cfg.Shards,
		config.Shard{Name: "s1", Primary: config.Node{Name: "p1", Addr: "127.0.0.1:1"},
			Replicas: []config.Node{{Name: "r1-1", Addr: "127.0.0.1:1"}}},
		config.Shard{Name: "s2", Primary: config.Node{Name: "p2", Addr: "127.0.0.1:1"}})
	return cfg
}

func spreadSnapshot(t *testing.T) *Snapshot {
	t.Helper()
	topo, err := New(spreadConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(topo.Close)
	snap := topo.Snapshot()
	for _, sh := range snap.Shards {
		for i, n := range sh.Nodes {
			role := RoleReplica
			if i == 0 {
				role = RolePrimary
			}
			markChecked(n, role, 100)
		}
	}
	return snap
}

func spreadCounts(s *Snapshot, mask uint64, floors []Floor, n int) map[int]int {
	got := map[int]int{}
	for i := 0; i < n; i++ {
		got[s.SpreadShard(mask, floors)]++
	}
	return got
}

// Each eligible replica gets an equal share: s0 (two replicas) twice s1's.
func TestSpreadShardWeighsByEligibleReplicas(t *testing.T) {
	s := spreadSnapshot(t)
	got := spreadCounts(s, 0b111, make([]Floor, 3), 300)
	if got[0] != 200 || got[1] != 100 || got[2] != 0 {
		t.Fatalf("spread = %v, want s0 200, s1 100, s2 0", got)
	}
	if got := spreadCounts(s, 0b100, nil, 10); got[2] != 10 {
		t.Fatalf("one shard in the mask: %v", got)
	}
}

// A replica behind the session's floor is not eligible; with none eligible
// anywhere the reads rotate over the shards of the mask.
func TestSpreadShardHonoursFloorsAndFallsBack(t *testing.T) {
	s := spreadSnapshot(t)
	floors := []Floor{{LSN: 500}, {}, {}} // s0's replicas are at 100
	if got := spreadCounts(s, 0b111, floors, 50); got[1] != 50 {
		t.Fatalf("with s0 behind the floor: %v, want all on s1", got)
	}
	for _, n := range s.Shards[1].Nodes[1:] {
		n.lsn.Store(0)
	}
	floors[1] = Floor{LSN: 500}
	if got := spreadCounts(s, 0b011, floors, 60); got[0] != 30 || got[1] != 30 {
		t.Fatalf("no eligible replica: %v, want an even rotation over s0 and s1", got)
	}
}
