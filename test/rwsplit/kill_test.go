package rwsplit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgrouter/pgrouter/test/testenv"
)

// readResult is one read of the load generator.
type readResult struct {
	client int
	at     time.Time // when the query was sent
	dur    time.Duration
	port   int
	err    error
}

// readLoad runs reads from n clients (own connections, never writing) until
// stop, each query bounded by perQuery; a client whose connection broke
// reconnects. It returns every result, and the reconnect count.
func readLoad(e *testenv.Env, mode pgx.QueryExecMode, n int, stop time.Time, perQuery time.Duration) ([]readResult, int) {
	cfg, err := pgx.ParseConfig(e.AppDSN())
	if err != nil {
		return []readResult{{at: time.Now(), err: err}}, 0
	}
	cfg.DefaultQueryExecMode = mode
	var mu sync.Mutex
	var all []readResult
	reconnects := 0
	var wg sync.WaitGroup
	for client := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *pgx.Conn
			defer func() {
				if c != nil {
					c.Close(context.Background())
				}
			}()
			var mine []readResult
			for time.Now().Before(stop) {
				r := readResult{client: client, at: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), perQuery)
				if c == nil || c.IsClosed() {
					if c != nil {
						mu.Lock()
						reconnects++
						mu.Unlock()
					}
					c, r.err = pgx.ConnectConfig(ctx, cfg)
					if r.err != nil {
						c = nil
						r.err = fmt.Errorf("connect: %w", r.err)
					}
				}
				if r.err == nil {
					var s served
					s, r.err = who(ctx, c, whoSQL)
					r.port = s.Port
				}
				cancel()
				r.dur = time.Since(r.at)
				mine = append(mine, r)
				if r.err != nil {
					time.Sleep(10 * time.Millisecond) // a failing client does not spin
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	return all, reconnects
}

// killWindow bounds when reads may fail after a replica is killed: health
// detection takes fail_threshold (2) × interval (200ms) plus at most one
// check timeout (1s); the rest is slack for this shared 2-core machine.
const killWindow = 2 * time.Second

// TestKillReplicaUnderLoad: SIGKILL replica r2 while 8 clients read. Reads
// may fail only around the kill (counted and logged), no query hangs, new
// reads stop going to r2, and r2 serves again after restart and its ban.
// The load uses the simple protocol and unnamed extended-protocol
// statements (pgx's exec mode).
func TestKillReplicaUnderLoad(t *testing.T) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) { killReplicaUnderLoad(t, mode) })
	}
}

