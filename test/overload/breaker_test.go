// Package overload tests circuit breaking, overload protection and backend
// TLS (issue 12, "gaps to close") on real clusters through real clients.
// Each test starts the environment its configuration needs.
package overload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// startEnv starts an environment for one test and closes it at the end.
func startEnv(t *testing.T, o testenv.Options) *testenv.Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := testenv.Start(ctx, o)
	if err != nil {
		t.Fatalf("test environment: %v", err)
	}
	t.Cleanup(e.Close)
	return e
}

// readOutcome is one read of the load: the port of the node that ran it.
type readOutcome struct {
	at   time.Time
	port int
	err  error
}

// load is a read load of connected clients (see startLoad).
type load struct {
	stop chan struct{}
	done chan []readOutcome
	res  []readOutcome
}

// startLoad runs reads (inet_server_port()) from n connected clients until
// finish (called at the latest when the test ends); a broken connection
// reconnects (and counts as an error).
func startLoad(t *testing.T, dsn string, n int) *load {
	stop := make(chan struct{}) // the goroutine's own copy: finish clears l.stop
	l := &load{stop: stop, done: make(chan []readOutcome, 1)}
	t.Cleanup(func() { l.finish() })
	go func() { l.done <- <-readLoad(dsn, n, stop) }()
	return l
}

// finish stops the load and returns every read (idempotent).
func (l *load) finish() []readOutcome {
	if l.stop != nil {
		close(l.stop)
		l.stop = nil
		l.res = <-l.done
	}
	return l.res
}

