package integration

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// DISCARD ALL drops the session's prepared statements in Postgres, so a
// client (or a pooler's reset query) may prepare the same names again.
func TestDiscardAllFreesStatementNames(t *testing.T) {
	ctx := context.Background()
	c, err := pgconn.Connect(ctx, env.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Prepare(ctx, "s1", "select 1::int", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "s1", "select 1::int", nil); err == nil {
		t.Fatal("preparing an existing name succeeded; Postgres answers 42P05")
	}
	if err := c.Exec(ctx, "DISCARD ALL").Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Prepare(ctx, "s1", "select 2::int", nil); err != nil {
		t.Fatalf("prepare after DISCARD ALL: %v", err)
	}
	res := c.ExecPrepared(ctx, "s1", nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "2" {
		t.Fatalf("re-prepared s1 = %v %v, want 2", res.Rows, res.Err)
	}
}
