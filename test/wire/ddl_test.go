package wire

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/proxy"
)

// TestPrepareAfterExternalDDL: a table's result type changes by DDL that
// does not pass through pgrouter (a migration run directly on Postgres).
// Backends that prepared a statement before keep its old plan, and
// Postgres answers 0A000 "cached plan must not change result type" to its
// next use there. A client that prepares the text again must get a working
// statement, as from Postgres: pgrouter's shared server-side statement name
// must not send it to the outdated one for ever. At most the first use after
// the DDL may fail (pgrouter learns of the change from that error).
func TestPrepareAfterExternalDDL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := profiles[0].schema
	if err := resetSchema(ctx, schema); err != nil {
		t.Fatal(err)
	}
	inst, err := proxy.Start(ctx, coldConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	dsn := proxyDSN(inst.Addr) + "&search_path=" + schema
	a := connectT(ctx, t, dsn, true)
	defer a.Close(ctx)
	mustExec(ctx, t, a, "create table ddl_t (a int); insert into ddl_t values (1)")
	const sql = "select * from ddl_t"
	if _, err := a.Prepare(ctx, "s1", sql, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.ExecPrepared(ctx, "s1", nil, nil, nil).Read().Err; err != nil {
		t.Fatal(err)
	}
	direct := connectT(ctx, t, env.Cluster.Shards[0].Primary.DSN("app")+"&search_path="+schema, false)
	defer direct.Close(ctx)
	mustExec(ctx, t, direct, "alter table ddl_t add column b int")

	b := connectT(ctx, t, dsn, true)
	defer b.Close(ctx)
	failures := 0
	for attempt := 0; attempt < 4; attempt++ {
		cols, err := prepareAndRun(ctx, b, sql)
		switch {
		case err != nil:
			failures++
			t.Logf("attempt %d: %v", attempt, err)
		case cols != 2:
			t.Fatalf("attempt %d: %d columns, want 2", attempt, cols)
		}
	}
	if failures > 1 {
		t.Errorf("%d of 4 fresh prepares of %q failed after the DDL (Postgres: none; pgrouter may fail the first)", failures, sql)
	}
	c := connectT(ctx, t, dsn, true) // a client arriving later: no error at all
	defer c.Close(ctx)
	if cols, err := prepareAndRun(ctx, c, sql); err != nil || cols != 2 {
		t.Errorf("new client: %d columns, err %v; want 2, nil", cols, err)
	}
}

// prepareAndRun prepares sql as "s", runs it and deallocates it; it
// returns the number of result columns.
func prepareAndRun(ctx context.Context, c *pgconn.PgConn, sql string) (int, error) {
	defer func() { c.Exec(ctx, "deallocate s").ReadAll() }()
	if _, err := c.Prepare(ctx, "s", sql, nil); err != nil {
		return 0, err
	}
	res := c.ExecPrepared(ctx, "s", nil, nil, nil).Read()
	return len(res.FieldDescriptions), res.Err
}

// connectT connects; through pgrouter the session reads from the primary
// (where the statement was prepared), as a direct client would.
func connectT(ctx context.Context, t *testing.T, dsn string, proxied bool) *pgconn.PgConn {
	t.Helper()
	c, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if proxied {
		mustExec(ctx, t, c, "set pgrouter.role = primary")
	}
	return c
}

func mustExec(ctx context.Context, t *testing.T, c *pgconn.PgConn, sql string) {
	t.Helper()
	if _, err := c.Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
