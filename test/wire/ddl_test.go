package wire

import (
	"context"
	"errors"
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

// TestPrepareSameTextOtherSchema: two clients, a schema each (their
// search_path), prepare the same text over tables of different columns.
// Postgres re-plans a statement used under another search_path and fails
// it if its result type changes, so pgrouter must not give both clients
// one shared server-side statement.
func TestPrepareSameTextOtherSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := proxy.Start(ctx, coldConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	const sql = "select * from tenant_t"
	for round := 0; round < 2; round++ {
		for i, p := range profiles[1:] {
			if round == 0 {
				if err := resetSchema(ctx, p.schema); err != nil {
					t.Fatal(err)
				}
			}
			c := connectT(ctx, t, proxyDSN(inst.Addr)+"&search_path="+p.schema, true)
			if round == 0 {
				mustExec(ctx, t, c, []string{"create table tenant_t (a int); insert into tenant_t values (1)",
					"create table tenant_t (a int, b text); insert into tenant_t values (1, 'x')"}[i])
			}
			cols, err := prepareAndRun(ctx, c, sql)
			if err != nil || cols != i+1 {
				t.Errorf("round %d, schema %s: %d columns, err %v; want %d, nil", round, p.schema, cols, err, i+1)
			}
			c.Close(ctx)
		}
	}
}

// TestDescribedResultTypeChange: a client described its statement, then
// the table's columns change. Postgres fails the statement's next Bind
// (0A000 cached plan must not change result type): the client would decode
// rows with the description it has. Through pgrouter the Bind lands on a
// backend that never prepared the statement (another client holds the
// first one in a transaction): it must fail all the same, not run the
// statement under the new schema.
func TestDescribedResultTypeChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := profiles[0].schema
	inst, err := proxy.Start(ctx, coldConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	for _, target := range []struct {
		name, dsn string
		proxied   bool
	}{{"postgres", env.Cluster.Shards[0].Primary.DSN("app"), false}, {"pgrouter", proxyDSN(inst.Addr), true}} {
		if err := resetSchema(ctx, schema); err != nil {
			t.Fatal(err)
		}
		a := connectT(ctx, t, target.dsn+"&search_path="+schema, target.proxied)
		holder := connectT(ctx, t, target.dsn+"&search_path="+schema, target.proxied)
		mustExec(ctx, t, a, "create table described_t (a int); insert into described_t values (1)")
		if _, err := a.Prepare(ctx, "s1", "select * from described_t", nil); err != nil {
			t.Fatal(err)
		}
		mustExec(ctx, t, holder, "begin; select 1") // holds the backend that prepared s1
		mustExec(ctx, t, a, "alter table described_t add column b int")
		res := a.ExecPrepared(ctx, "s1", nil, nil, nil).Read()
		var pe *pgconn.PgError
		if !errors.As(res.Err, &pe) || pe.Code != "0A000" {
			t.Errorf("%s: Bind after the change: %d columns, err %v; want 0A000 cached plan must not change result type",
				target.name, len(res.FieldDescriptions), res.Err)
		}
		mustExec(ctx, t, holder, "rollback")
		a.Close(ctx)
		holder.Close(ctx)
	}
}
