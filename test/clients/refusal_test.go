package clients

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestRefusalAbortsTransaction: a statement pgrouter refuses inside a
// transaction (its own ErrorResponse, nothing sent to a backend) must fail
// the transaction as any error does on Postgres: later statements get 25P02
// and COMMIT answers ROLLBACK and keeps nothing. This is what JDBC meets with
// autocommit off (setAutoCommit(true) after an error sends COMMIT). On
// Postgres the failing statement is a division by zero; through pgrouter a
// multi-shard SELECT … FOR UPDATE, which it refuses with 0A000.
func TestRefusalAbortsTransaction(t *testing.T) {
	tp := topos[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The failing statement comes after a write (a backend is bound) or
	// right after BEGIN (nothing sent anywhere yet).
	for _, first := range []bool{false, true} {
		createSchema(t, ctx, tp, "refusal")
		steps := []string{"begin", "insert into items_refusal (id) values (1)", "FAIL",
			"insert into items_refusal (id) values (2)", "commit", "select count(*) from items_refusal"}
		if first {
			steps = []string{"begin", "FAIL", "insert into items_refusal (id) values (1)", "commit", "select count(*) from items_refusal"}
		}
		direct := runSteps(t, ctx, tp.env.Cluster.Shards[0].Primary.DSN(directDB), steps, "select 1/0")
		proxied := runSteps(t, ctx, tp.env.DSN("app", "app", "app"), steps, "select * from items_refusal for update")
		if fmt.Sprint(direct) != fmt.Sprint(proxied) {
			t.Errorf("a transaction after a statement pgrouter refused (first statement: %v):\n  postgres: %q\n  pgrouter: %q", first, direct, proxied)
		}
	}
}

// runSteps runs simple queries in order, FAIL standing for failing.
func runSteps(t *testing.T, ctx context.Context, dsn string, steps []string, failing string) []string {
	c, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var out []string
	for _, q := range steps {
		if q == "FAIL" {
			q = failing
		}
		res, err := c.Exec(ctx, q).ReadAll()
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe) && q == failing:
			out = append(out, "ERROR (the failing statement)")
		case errors.As(err, &pe):
			out = append(out, "ERROR "+pe.Code)
		case err != nil:
			t.Fatalf("%s: %v", q, err)
		default:
			r := res[len(res)-1]
			out = append(out, fmt.Sprintf("%s %q", r.CommandTag, r.Rows))
		}
	}
	return out
}
