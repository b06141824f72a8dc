package rwsplit

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// TestServerSideTimeouts: issue 12, "server-side timeouts". One primary
// behind pgrouter with timeouts.idle_in_transaction 500ms and
// timeouts.query 1s.
func TestServerSideTimeouts(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	e, err := testenv.Start(ctx, testenv.Options{Shards: 1, Sections: map[string]string{
		"timeouts": "  idle_in_transaction: 500ms\n  query: 1s",
		"routing":  "  allow_shard_hints: false",
		"pool":     "  size: 4",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.ExecOnPrimaries(ctx, "app", "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	t.Run("idle in transaction", func(t *testing.T) { idleInTransaction(t, e) })
	t.Run("silent backend outside a transaction", func(t *testing.T) { silentBackend(t, e) })
	t.Run("stopped backend inside a transaction", func(t *testing.T) { stoppedBackend(t, e) })
	t.Run("shard hints disabled", func(t *testing.T) { shardHintsDisabled(t, e) })
}

// shardHintsDisabled: routing.allow_shard_hints: false (this environment's
// config) refuses shard choices by clients; role hints still work.
func shardHintsDisabled(t *testing.T, e *testenv.Env) {
	ctx := testCtx(t, 30*time.Second)
	c := connectMode(t, e, pgx.QueryExecModeSimpleProtocol)
	for _, sql := range []string{"/* pgrouter: shard=shard0 */ select 1", "SET pgrouter.shard = shard0"} {
		if _, err := c.Exec(ctx, sql); pgCode(err) != "0A000" || !strings.Contains(err.Error(), "disabled") {
			t.Errorf("%s: %v, want 0A000 (shard hints disabled)", sql, err)
		}
	}
	if _, err := c.Exec(ctx, "/* pgrouter: role=primary */ select 1"); err != nil {
		t.Errorf("role hint: %v", err)
	}
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// idleInTransaction: a client that holds a row lock and goes idle is
// disconnected with FATAL 25P03; its transaction rolls back, which frees
// the lock for everyone else.
func idleInTransaction(t *testing.T, e *testenv.Env) {
	ctx := testCtx(t, 30*time.Second)
	c := connectMode(t, e, pgx.QueryExecModeSimpleProtocol)
	if _, err := c.Exec(ctx, "begin; update t set v = 42 where id = 1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // three times the timeout
	_, err := c.Exec(ctx, "commit")
	if pgCode(err) != "25P03" || !strings.Contains(err.Error(), "idle-in-transaction timeout") {
		t.Fatalf("after idling in a transaction: %v, want FATAL 25P03", err)
	}
	other := connect(t, e)
	var v int
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := other.QueryRow(lctx, "update t set v = v + 1 where id = 1 returning v").Scan(&v); err != nil || v != 1 {
		t.Fatalf("row after the idle client was dropped: v=%d err=%v (want the update rolled back and the lock free)", v, err)
	}
	// A transaction that lasts longer than the timeout but is never idle
	// that long (pauses of 300ms, a statement of 700ms) is left alone.
	busy := connectMode(t, e, pgx.QueryExecModeSimpleProtocol)
	if _, err := busy.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		time.Sleep(300 * time.Millisecond)
		if _, err := busy.Exec(ctx, "select pg_sleep(0.2)"); err != nil {
			t.Fatalf("busy transaction, statement %d: %v", i, err)
		}
	}
	if _, err := busy.Exec(ctx, "select pg_sleep(0.7)"); err != nil {
		t.Fatalf("busy transaction, long statement: %v", err)
	}
	if _, err := busy.Exec(ctx, "commit"); err != nil {
		t.Fatalf("busy transaction, commit: %v", err)
	}
	// A client idle outside a transaction is left alone.
	idle := connect(t, e)
	time.Sleep(1200 * time.Millisecond)
	if _, err := idle.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("idle client outside a transaction: %v", err)
	}
}

// silentBackend: a statement whose backend answers nothing for longer than
// timeouts.query gets 57014; the client connection survives and goes on
// with a fresh backend.
func silentBackend(t *testing.T, e *testenv.Env) {
	ctx := testCtx(t, 30*time.Second)
	c := connect(t, e)
	start := time.Now()
	_, err := c.Exec(ctx, "select pg_sleep(4)")
	if pgCode(err) != "57014" || !strings.Contains(err.Error(), "query timeout") {
		t.Fatalf("silent backend: %v, want 57014 query timeout", err)
	}
	if waited := time.Since(start); waited > 3500*time.Millisecond {
		t.Fatalf("the error came after %v: the timeout did not fire", waited)
	}
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("next statement on the same client: %v", err)
	}
}

// stoppedBackend: the probe — the backend process is SIGSTOPped in
// the middle of a transaction; the client gets FATAL 57014 instead of
// hanging, and other clients keep working.
func stoppedBackend(t *testing.T, e *testenv.Env) {
	ctx := testCtx(t, 30*time.Second)
	c := connectMode(t, e, pgx.QueryExecModeSimpleProtocol)
	var pid int
	if _, err := c.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP backend %d: %v", pid, err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	_, err := c.Exec(ctx, "update t set v = v + 1 where id = 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" || pe.Severity != "FATAL" {
		t.Fatalf("stopped backend inside a transaction: %v, want FATAL 57014", err)
	}
	syscall.Kill(pid, syscall.SIGCONT)
	other := connect(t, e)
	var one int
	if err := other.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatalf("another client: %v", err)
	}
}
