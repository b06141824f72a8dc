// Package differential proves cross-shard reads: the same deterministic rows
// are loaded into one plain Postgres database and, through pgrouter, into
// three shards; every query of testdata/queries.sql must return identical
// columns and rows both ways, in every protocol mode, and every query of
// testdata/unsupported.sql must be refused with the documented 0A000 error.
package differential

import (
	"context"
	"fmt"
	"os"
	"time"

	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/test/testenv"
)

var env *testenv.Env

// singleDB is the unsharded reference database, on shard0's primary.
const singleDB = "single"

// users and orders are co-located (hash of an int key); events is range
// sharded on its own key; plans is a reference table (on every shard).
// wusers and wplans (reference) are written by the write tests
// (writes_test.go); two-phase commit makes their multi-shard writes atomic.
const dbSection = `    two_phase_commit: true
    sharded_tables:
      - {table: users, column: id, type: int, function: hash}
      - {table: wusers, column: id, type: int, function: hash}
      - {table: orders, column: user_id, type: int, function: hash}
      - {table: skew, column: id, type: int, function: hash}
      - table: events
        column: id
        type: int
        function: range
        ranges:
          - {to: "1000", shard: shard0}
          - {from: "1000", to: "2000", shard: shard1}
          - {from: "2000", shard: shard2}
    reference_tables: [plans, wplans]
`

const schema = `
CREATE TABLE users (
  id bigint PRIMARY KEY, name text, email text, score numeric(10,2), age int, balance bigint,
  created_at timestamp, last_login timestamptz, uid uuid, active bool, region text, plan_id int);
CREATE TABLE orders (
  user_id bigint, order_id int, amount numeric(12,2), qty int, status text, placed_at timestamptz,
  note text, PRIMARY KEY (user_id, order_id));
CREATE TABLE events (id bigint PRIMARY KEY, kind text, val int, at timestamp, ok bool, ref uuid);
CREATE TABLE plans (id int PRIMARY KEY, name text, price numeric(8,2));
INSERT INTO plans VALUES (1, 'free', 0), (2, 'basic', 9.99), (3, 'pro', 29.50), (4, 'team', -1.00);
CREATE TABLE wusers (id bigint PRIMARY KEY, name text, score float8, at timestamptz, since date, wait interval);
CREATE TABLE wplans (id bigint PRIMARY KEY, name text);
`

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(m, testenv.Options{Shards: 3, Sections: map[string]string{"db": dbSection, "pool": "  size: 8"}}, setup)
	os.Exit(run())
}

// setup creates the schema on every shard and in the single database, then
// loads the rows: through pgrouter into the shards, directly into single.
func setup(e *testenv.Env) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := e.Cluster.Shards[0].Primary.Exec(ctx, "CREATE DATABASE "+singleDB); err != nil {
		return err
	}
	for i, s := range e.Cluster.Shards {
		if err := execOn(ctx, s.Primary.DSN("app"), schema); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		// skew: a schema drift, v has another type on the last shard.
		typ := "int"
		if i == len(e.Cluster.Shards)-1 {
			typ = "bigint"
		}
		if err := execOn(ctx, s.Primary.DSN("app"), fmt.Sprintf(
			"CREATE TABLE skew (id bigint PRIMARY KEY, v %s); INSERT INTO skew VALUES (%d, %d)", typ, i, i)); err != nil {
			return err
		}
	}
	if err := execOn(ctx, e.Cluster.Shards[0].Primary.DSN(singleDB), schema); err != nil {
		return err
	}
	inserts := dataInserts()
	for _, dsn := range []string{e.AppDSN(), e.Cluster.Shards[0].Primary.DSN(singleDB)} {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		for _, q := range inserts {
			if _, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
				c.Close(ctx)
				return fmt.Errorf("load %.80s…: %w", q, err)
			}
		}
		c.Close(ctx)
	}
	// Fresh statistics on both sides: same plans, no accidental timeouts.
	for _, s := range e.Cluster.Shards {
		if err := execOn(ctx, s.Primary.DSN("app"), "ANALYZE"); err != nil {
			return err
		}
	}
	return execOn(ctx, e.Cluster.Shards[0].Primary.DSN(singleDB), "ANALYZE")
}

func execOn(ctx context.Context, dsn, sql string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}
