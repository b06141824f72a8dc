package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Nothing listens: 08001 with the cause, no password, no slot leaked, and a
// second acquirer that inherits the freed slot dials (and fails) on its own.
func TestDialFailureClosedPort(t *testing.T) {
	ctx := testCtx(t)
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("deadport")
	cfg.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Size, cfg.Password = 1, "s3cret-Passw0rd"
	p := newTestPool(t, cfg)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, err := p.Acquire(ctx)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "08001" {
				t.Errorf("err = %v, want PgError 08001", err)
				return
			}
			if !strings.Contains(pe.Message, "deadport") || !strings.Contains(pe.Message, "refused") ||
				strings.Contains(pe.Message, cfg.Password) || strings.Contains(pe.Message, cfg.Addr) {
				t.Errorf("message %q: want node name and cause, never the password or the address", pe.Message)
			}
		})
	}
	wg.Wait()
	if st := p.Stats(); st.Total != 0 || st.Active != 0 || st.Opened != 0 || st.Waiting != 0 {
		t.Fatalf("slots leaked: %+v", st)
	}
}

// A server restart: idle conns die (caught by the health check), a waiter
// handed a freed slot gets 08001 while the server is down, and the pool works
// again once the server is back.
func TestServerRestartRecovery(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("restart")
	cfg.Size, cfg.HealthCheckIdle = 1, time.Nanosecond
	p := newTestPool(t, cfg)
	c := mustAcquire(t, ctx, p)
	oldPID := c.PID
	waiterErr := make(chan error, 1)
	go func() {
		c, err := p.Acquire(ctx)
		if err == nil {
			p.Release(c)
		}
		waiterErr <- err
	}()
	eventually(t, 10*time.Second, "waiter queued", waitingIs(p, 1))
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = srv.Start(context.Background())
		}
	}()
	p.Discard(c) // the waiter inherits the slot and dials a server that is down
	if err := <-waiterErr; pgCode(err) != "08001" {
		t.Fatalf("waiter got %v, want 08001", err)
	}
	if _, err := p.Acquire(ctx); pgCode(err) != "08001" {
		t.Fatalf("Acquire while down: %v, want 08001", err)
	}
	if st := p.Stats(); st.Total != 0 || st.Waiting != 0 {
		t.Fatalf("stats while down: %+v", st)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	c = mustAcquire(t, ctx, p)
	if c.PID == oldPID || scalar(t, c, "select 1") != "1" {
		t.Fatalf("after restart: pid %d (old %d)", c.PID, oldPID)
	}
	p.Release(c)

	// Restart again with the conn idle: the ping before reuse must catch it.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c = mustAcquire(t, ctx, p)
	defer p.Release(c)
	if scalar(t, c, "select 1") != "1" {
		t.Fatal("conn handed out after restart does not work")
	}
}