func killReplicaUnderLoad(t *testing.T, mode pgx.QueryExecMode) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	r2 := env.Cluster.Shards[0].Replicas[1]
	ctx := testCtx(t, 3*time.Minute)
	t.Cleanup(func() {
		if !r2.Running() {
			r2.Start(context.Background())
		}
	})

	const perQuery = 5 * time.Second
	start := time.Now()
	stop := start.Add(4 * time.Second)
	type loadOut struct {
		res        []readResult
		reconnects int
	}
	done := make(chan loadOut, 1)
	go func() {
		res, rc := readLoad(env, mode, 8, stop, perQuery)
		done <- loadOut{res, rc}
	}()
	time.Sleep(time.Second) // let the load run on both replicas first
	killAt := time.Now()
	if err := r2.Kill(); err != nil {
		t.Fatal(err)
	}
	var out loadOut
	select {
	case out = <-done:
	case <-time.After(time.Until(stop) + perQuery + 10*time.Second):
		t.Fatal("read clients hung: load did not finish within its duration plus one query timeout")
	}

	var errs, timeouts, okAfter int
	var firstErr, lastErr time.Time
	beforeKill, afterKill := map[int]int{}, map[int]int{}
	for _, r := range out.res {
		switch {
		case r.err != nil:
			errs++
			if errors.Is(r.err, context.DeadlineExceeded) || r.dur >= perQuery {
				timeouts++
			}
			if firstErr.IsZero() {
				firstErr = r.at
				t.Logf("first error, %v after the kill: %v (sqlstate %q)", r.at.Sub(killAt).Round(time.Millisecond), r.err, sqlState(r.err))
			}
			lastErr = r.at
			if r.at.Before(killAt) && r.at.Add(r.dur).Before(killAt) {
				t.Errorf("a read failed before the kill: %v", r.err)
			}
		case r.at.Before(killAt):
			beforeKill[r.port]++
		default:
			afterKill[r.port]++
			if !lastErr.IsZero() && r.at.After(lastErr) {
				okAfter++
			}
		}
	}
	t.Logf("%d reads, %d errors, %d reconnects; before the kill: %s; after: %s",
		len(out.res), errs, out.reconnects, tp.summary(beforeKill), tp.summary(afterKill))
	if errs > 0 {
		t.Logf("errors between %v and %v after the kill; %d successful reads after the last error",
			firstErr.Sub(killAt).Round(time.Millisecond), lastErr.Sub(killAt).Round(time.Millisecond), okAfter)
	}
	logErrorTimeline(t, out.res, killAt)
	if timeouts > 0 {
		t.Errorf("%d reads ran into the %v query timeout (hung instead of failing)", timeouts, perQuery)
	}
	if out.reconnects > 0 {
		t.Errorf("%d client connections were closed: a dead replica must cost a client one statement, not its session", out.reconnects)
	}
	if beforeKill[tp.r2] == 0 {
		t.Errorf("r2 served nothing before the kill, so the test proved nothing: %s", tp.summary(beforeKill))
	}
	last := map[int]readResult{}
	for _, r := range out.res {
		last[r.client] = r
	}
	for client, r := range last {
		if r.err != nil {
			t.Errorf("client %d was still failing when the load ended: %v", client, r.err)
		}
	}
	if errs > 0 && okAfter == 0 {
		t.Errorf("no read succeeded after the last error: reads kept failing until the load stopped")
	}
	if errs > 0 && lastErr.Sub(killAt) > killWindow {
		t.Errorf("reads still failed %v after the kill (allowed: %v)", lastErr.Sub(killAt).Round(time.Millisecond), killWindow)
	}

	// After health detection the killed node gets no new reads: every read
	// of a fresh client succeeds (a read sent to r2 could only fail).
	c := connect(t, env)
	counts := map[int]int{}
	for range 50 {
		counts[mustWho(t, ctx, c, whoSQL).Port]++
	}
	t.Logf("50 reads after the load: %s", tp.summary(counts))

	// Restart: r2 takes reads again once its ban has expired, and no read
	// fails on a pooled connection that died with it.
	restarted := time.Now()
	if err := r2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 30*time.Second, "restarted r2 serves reads again", func() bool {
		return mustWho(t, ctx, c, whoSQL).Port == tp.r2
	})
	t.Logf("r2 served again %v after Start was called (%v after it returned)", time.Since(restarted).Round(time.Millisecond), took.Round(time.Millisecond))
}

// logErrorTimeline logs, per 100 ms after killAt, how many reads failed and
// the distinct messages, so a failure window can be diagnosed from the log.
func logErrorTimeline(t *testing.T, res []readResult, killAt time.Time) {
	type bucket struct {
		n    int
		msgs map[string]int
	}
	buckets := map[int]*bucket{}
	for _, r := range res {
		if r.err == nil {
			continue
		}
		k := int(r.at.Sub(killAt) / (100 * time.Millisecond))
		b := buckets[k]
		if b == nil {
			b = &bucket{msgs: map[string]int{}}
			buckets[k] = b
		}
		b.n++
		b.msgs[r.err.Error()]++
	}
	keys := make([]int, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		t.Logf("  errors at +%dms: %d %v", k*100, buckets[k].n, buckets[k].msgs)
	}
}
