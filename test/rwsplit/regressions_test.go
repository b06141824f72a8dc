package rwsplit

// Regression tests for bugs found by this suite (A, B, C), fixed in the proxy
// and router.

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bug A: BEGIN; SET TRANSACTION READ ONLY runs on the primary.
func TestSetTransactionReadOnlyOnReplica(t *testing.T) {
	waitReplicasServing(t, env)
	ctx := testCtx(t, 30*time.Second)
	for _, mode := range bothModes {
		c := connectMode(t, env, mode)
		for _, s := range []string{"BEGIN", "SET TRANSACTION READ ONLY"} {
			if _, err := c.Exec(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if s := mustWho(t, ctx, c, whoSQL); !s.Recovery {
			t.Errorf("%s: BEGIN; SET TRANSACTION READ ONLY; then a read: served by the primary", mode)
		}
		c.Exec(ctx, "COMMIT")
	}
}

// Bug B: SET pgrouter.role = primary (unquoted keyword) is shown by SHOW but not applied.
func TestSetRoleUnquoted(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	ctx := testCtx(t, 30*time.Second)
	c := connectMode(t, env, pgx.QueryExecModeSimpleProtocol)
	if _, err := c.Exec(ctx, "SET pgrouter.role = primary"); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if s := mustWho(t, ctx, c, whoSQL); s.Port != tp.primary {
			t.Errorf("after SET pgrouter.role = primary a read ran on %s", tp.name(s.Port))
		}
	}
}

// Bug C: a Parse that fails poisons the client's statement name (42P05 forever).
func TestFailedParseDoesNotKeepName(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	c := connect(t, env) // pgx default: named cached statements
	var n int64
	if err := c.QueryRow(ctx, "select count(*) from later_table").Scan(&n); err == nil {
		t.Fatal("table should not exist yet")
	}
	p := env.Cluster.Shards[0].Primary
	if err := execApp(ctx, p, "create table later_table (id int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { execApp(context.Background(), p, "drop table later_table") })
	env.Cluster.WaitReplicated(ctx)
	if err := c.QueryRow(ctx, "select count(*) from later_table").Scan(&n); err != nil {
		t.Fatalf("same statement after the table exists: %v", err) // got 42P05
	}
}
