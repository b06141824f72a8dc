package rwsplit

import (
	"context"
	"testing"
	"time"
)

// TestLaggingReplicaLeavesRotation: a replica whose replay is paused while
// the primary writes more WAL than max_lag_bytes (64 kB) takes no reads,
// and returns to the rotation once it replays again.
func TestLaggingReplicaLeavesRotation(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	ctx := testCtx(t, 2*time.Minute)
	shard := env.Cluster.Shards[0]
	r1 := shard.Replicas[0]
	if err := r1.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			r1.ResumeReplay(context.Background())
		}
	})
	// Paused but not behind: an idle primary must not make r1 look stale.
	c := connect(t, env)
	counts := map[int]int{}
	for range 10 {
		counts[mustWho(t, ctx, c, whoSQL).Port]++
	}
	if counts[tp.r1] == 0 {
		t.Errorf("r1 paused but not behind (no new WAL) took none of 10 reads: %s", tp.summary(counts))
	}
	// ~400 kB of WAL, written on the primary directly so the reading client
	// below has no read-your-writes floor.
	if err := execApp(ctx, shard.Primary, "INSERT INTO walfill (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)"); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "reads stop going to the paused replica r1", func() bool {
		for range 4 { // round_robin: four reads in a row avoid r1 only if it left
			if mustWho(t, ctx, c, whoSQL).Port == tp.r1 {
				return false
			}
		}
		return true
	})
	t.Logf("r1 left the rotation %v after the WAL was written", took.Round(time.Millisecond))
	// r2 replays the same WAL; on a busy machine it may itself be over the
	// bound for a moment (reads then fall back to the primary, as configured).
	eventually(t, 10*time.Second, "the healthy replica r2 serves reads", func() bool {
		return mustWho(t, ctx, c, whoSQL).Port == tp.r2
	})
	clear(counts)
	for range 50 {
		s := mustWho(t, ctx, c, whoSQL)
		counts[s.Port]++
	}
	t.Logf("50 reads with r1 paused: %s", tp.summary(counts))
	if counts[tp.r1] != 0 {
		t.Errorf("the paused replica r1 served %d of 50 reads after leaving the rotation", counts[tp.r1])
	}
	if counts[tp.r2] == 0 {
		t.Errorf("the healthy replica r2 served none of 50 reads: %s", tp.summary(counts))
	}

	if err := r1.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	resumed = true
	took = eventually(t, 15*time.Second, "r1 serves reads again after replay resumed", func() bool {
		return mustWho(t, ctx, c, whoSQL).Port == tp.r1
	})
	t.Logf("r1 back in the rotation %v after replay resumed", took.Round(time.Millisecond))
}
