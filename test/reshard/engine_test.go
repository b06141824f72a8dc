package reshard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router/sharding"
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
	t.Run("kill_during_copy", func(t *testing.T) { checkKillDuringCopy(ctx, t, ee) })
	t.Run("kill_during_catchup", func(t *testing.T) { checkKillDuringCatchup(ctx, t, ee) })
	t.Run("abort", func(t *testing.T) { checkAbort(ctx, t, ee) })
	t.Run("target_fails", func(t *testing.T) { checkTargetFails(ctx, t, ee) })
	t.Run("range_split", func(t *testing.T) { checkRangeSplit(ctx, t, ee) })
	t.Run("verify_refuses", func(t *testing.T) { checkVerifyRefuses(ctx, t, ee) })
	t.Run("directory_move", func(t *testing.T) { checkDirectoryMove(ctx, t, ee) })
}

// startLoad runs the keyed load over 4 clients (half with the simple
// query protocol).
func startLoad(ctx context.Context, t *testing.T, ee *engineEnv) *keyedLoad {
	l := newKeyedLoad("kv", engineKeys, 4)
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
		log, _ := os.ReadFile(filepath.Join(ee.dir, "pgrouter.log"))
		if len(log) > 6000 {
			log = log[len(log)-6000:]
		}
		t.Fatalf("reshard ended in phase %s: %s\npgrouter's log ends:\n%s", st["phase"], st["error"], log)
	}
	shardOf := routerPlaces(t, ee.router(t, next), l.table)
	if l.table == "dkv" {
		dir := ee.dkvShards(ctx, t)
		shardOf = func(id int64) int { return dir[id] }
	}
	checkPlaced(ctx, t, ee, l, shardOf)
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
	log, _ := os.ReadFile(filepath.Join(ee.dir, "pgrouter.log"))
	rounds := 0
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "catch-up round") {
			rounds++
		}
	}
	t.Logf("reshard %s: rows copied %s, %d catch-up rounds, held writes %ss; load: %d writes acknowledged, %d reads checked, longest statement %v",
		st["id"], st["rows_copied"], rounds, st["held_seconds"], l.acked.Load(), l.reads.Load(), time.Duration(l.stall.Load()))
}

func checkSplitUnderLoad(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.nextYAML(t)
	l := startLoad(ctx, t, ee)
	defer l.halt(t)
	time.Sleep(300 * time.Millisecond)
	// The CLI, as a user runs it: it follows the reshard until it is done.
	out, err := exec.CommandContext(ctx, ee.bin, "reshard", "--to", next,
		"--admin", "postgres://admin:admin@"+ee.addr+"/pgrouter?sslmode=disable").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err != nil || !strings.Contains(lines[len(lines)-1], ": done") {
		t.Fatalf("pgrouter reshard: %v\n%s", err, out)
	}
	t.Logf("pgrouter reshard printed %d progress lines, the last: %s", len(lines), lines[len(lines)-1])
	finish(ctx, t, ee, l, next)
	for series, ok := range map[string]func(string) bool{
		"pgrouter_reshard_rows_copied_total":                  func(v string) bool { return v != "" && v != "0" },
		`pgrouter_reshard_phase{phase="done"}`:                func(v string) bool { return v == "1" },
		`pgrouter_reshard_phase{phase="copy"}`:                func(v string) bool { return v == "0" },
		"pgrouter_reshard_held_write_seconds":                 func(v string) bool { return v != "" && v != "0" },
		"pgrouter_reshard_lag_bytes":                          func(v string) bool { return v != "" },
		`pgrouter_reshard_cutovers_total{outcome="switched"}`: func(v string) bool { return v == "1" },
	} {
		if v := ee.metric(t, series); !ok(v) {
			t.Errorf("metric %s = %q after the reshard", series, v)
		}
	}
}

// chunkKeys finds, on shard0, test-owned keys (above engineKeys) that move
// to shard2, one per copy chunk (the engine's chunking: n buckets of the
// key's hash, n from the table's row estimate), and the chunk count.
func chunkKeys(ctx context.Context, t *testing.T, ee *engineEnv, next string) (keys []int64, chunks int) {
	t.Helper()
	moves, err := sharding.PlanMoves(ee.routerConfig(t, ee.path), ee.routerConfig(t, next))
	if err != nil || len(moves) != 1 {
		t.Fatalf("moves %v, %v", moves, err)
	}
	chunks = int(ee.onShard(ctx, t, 0, "SELECT ceil(reltuples / 2000)::bigint FROM pg_class WHERE relname = 'kv'"))
	if chunks < 3 {
		t.Fatalf("kv on shard0 copies in %d chunks; the test needs 3 or more", chunks)
	}
	for c := 0; c < chunks; c++ {
		keys = append(keys, ee.onShard(ctx, t, 0, fmt.Sprintf(
			"SELECT min(id) FROM kv WHERE id > %d AND (%s) AND (hashtextextended(id::text, 0) & 2147483647) %% %d = %d",
			engineKeys, moves[0].Where, chunks, c)))
	}
	return keys, chunks
}

