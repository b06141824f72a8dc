package rwsplit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgrouter/pgrouter/test/testenv"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// writeRec is one write attempt of a failover writer.
type writeRec struct {
	id  int64
	at  time.Time
	dur time.Duration
	err error
}

// writer inserts rows with increasing ids into table fo through the proxy
// until stop is closed, each insert bounded by perWrite, reconnecting when
// its connection broke.
type writer struct {
	mode       pgx.QueryExecMode
	base       int64
	mu         sync.Mutex
	recs       []writeRec
	reconnects int
}

func (w *writer) run(e *testenv.Env, stop <-chan struct{}, perWrite time.Duration) {
	cfg, err := pgx.ParseConfig(e.AppDSN())
	if err != nil {
		w.add(writeRec{at: time.Now(), err: err})
		return
	}
	cfg.DefaultQueryExecMode = w.mode
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
		r := writeRec{id: id, at: time.Now()}
		ctx, cancel := context.WithTimeout(context.Background(), perWrite)
		if c == nil || c.IsClosed() {
			if c != nil {
				w.mu.Lock()
				w.reconnects++
				w.mu.Unlock()
			}
			if c, r.err = pgx.ConnectConfig(ctx, cfg); r.err != nil {
				c = nil
				r.err = fmt.Errorf("connect: %w", r.err)
			}
		}
		if r.err == nil {
			_, r.err = c.Exec(ctx, "insert into fo (id) values ($1)", id)
		}
		cancel()
		r.dur = time.Since(r.at)
		w.add(r)
		if r.err != nil {
			time.Sleep(20 * time.Millisecond) // a failing writer does not spin
		}
	}
}

func (w *writer) add(r writeRec) {
	w.mu.Lock()
	w.recs = append(w.recs, r)
	w.mu.Unlock()
}

// count reports acknowledged and failed writes sent at or after since.
func (w *writer) count(since time.Time) (acked, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.recs {
		if r.at.Before(since) {
			continue
		}
		if r.err == nil {
			acked++
		} else {
			failed++
		}
	}
	return acked, failed
}

// TestFailoverToPromotedReplica (own cluster; it ends with the old primary
// gone): writers keep inserting through one pgrouter while the primary is
// stopped and replica r1 promoted. Without a primary, writes fail with an
// error instead of hanging; after the promotion they succeed again within
// 5 s without a restart, and every acknowledged write is on the new primary.
// When the old primary comes back as a second primary, nothing is written
// to it.
func TestFailoverToPromotedReplica(t *testing.T) {
	ctx := testCtx(t, 4*time.Minute)
	e, err := startEnv(ctx, "CREATE TABLE fo (id bigint PRIMARY KEY);")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	tp := topoOf(e)
	shard := e.Cluster.Shards[0]

	const perWrite = 5 * time.Second
	writers := []*writer{
		{mode: pgx.QueryExecModeSimpleProtocol, base: 1_000_000_000},
		{mode: pgx.QueryExecModeExec, base: 2_000_000_000},
		{mode: pgx.QueryExecModeCacheStatement, base: 3_000_000_000},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(e, stop, perWrite) }()
	}
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	t.Cleanup(stopWriters)
	allAcked := func(since time.Time, n int) func() bool {
		return func() bool {
			for _, w := range writers {
				if a, _ := w.count(since); a < n {
					return false
				}
			}
			return true
		}
	}
	t0 := time.Now()
	eventually(t, 30*time.Second, "every writer has 100 acknowledged writes", allAcked(t0, 100))

	stoppedAt := time.Now()
	if err := shard.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	downAt := time.Now() // from here on the old primary can take no write
	// Stay without a primary well past health detection (2 × 200ms) and the
	// ban (2s), so writes meet the "no primary" state, not just dial errors.
	eventually(t, 30*time.Second, "every writer's writes still fail 2.5s after the primary stopped", func() bool {
		for _, w := range writers {
			if _, f := w.count(stoppedAt.Add(2500 * time.Millisecond)); f < 5 {
				return false
			}
		}
		return true
	})
	// Graceful degradation: reads are still served by a replica.
	reader := connect(t, e)
	if s, err := who(ctx, reader, whoSQL); err != nil || !s.Recovery {
		t.Errorf("read without a primary: served by %s (in recovery %v), err %v; want a replica", tp.name(s.Port), s.Recovery, err)
	}

	if err := shard.Replicas[0].Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promotedAt := time.Now()
	took := eventually(t, 5*time.Second, "writes succeed through the same pgrouter after the promotion", allAcked(promotedAt, 1))
	t.Logf("writes succeed again %v after the promotion completed (%v after the primary stopped)",
		took.Round(time.Millisecond), time.Since(stoppedAt).Round(time.Millisecond))
	eventually(t, 30*time.Second, "100 more acknowledged writes per writer", allAcked(promotedAt, 100))

	// The old primary returns on its old timeline: a second primary (split
	// brain). Writes must keep going to r1, also after its ban expired.
	if err := shard.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restartedAt := time.Now()
	eventually(t, 30*time.Second, "writes acknowledged 3s after the old primary came back", allAcked(restartedAt.Add(3*time.Second), 20))
	stopWriters()

	present := idsOn(t, ctx, shard.Replicas[0])
	onOld := idsOn(t, ctx, shard.Primary)
	for _, w := range writers {
		checkWriter(t, w, present, stoppedAt, promotedAt, perWrite)
		split := 0
		for _, r := range w.recs {
			if r.err == nil && !r.at.Before(downAt) && onOld[r.id] {
				split++
				if split <= 3 {
					t.Errorf("%s: write %d sent at +%v (old primary down at +%v, restarted at +%v) is on the old primary",
						w.mode, r.id, r.at.Sub(stoppedAt).Round(time.Millisecond), downAt.Sub(stoppedAt).Round(time.Millisecond),
						restartedAt.Sub(stoppedAt).Round(time.Millisecond))
				}
			}
		}
		if split > 0 {
			t.Errorf("%s: %d writes sent after the failover landed on the old primary (split brain)", w.mode, split)
		}
	}
}

