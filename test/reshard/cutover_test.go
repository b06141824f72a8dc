package reshard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/test/testenv"
)

const nKeys = 2000

// cutoverEnv is a 3-shard cluster whose shard2 is a spare (hash: []), with
// table kv(id, v) holding keys 1..nKeys at v = 0.
type cutoverEnv struct {
	*testenv.Env
	conn *pgx.Conn // a client of pgrouter
}

// client opens one more client connection through pgrouter (simple: with
// the simple query protocol, inline literals; else prepared statements).
func (e *cutoverEnv) client(ctx context.Context, t *testing.T, simple ...bool) *pgx.Conn {
	t.Helper()
	return dial(ctx, t, e.AppDSN(), len(simple) > 0 && simple[0])
}

// dial connects to dsn for the rest of the test (simple: with the simple
// query protocol).
func dial(ctx context.Context, t *testing.T, dsn string, simple bool) *pgx.Conn {
	t.Helper()
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if simple {
		cc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	c, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func startCutoverEnv(ctx context.Context, t *testing.T) *cutoverEnv {
	t.Helper()
	e, err := testenv.Start(ctx, testenv.Options{
		Shards: 3, Replicas: 1, // reads go to replicas: a target's must have the copied rows
		Hash: []string{"[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]"},
		Sections: map[string]string{
			"db":   "    sharded_tables:\n      - {table: kv, column: id, type: int, function: hash}\n    reference_tables: [plans]",
			"pool": "  size: 16",
		},
	})
	if err != nil {
		t.Fatalf("test environment: %v", err)
	}
	t.Cleanup(e.Close)
	if err := e.ExecOnPrimaries(ctx, "app", "CREATE TABLE kv (id bigint PRIMARY KEY, v bigint NOT NULL); CREATE TABLE plans (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	ce := &cutoverEnv{Env: e}
	ce.conn = ce.client(ctx, t)
	insertByPlacement(ctx, t, e, mustRouter(t, e.Config), "kv", nKeys,
		"INSERT INTO kv SELECT id, 0 FROM unnest($1::int8[]) id")
	return ce
}

// insertByPlacement runs insert (its $1 the int8[] of keys) on each
// shard's primary with the keys 1..keys of table that r places there:
// rows go straight where the placement names, without pgrouter.
func insertByPlacement(ctx context.Context, t *testing.T, e *testenv.Env, r *router.Router, table string, keys int64, insert string) {
	t.Helper()
	perShard := make([][]int64, len(e.Cluster.Shards))
	for id := int64(1); id <= keys; id++ {
		s, err := r.ShardOfKey(table, []byte(fmt.Sprint(id)))
		if err != nil {
			t.Fatal(err)
		}
		perShard[s] = append(perShard[s], id)
	}
	for i, ids := range perShard {
		c, err := e.Cluster.Shards[i].Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, insert, ids)
		c.Close(ctx)
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
}

// splitShard0 is the running config with shard0 split: remainder 2 of
// modulus 4 moves to the spare shard2.
func (e *cutoverEnv) splitShard0(t *testing.T) (*config.Config, []sharding.Move) {
	cur := e.Proxy.Server.Config()
	next := *cur
	next.Shards = append([]config.Shard(nil), cur.Shards...)
	next.Shards[0].Hash = []config.HashSlot{{Modulus: 4, Remainder: 0}}
	next.Shards[2].Hash = []config.HashSlot{{Modulus: 4, Remainder: 2}}
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
	moves, err := sharding.PlanMoves(cur, &next)
	if err != nil || len(moves) != 1 || moves[0].From != "shard0" || moves[0].To != "shard2" {
		t.Fatalf("moves %+v, %v", moves, err)
	}
	return &next, moves
}

// copyMoving upserts the moving rows of shard0 into shard2 directly: the
// part of a reshard engine this test stands in for.
func (e *cutoverEnv) copyMoving(ctx context.Context, m sharding.Move) error {
	cfg := e.Proxy.Server.Config()
	src, err := e.Cluster.Shards[cfg.ShardIndex(m.From)].Primary.Connect(ctx, "app")
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	dst, err := e.Cluster.Shards[cfg.ShardIndex(m.To)].Primary.Connect(ctx, "app")
	if err != nil {
		return err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	var ids, vs []int64
	rows, _ := src.Query(ctx, "SELECT id, v FROM kv WHERE "+m.Where)
	var id, v int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { ids, vs = append(ids, id), append(vs, v); return nil }); err != nil {
		return err
	}
	_, err = dst.Exec(ctx, "INSERT INTO kv SELECT * FROM unnest($1::int8[], $2::int8[]) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", ids, vs)
	return err
}

// shardValues reads kv directly from shard i.
func (e *cutoverEnv) shardValues(ctx context.Context, t *testing.T, i int) map[int64]int64 {
	t.Helper()
	c, err := e.Cluster.Shards[i].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	out := map[int64]int64{}
	rows, _ := c.Query(ctx, "SELECT id, v FROM kv")
	var id, v int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { out[id] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// write is one acknowledged UPDATE of the load.
type write struct {
	moving     bool
	start, end time.Time
}

// writeLoad runs keyed increments over keys until stop, counting the
// acknowledged ones per key; any error or missing row fails the test.
type writeLoad struct {
	acks   [nKeys + 1]atomic.Int64
	mu     sync.Mutex
	writes []write
	errs   []error
	wg     sync.WaitGroup
	stop   atomic.Bool
	reads  atomic.Int64
}

func (l *writeLoad) run(ctx context.Context, conns []*pgx.Conn, keys []int64, moving func(int64) bool) {
	for w, conn := range conns {
		l.wg.Add(1)
		go func(seed uint64, conn *pgx.Conn) {
			seed += uint64(len(keys)) // distinct streams per run
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			var mine []write
			for !l.stop.Load() {
				id := keys[rng.IntN(len(keys))]
				start := time.Now()
				tag, err := conn.Exec(ctx, "UPDATE kv SET v = v + 1 WHERE id = $1", id)
				if err == nil && tag.RowsAffected() != 1 {
					err = fmt.Errorf("key %d: UPDATE found %d rows", id, tag.RowsAffected())
				}
				if err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, err)
					l.mu.Unlock()
					return
				}
				l.acks[id].Add(1)
				mine = append(mine, write{moving: moving(id), start: start, end: time.Now()})
			}
			l.mu.Lock()
			l.writes = append(l.writes, mine...)
			l.mu.Unlock()
		}(uint64(w), conn)
	}
}

// read looks keys up until stop: every key exists at every moment, on
// whichever shard and node (replicas included) pgrouter reads it from.
func (l *writeLoad) read(ctx context.Context, conns []*pgx.Conn, keys []int64) {
	for w, conn := range conns {
		l.wg.Add(1)
		go func(seed uint64, conn *pgx.Conn) {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(seed, 2))
			for !l.stop.Load() {
				id := keys[rng.IntN(len(keys))]
				var v int64
				if err := conn.QueryRow(ctx, "SELECT v FROM kv WHERE id = $1", id).Scan(&v); err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, fmt.Errorf("read of key %d: %w", id, err))
					l.mu.Unlock()
					return
				}
				l.reads.Add(1)
			}
		}(uint64(w), conn)
	}
}