// blockOnTarget starts a transaction on shard2 holding key (an uncommitted
// insert, or a row lock when the row is there): the engine's COPY or apply
// of that key waits for it.
func blockOnTarget(ctx context.Context, t *testing.T, ee *engineEnv, key int64, lockRow bool) pgx.Tx {
	t.Helper()
	c, err := ee.Cluster.Shards[2].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sql := "INSERT INTO kv VALUES ($1, -1, 'blocker')"
	if lockRow {
		sql = "SELECT FROM kv WHERE id = $1 FOR UPDATE"
	}
	if _, err := tx.Exec(ctx, sql, key); err != nil {
		t.Fatal(err)
	}
	return tx
}

// reshardTo starts the reshard to the config file next.
func reshardTo(ctx context.Context, t *testing.T, ee *engineEnv, next string) {
	t.Helper()
	if err := ee.admin(ctx, t, "RESHARD TO '"+strings.ReplaceAll(next, "'", "''")+"'"); err != nil {
		t.Fatal(err)
	}
}

// crashLoad is startLoad with workers that reconnect after a crash.
func crashLoad(ctx context.Context, t *testing.T, ee *engineEnv) *keyedLoad {
	l := newKeyedLoad("kv", engineKeys, 4)
	l.dial = func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.Connect(ctx, fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", ee.addr))
	}
	var conns []*pgx.Conn
	for i := 0; i < l.workers; i++ {
		conns = append(conns, ee.connect(ctx, t, "app", "app", i%2 == 0))
	}
	l.run(ctx, conns)
	return l
}

// restartAndResume restarts the killed pgrouter and resumes the reshard.
func restartAndResume(ctx context.Context, t *testing.T, ee *engineEnv, phase string) {
	t.Helper()
	ee.start(t)
	if st := ee.status(ctx, t); st["phase"] != phase || st["running"] != "false" {
		t.Fatalf("after the restart SHOW RESHARD says %v, want phase %s, not running", st, phase)
	}
	if err := ee.admin(ctx, t, "RESHARD RESUME"); err != nil {
		t.Fatal(err)
	}
}

func checkKillDuringCopy(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.nextYAML(t)
	keys, chunks := chunkKeys(ctx, t, ee, next)
	block := blockOnTarget(ctx, t, ee, keys[1], false) // chunk 0 copies, chunk 1 waits
	l := crashLoad(ctx, t, ee)
	defer l.halt(t)
	reshardTo(ctx, t, ee, next)
	waitFor(t, "chunk 0 to be copied", time.Minute, func() bool {
		st := ee.savedState(t)
		return len(st.Moves) == 1 && len(st.Moves[0].Done) > 0 && st.Moves[0].Done[0]
	})
	time.Sleep(200 * time.Millisecond)
	ee.kill()
	st := ee.savedState(t)
	if st.Phase != "copy" || len(st.Moves[0].Done) != chunks || st.Moves[0].Done[1] {
		t.Fatalf("state at the kill: %+v; want phase copy, %d chunks, chunk 1 not done", st, chunks)
	}
	block.Rollback(ctx)
	restartAndResume(ctx, t, ee, "copy")
	finish(ctx, t, ee, l, next)
	t.Logf("killed with chunks %v done; %d load reconnects", st.Moves[0].Done, l.reconnects.Load())
}

