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

	"github.com/pgrouter/pgrouter/config"
	fleetpkg "github.com/pgrouter/pgrouter/fleet"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/test/testenv"
)

// fleetCluster is the fleet's cluster section: a lease long enough that a
// stopped member stays listed (it must be named, not dropped), a short
// barrier so a failing cutover fails fast.
const fleetCluster = "cluster:\n  lease_ttl: 60s\n  barrier_timeout: 3s\n"

// fleetEnv is the engine environment's cluster served by three fleet
// members on a real etcd instead of one pgrouter on a file.
type fleetEnv struct {
	*engineEnv
	etcd    *fleetpkg.LocalEtcd
	members []*testenv.Member
}

func startFleetEnv(ctx context.Context, t *testing.T) *fleetEnv {
	t.Helper()
	fe := &fleetEnv{engineEnv: startEngineEnv(ctx, t)}
	fe.base += fleetCluster // every version pushed, the reshard's next one too
	etcd, err := fleetpkg.StartLocalEtcd(fe.dir, "/reshard-fleet")
	if err != nil {
		t.Fatal(err)
	}
	fe.etcd = etcd
	t.Cleanup(etcd.Stop)
	fe.push(t, fe.base)
	for i := 0; i < 3; i++ {
		m, err := testenv.StartMember(fe.bin, etcd.URL, fe.dir, fmt.Sprintf("m%d", i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			m.Kill()
			if log, _ := os.ReadFile(m.LogPath); strings.Contains(string(log), "DATA RACE") {
				t.Errorf("member %s reported a data race (PGROUTER_TEST_RACE build):\n%s", m.Name, log)
			}
		})
		fe.members = append(fe.members, m)
	}
	return fe
}