// pg_terminate_backend on an idle conn: the health check notices and the
// acquirer gets a fresh backend instead.
func TestHealthCheckReplacesTerminatedBackend(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("terminated")
	cfg.HealthCheckIdle = time.Millisecond
	p := newTestPool(t, cfg)
	c := mustAcquire(t, ctx, p)
	victim := c.PID
	p.Release(c)

	spy := superConn(t, ctx)
	if got := superScalar(t, ctx, spy, fmt.Sprintf("select pg_terminate_backend(%d)", victim)); got != "t" {
		t.Fatalf("pg_terminate_backend = %q", got)
	}
	eventually(t, 10*time.Second, "backend gone", func() bool {
		return superScalar(t, ctx, spy, fmt.Sprintf("select count(*) from pg_stat_activity where pid = %d", victim)) == "0"
	})
	eventually(t, time.Second, "idle longer than HealthCheckIdle", func() bool {
		return time.Since(c.LastUsed) > cfg.HealthCheckIdle
	})
	c = mustAcquire(t, ctx, p)
	defer p.Release(c)
	if c.PID == victim {
		t.Fatal("terminated backend was handed out")
	}
	if scalar(t, c, "select 1") != "1" {
		t.Fatal("replacement does not work")
	}
	if st := p.Stats(); st.Closed != 1 || st.Opened != 2 || st.Total != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

// Without the idle threshold being reached, no ping happens: the live conn is
// reused as is (the same backend).
func TestNoPingForRecentlyUsedConn(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("noping")
	cfg.HealthCheckIdle = time.Hour
	p := newTestPool(t, cfg)
	c := mustAcquire(t, ctx, p)
	pid := c.PID
	p.Release(c)
	c = mustAcquire(t, ctx, p)
	defer p.Release(c)
	if c.PID != pid || p.Stats().Opened != 1 {
		t.Fatalf("idle conn not reused: pid %d (was %d), %+v", c.PID, pid, p.Stats())
	}
}

func TestMaxLifetime(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("lifetime")
	cfg.Size, cfg.MaxLifetime = 1, 80*time.Millisecond
	p := newTestPool(t, cfg)
	old := mustAcquire(t, ctx, p)

	got := make(chan *Conn, 1)
	go func() {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	eventually(t, 10*time.Second, "waiter queued", waitingIs(p, 1))
	eventually(t, time.Second, "conn past MaxLifetime", func() bool {
		return time.Since(old.CreatedAt) > cfg.MaxLifetime
	})
	p.Release(old) // too old: closed, the waiter dials a fresh one
	fresh := <-got
	if fresh == nil || fresh.PID == old.PID {
		t.Fatalf("waiter got %v, want a fresh backend", fresh)
	}
	if st := p.Stats(); st.Closed != 1 || st.Opened != 2 || st.Total != 1 {
		t.Fatalf("stats after expiry on release: %+v", st)
	}
	// Released young, it expires while idle: the reaper closes it.
	p.Release(fresh)
	eventually(t, 5*time.Second, "idle conn past MaxLifetime reaped", func() bool {
		st := p.Stats()
		return st.Total == 0 && st.Idle == 0 && st.Closed == 2
	})
}

func TestIdleTimeoutKeepsMinIdle(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("minidle")
	cfg.Size, cfg.MinIdle, cfg.IdleTimeout = 5, 2, 100*time.Millisecond
	p := newTestPool(t, cfg)
	eventually(t, 10*time.Second, "topped up to MinIdle", func() bool {
		st := p.Stats()
		return st.Idle == 2 && st.Total == 2
	})
	var held []*Conn
	for range 4 {
		held = append(held, mustAcquire(t, ctx, p))
	}
	for _, c := range held {
		p.Release(c)
	}
	if st := p.Stats(); st.Idle != 4 || st.Opened != 4 {
		t.Fatalf("after releasing 4: %+v", st)
	}
	eventually(t, 5*time.Second, "reaped down to MinIdle", func() bool {
		st := p.Stats()
		return st.Total == 2 && st.Closed == 2
	})
	// Long after IdleTimeout the MinIdle conns are still there (and not churned).
	eventually(t, time.Second, "several idle timeouts passed", func() bool {
		return time.Since(held[3].LastUsed) > 5*cfg.IdleTimeout
	})
	if st := p.Stats(); st.Total != 2 || st.Idle != 2 || st.Closed != 2 || st.Opened != 4 {
		t.Fatalf("MinIdle not kept: %+v", st)
	}
	// Losing them triggers a top-up.
	a, b := mustAcquire(t, ctx, p), mustAcquire(t, ctx, p)
	p.Discard(a)
	p.Discard(b)
	eventually(t, 10*time.Second, "topped up again", func() bool {
		st := p.Stats()
		return st.Idle == 2 && st.Total == 2 && st.Opened == 6
	})
}

func TestDiscardLetsWaiterDial(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("discard")
	cfg.Size = 1
	p := newTestPool(t, cfg)
	c := mustAcquire(t, ctx, p)
	got := make(chan *Conn, 1)
	go func() {
		w, err := p.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- w
	}()
	eventually(t, 10*time.Second, "waiter queued", waitingIs(p, 1))
	p.Discard(c)
	w := <-got
	if w == nil || w.PID == c.PID || scalar(t, w, "select 1") != "1" {
		t.Fatalf("waiter got %v", w)
	}
	p.Release(w)
	if st := p.Stats(); st.Opened != 2 || st.Closed != 1 || st.Total != 1 || st.Idle != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestCloseWithWaitersAndDrain(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("closing")
	cfg.Size = 2
	p := newTestPool(t, cfg)
	held := mustAcquire(t, ctx, p)
	idle := mustAcquire(t, ctx, p)
	p.Release(idle)
	other := mustAcquire(t, ctx, p)
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := p.Acquire(ctx)
			errs <- err
		}()
		eventually(t, 10*time.Second, "waiter queued", waitingIs(p, i+1))
	}
	p.Close()
	for range 3 {
		if err := <-errs; !IsClosed(err) || pgCode(err) != "08006" {
			t.Errorf("waiter after Close: %v", err)
		}
	}
	if _, err := p.Acquire(ctx); !IsClosed(err) {
		t.Fatalf("Acquire after Close: %v", err)
	}
	drained := make(chan error, 1)
	go func() { drained <- p.Drain(ctx) }()
	p.Discard(other)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v with a conn still checked out", err)
	default:
	}
	p.Release(held) // closed, not kept
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if st := p.Stats(); st.Total != 0 || st.Active != 0 || st.Idle != 0 || st.Closed != st.Opened || st.Opened != 2 {
		t.Fatalf("stats after Close: %+v", st)
	}
	if _, err := held.NetConn.Read(make([]byte, 1)); err == nil {
		t.Fatal("a conn released after Close still reads")
	}
	spy := superConn(t, ctx)
	eventually(t, 10*time.Second, "backends gone on the server", func() bool {
		return superScalar(t, ctx, spy, "select count(*) from pg_stat_activity where application_name = 'closing'") == "0"
	})
}