func checkKillDuringCatchup(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.nextYAML(t)
	l := crashLoad(ctx, t, ee)
	defer l.halt(t)
	holdApply, keys := toCatchup(ctx, t, ee, next)
	key := keys[0]
	time.Sleep(300 * time.Millisecond)
	ee.kill()
	if st := ee.savedState(t); st.Phase != "catchup" {
		t.Fatalf("phase at the kill: %s, want catchup", st.Phase)
	}
	holdApply.Rollback(ctx)
	restartAndResume(ctx, t, ee, "catchup")
	finish(ctx, t, ee, l, next)
	if n := ee.onShard(ctx, t, 2, "SELECT v FROM kv WHERE id = $1", key); n != 42 {
		t.Errorf("key %d on shard2: v=%d, want the 42 written during the catch-up", key, n)
	}
	t.Logf("%d load reconnects", l.reconnects.Load())
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// toCatchup starts the reshard with one key's apply held on shard2, and
// returns once the engine is in its catch-up (which waits for that key);
// rolling the returned transaction back lets it go on.
func toCatchup(ctx context.Context, t *testing.T, ee *engineEnv, next string) (pgx.Tx, []int64) {
	t.Helper()
	keys, _ := chunkKeys(ctx, t, ee, next)
	holdCopy := blockOnTarget(ctx, t, ee, keys[len(keys)-1], false) // the copy waits at its last chunk
	reshardTo(ctx, t, ee, next)
	waitFor(t, "chunk 0 to be copied", time.Minute, func() bool {
		st := ee.savedState(t)
		return len(st.Moves) == 1 && len(st.Moves[0].Done) > 0 && st.Moves[0].Done[0]
	})
	holdApply := blockOnTarget(ctx, t, ee, keys[0], true) // its copy is on shard2: lock it there
	if n := ee.onShard(ctx, t, 0, "UPDATE kv SET v = 42 WHERE id = $1 RETURNING 1", keys[0]); n != 1 {
		t.Fatal("update of the locked key on shard0")
	}
	holdCopy.Rollback(ctx) // the copy ends; the catch-up waits for the locked row
	ee.waitStatus(ctx, t, "the catch-up", time.Minute, func(st map[string]string) bool { return st["phase"] == "catchup" })
	return holdApply, keys
}

// checkUnchanged checks that an aborted reshard left the placement, the
// config file and the sources as they were, and shard2 empty.
func checkUnchanged(ctx context.Context, t *testing.T, ee *engineEnv, l *keyedLoad) {
	t.Helper()
	checkPlaced(ctx, t, ee, l, routerPlaces(t, ee.router(t, ee.path), l.table))
	if got, _ := os.ReadFile(ee.path); string(got) != ee.base {
		t.Error("the config file changed")
	}
	if n := ee.onShard(ctx, t, 2, "SELECT count(*) FROM kv"); n != 0 {
		t.Errorf("shard2 keeps %d copied rows after the abort", n)
	}
	if n := ee.onShard(ctx, t, 0, "SELECT count(*) FROM pg_replication_slots"); n != 0 {
		t.Errorf("%d replication slots left on shard0", n)
	}
	if n := ee.onShard(ctx, t, 0, "SELECT count(*) FROM pg_publication"); n != 0 {
		t.Errorf("%d publications left on shard0", n)
	}
	present := 0
	for _, want := range l.want {
		present += len(want)
	}
	var n int64 // a read over every shard: no marks are left
	if err := ee.connect(ctx, t, "app", "app", false).QueryRow(ctx, "SELECT count(*) FROM kv WHERE id <= $1", engineKeys).Scan(&n); err != nil || n != int64(present) {
		t.Errorf("count through pgrouter after the abort: %d, %v; want %d", n, err, present)
	}
}

func checkAbort(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.nextYAML(t)
	l := startLoad(ctx, t, ee)
	defer l.halt(t)
	holdApply, _ := toCatchup(ctx, t, ee, next)
	_, err := ee.connect(ctx, t, "app", "app", true).Exec(ctx, "ALTER TABLE kv ADD COLUMN w int")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55000" || pe.Hint == "" {
		t.Errorf("DDL on the moving table during the reshard: %v, want 55000 with a hint", err)
	}
	holdApply.Rollback(ctx)
	if err := ee.admin(ctx, t, "RESHARD ABORT"); err != nil {
		t.Fatal(err)
	}
	st := ee.waitStatus(ctx, t, "the abort", 10*time.Second, phaseIs("aborted"))
	if st["error"] != "" {
		t.Errorf("abort left an error: %s", st["error"])
	}
	time.Sleep(200 * time.Millisecond)
	l.halt(t)
	checkUnchanged(ctx, t, ee, l)
	if err := ee.admin(ctx, t, "RESHARD RESUME"); err == nil || !strings.Contains(err.Error(), "no unfinished reshard") {
		t.Errorf("RESHARD RESUME after the abort: %v", err)
	}
}

func checkTargetFails(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.nextYAML(t)
	l := startLoad(ctx, t, ee)
	defer l.halt(t)
	toCatchup(ctx, t, ee, next)
	target := ee.Cluster.Shards[2].Primary
	if err := target.Kill(); err != nil {
		t.Fatal(err)
	}
	defer func() { // the next tests need shard2
		if !target.Running() {
			target.Start(ctx)
		}
	}()
	st := ee.waitStatus(ctx, t, "the engine to give up", time.Minute, func(st map[string]string) bool { return st["running"] == "false" })
	if !strings.Contains(st["error"], "target shard shard2 failed") || !strings.Contains(st["error"], "aborted") {
		t.Fatalf("error after the target died: %q", st["error"])
	}
	t.Logf("SHOW RESHARD after the target died: phase %s, error %q", st["phase"], st["error"])
	if err := target.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st["phase"] != "aborted" { // the copies could not be deleted while shard2 was down
		if err := ee.admin(ctx, t, "RESHARD ABORT"); err != nil {
			t.Fatal(err)
		}
		ee.waitStatus(ctx, t, "the abort", 10*time.Second, phaseIs("aborted"))
	}
	time.Sleep(200 * time.Millisecond)
	l.halt(t)
	checkUnchanged(ctx, t, ee, l)
}

