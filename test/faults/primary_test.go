package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// shardSplit is where table kv's range sharding puts shard1's keys: each
// writer knows which shard it writes to from its key base alone.
const shardSplit = 1_000_000_000

// primarySections: fast health checks with short bans, and kv range-sharded
// over the two shards.
var primarySections = map[string]string{
	"health": "  interval: 200ms\n  fail_threshold: 2\n  ban_duration: 2s",
	"pool":   "  size: 10",
	"db": fmt.Sprintf(`    sharded_tables:
      - table: kv
        column: id
        type: int
        function: range
        ranges:
          - {to: "%d", shard: shard0}
          - {from: "%d", shard: shard1}`, shardSplit, shardSplit),
}

// startPrimaryEnv starts 2 shards × (primary + replica) with table kv and
// synchronous replication on each primary, so that an acknowledged write is
// on the replica and a promotion may lose none of them.
func startPrimaryEnv(t *testing.T) *testenv.Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := testenv.Start(ctx, testenv.Options{Shards: 2, Replicas: 1, Sections: primarySections})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if err := e.ExecOnPrimaries(ctx, "app", "CREATE TABLE kv (id bigint PRIMARY KEY, at timestamptz DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	for _, s := range e.Cluster.Shards {
		// ALTER SYSTEM is not replicated: the replica, once promoted, waits
		// for no standby of its own.
		for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()"} {
			if err := s.Primary.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Cluster.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// kvWrite is one insert of a kvWriter.
type kvWrite struct {
	id  int64
	at  time.Time
	dur time.Duration
	err error
}

// kvWriter inserts keys base, base+1, … into kv through pgrouter until stop,
// remembering every attempt; a broken connection is replaced.
type kvWriter struct {
	base   int64
	mu     sync.Mutex
	writes []kvWrite
}

func (w *kvWriter) run(dsn string, stop <-chan struct{}, perWrite time.Duration) {
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for id := w.base; ; id++ {
		select {
		case <-stop:
			return
		default:
		}
		r := kvWrite{id: id, at: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), perWrite)
		if c == nil || c.IsClosed() {
			if c, r.err = pgx.Connect(ctx, dsn); r.err != nil {
				c = nil
			}
		}
		if r.err == nil {
			_, r.err = c.Exec(ctx, "insert into kv (id) values ($1)", id)
		}
		cancel()
		r.dur = time.Since(r.at)
		w.mu.Lock()
		w.writes = append(w.writes, r)
		w.mu.Unlock()
		if r.err != nil {
			time.Sleep(20 * time.Millisecond) // a failing writer does not spin
		}
	}
}

// stats counts the writes started in [from, to): acknowledged, failed, the
// failures by SQLSTATE ("" = not a Postgres error) and the longest write.
func (w *kvWriter) stats(from, to time.Time) (acked, failed int, codes map[string]int, longest time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	codes = map[string]int{}
	for _, r := range w.writes {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		longest = max(longest, r.dur)
		if r.err == nil {
			acked++
			continue
		}
		failed++
		var pe *pgconn.PgError
		if errors.As(r.err, &pe) {
			codes[pe.Code]++
		} else {
			codes[""]++
		}
	}
	return acked, failed, codes, longest
}

// firstAck is when the first write started at or after since was
// acknowledged (zero if none).
func (w *kvWriter) firstAck(since time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.writes {
		if r.err == nil && !r.at.Before(since) {
			return r.at.Add(r.dur)
		}
	}
	return time.Time{}
}

// load is two writers per shard.
type load struct {
	writers [2][]*kvWriter // by shard
	stop    chan struct{}
	wg      sync.WaitGroup
}

// startLoad starts the writers on dsn; keys of different loads differ by
// offset (< 100,000,000).
func startLoad(dsn string, offset int64, perWrite time.Duration) *load {
	l := &load{stop: make(chan struct{})}
	for s := range l.writers {
		for i := 0; i < 2; i++ {
			w := &kvWriter{base: int64(s)*shardSplit + int64(i)*200_000_000 + offset + 1}
			l.writers[s] = append(l.writers[s], w)
			l.wg.Add(1)
			go func() { defer l.wg.Done(); w.run(dsn, l.stop, perWrite) }()
		}
	}
	return l
}