func readLoad(dsn string, n int, stop <-chan struct{}) <-chan []readOutcome {
	out := make(chan []readOutcome, 1)
	var mu sync.Mutex
	var all []readOutcome
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *pgx.Conn
			defer func() {
				if c != nil {
					c.Close(context.Background())
				}
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := readOutcome{at: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if c == nil || c.IsClosed() {
					c, r.err = pgx.Connect(ctx, dsn)
				}
				if r.err == nil {
					var port int32
					r.err = c.QueryRow(ctx, "select inet_server_port()").Scan(&port)
					r.port = int(port)
				}
				cancel()
				mu.Lock()
				all = append(all, r)
				mu.Unlock()
				if r.err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		out <- all
	}()
	return out
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestReplicaDownReadsRetried: a replica stops while the health checks have
// not noticed yet (health.interval 1m), so reads are routed to it and their
// backend dial is refused. Nothing reached the backend, so each such read
// must go to another node: the clients see 0 errors. Then the replica comes
// back, and its breaker (half-open probe after the cool-down, not at the
// next health tick a minute later) lets it serve again.
func TestReplicaDownReadsRetried(t *testing.T) {
	e := startEnv(t, testenv.Options{Shards: 1, Replicas: 2, Sections: map[string]string{
		"health":   "  interval: 1m\n  breaker_cooldown: 500ms\n  ban_duration: 4s",
		"replicas": "  lag_check_interval: 1m\n  strategy: round_robin",
	}})
	r2 := e.Cluster.Shards[0].Replicas[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := r2.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	loadStart := time.Now()
	l := startLoad(t, e.AppDSN(), 8)
	time.Sleep(2 * time.Second)
	_, back := restartServing(ctx, t, e, r2)
	res := l.finish()

	counts := map[int]int{}
	errs := 0
	for _, r := range res {
		if r.err != nil {
			errs++
			if errs <= 5 {
				t.Logf("read error %v into the load (sqlstate %q): %v", r.at.Sub(loadStart).Round(time.Millisecond), sqlState(r.err), r.err)
			}
			continue
		}
		counts[r.port]++
	}
	t.Logf("%d reads, %d errors; by port %v (r1=%d r2=%d primary=%d)", len(res), errs, counts,
		e.Cluster.Shards[0].Replicas[0].Port, r2.Port, e.Cluster.Shards[0].Primary.Port)
	if errs != 0 {
		t.Errorf("%d reads failed while a replica was down: a refused dial sent nothing, the read must go to another node", errs)
	}
	if back < 0 {
		t.Fatalf("r2 did not serve reads within 60s of its restart (breaker never closed)")
	}
	t.Logf("r2 served reads again %v after its restart (breaker_cooldown 500ms, health.interval 1m)", back.Round(time.Millisecond))
	if counts[r2.Port] == 0 {
		t.Errorf("the load saw no read on r2 after it came back")
	}
	body := scrape(t, e)
	// Exposition sorts labels by name.
	node := `node="shard0-replica2",shard="shard0"`
	retries := metric(t, body, "pgrouter_node_dial_retries_total{"+node+"}")
	opened := metric(t, body, "pgrouter_node_breaker_transitions_total{"+node+`,to="open"}`)
	closed := metric(t, body, "pgrouter_node_breaker_transitions_total{"+node+`,to="closed"}`)
	state := metric(t, body, `pgrouter_node_breaker_state{node="shard0-replica2",shard="shard0",state="closed"}`)
	t.Logf("metrics: %v dial retries, breaker opened %v, closed %v", retries, opened, closed)
	if retries == 0 || opened == 0 || closed == 0 || state != 1 {
		t.Errorf("metrics: dial retries %v, breaker opened %v, closed %v, closed state %v; want all > 0", retries, opened, closed, state)
	}
}

// restartServing starts node again and waits until reads reach it (see
// waitServing), then lets the load run on it a little.
func restartServing(ctx context.Context, t *testing.T, e *testenv.Env, node *localpg.Node) (time.Time, time.Duration) {
	t.Helper()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	back := waitServing(e, node.Port, restarted)
	time.Sleep(500 * time.Millisecond)
	return restarted, back
}

// waitServing polls until a fresh client's reads reach the node on port and
// returns how long after since that was (-1: not within a minute).
func waitServing(e *testenv.Env, port int, since time.Time) time.Duration {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if servedBy(e, port) {
			return time.Since(since)
		}
	}
	return -1
}

// servedBy reports whether a fresh client's reads reach the node on port
// (within a few round-robin turns).
func servedBy(e *testenv.Env, port int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.AppDSN())
	if err != nil {
		return false
	}
	defer c.Close(ctx)
	for range 6 {
		var p int32
		if err := c.QueryRow(ctx, "select inet_server_port()").Scan(&p); err == nil && int(p) == port {
			return true
		}
	}
	return false
}

// TestKilledReplicaBackAfterRestart: kill -9 a replica under a read load,
// restart it, and it must serve again once its health check succeeds, not
// when a fixed ban runs out (ban_duration is 10m here, the longest
// cool-down a flapping node could get; the breaker's first cool-down is
// 1s). Errors are bounded by count: only reads already on the killed node
// (in flight, or on a pooled connection to it before the kill was noticed)
// may fail.
func TestKilledReplicaBackAfterRestart(t *testing.T) {
	const clients, poolSize = 8, 10
	e := startEnv(t, testenv.Options{Shards: 1, Replicas: 2, Sections: map[string]string{
		"health":   "  interval: 200ms\n  fail_threshold: 2\n  ban_duration: 10m",
		"replicas": "  lag_check_interval: 100ms\n  strategy: round_robin",
		"pool":     fmt.Sprintf("  size: %d", poolSize),
	}})
	r2 := e.Cluster.Shards[0].Replicas[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	l := startLoad(t, e.AppDSN(), clients)
	time.Sleep(time.Second)
	if err := r2.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	restarted, back := restartServing(ctx, t, e, r2)
	res := l.finish()

	errs, onR2 := 0, 0
	kinds := map[string]int{}
	for _, r := range res {
		switch {
		case r.err != nil:
			errs++
			kinds[sqlState(r.err)+" "+firstLine(r.err.Error())]++
		case r.port == r2.Port && r.at.After(restarted):
			onR2++
		}
	}
	t.Logf("%d reads, %d errors (bound %d); r2 back %v after its restart; %d reads on r2 after it",
		len(res), errs, clients+poolSize, back.Round(time.Millisecond), onR2)
	for k, n := range kinds {
		t.Logf("  %d× %s", n, k)
		if strings.HasPrefix(k, "08001 ") {
			t.Errorf("%d reads failed to dial the killed replica: nothing was sent, they must go to another node", n)
		}
	}
	if back < 0 {
		t.Fatalf("r2 did not serve again within a minute of its restart: its ban outlived its recovery")
	}
	if errs > clients+poolSize {
		t.Errorf("%d reads failed; at most %d (reads in flight or on pooled connections to the killed node) may", errs, clients+poolSize)
	}
	if onR2 == 0 {
		t.Errorf("the load saw no read on r2 after it came back")
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