func TestCloseClosesIdleNow(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("closeidle"))
	c := mustAcquire(t, ctx, p)
	p.Release(c)
	p.Close()
	p.Close() // idempotent
	if st := p.Stats(); st.Total != 0 || st.Idle != 0 || st.Closed != 1 {
		t.Fatalf("stats: %+v", st)
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDrainWaitsForActive(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("drain"))
	c := mustAcquire(t, ctx, p)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := p.Drain(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with a conn out: %v", err)
	}
	p.Release(c)
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDoubleReleasePanics(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("double"))
	c := mustAcquire(t, ctx, p)
	p.Release(c)
	defer func() {
		if recover() == nil {
			t.Fatal("second Release did not panic")
		}
		if st := p.Stats(); st.Idle != 1 || st.Active != 0 {
			t.Fatalf("stats after double release: %+v", st)
		}
	}()
	p.Release(c)
}

// An expired ctx fails fast and does not cost the pool its idle conns.
func TestExpiredContextKeepsIdleConns(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("expired")
	cfg.HealthCheckIdle = time.Nanosecond
	p := newTestPool(t, cfg)
	var cs []*Conn
	for range 3 {
		cs = append(cs, mustAcquire(t, ctx, p))
	}
	for _, c := range cs {
		p.Release(c)
	}
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := p.Acquire(expired); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with expired ctx: %v", err)
	}
	if st := p.Stats(); st.Idle != 3 || st.Closed != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestCloseIdle(t *testing.T) {
	p := newTestPool(t, testConfig("closeidle"))
	ctx := testCtx(t)
	var conns []*Conn
	for i := 0; i < 3; i++ {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		p.Release(c)
	}
	if st := p.Stats(); st.Idle != 3 {
		t.Fatalf("idle %d before CloseIdle", st.Idle)
	}
	p.CloseIdle()
	if st := p.Stats(); st.Idle != 0 || st.Total != 0 {
		t.Fatalf("after CloseIdle: %+v", st)
	}
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire after CloseIdle: %v", err)
	}
	p.Release(c)
}
