package pool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// The hijacked socket carries the session: no bytes were left in pgconn, the
// startup parameters came from Config only (not from PG* env vars).
func TestDialHijackRawQuery(t *testing.T) {
	for k, v := range map[string]string{
		"PGHOST": "env-host.invalid", "PGPORT": "1", "PGDATABASE": "env_db", "PGUSER": "env_user",
		"PGAPPNAME": "env_app", "PGOPTIONS": "-c search_path=env_schema", "PGSSLMODE": "require",
		"PGTARGETSESSIONATTRS": "standby",
	} {
		t.Setenv(k, v)
	}
	ctx := testCtx(t)
	cfg := testConfig("hijack")
	cfg.PreparedCache = 2
	p := newTestPool(t, cfg)
	c := mustAcquire(t, ctx, p)
	defer p.Release(c)

	if c.PID == 0 || c.SecretKey == 0 || c.Addr != srv.Addr() {
		t.Fatalf("PID %d SecretKey %d Addr %q", c.PID, c.SecretKey, c.Addr)
	}
	if got := c.ServerParams["application_name"]; got != "hijack" {
		t.Errorf("ServerParams[application_name] = %q", got)
	}
	if !strings.HasPrefix(c.ServerParams["server_version"], "15") {
		t.Errorf("ServerParams[server_version] = %q", c.ServerParams["server_version"])
	}
	if c.Settings == nil || len(c.Settings) != 0 {
		t.Errorf("Settings = %v, want empty map", c.Settings)
	}
	for _, name := range []string{"a", "b", "c"} {
		c.Prepared.Add(name, struct{}{})
	}
	if c.Prepared.Len() != 2 || c.Prepared.Contains("a") {
		t.Errorf("Prepared LRU of size 2 holds %v", c.Prepared.Keys())
	}
	rows, err := simpleQuery(c, "select current_setting('application_name'), current_setting('search_path'), pg_backend_pid(), current_database(), current_user")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hijack", `"$user", public`, strconv.Itoa(int(c.PID)), "postgres", "postgres"}
	if fmt.Sprint(rows) != fmt.Sprint([][]string{want}) {
		t.Fatalf("rows = %q, want %q", rows, want)
	}
}

func TestDefaultPreparedCacheSize(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("prepdefault"))
	c := mustAcquire(t, ctx, p)
	defer p.Release(c)
	for i := range 501 {
		c.Prepared.Add(strconv.Itoa(i), struct{}{})
	}
	if c.Prepared.Len() != 500 {
		t.Fatalf("default Prepared LRU holds %d, want 500", c.Prepared.Len())
	}
}