func (l *writeLoad) halt(t *testing.T) {
	l.stop.Store(true)
	l.wg.Wait()
	for _, err := range l.errs {
		t.Errorf("write failed: %v", err)
	}
}

func TestCutover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := startCutoverEnv(ctx, t)
	next, moves := e.splitShard0(t)
	m := moves[0]
	t.Run("moves_must_match_next", func(t *testing.T) {
		if _, err := e.Proxy.Cutover(ctx, next, nil, nil); err == nil || !strings.Contains(err.Error(), "do not match the next config") {
			t.Fatalf("cutover without its moves: %v", err)
		}
		if len(e.Proxy.Server.Config().Shards[2].Hash) != 0 {
			t.Fatal("placement changed")
		}
	})
	t.Run("timeout_leaves_old_placement", func(t *testing.T) { checkCutoverTimeout(ctx, t, e, next, moves) })
	if t.Failed() {
		return
	}
	t.Run("under_load", func(t *testing.T) { checkCutoverUnderLoad(ctx, t, e, next, moves) })
	t.Run("cleanup", func(t *testing.T) {
		var n int64
		err := e.conn.QueryRow(ctx, "SELECT count(*) FROM kv").Scan(&n)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "being resharded") {
			t.Fatalf("a scatter read while moved rows remain on shard0: %v (count %d), want 0A000", err, n)
		}
		src, err := e.Cluster.Shards[0].Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close(ctx)
		if _, err := src.Exec(ctx, "DELETE FROM kv WHERE "+m.Where); err != nil {
			t.Fatal(err)
		}
		e.Proxy.CleanupDone(moves)
		if err := e.Cluster.WaitReplicated(ctx); err != nil { // the count may read replicas
			t.Fatal(err)
		}
		if err := e.conn.QueryRow(ctx, "SELECT count(*) FROM kv").Scan(&n); err != nil || n != nKeys {
			t.Fatalf("count after cleanup: %d, %v; want %d", n, err, nKeys)
		}
	})
	if !t.Failed() {
		t.Run("split_into_an_owner", func(t *testing.T) { checkSplitIntoOwner(ctx, t, e) })
	}
}

