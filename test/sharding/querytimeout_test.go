package sharding

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
)

// TestQueryTimeoutMultiShard: timeouts.query bounds the wait for a backend
// on the multi-shard paths too (issue 11, deliver 6), not only on the
// single-shard relay: a cross-shard statement whose shards stay silent past
// it gets 57014, and the client's session goes on working.
func TestQueryTimeoutMultiShard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, dsn := startOwn(t, func(cfg *config.Config) { cfg.Timeouts.Query = config.Duration(time.Second) })
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			for _, q := range []string{
				"select count(*) from users, pg_sleep(4)", // scatter read
				"update users set name = name from pg_sleep(4)",
			} {
				start := time.Now()
				_, err := c.Exec(ctx, q, mode)
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "57014" || !strings.Contains(pe.Message, "query timeout") {
					t.Fatalf("%s: %v, want 57014 query timeout", q, err)
				}
				if waited := time.Since(start); waited > 3500*time.Millisecond {
					t.Fatalf("%s: the error came after %v: timeouts.query did not fire", q, waited)
				}
				var n int64
				if err := c.QueryRow(ctx, "select count(*) from users", mode).Scan(&n); err != nil {
					t.Fatalf("after %s, a scatter read on the same client: %v", q, err)
				}
			}
		})
	}
}