// push publishes yaml (with --force: the tests go back to the base
// placement) and waits until every live member runs it.
func (fe *fleetEnv) push(t *testing.T, yaml string) {
	t.Helper()
	path := filepath.Join(fe.dir, "push.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(fe.bin, "config", "push", path, "--etcd", fe.etcd.URL, "--force", "--wait", "30s").CombinedOutput()
	if err != nil {
		t.Fatalf("config push: %v\n%s", err, out)
	}
}

// reset puts the base placement back in force on every member and the
// tables' first rows on the shards.
func (fe *fleetEnv) reset(ctx context.Context, t *testing.T) {
	t.Helper()
	fe.push(t, fe.base)
	fe.refill(ctx, t)
}

// versions is the config version of each member, as SHOW FLEET lists them.
func (fe *fleetEnv) versions(t *testing.T) map[string]string {
	t.Helper()
	rows, err := fe.members[0].Admin("SHOW FLEET")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out
}

// reshardStatus is SHOW RESHARD's row on m.
func reshardStatus(t *testing.T, m *testenv.Member) map[string]string {
	t.Helper()
	rows, err := m.Admin("SHOW RESHARD")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	cols := []string{"id", "phase", "running", "table", "chunks", "rows_copied", "lag_bytes", "held_seconds", "error"}
	for _, r := range rows {
		for i, c := range cols {
			out[c] = r[i]
		}
	}
	return out
}

// awaitReshard polls SHOW RESHARD on m until cond holds (at most d).
func awaitReshard(t *testing.T, m *testenv.Member, what string, d time.Duration, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := reshardStatus(t, m)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(m.LogPath)
			if len(log) > 8000 {
				log = log[len(log)-8000:]
			}
			t.Fatalf("timed out waiting for %s; SHOW RESHARD on %s: %v\nits log ends:\n%s", what, m.Name, st, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func reshardEnded(st map[string]string) bool { return st["phase"] != "" && st["running"] == "false" }

// TestReshardFleet runs RESHARD on one member of a three-member fleet over
// one 3-shard cluster: a split under a write load spread over the members,
// a directory move under such a load (fleet_dir_test.go), a member stopped
// during the cutover's hold, a reshard whose initiator goes silent between
// the hold and the switch, a member frozen between them, and a directory
// move whose switch fails after the lookup table was pointed.
func TestReshardFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fe := startFleetEnv(ctx, t)
	t.Run("split_under_load", func(t *testing.T) { checkFleetSplit(ctx, t, fe) })
	t.Run("directory_move_under_load", func(t *testing.T) { checkFleetDirectoryMove(ctx, t, fe) })
	t.Run("member_stopped_during_hold", func(t *testing.T) { checkFleetStoppedMember(ctx, t, fe) })
	t.Run("initiator_silent_after_hold", func(t *testing.T) { checkFleetLostInitiator(ctx, t, fe) })
	t.Run("member_frozen_before_switch", func(t *testing.T) { checkFleetFrozenBeforeSwitch(ctx, t, fe) })
	t.Run("directory_switch_fails_after_pointing", func(t *testing.T) { checkFleetDirectoryUndo(ctx, t, fe) })
}

// checkFleetSplit: with writes going through all three members, every
// acknowledged write ends on the shard the next placement names (checked
// on the shards), each member runs the version the reshard published and
// switched with it, and the members that did not run the reshard point
// to the one that did.
func checkFleetSplit(ctx context.Context, t *testing.T, fe *fleetEnv) {
	fe.reset(ctx, t)
	before := fe.versions(t)
	next := fe.nextYAML(t)
	l := fe.startLoad(ctx, t, "kv", engineKeys)
	defer l.halt(t)
	time.Sleep(300 * time.Millisecond)
	runner := fe.members[0]
	if _, err := runner.Admin("RESHARD TO '" + next + "'"); err != nil {
		t.Fatalf("RESHARD TO on a fleet member: %v", err)
	}
	st := awaitReshard(t, runner, "the reshard to finish", 3*time.Minute, reshardEnded)
	time.Sleep(300 * time.Millisecond) // writes under the new placement, through every member
	l.halt(t)
	if st["phase"] != "done" {
		t.Fatalf("reshard ended in phase %s: %s", st["phase"], st["error"])
	}
	checkPlaced(ctx, t, fe.engineEnv, l, routerPlaces(t, fe.router(t, next), l.table))
	after := fe.versions(t)
	for _, m := range fe.members {
		var b, a int64
		fmt.Sscan(before[m.Addr], &b)
		fmt.Sscan(after[m.Addr], &a)
		if a != b+1 {
			t.Errorf("member %s runs version %s after the reshard, want %d (it ran %d)", m.Name, after[m.Addr], b+1, b)
		}
		if v := metricOf(m, `pgrouter_reshard_cutovers_total{outcome="switched"}`); v == "" || v == "0" {
			t.Errorf("member %s counted no switched cutover (%q)", m.Name, v)
		}
	}
	// A member that starts after the switch just runs the newest version.
	late, err := testenv.StartMember(fe.bin, fe.etcd.URL, fe.dir, "late")
	if err != nil {
		t.Fatal(err)
	}
	defer late.Leave() // its lease goes: the next barriers do not wait for it
	rn := fe.router(t, next)
	moved := keyWhere(t, fe.router(t, fe.path), rn, 0, 2)
	if _, err := dial(ctx, t, late.DSN(), false).Exec(ctx, "UPDATE kv SET pad = 'late' WHERE id = $1", moved); err != nil {
		t.Fatalf("write through a member started after the switch: %v", err)
	}
	if n := fe.onShard(ctx, t, 2, "SELECT count(*) FROM kv WHERE pad = 'late'"); n != 1 {
		t.Fatalf("the write through a member started after the switch is not on the key's new shard (%d rows there)", n)
	}
	var pe *pgconn.PgError
	if _, err := fe.members[2].Admin("RESHARD RESUME"); !errors.As(err, &pe) || !strings.Contains(pe.Hint, "runs on member "+runner.Addr) {
		t.Errorf("RESHARD RESUME on a member that runs no reshard: %v; want a hint naming %s", err, runner.Addr)
	}
	other := reshardStatus(t, fe.members[1])
	if other["id"] != st["id"] || other["phase"] != "done" || !strings.Contains(other["error"], runner.Addr) {
		t.Errorf("SHOW RESHARD on another member: %v; want reshard %s, done, pointing to %s", other, st["id"], runner.Addr)
	}
	t.Logf("fleet reshard %s: rows copied %s, held %ss; load: %d writes acknowledged over 3 members, %d reads checked, longest statement %v",
		st["id"], st["rows_copied"], st["held_seconds"], l.acked.Load(), l.reads.Load(), time.Duration(l.stall.Load()))
}

// checkFleetStoppedMember: a member frozen (SIGSTOP) before the cutover
// keeps its lease but answers nothing: every cutover try fails naming
// it, nothing switches (versions, rows on the old placement), the others
// serve the moving keys' writes again, and no other member starts a
// second reshard meanwhile; once it runs again, RESHARD RESUME switches
// every member.
func checkFleetStoppedMember(ctx context.Context, t *testing.T, fe *fleetEnv) {
	fe.reset(ctx, t)
	before := fe.versions(t)
	next := fe.nextYAML(t)
	runner, frozen := fe.members[0], fe.members[2]
	// The copy waits for this lock on the target, so the member is frozen
	// after the marks were confirmed (the copy has begun) and before the hold.
	lock, err := fe.Cluster.Shards[2].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(context.WithoutCancel(ctx))
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE kv IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Admin("RESHARD TO '" + next + "'"); err != nil {
		t.Fatalf("RESHARD TO: %v", err)
	}
	awaitReshard(t, runner, "the copy to begin", time.Minute, func(st map[string]string) bool {
		return st["chunks"] != "" && !strings.HasSuffix(st["chunks"], "/0")
	})
	// A member that joins now takes the reshard's marks before its first
	// client: DDL on the moving table is refused there too.
	late, err := testenv.StartMember(fe.bin, fe.etcd.URL, fe.dir, "late-copy")
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second) // unmarked, it would wait for the test's lock
	_, err = dial(ctx, t, late.DSN(), true).Exec(dctx, "ALTER TABLE kv ADD COLUMN w int")
	dcancel()
	late.Leave() // before the cutover: the barriers need not wait for it
	if err == nil || !strings.Contains(err.Error(), "being resharded") || !strings.Contains(err.Error(), "55000") {
		t.Fatalf("DDL through a member that joined during the copy: %v; want 55000 (being resharded)", err)
	}
	frozen.Stop()
	defer frozen.Cont()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	st := awaitReshard(t, runner, "the cutover to give up", 2*time.Minute, func(st map[string]string) bool { return st["running"] == "false" })
	if st["phase"] != "catchup" || !strings.Contains(st["error"], "member "+frozen.Addr+" did not acknowledge") {
		t.Fatalf("reshard with %s frozen: phase %s, error %q; want the catch-up and an error naming it", frozen.Addr, st["phase"], st["error"])
	}
	t.Logf("cutover with a frozen member: %s", st["error"])
	if _, err := fe.members[1].Admin("RESHARD TO '" + next + "'"); err == nil || !strings.Contains(err.Error(), "on fleet member "+runner.Addr) {
		t.Errorf("a second RESHARD on another member while the first is unfinished: %v; want a refusal naming %s", err, runner.Addr)
	}
	if v := fe.versions(t); v[runner.Addr] != before[runner.Addr] || v[fe.members[1].Addr] != before[fe.members[1].Addr] {
		t.Fatalf("versions changed although the cutover failed: %v, before %v", v, before)
	}
	// Nothing switched: the rows are where the base placement says, and a
	// write of a moving key goes there through a member that held.
	base := fe.router(t, fe.path)
	rn := fe.router(t, next)
	key := keyWhere(t, base, rn, 0, 2)
	c := dial(ctx, t, fe.members[1].DSN(), false)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = c.Exec(wctx, "UPDATE kv SET v = 1 WHERE id = $1", key)
	wcancel()
	if err != nil {
		t.Fatalf("write of a moving key after the failed cutover: %v", err)
	}
	if got := fe.shardRows(ctx, t, 0, "kv")[key]; got != 1 {
		t.Fatalf("key %d: v=%d on its old shard after a failed cutover, want 1", key, got)
	}
	for i := 0; i < 2; i++ {
		rows := fe.shardRows(ctx, t, i, "kv")
		for id := int64(1); id <= engineKeys; id++ {
			s, _ := base.ShardOfKey("kv", []byte(fmt.Sprint(id)))
			if _, ok := rows[id]; ok != (s == i) {
				t.Fatalf("key %d: present on shard%d = %v after a failed cutover; its base shard is shard%d", id, i, ok, s)
			}
		}
	}
	frozen.Cont()
	if _, err := runner.Admin("RESHARD RESUME"); err != nil {
		t.Fatalf("RESHARD RESUME: %v", err)
	}
	st = awaitReshard(t, runner, "the resumed reshard to finish", 2*time.Minute, reshardEnded)
	if st["phase"] != "done" {
		t.Fatalf("resumed reshard ended in phase %s: %s", st["phase"], st["error"])
	}
	l := newKeyedLoad("kv", engineKeys, 1) // no load: the rows as filled, and the one write
	l.want[0][key] = 1
	checkPlaced(ctx, t, fe.engineEnv, l, routerPlaces(t, rn, l.table))
	after := fe.versions(t)
	for _, m := range fe.members {
		if after[m.Addr] == before[m.Addr] {
			t.Errorf("member %s still runs version %s after the resumed reshard", m.Name, after[m.Addr])
		}
	}
}

// metricOf reads one sample of m's metrics ("" when absent).
func metricOf(m *testenv.Member, series string) string {
	for _, l := range strings.Split(m.Scrape(), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// checkFleetLostInitiator: the test plays the member running a reshard
// (a fleet member of its own, through package fleet) and goes silent
// after every member acknowledged the hold. The members keep holding the
// moving keys, then refuse their statements — writes and reads — with
// 55000 naming the reshard, never releasing them onto the old placement;
// staying keys go on. Once the version is published they switch and serve
// the moving keys on their new shard.
func checkFleetLostInitiator(ctx context.Context, t *testing.T, fe *fleetEnv) {
	r := fe.stubReshard(ctx, t, "lost-initiator")
	next, id := r.next, r.id
	silent := make(chan struct{})
	cutover := r.cutover(ctx, silent)
	m := fe.members[1]
	awaitHold(t, m, "1")
	base, rn := fe.router(t, fe.path), fe.router(t, next)
	moving, staying := keyWhere(t, base, rn, 0, 2), keyWhere(t, base, rn, 0, 0)
	c := dial(ctx, t, m.DSN(), false)
	refused := func(sql string, args ...any) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := c.Exec(sctx, sql, args...)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55000" || !strings.Contains(pe.Message, "reshard "+id) || pe.Hint == "" {
			t.Fatalf("%s on a member whose cutover went silent: %v; want 55000 naming reshard %s, with a hint", sql, err, id)
		}
	}
	refused("UPDATE kv SET v = 7 WHERE id = $1", moving) // waits at the hold, then refused
	if v := metricOf(m, "pgrouter_reshard_fleet_hold"); v != "2" {
		t.Fatalf("pgrouter_reshard_fleet_hold = %q while refusing, want 2", v)
	}
	refused("SELECT v FROM kv WHERE id = $1", moving)
	if _, err := c.Exec(ctx, "UPDATE kv SET v = 8 WHERE id = $1", staying); err != nil {
		t.Fatalf("write of a staying key while the moving ones are refused: %v", err)
	}
	if got := fe.shardRows(ctx, t, 0, "kv")[moving]; got != 0 {
		t.Fatalf("key %d changed on its old shard (v=%d) while refused", moving, got)
	}
	close(silent) // the member running the reshard is back: it publishes and switches
	if out := <-cutover; out.err != nil || !out.switched {
		t.Fatalf("cutover after the silence: switched %v, %v", out.switched, out.err)
	}
	ins := keyWhereIn(t, base, rn, engineKeys+1, engineKeys+extraKeys, 0, 2)
	if _, err := c.Exec(ctx, "INSERT INTO kv (id, v) VALUES ($1, 9)", ins); err != nil {
		t.Fatalf("write of a moving key after the switch: %v", err)
	}
	if got, ok := fe.shardRows(ctx, t, 2, "kv")[ins]; !ok || got != 9 {
		t.Fatalf("key %d written after the switch is not on its new shard: %v %v", ins, got, ok)
	}
	if v := metricOf(m, "pgrouter_reshard_fleet_hold"); v != "0" {
		t.Fatalf("pgrouter_reshard_fleet_hold = %q after the switch, want 0", v)
	}
	r.done(ctx, t)
}

// stubReshard is a reshard run by the test itself: a fleet member of its
// own (through package fleet, serving nothing) records it, and its
// cutover's drained step waits for the test.
type stubReshard struct {
	f        *fleetpkg.Fleet
	id, next string
	data     []byte
	moves    []sharding.Move
}

// stubReshard joins the fleet as the member running reshard id from the
// base placement to the split one, with its copies marked everywhere.
func (fe *fleetEnv) stubReshard(ctx context.Context, t *testing.T, id string) *stubReshard {
	t.Helper()
	fe.reset(ctx, t)
	r := &stubReshard{id: id, next: fe.nextYAML(t)}
	var err error
	if r.data, err = os.ReadFile(r.next); err != nil {
		t.Fatal(err)
	}
	r.f = fe.stubMember(ctx, t)
	if r.moves, err = sharding.PlanMoves(fe.routerConfig(t, fe.path), fe.routerConfig(t, r.next)); err != nil {
		t.Fatal(err)
	}
	if err := r.f.ReshardPhase(ctx, id, r.data, r.moves, fleetpkg.PhaseCopy, true); err != nil {
		t.Fatal(err)
	}
	return r
}

// stubMember joins the fleet as a member of the test's own (through
// package fleet, serving nothing).
func (fe *fleetEnv) stubMember(ctx context.Context, t *testing.T) *fleetpkg.Fleet {
	t.Helper()
	f, _, err := fleetpkg.Open(ctx, fe.etcd.URL, fleetpkg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Join(ctx, stubLocal{}, testenv.FreeAddr(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// cutover starts the fleet's cutover; its drained step returns once
// proceed is closed. The channel gets ReshardCutover's outcome.
func (r *stubReshard) cutover(ctx context.Context, proceed chan struct{}) chan cutoverOutcome {
	out := make(chan cutoverOutcome, 1)
	go func() {
		_, switched, err := r.f.ReshardCutover(ctx, r.id, func(context.Context) error { <-proceed; return nil }, nil)
		out <- cutoverOutcome{switched, err}
	}()
	return out
}

type cutoverOutcome struct {
	switched bool
	err      error
}

func (r *stubReshard) done(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := r.f.ReshardPhase(ctx, r.id, r.data, r.moves, fleetpkg.PhaseDone, false); err != nil {
		t.Fatal(err)
	}
}

// awaitHold waits until m's pgrouter_reshard_fleet_hold reads want.
func awaitHold(t *testing.T, m *testenv.Member, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for metricOf(m, "pgrouter_reshard_fleet_hold") != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: pgrouter_reshard_fleet_hold never read %s (now %q)", m.Name, want, metricOf(m, "pgrouter_reshard_fleet_hold"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkFleetFrozenBeforeSwitch: a member frozen after it held does not
// acknowledge the switch (frozen while another member still drains a
// transaction on the source, so before the switch can come): the engine
// reports the placement switched, naming it, and stops at the clean-up
// (nothing deleted while a member may still read the moved rows on their
// source); the others run the new version; thawed, the member applies it
// from etcd, and RESHARD RESUME finishes the clean-up.
func checkFleetFrozenBeforeSwitch(ctx context.Context, t *testing.T, fe *fleetEnv) {
	fe.reset(ctx, t)
	before := fe.versions(t)
	next := fe.nextYAML(t)
	runner, drainer, frozen := fe.members[0], fe.members[1], fe.members[2]
	base, rn := fe.router(t, fe.path), fe.router(t, next)
	staying := keyWhere(t, base, rn, 0, 0)
	// A transaction on the source shard's primary through drainer: its
	// hold waits for it, the others' do not. A read (no transaction id), so
	// the reshard's slot creation does not wait for it.
	dc := dial(ctx, t, drainer.DSN(), false)
	if _, err := dc.Exec(ctx, "SET pgrouter.role = primary"); err != nil {
		t.Fatal(err)
	}
	tx, err := dc.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := tx.QueryRow(ctx, "SELECT v FROM kv WHERE id = $1", staying).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Admin("RESHARD TO '" + next + "'"); err != nil {
		t.Fatalf("RESHARD TO: %v", err)
	}
	awaitHold(t, frozen, "1")
	frozen.Stop()
	defer frozen.Cont()
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("the drained transaction: %v", err)
	}
	st := awaitReshard(t, runner, "the cutover to end", 2*time.Minute, func(st map[string]string) bool { return st["running"] == "false" })
	if st["phase"] != "cleanup" || !strings.Contains(st["error"], "member "+frozen.Addr+" did not acknowledge") || !strings.Contains(st["error"], "published") {
		t.Fatalf("reshard with %s frozen before the switch: phase %s, error %q; want the clean-up and an error naming it", frozen.Addr, st["phase"], st["error"])
	}
	t.Logf("switch with a frozen member: %s", st["error"])
	if _, ok := fe.shardRows(ctx, t, 0, "kv")[keyWhere(t, base, rn, 0, 2)]; !ok {
		t.Fatal("a moved row was deleted on its source before every member switched")
	}
	v := fe.versions(t)
	if v[runner.Addr] == before[runner.Addr] || v[drainer.Addr] != v[runner.Addr] {
		t.Fatalf("versions after the switch: %v (before %v); want the running members on the new one", v, before)
	}
	frozen.Cont()
	awaitHold(t, frozen, "0")
	if fe.versions(t)[frozen.Addr] != v[runner.Addr] {
		t.Fatalf("the thawed member runs version %s, the others %s", fe.versions(t)[frozen.Addr], v[runner.Addr])
	}
	if _, err := runner.Admin("RESHARD RESUME"); err != nil {
		t.Fatalf("RESHARD RESUME: %v", err)
	}
	if st := awaitReshard(t, runner, "the clean-up", time.Minute, reshardEnded); st["phase"] != "done" {
		t.Fatalf("resumed clean-up ended in phase %s: %s", st["phase"], st["error"])
	}
	moved := keyWhere(t, base, rn, 0, 2)
	if _, err := dial(ctx, t, frozen.DSN(), false).Exec(ctx, "UPDATE kv SET v = 9 WHERE id = $1", moved); err != nil {
		t.Fatalf("write of a moved key through the thawed member: %v", err)
	}
	l := newKeyedLoad("kv", engineKeys, 1) // no load: the rows as filled, and that write
	l.want[0][moved] = 9
	checkPlaced(ctx, t, fe.engineEnv, l, routerPlaces(t, rn, l.table))
}

// stubLocal is a fleet member that serves nothing: the test's stand-in
// for the member running a reshard.
type stubLocal struct{}

func (stubLocal) ApplyConfig(*config.Config, bool) error                                 { return nil }
func (stubLocal) Pause(context.Context, string) error                                    { return nil }
func (stubLocal) Resume(string) error                                                    { return nil }
func (stubLocal) SetPoolCap(int)                                                         {}
func (stubLocal) Fence(string)                                                           {}
func (stubLocal) Unfence()                                                               {}
func (stubLocal) MaxPoolTotal() int                                                      { return 0 }
func (stubLocal) HoldMoves(context.Context, string, *config.Config, time.Duration) error { return nil }
func (stubLocal) SwitchMoves(string, *config.Config) error                               { return nil }
func (stubLocal) HoldKeys(context.Context, string, []sharding.Move, time.Duration) error { return nil }
func (stubLocal) SwitchKeys(string, []sharding.Move) error                               { return nil }
func (stubLocal) ReleaseMoves(string)                                                    {}
func (stubLocal) HeldReshard() string                                                    { return "" }
func (stubLocal) SetReshardMarks(_, _ []sharding.Move)                                   {}

// startLoad runs a 6-worker keyed load on table over keys, its workers
// spread over the members (every other one in explicit transactions).
func (fe *fleetEnv) startLoad(ctx context.Context, t *testing.T, table string, keys int) *keyedLoad {
	l := newKeyedLoad(table, keys, 6)
	var conns []*pgx.Conn
	for w := 0; w < l.workers; w++ {
		conns = append(conns, dial(ctx, t, fe.members[w%3].DSN(), w%2 == 0))
	}
	l.run(ctx, conns)
	return l
}