// checkSplitIntoOwner moves remainder 3 of 4 from shard1 to shard2, which
// already owns keys: the copies there are marked until the switch, the
// leftovers on shard1 until the clean-up; the load runs without pauses, so
// the hold measured is the cutover's own.
func checkSplitIntoOwner(ctx context.Context, t *testing.T, e *cutoverEnv) {
	cur := e.Proxy.Server.Config()
	next := *cur
	next.Shards = append([]config.Shard(nil), cur.Shards...)
	next.Shards[1].Hash = []config.HashSlot{{Modulus: 4, Remainder: 1}}
	next.Shards[2].Hash = []config.HashSlot{{Modulus: 4, Remainder: 2}, {Modulus: 4, Remainder: 3}}
	moves, err := sharding.PlanMoves(cur, &next)
	if err != nil || len(moves) != 1 || moves[0].From != "shard1" || moves[0].To != "shard2" {
		t.Fatalf("moves %+v, %v", moves, err)
	}
	m := moves[0]
	ro, rn := mustRouter(t, cur), mustRouter(t, &next)
	base := map[int64]int64{}
	shards := []map[int64]int64{e.shardValues(ctx, t, 0), e.shardValues(ctx, t, 1), e.shardValues(ctx, t, 2)}
	var keys []int64
	for id := int64(1); id <= nKeys; id++ {
		s, _ := ro.ShardOfKey("kv", []byte(fmt.Sprint(id)))
		base[id] = shards[s][id]
		keys = append(keys, id)
	}
	load := &writeLoad{}
	var conns []*pgx.Conn
	for i := 0; i < 4; i++ {
		conns = append(conns, e.client(ctx, t, i == 0))
	}
	load.run(ctx, conns, keys, func(id int64) bool { return m.Has(sharding.Key{Int: id}) })
	load.read(ctx, []*pgx.Conn{e.client(ctx, t)}, keys)
	defer load.halt(t)
	e.Proxy.MarkCopies(moves)
	if err := e.copyMoving(ctx, m); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := e.conn.QueryRow(ctx, "SELECT count(*) FROM kv").Scan(&n); err == nil {
		t.Fatalf("a scatter read while shard2 holds copies answered %d, want 0A000", n)
	}
	held, err := e.Proxy.Cutover(ctx, &next, moves, func(ctx context.Context) error { return e.copyMoving(ctx, m) })
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	load.halt(t)
	for id := int64(1); id <= nKeys; id++ {
		load.acks[id].Add(base[id])
	}
	checkAcks(ctx, t, e, load, rn)
	src, err := e.Cluster.Shards[1].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	if _, err := src.Exec(ctx, "DELETE FROM kv WHERE "+m.Where); err != nil {
		t.Fatal(err)
	}
	e.Proxy.CleanupDone(moves)
	if err := e.Cluster.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.QueryRow(ctx, "SELECT count(*) FROM kv").Scan(&n); err != nil || n != nKeys {
		t.Fatalf("count after cleanup: %d, %v; want %d", n, err, nKeys)
	}
	t.Logf("cutover without pauses held writes of moving keys for %v (%d writes, %d reads)", held, len(load.writes), load.reads.Load())
}

