package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	fleetpkg "github.com/pgrouter/pgrouter/fleet"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/test/testenv"
)

// checkFleetDirectoryMove: RESHARD DIRECTORY on one member moves keys of
// the directory-sharded dkv (lookup table cached for an hour on every
// member, and every member's cache holds the moving keys' old shards)
// under a keyed load spread over the three members. Afterwards every
// acknowledged write is on the shard the lookup table names, once
// (checked on the shards), the moved keys on shard2, and a read of each
// moved key through every member finds its row there: no member serves a
// moved key from a stale cached mapping (its source rows are deleted),
// nor does a member started after the switch.
func checkFleetDirectoryMove(ctx context.Context, t *testing.T, fe *fleetEnv) {
	fe.reset(ctx, t)
	var keys []string
	for id := 2; id <= 60; id += 2 {
		keys = append(keys, fmt.Sprint(id))
	}
	keys = append(keys, "1", "3", "5")
	readEach := func(m *testenv.Member, check func(id int64, v int64, found bool)) {
		c := dial(ctx, t, m.DSN(), false)
		defer c.Close(context.WithoutCancel(ctx))
		for _, k := range keys {
			var id, v int64
			fmt.Sscan(k, &id)
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.QueryRow(rctx, "SELECT v FROM dkv WHERE id = $1", id).Scan(&v)
			cancel()
			if err != nil && err != pgx.ErrNoRows {
				t.Fatalf("reading key %d through member %s: %v", id, m.Name, err)
			}
			check(id, v, err == nil)
		}
	}
	for _, m := range fe.members { // every member caches the keys' old shards
		readEach(m, func(id, _ int64, found bool) {
			if !found {
				t.Fatalf("key %d not found through member %s before the move", id, m.Name)
			}
		})
	}
	l := fe.startLoad(ctx, t, "dkv", dkvKeys)
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
	// A member started after the switch learns nothing from a config
	// version: its empty cache reads the lookup table.
	late, err := testenv.StartMember(fe.bin, fe.etcd.URL, fe.dir, "late-dir")
	if err != nil {
		t.Fatal(err)
	}
	defer late.Leave()
	for _, m := range append(fe.members[:3:3], late) {
		readEach(m, func(id, v int64, found bool) {
			if wv, present := want[id]; found != present || (found && v != wv) {
				t.Errorf("key %d through member %s: found %v v=%d, want present %v v=%d (a stale directory cache?)",
					id, m.Name, found, v, present, wv)
			}
		})
		if h := metricOf(m, "pgrouter_reshard_fleet_hold"); h != "0" {
			t.Errorf("member %s: pgrouter_reshard_fleet_hold %q after the directory reshard, want 0", m.Name, h)
		}
	}
	t.Logf("fleet directory reshard %s: %d keys, rows copied %s, held %ss; load: %d writes acknowledged over 3 members, %d reads checked, longest statement %v",
		st["id"], len(keys), st["rows_copied"], st["held_seconds"], l.acked.Load(), l.reads.Load(), time.Duration(l.stall.Load()))
}

// checkFleetDirectoryUndo: a directory reshard run by a member of the
// test's own (package fleet) whose drained step points the lookup table at
// shard2 and then fails: the pointing back (undo) runs while every member
// still holds, and a write of a moving key sent through a member after the
// pointing — its key looked up then, at shard2 — lands on its source once
// released (the member dropped the mapping it cached meanwhile).
func checkFleetDirectoryUndo(ctx context.Context, t *testing.T, fe *fleetEnv) {
	fe.reset(ctx, t)
	for _, m := range fe.members { // no member has key 2 cached
		if _, err := m.Admin("INVALIDATE DIRECTORY dkv"); err != nil {
			t.Fatal(err)
		}
	}
	f := fe.stubMember(ctx, t)
	keys := []string{"2", "4"}
	move, err := sharding.DirectoryMove(fe.routerConfig(t, fe.path), "app", "dkv", "shard0", "shard2", keys)
	if err != nil {
		t.Fatal(err)
	}
	const id = "undo-directory"
	moves := []sharding.Move{move}
	if err := f.ReshardPhase(ctx, id, []byte(fe.base), moves, fleetpkg.PhaseCopy, true); err != nil {
		t.Fatal(err)
	}
	lookup, err := fe.Cluster.Shards[0].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer lookup.Close(context.WithoutCancel(ctx))
	point := func(ctx context.Context, shard string) error {
		_, err := lookup.Exec(ctx, "UPDATE pgrouter_directory SET shard = $1 WHERE key = ANY($2)", shard, keys)
		return err
	}
	write := make(chan error, 1)
	var tag pgconn.CommandTag
	drained := func(ctx context.Context) error {
		if err := point(ctx, "shard2"); err != nil {
			return err
		}
		go func() {
			var err error
			tag, err = dial(ctx, t, fe.members[0].DSN(), false).Exec(ctx, "UPDATE dkv SET v = 77 WHERE id = 2")
			write <- err
		}()
		time.Sleep(200 * time.Millisecond) // the write meets the hold (it passes either way)
		return errors.New("verify failed after pointing (test)")
	}
	var holding []string
	undo := func(ctx context.Context) error {
		for _, m := range fe.members {
			holding = append(holding, metricOf(m, "pgrouter_reshard_fleet_hold"))
		}
		return point(ctx, "shard0")
	}
	_, switched, err := f.ReshardCutover(ctx, id, drained, undo)
	if switched || err == nil || !strings.Contains(err.Error(), "verify failed after pointing") {
		t.Fatalf("cutover whose drained step failed: switched %v, %v; want not switched and the drained error", switched, err)
	}
	if strings.Join(holding, ",") != "1,1,1" {
		t.Fatalf("the members' holds when the lookup table was pointed back: %v, want every member holding (1)", holding)
	}
	select {
	case err := <-write:
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("write of a moving key held during the failed cutover: %v, %v; want 1 row updated", tag, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held write did not finish after the release")
	}
	if got := fe.shardRows(ctx, t, 0, "dkv")[2]; got != 77 {
		t.Fatalf("key 2 on its source after the failed cutover: v=%d, want 77", got)
	}
	if dir := fe.dkvShards(ctx, t); dir[2] != 0 || dir[4] != 0 {
		t.Fatalf("the lookup table places keys 2, 4 on shard%d, shard%d after the failed cutover; want shard0", dir[2], dir[4])
	}
	for _, m := range fe.members {
		awaitHold(t, m, "0")
	}
	if err := f.ReshardPhase(ctx, id, []byte(fe.base), moves, fleetpkg.PhaseAborted, false); err != nil {
		t.Fatal(err)
	}
}
