package reshard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// checkFleetDirectoryMove: RESHARD DIRECTORY on one member moves keys of
// the directory-sharded dkv (lookup table cached for an hour on every
// member, and every member's cache holds the moving keys' old shards)
// under a keyed load spread over the three members. Afterwards every
// acknowledged write is on the shard the lookup table names, once
// (checked on the shards), the moved keys on shard2, and a read of each
// moved key through every member finds its row there: no member serves a
// moved key from a stale cached mapping (its source rows are deleted).
func checkFleetDirectoryMove(ctx context.Context, t *testing.T, fe *fleetEnv) {
	fe.reset(ctx, t)
	var keys []string
	for id := 2; id <= 60; id += 2 {
		keys = append(keys, fmt.Sprint(id))
	}
	keys = append(keys, "1", "3", "5")
	readEach := func(m int, check func(id int64, v int64, found bool)) {
		c := dial(ctx, t, fe.members[m].DSN(), m%2 == 0)
		defer c.Close(context.WithoutCancel(ctx))
		for _, k := range keys {
			var id, v int64
			fmt.Sscan(k, &id)
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.QueryRow(rctx, "SELECT v FROM dkv WHERE id = $1", id).Scan(&v)
			cancel()
			if err != nil && err != pgx.ErrNoRows {
				t.Fatalf("reading key %d through member %s: %v", id, fe.members[m].Name, err)
			}
			check(id, v, err == nil)
		}
	}
	for m := range fe.members { // every member caches the keys' old shards
		readEach(m, func(id, _ int64, found bool) {
			if !found {
				t.Fatalf("key %d not found through member %s before the move", id, fe.members[m].Name)
			}
		})
	}
	l := newKeyedLoad("dkv", dkvKeys, 6)
	var conns []*pgx.Conn
	for w := 0; w < l.workers; w++ {
		conns = append(conns, dial(ctx, t, fe.members[w%3].DSN(), w%2 == 0))
	}
	l.run(ctx, conns)
	defer l.halt(t)
	time.Sleep(300 * time.Millisecond)
	runner := fe.members[1]
	if _, err := runner.Admin("RESHARD DIRECTORY dkv TO shard2 KEYS " + strings.Join(keys, ",")); err != nil {
		t.Fatalf("RESHARD DIRECTORY on a fleet member: %v", err)
	}
	st := awaitReshard(t, runner, "the directory reshard to finish", time.Minute, reshardEnded)
	time.Sleep(300 * time.Millisecond) // writes of the moved keys through every member
	l.halt(t)
	if st["phase"] != "done" {
		t.Fatalf("directory reshard ended in phase %s: %s", st["phase"], st["error"])
	}
	dir := fe.dkvShards(ctx, t)
	for _, k := range keys {
		var id int64
		fmt.Sscan(k, &id)
		if dir[id] != 2 {
			t.Errorf("the lookup table places key %d on shard%d, want shard2", id, dir[id])
		}
	}
	checkPlaced(ctx, t, fe.engineEnv, l, func(id int64) int { return dir[id] })
	want := map[int64]int64{}
	for _, w := range l.want {
		for id, v := range w {
			want[id] = v
		}
	}
	for m := range fe.members {
		readEach(m, func(id, v int64, found bool) {
			if wv, present := want[id]; found != present || (found && v != wv) {
				t.Errorf("key %d through member %s: found %v v=%d, want present %v v=%d (a stale directory cache?)",
					id, fe.members[m].Name, found, v, present, wv)
			}
		})
		if h := metricOf(fe.members[m], "pgrouter_reshard_fleet_hold"); h != "0" {
			t.Errorf("member %s: pgrouter_reshard_fleet_hold %q after the directory reshard, want 0", fe.members[m].Name, h)
		}
	}
	t.Logf("fleet directory reshard %s: %d keys, rows copied %s, held %ss; load: %d writes acknowledged over 3 members, %d reads checked, longest statement %v",
		st["id"], len(keys), st["rows_copied"], st["held_seconds"], l.acked.Load(), l.reads.Load(), time.Duration(l.stall.Load()))
}