// checkRangeSplit moves ev's keys [500, 1000) from shard0 to shard2 under a
// keyed load on ev.
func checkRangeSplit(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.rangeNextYAML(t)
	l := newKeyedLoad("ev", evKeys, 2)
	l.run(ctx, []*pgx.Conn{ee.connect(ctx, t, "app", "app", true), ee.connect(ctx, t, "app", "app", false)})
	defer l.halt(t)
	time.Sleep(200 * time.Millisecond)
	reshardTo(ctx, t, ee, next)
	finish(ctx, t, ee, l, next)
	if n := ee.onShard(ctx, t, 2, "SELECT count(*) FROM ev WHERE id < 500 OR id >= 1000"); n != 0 {
		t.Errorf("shard2 holds %d rows of ev outside [500, 1000)", n)
	}
	if n := ee.onShard(ctx, t, 2, "SELECT count(*) FROM ev"); n == 0 {
		t.Error("shard2 holds no rows of ev after the range split")
	}
}

// checkVerifyRefuses corrupts one copied row on shard2 behind the engine's
// back: verify names the key and the cutover is refused; the placement
// stays, and an abort leaves everything as it was.
func checkVerifyRefuses(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	next := ee.nextYAML(t)
	l := startLoad(ctx, t, ee)
	defer l.halt(t)
	holdApply, keys := toCatchup(ctx, t, ee, next)
	if _, err := holdApply.Exec(ctx, "UPDATE kv SET v = 999 WHERE id = $1", keys[1]); err != nil {
		t.Fatal(err)
	}
	if err := holdApply.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	st := ee.waitStatus(ctx, t, "the engine to refuse the cutover", time.Minute, func(st map[string]string) bool { return st["running"] == "false" })
	if want := fmt.Sprintf("keys (%d)", keys[1]); st["phase"] != "catchup" || !strings.Contains(st["error"], want) || !strings.Contains(st["error"], "cutover refused") {
		t.Fatalf("SHOW RESHARD after a corrupted copy: %v; want phase catchup and an error naming %s", st, want)
	}
	t.Logf("error: %s", st["error"])
	if got, _ := os.ReadFile(ee.path); string(got) != ee.base {
		t.Fatal("the config file changed although the cutover was refused")
	}
	if err := ee.admin(ctx, t, "RESHARD ABORT"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	l.halt(t)
	checkUnchanged(ctx, t, ee, l)
}

// checkDirectoryMove moves dkv's even keys up to 100 (on shard0) and a few
// odd ones (on shard1) to shard2 under a keyed load on dkv, with the CLI.
func checkDirectoryMove(ctx context.Context, t *testing.T, ee *engineEnv) {
	ee.reset(ctx, t)
	var keys []string
	for id := 2; id <= 100; id += 2 {
		keys = append(keys, fmt.Sprint(id))
	}
	keys = append(keys, "1", "3", "5")
	l := newKeyedLoad("dkv", dkvKeys, 2)
	l.run(ctx, []*pgx.Conn{ee.connect(ctx, t, "app", "app", true), ee.connect(ctx, t, "app", "app", false)})
	defer l.halt(t)
	time.Sleep(200 * time.Millisecond)
	out, err := exec.CommandContext(ctx, ee.bin, "reshard", "--directory", "dkv", "--keys", strings.Join(keys, ","), "--to-shard", "shard2",
		"--admin", "postgres://admin:admin@"+ee.addr+"/pgrouter?sslmode=disable").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": done") {
		t.Fatalf("pgrouter reshard --directory: %v\n%s", err, out)
	}
	finish(ctx, t, ee, l, ee.path)
	dir := ee.dkvShards(ctx, t)
	for _, k := range keys {
		var id int64
		fmt.Sscan(k, &id)
		if dir[id] != 2 {
			t.Errorf("the lookup table places key %d on shard%d, want shard2", id, dir[id])
		}
	}
	if n := ee.onShard(ctx, t, 2, "SELECT count(*) FROM dkv WHERE id > 100 OR (id % 2 = 1 AND id > 5)"); n != 0 {
		t.Errorf("shard2 holds %d rows of dkv that did not move", n)
	}
}