func (l *load) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// shardStats sums stats over one shard's writers.
func (l *load) shardStats(s int, from, to time.Time) (acked, failed int, codes map[string]int, longest time.Duration) {
	codes = map[string]int{}
	for _, w := range l.writers[s] {
		a, f, c, d := w.stats(from, to)
		acked, failed, longest = acked+a, failed+f, max(longest, d)
		for k, v := range c {
			codes[k] += v
		}
	}
	return acked, failed, codes, longest
}

// waitClean waits until shard s's writers ran a whole second without a
// failed write, and returns when that second began.
func (l *load) waitClean(t *testing.T, s int, within time.Duration) time.Time {
	t.Helper()
	start := time.Now()
	for {
		from := time.Now()
		time.Sleep(time.Second)
		if a, f, _, _ := l.shardStats(s, from, time.Now()); f == 0 && a > 0 {
			return from
		}
		if time.Since(start) > within {
			t.Fatalf("shard%d writes still fail %v later", s, within)
		}
	}
}

// waitAcked waits until every writer of shard s has n writes acknowledged
// that started at or after since.
func (l *load) waitAcked(t *testing.T, s int, since time.Time, n int, within time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok := true
		for _, w := range l.writers[s] {
			if a, _, _, _ := w.stats(since, time.Now().Add(time.Hour)); a < n {
				ok = false
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			a, f, c, d := l.shardStats(s, since, time.Now().Add(time.Hour))
			t.Fatalf("%s: shard%d writers not at %d acknowledged writes each within %v (%d acked, %d failed %v, longest %v)",
				what, s, n, within, a, f, c, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPrimaryFaultsUnderWrites: pgx clients write keyed rows, two per
// shard, through pgrouter (load l) and through a second pgrouter with
// timeouts.query 1s (load lq). (1) shard0's primary is SIGSTOPped
// (postmaster and backends) for 5 s: shard1's writers go on; l's shard0
// writes wait for SIGCONT (no timeout) while lq's fail before SIGCONT
// (57014, or a dial bounded by connect_timeout); shard0 serves again after SIGCONT. (2) shard1's primary
// is killed with SIGKILL and its replica promoted: writes succeed again
// through the same pgrouters and no acknowledged write of either shard is
// lost.
func TestPrimaryFaultsUnderWrites(t *testing.T) {
	e := startPrimaryEnv(t)
	const perWrite = 30 * time.Second // liveness bound, not a speed figure
	l := startLoad(e.AppDSN(), 0, perWrite)
	t.Cleanup(l.halt)
	lq := startLoad(queryTimeoutDSN(t, e, queryTimeout), 100_000_000, perWrite)
	t.Cleanup(lq.halt)
	t0 := time.Now()
	for _, ld := range []*load{l, lq} {
		ld.waitAcked(t, 0, t0, 50, 30*time.Second, "warm-up")
		ld.waitAcked(t, 1, t0, 50, 30*time.Second, "warm-up")
	}

	stallPrimary(t, e, l, lq, 5*time.Second)
	killAndPromote(t, e, l)

	l.halt()
	lq.halt()
	for s, shard := range e.Cluster.Shards {
		node := shard.Primary
		if s == 1 {
			node = shard.Replicas[0]
		}
		lost := lostWrites(t, node, append(l.writers[s], lq.writers[s]...))
		a, f, codes, _ := l.shardStats(s, t0, time.Now())
		t.Logf("shard%d: %d writes acknowledged, %d failed %v, acknowledged writes lost: %d", s, a, f, codes, lost)
		if lost != 0 {
			t.Errorf("shard%d: %d acknowledged writes missing from %s", s, lost, node.Name)
		}
	}
}

// stallPrimary SIGSTOPs shard0's primary (postmaster and every child) for
// d, then SIGCONTs it.
func stallPrimary(t *testing.T, e *testenv.Env, l, lq *load, d time.Duration) {
	p := e.Cluster.Shards[0].Primary
	stopAt := time.Now()
	resume, err := p.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(resume)
	frozen := time.Now() // every process of the primary is stopped from here
	time.Sleep(d)
	resume()
	contAt := time.Now()
	// Writes on shard1 went on during the stall.
	if a, _, _, _ := l.shardStats(1, stopAt, contAt); a < 10 {
		t.Errorf("shard1 acknowledged %d writes while shard0's primary was stopped, want ≥ 10 (unaffected)", a)
	}
	took := l.waitAcked(t, 0, contAt, 20, 30*time.Second, "after SIGCONT")
	a0, f0, codes, longest := l.shardStats(0, stopAt.Add(-time.Second), contAt)
	a1, f1, codes1, longest1 := l.shardStats(1, stopAt, contAt)
	t.Logf("SIGSTOP %v: shard0 %d acked, %d failed %v, longest write %v; shard1 %d acked, %d failed %v, longest %v; shard0 writes acknowledged again %v after SIGCONT",
		d, a0, f0, codes, longest.Round(time.Millisecond), a1, f1, codes1, longest1.Round(time.Millisecond), took.Round(time.Millisecond))
	clean := l.waitClean(t, 0, 30*time.Second)
	a, f, c, _ := l.shardStats(0, contAt, clean)
	t.Logf("shard0 after SIGCONT: %d acked, %d failed %v until its writes ran without error again, %v after SIGCONT",
		a, f, c, clean.Sub(contAt).Round(time.Millisecond))
	if f1 > 0 {
		t.Errorf("shard1 writers failed %d writes %v while only shard0 was stopped", f1, codes1)
	}
	// Without timeouts.query a stalled write waits for SIGCONT: bounded by
	// the stall plus the liveness slack, never until perWrite.
	if longest > d+15*time.Second {
		t.Errorf("a shard0 write took %v with a %v stall: not bounded by SIGCONT", longest, d)
	}
	checkQueryTimeout(t, lq, frozen, contAt)
}

// killAndPromote SIGKILLs shard1's primary and promotes its replica.
func killAndPromote(t *testing.T, e *testenv.Env, l *load) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shard := e.Cluster.Shards[1]
	// Kill ends the whole tree (postmaster and backends) before it returns.
	if err := shard.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	killAt := time.Now()    // no process of the old primary runs from here
	time.Sleep(time.Second) // writes meet the dead primary, not just the promotion
	if err := shard.Replicas[0].Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promotedAt := time.Now()
	l.waitAcked(t, 1, promotedAt, 1, 30*time.Second, "after the promotion")
	first := time.Time{}
	for _, w := range l.writers[1] {
		if f := w.firstAck(promotedAt); first.IsZero() || f.Before(first) {
			first = f
		}
	}
	l.waitAcked(t, 1, promotedAt, 50, 30*time.Second, "after the promotion")
	a, f, codes, longest := l.shardStats(1, killAt, promotedAt)
	t.Logf("kill -9 of shard1's primary: %d writes acked, %d failed %v before the promotion (longest %v); first write acknowledged %v after the promotion (%v after the kill)",
		a, f, codes, longest.Round(time.Millisecond), first.Sub(promotedAt).Round(time.Millisecond), first.Sub(killAt).Round(time.Millisecond))
	if a0, f0, c0, _ := l.shardStats(0, killAt, time.Now()); f0 > 0 || a0 == 0 {
		t.Errorf("shard0 while shard1 failed over: %d acked, %d failed %v; want unaffected", a0, f0, c0)
	}
}

// lostWrites counts the acknowledged writes of ws missing from node.
func lostWrites(t *testing.T, node *localpg.Node, ws []*kvWriter) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := node.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, _ := c.Query(ctx, "select id from kv")
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	present := make(map[int64]bool, len(ids))
	for _, id := range ids {
		present[id] = true
	}
	lost := 0
	for _, w := range ws {
		for _, r := range w.writes {
			if r.err == nil && !present[r.id] {
				lost++
			}
		}
	}
	return lost
}
