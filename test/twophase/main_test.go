// Package twophase checks transactions that span shards through pgrouter
// on a real 2-shard cluster with two_phase_commit on: atomic commit and
// rollback, a participant failing at PREPARE, the statements a spanning
// transaction refuses, and crash recovery of a pgrouter process killed
// (SIGKILL) between the two phases.
package twophase

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/test/testenv"
)

var env *testenv.Env

// dbSection configures database app (two_phase_commit on) and database
// plain: the same tables on the same shards without two-phase commit;
// strict: cross_shard deny.
const dbSection = `    two_phase_commit: true
    sharded_tables:
      - {table: users, column: user_id, type: int, function: hash}
      - {table: ledger, column: user_id, type: int, function: hash}
    reference_tables: [plans]
  - name: plain
    dbname: app
    sharded_tables:
      - {table: users, column: user_id, type: int, function: hash}
      - {table: ledger, column: user_id, type: int, function: hash}
    reference_tables: [plans]
  - name: strict
    dbname: app
    cross_shard: deny
    sharded_tables:
      - {table: users, column: user_id, type: int, function: hash}
`

// ledger's unique constraint is checked at commit: a duplicate makes
// PREPARE TRANSACTION fail on that shard only.
const schema = `
CREATE TABLE users (user_id bigint PRIMARY KEY, name text);
CREATE TABLE ledger (user_id bigint, n int, CONSTRAINT ledger_n UNIQUE (n) DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE plans (id int PRIMARY KEY, name text);
`

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(m, testenv.Options{Shards: 2, Sections: map[string]string{"db": dbSection, "pool": "  size: 6"}}, createSchema)
	os.Exit(run())
}

func createSchema(e *testenv.Env) error {
	return e.ExecOnPrimaries(context.Background(), "app", schema)
}

// keysOn returns n user ids of shard i that no other test uses (from base up).
func keysOn(t *testing.T, shard int, base int64, n int) []int64 {
	t.Helper()
	r, err := env.Router()
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for k := base; len(out) < n; k++ {
		s, err := r.ShardOfKey("users", []byte(itoa(k)))
		if err != nil {
			t.Fatal(err)
		}
		if s == shard {
			out = append(out, k)
		}
	}
	return out
}

func itoa(k int64) string { return strconv.FormatInt(k, 10) }

func connect(t *testing.T, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	return connectTo(t, env.AppDSN(), mode)
}

func connectTo(t *testing.T, dsn string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// direct connects to shard i's primary, database app.
func direct(t *testing.T, i int) *pgx.Conn {
	t.Helper()
	c, err := env.Cluster.Shards[i].Primary.Connect(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// countOn counts rows of table on shard i whose key is in keys.
func countOn(t *testing.T, i int, table string, keys []int64) int {
	t.Helper()
	var n int
	if err := direct(t, i).QueryRow(context.Background(), "select count(*) from "+table+" where user_id = any($1)", keys).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// preparedLeft lists pgrouter's prepared transactions left on any shard.
func preparedLeft(t *testing.T) []string {
	t.Helper()
	var all []string
	for i := range env.Cluster.Shards {
		rows, err := direct(t, i).Query(context.Background(), "select gid from pg_prepared_xacts where gid like 'pgrouter\\_%'")
		if err != nil {
			t.Fatal(err)
		}
		gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, gids...)
	}
	return all
}

// assertNoPrepared fails the test if a prepared transaction of pgrouter is
// left on any shard.
func assertNoPrepared(t *testing.T) {
	t.Helper()
	if left := preparedLeft(t); len(left) > 0 {
		t.Fatalf("prepared transactions left: %v", left)
	}
}

// assertUsable fails the test unless c still answers a query (after says
// what it went through).
func assertUsable(t *testing.T, c *pgx.Conn, after string) {
	t.Helper()
	var one int
	if err := c.QueryRow(context.Background(), "select 1").Scan(&one); err != nil {
		t.Fatalf("session after %s: %v", after, err)
	}
}

// takeKey inserts a users row with key k directly on shard i, so that an
// insert of k through pgrouter fails there (23505).
func takeKey(t *testing.T, i int, k int64) {
	t.Helper()
	if _, err := direct(t, i).Exec(context.Background(), "insert into users (user_id, name) values ($1, 'taken')", k); err != nil {
		t.Fatal(err)
	}
}
