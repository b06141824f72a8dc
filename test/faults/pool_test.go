package faults

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
)

// TestPoolExhaustion: with pool.size 2, two clients hold a transaction
// each; six more clients' statements fail with 53300 after acquire_timeout
// (1s), not before, and within the clients' 5 s deadline. When the
// holders leave — one commits, one drops its connection mid-transaction —
// the pool serves again and SHOW POOLS shows no backend left active (the dropped
// transaction's backend was rolled back, not leaked).
func TestPoolExhaustion(t *testing.T) {
	const size, waiters, timeout = 2, 6, time.Second
	inst := startInstance(t, func(c *config.Config) {
		c.Pool.Size = size
		c.Pool.AcquireTimeout = config.Duration(timeout)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", inst.Addr)
	var holders []*pgx.Conn
	for i := 0; i < size; i++ {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "begin; select pg_backend_pid()"); err != nil {
			t.Fatal(err)
		}
		holders = append(holders, c)
	}
	if got := poolColumn(t, inst.Addr, "sv_active"); got != size {
		t.Errorf("SHOW POOLS sv_active with %d transactions open = %d", size, got)
	}

	var wg sync.WaitGroup
	errs := make([]error, waiters)
	took := make([]time.Duration, waiters)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			errs[i] = selectOne(dsn)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	var slowest time.Duration
	for i, err := range errs {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "53300" {
			t.Errorf("client %d with the pool exhausted: %v, want 53300", i, err)
		}
		if took[i] < timeout-50*time.Millisecond {
			t.Errorf("client %d failed after %v, before acquire_timeout (%v)", i, took[i], timeout)
		}
		slowest = max(slowest, took[i])
	}
	t.Logf("%d waiters refused with 53300, slowest after %v (acquire_timeout %v)", waiters, slowest.Round(time.Millisecond), timeout)

	// One holder commits; the other vanishes without a Terminate.
	if _, err := holders[0].Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	holders[1].PgConn().Conn().Close()
	left := time.Now()
	for i := 0; i < 2*size; i++ {
		if err := selectOne(dsn); err != nil {
			t.Fatalf("after the holders left: %v", err)
		}
	}
	for poolColumn(t, inst.Addr, "sv_active") != 0 || poolColumn(t, inst.Addr, "cl_waiting") != 0 {
		if time.Since(left) > 30*time.Second {
			t.Fatalf("SHOW POOLS 30s after the holders left: sv_active %d, cl_waiting %d, want 0",
				poolColumn(t, inst.Addr, "sv_active"), poolColumn(t, inst.Addr, "cl_waiting"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if total := poolColumn(t, inst.Addr, "sv_total"); total > size {
		t.Errorf("SHOW POOLS sv_total = %d > pool.size %d", total, size)
	}
	t.Logf("pool idle again %v after the holders left", time.Since(left).Round(time.Millisecond))
	// The dropped client's transaction was rolled back on its backend.
	var idleInTx int
	if err := env.Cluster.Shards[0].Primary.QueryRow(ctx,
		"select count(*) from pg_stat_activity where state like 'idle in transaction%' and datname = 'app'").Scan(&idleInTx); err != nil {
		t.Fatal(err)
	}
	if idleInTx != 0 {
		t.Errorf("%d backends idle in transaction after the holders left", idleInTx)
	}
}

// poolColumn sums one SHOW POOLS column over the app user's pools, asked
// on the admin console of the pgrouter at addr.
func poolColumn(t *testing.T, addr, col string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://admin:admin@%s/pgrouter?sslmode=disable", addr))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("admin console: %v", err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SHOW POOLS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	idx := -1
	for i, f := range rows.FieldDescriptions() {
		if f.Name == col {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("SHOW POOLS has no column %s", col)
	}
	sum := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(vals[1]) != "app" {
			continue
		}
		n, err := strconv.Atoi(fmt.Sprint(vals[idx]))
		if err != nil {
			t.Fatalf("SHOW POOLS %s = %v", col, vals[idx])
		}
		sum += n
	}
	return sum
}