// checkCutoverTimeout: a transaction on shard0 that never ends makes the
// cutover give up; the placement stays, and the write held meanwhile runs
// on the old shard.
func checkCutoverTimeout(ctx context.Context, t *testing.T, e *cutoverEnv, next *config.Config, moves []sharding.Move) {
	rn := mustRouter(t, next)
	ro := mustRouter(t, e.Proxy.Server.Config())
	stay, move := keyWhere(t, ro, rn, 0, 0), keyWhere(t, ro, rn, 0, 2)
	tx, err := e.client(ctx, t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "UPDATE kv SET v = v WHERE id = $1", stay); err != nil {
		t.Fatal(err)
	}
	type result struct {
		err        error
		start, end time.Time
	}
	heldDone := make(chan result, 1)
	other := e.client(ctx, t)
	go func() {
		time.Sleep(150 * time.Millisecond) // inside the hold
		start := time.Now()
		_, err := other.Exec(ctx, "UPDATE kv SET v = v + 100 WHERE id = $1", move)
		heldDone <- result{err, start, time.Now()}
	}()
	cctx, ccancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer ccancel()
	_, err = e.Proxy.Cutover(cctx, next, moves, func(context.Context) error {
		t.Error("drained called although a transaction on shard0 never ended")
		return nil
	})
	released := time.Now()
	if err == nil || !strings.Contains(err.Error(), "did not end in time") {
		t.Fatalf("cutover with a transaction that never ends: %v", err)
	}
	r := <-heldDone
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.end.Before(released) {
		t.Fatalf("the write of a moving key issued during the hold (%v after it began) finished before the release", r.start.Sub(released.Add(-400*time.Millisecond)))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Proxy.Server.Config(); len(got.Shards[2].Hash) != 0 {
		t.Fatalf("placement changed after a failed cutover: %v", got.HashSlots())
	}
	if v := e.shardValues(ctx, t, 0)[move]; v != 100 {
		t.Fatalf("key %d on shard0 = %d after the failed cutover, want 100", move, v)
	}
	if _, err := e.conn.Exec(ctx, "UPDATE kv SET v = 0 WHERE id = $1", move); err != nil {
		t.Fatal(err)
	}
}

func mustRouter(t *testing.T, cfg *config.Config) *router.Router {
	t.Helper()
	r, err := router.ForConfig(cfg, &cfg.Databases[0])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// keyWhere is the first key on shard from under ro and shard to under rn.
func keyWhere(t *testing.T, ro, rn *router.Router, from, to int) int64 {
	t.Helper()
	return keyWhereIn(t, ro, rn, 1, nKeys, from, to)
}

// keyWhereIn is the first key in [lo, hi] on shard from under ro and
// shard to under rn.
func keyWhereIn(t *testing.T, ro, rn *router.Router, lo, hi int64, from, to int) int64 {
	t.Helper()
	for id := lo; id <= hi; id++ {
		o, _ := ro.ShardOfKey("kv", []byte(fmt.Sprint(id)))
		n, _ := rn.ShardOfKey("kv", []byte(fmt.Sprint(id)))
		if o == from && n == to {
			return id
		}
	}
	t.Fatalf("no key in [%d, %d] moves from shard%d to shard%d", lo, hi, from, to)
	return 0
}

// checkCutoverUnderLoad splits shard0 while workers increment random keys:
// writes of keys that stay keep running through the hold, writes of moving
// keys wait and then run on shard2, a transaction already writing on shard0
// is waited for (and may go on writing moving keys meanwhile), and every
// acknowledged increment is on the shard the new placement names.
func checkCutoverUnderLoad(ctx context.Context, t *testing.T, e *cutoverEnv, next *config.Config, moves []sharding.Move) {
	m := moves[0]
	ro, rn := mustRouter(t, e.Proxy.Server.Config()), mustRouter(t, next)
	txKeys := []int64{keyWhere(t, ro, rn, 0, 2)}
	for id := txKeys[0] + 1; len(txKeys) < 2; id++ {
		if m.Has(sharding.Key{Int: id}) {
			txKeys = append(txKeys, id)
		}
	}
	// Three workers write any key (one with the simple protocol), three only
	// keys that stay: a worker
	// waits at its first moving key, and the others must not.
	moving := func(id int64) bool { return m.Has(sharding.Key{Int: id}) }
	var keys, staying []int64
	for id := int64(1); id <= nKeys; id++ {
		if id != txKeys[0] && id != txKeys[1] {
			keys = append(keys, id)
		}
		if !moving(id) {
			staying = append(staying, id)
		}
	}
	load := &writeLoad{}
	load.run(ctx, []*pgx.Conn{e.client(ctx, t), e.client(ctx, t), e.client(ctx, t, true)}, keys, moving)
	load.run(ctx, []*pgx.Conn{e.client(ctx, t), e.client(ctx, t), e.client(ctx, t)}, staying, moving)
	defer load.halt(t)
	load.read(ctx, []*pgx.Conn{e.client(ctx, t), e.client(ctx, t)}, keys)
	time.Sleep(300 * time.Millisecond)
	if err := e.copyMoving(ctx, m); err != nil { // the engine's copy, before the cutover
		t.Fatal(err)
	}
	// A session pinned to shard0's primary (temp table) but idle between
	// transactions: nothing of it to wait for.
	pinned := e.client(ctx, t)
	if _, err := pinned.Exec(ctx, "/* pgrouter: shard=shard0 */ CREATE TEMP TABLE pin (x int)"); err != nil {
		t.Fatal(err)
	}
	// A transaction writing a moving key on shard0 when the hold begins.
	tx, err := e.client(ctx, t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE kv SET v = v + 1 WHERE id = $1", txKeys[0]); err != nil {
		t.Fatal(err)
	}
	var windowStart, windowEnd time.Time
	type outcome struct {
		held time.Duration
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		held, err := e.Proxy.Cutover(ctx, next, moves, func(ctx context.Context) error {
			if err := e.copyMoving(ctx, m); err != nil { // catch-up: the moving rows are final now
				return err
			}
			windowStart = time.Now()
			time.Sleep(300 * time.Millisecond) // a window in which only moving keys must wait
			windowEnd = time.Now()
			return nil
		})
		done <- outcome{held, err}
	}()
	time.Sleep(150 * time.Millisecond)
	select {
	case o := <-done:
		t.Fatalf("cutover finished while a transaction on shard0 was open: %v", o.err)
	default:
	}
	// The transaction the cutover waits for is not held by it.
	if _, err := tx.Exec(ctx, "UPDATE kv SET v = v + 1 WHERE id = $1", txKeys[1]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	load.acks[txKeys[0]].Add(1)
	load.acks[txKeys[1]].Add(1)
	o := <-done
	if o.err != nil {
		t.Fatalf("cutover: %v", o.err)
	}
	time.Sleep(300 * time.Millisecond) // writes go on under the new placement
	load.halt(t)
	if _, err := pinned.Exec(ctx, "/* pgrouter: shard=shard0 */ INSERT INTO pin VALUES (1)"); err != nil {
		t.Fatalf("the pinned session after the cutover: %v", err)
	}
	checkWindow(t, load.writes, windowStart, windowEnd)
	checkAcks(ctx, t, e, load, rn)
	t.Logf("held writes of moving keys for %v; %d writes acknowledged, %d reads", o.held, len(load.writes), load.reads.Load())
}

// checkWindow: while the cutover waited in drained, writes of staying keys
// completed and no write of a moving key did.
func checkWindow(t *testing.T, writes []write, from, to time.Time) {
	t.Helper()
	stay, moved := 0, 0
	for _, w := range writes {
		if w.end.After(from) && w.end.Before(to) {
			if w.moving {
				moved++
			} else {
				stay++
			}
		}
	}
	if moved != 0 || stay == 0 {
		t.Fatalf("during the hold %d writes of moving keys and %d of staying keys completed; want 0 and > 0", moved, stay)
	}
}

// checkAcks: every key is on the shard next names, exactly once among the
// owners, with every acknowledged increment.
func checkAcks(ctx context.Context, t *testing.T, e *cutoverEnv, load *writeLoad, rn *router.Router) {
	t.Helper()
	shards := []map[int64]int64{e.shardValues(ctx, t, 0), e.shardValues(ctx, t, 1), e.shardValues(ctx, t, 2)}
	for id := int64(1); id <= nKeys; id++ {
		owner, err := rn.ShardOfKey("kv", []byte(fmt.Sprint(id)))
		if err != nil {
			t.Fatal(err)
		}
		v, ok := shards[owner][id]
		if want := load.acks[id].Load(); !ok || v != want {
			t.Fatalf("key %d on its shard %d: %d (present %v), acknowledged %d", id, owner, v, ok, want)
		}
		if owner == 1 && (hasKey(shards[0], id) || hasKey(shards[2], id)) || owner == 0 && hasKey(shards[2], id) {
			t.Fatalf("key %d is on a shard that never owned it", id)
		}
	}
}

func hasKey(m map[int64]int64, id int64) bool { _, ok := m[id]; return ok }