// checkWriter asserts on one writer's history: every acknowledged id is
// present, no write hung, none reached a node in recovery.
func checkWriter(t *testing.T, w *writer, present map[int64]bool, stoppedAt, promotedAt time.Time, perWrite time.Duration) {
	t.Helper()
	var acked, missing, hung, readOnly int
	states := map[string]int{}
	var slowest time.Duration
	for _, r := range w.recs {
		if r.err == nil {
			acked++
			if !present[r.id] {
				missing++
				if missing <= 5 {
					t.Errorf("%s: write %d acknowledged at +%v (primary stopped at +0) is missing on the new primary",
						w.mode, r.id, r.at.Sub(stoppedAt).Round(time.Millisecond))
				}
			}
			continue
		}
		states[sqlState(r.err)]++
		slowest = max(slowest, r.dur)
		if errors.Is(r.err, context.DeadlineExceeded) || r.dur >= perWrite {
			hung++
		}
		if sqlState(r.err) == "25006" {
			readOnly++
		}
	}
	failedNoPrimary := 0
	for _, r := range w.recs {
		if r.err != nil && !r.at.Before(stoppedAt) && r.at.Before(promotedAt) {
			failedNoPrimary++
		}
	}
	t.Logf("%s: %d acknowledged, %d failed (%d while no primary existed; by SQLSTATE %v; slowest failure %v), %d reconnects",
		w.mode, acked, len(w.recs)-acked, failedNoPrimary, states, slowest.Round(time.Millisecond), w.reconnects)
	if missing > 0 {
		t.Errorf("%s: %d acknowledged writes missing on the new primary", w.mode, missing)
	}
	if hung > 0 {
		t.Errorf("%s: %d writes hung until the %v timeout instead of failing", w.mode, hung, perWrite)
	}
	if readOnly > 0 {
		t.Errorf("%s: %d writes were sent to a node in recovery (25006)", w.mode, readOnly)
	}
}

// idsOn reads every id of table fo from node, directly.
func idsOn(t *testing.T, ctx context.Context, node *localpg.Node) map[int64]bool {
	t.Helper()
	c, err := node.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "select id from fo")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	present := make(map[int64]bool, len(ids))
	for _, id := range ids {
		present[id] = true
	}
	return present
}