func TestCancel(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("cancel"))
	c := mustAcquire(t, ctx, p)
	defer p.Release(c)
	fe := pgproto3.NewFrontend(c.NetConn, c.NetConn)
	fe.Send(&pgproto3.Query{String: "select pg_sleep(30)"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	// The backend must have started sleeping before the cancel can hit it.
	spy := superConn(t, ctx)
	eventually(t, 10*time.Second, "backend running pg_sleep", func() bool {
		return superScalar(t, ctx, spy, fmt.Sprintf(
			"select count(*) from pg_stat_activity where pid = %d and state = 'active'", c.PID)) == "1"
	})
	if err := c.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	_, err := readResult(fe)
	if pgCode(err) != "57014" {
		t.Fatalf("cancelled query ended with %v, want SQLSTATE 57014", err)
	}
	if got := scalar(t, c, "select 1"); got != "1" {
		t.Fatalf("conn unusable after cancel: %q", got)
	}
}

// 50 goroutines hammer a pool of 3: never more than 3 conns out, never more
// than 3 backends on the server, everyone served.
func TestSizeBoundUnderConcurrency(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("sizebound"))
	var inUse, maxInUse atomic.Int32
	var served atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			for range 4 {
				c, err := p.Acquire(ctx)
				if err != nil {
					errs <- err
					return
				}
				n := inUse.Add(1)
				for m := maxInUse.Load(); n > m && !maxInUse.CompareAndSwap(m, n); m = maxInUse.Load() {
				}
				if st := p.Stats(); st.Total > 3 {
					errs <- fmt.Errorf("Total %d > Size 3", st.Total)
				}
				if _, err := simpleQuery(c, "select 1"); err != nil {
					errs <- err
				}
				inUse.Add(-1)
				p.Release(c)
				served.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if served.Load() != 200 || maxInUse.Load() > 3 {
		t.Fatalf("served %d/200, max in use %d (Size 3)", served.Load(), maxInUse.Load())
	}
	st := p.Stats()
	if st.Active != 0 || st.Total > 3 || st.Opened > 3 || st.Waiting != 0 {
		t.Fatalf("stats after the storm: %+v", st)
	}
	spy := superConn(t, ctx)
	if n := superScalar(t, ctx, spy, "select count(*) from pg_stat_activity where application_name = 'sizebound'"); n != strconv.Itoa(st.Total) {
		t.Fatalf("server sees %s backends, pool Total %d", n, st.Total)
	}
}

// Waiters enqueued in a known order are served in that order.
func TestWaitersAreServedFIFO(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("fifo")
	cfg.Size = 1
	p := newTestPool(t, cfg)
	held := mustAcquire(t, ctx, p)
	const n = 8
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := p.Acquire(ctx)
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				order <- -1
				return
			}
			order <- i
			p.Release(c)
		})
		eventually(t, 10*time.Second, fmt.Sprintf("%d waiters", i+1), waitingIs(p, i+1))
	}
	if st := p.Stats(); st.MaxWait <= 0 {
		t.Errorf("MaxWait = %v with %d waiters", st.MaxWait, st.Waiting)
	}
	p.Release(held)
	wg.Wait()
	close(order)
	want := 0
	for got := range order {
		if got != want {
			t.Fatalf("waiter %d served at position %d", got, want)
		}
		want++
	}
	if st := p.Stats(); st.WaitCount != n || st.Opened != 1 || st.Waiting != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestAcquireTimeout(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("timeout-pool")
	cfg.Size = 1
	cfg.AcquireTimeout = 100 * time.Millisecond
	var waits []time.Duration
	var mu sync.Mutex
	cfg.OnWait = func(d time.Duration) { mu.Lock(); waits = append(waits, d); mu.Unlock() }
	p := newTestPool(t, cfg)
	held := mustAcquire(t, ctx, p)
	defer p.Release(held)

	_, err := p.Acquire(ctx)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("err = %v, want PgError 53300", err)
	}
	if want := "timed out after 100ms waiting for a backend connection to timeout-pool"; pe.Message != want {
		t.Errorf("message %q, want %q", pe.Message, want)
	}
	if !strings.Contains(pe.Hint, "pool size") || pe.Severity != "ERROR" {
		t.Errorf("hint %q severity %q", pe.Hint, pe.Severity)
	}
	st := p.Stats()
	if st.AcquireTimeouts != 1 || st.Waiting != 0 || st.WaitCount != 1 || st.WaitTime < cfg.AcquireTimeout {
		t.Errorf("stats: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 1 || waits[0] < cfg.AcquireTimeout {
		t.Errorf("OnWait saw %v", waits)
	}
}

// A full wait queue refuses at once, even with no AcquireTimeout; cancelled
// waiters leave the queue with ctx.Err().
func TestMaxWaitersAndCancel(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("maxwaiters")
	cfg.Size, cfg.MaxWaiters, cfg.AcquireTimeout = 1, 2, 0
	p := newTestPool(t, cfg)
	held := mustAcquire(t, ctx, p)
	defer func() { p.Release(held) }()

	wctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := p.Acquire(wctx)
			errs <- err
		}()
		eventually(t, 10*time.Second, "waiter queued", waitingIs(p, i+1))
	}
	_, err := p.Acquire(ctx) // would block until ctx ends if it queued
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" || !strings.HasPrefix(pe.Message, "pool wait queue is full") {
		t.Fatalf("err = %v, want 53300 pool wait queue is full", err)
	}
	cancel()
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled waiter got %v", err)
		}
	}
	if st := p.Stats(); st.Waiting != 0 || st.AcquireTimeouts != 0 || st.Total != 1 {
		t.Fatalf("stats: %+v", st)
	}
	// The queue has room again.
	p.Release(held)
	held = mustAcquire(t, ctx, p)
}
