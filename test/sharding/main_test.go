// Package sharding checks, through pgrouter on a real 3-shard cluster, that
// every row lands on the shard Postgres's own partitioning assigns it and
// that keyed statements touch only their shard.
package sharding

import (
	"context"
	"os"
	"testing"

	"github.com/pgrouter/pgrouter/test/testenv"
)

var env *testenv.Env

const dbSection = `    sharded_tables:
      - {table: users, column: user_id, type: int, function: hash}
      - {table: orders, column: user_id, type: int, function: hash}
      - {table: accounts, column: id, type: uuid, function: hash}
      - {table: tags, column: name, type: text, function: hash}
      - {table: latin_tags, column: name, type: text, function: hash}
      - {table: copy_users, column: user_id, type: int, function: hash}
      - {table: copy_tags, column: name, type: text, function: hash}
      - {table: copy_partial, column: id, type: int, function: hash}
      - {table: sales, column: user_id, type: int, function: hash}
      - {table: named_reads, column: user_id, type: int, function: hash}
      - table: events
        column: id
        type: int
        function: range
        ranges:
          - {to: "1000", shard: shard0}
          - {from: "1000", to: "2000", shard: shard1}
          - {from: "2000", shard: shard2}
      - table: dir_users
        column: user_id
        type: int
        function: directory
        directory: {node: shard0-primary, cache_ttl: 1h}
      - table: auto_users
        column: user_id
        type: int
        function: directory
        directory:
          node: shard0-primary
          query: SELECT shard FROM auto_directory WHERE key = $1
          assign_query: INSERT INTO auto_directory (key, shard) VALUES ($1, $2) ON CONFLICT DO NOTHING
          auto_assign: hash
      - {table: acc_users, column: user_id, type: int, function: hash}
      - table: acc_events
        column: id
        type: int
        function: range
        ranges:
          - {to: "3334", shard: shard0}
          - {from: "3334", to: "6667", shard: shard1}
          - {from: "6667", shard: shard2}
      - table: acc_dir
        column: user_id
        type: int
        function: directory
        directory: {node: shard0-primary, query: "SELECT shard FROM acc_directory WHERE key = $1"}
    reference_tables: [plans]
`

// schema is created on every shard directly; the hashcheck tables are empty
// hash-partitioned parents used only by satisfies_hash_partition().
const schema = `
CREATE TABLE users (user_id bigint PRIMARY KEY, name text);
CREATE TABLE orders (user_id bigint, order_id int, amount int, PRIMARY KEY (user_id, order_id));
CREATE TABLE accounts (id uuid PRIMARY KEY, v int);
CREATE TABLE tags (name text PRIMARY KEY, n int);
CREATE TABLE latin_tags (name text PRIMARY KEY, n int);
CREATE TABLE events (id bigint PRIMARY KEY, what text);
CREATE TABLE plans (id int PRIMARY KEY, name text);
CREATE TABLE copy_users (user_id bigint PRIMARY KEY, note text);
CREATE TABLE copy_tags (name text PRIMARY KEY, n int);
CREATE TABLE sales (user_id bigint, region text, amount int, at date);
CREATE TABLE named_reads (user_id bigint PRIMARY KEY, v int);
INSERT INTO plans VALUES (1, 'free'), (2, 'pro');
CREATE TABLE hashcheck_int (k bigint) PARTITION BY HASH (k);
CREATE TABLE hashcheck_text (k text) PARTITION BY HASH (k);
CREATE TABLE hashcheck_uuid (k uuid) PARTITION BY HASH (k);
CREATE TABLE dir_users (user_id bigint PRIMARY KEY, name text);
CREATE TABLE auto_users (user_id bigint PRIMARY KEY, name text);
CREATE TABLE acc_users (user_id bigint PRIMARY KEY, name text);
CREATE TABLE acc_events (id bigint PRIMARY KEY, what text);
CREATE TABLE acc_dir (user_id bigint PRIMARY KEY, name text);
CREATE TABLE rangecheck (k bigint) PARTITION BY RANGE (k);
CREATE TABLE rangecheck_0 PARTITION OF rangecheck FOR VALUES FROM (MINVALUE) TO (3334);
CREATE TABLE rangecheck_1 PARTITION OF rangecheck FOR VALUES FROM (3334) TO (6667);
CREATE TABLE rangecheck_2 PARTITION OF rangecheck FOR VALUES FROM (6667) TO (MAXVALUE);
`

// directorySchema holds the lookup tables of the directory-sharded tables;
// it exists only on shard0's primary, the configured directory node.
const directorySchema = `
CREATE TABLE pgrouter_directory (key bigint PRIMARY KEY, shard text NOT NULL);
CREATE TABLE auto_directory (key bigint PRIMARY KEY, shard text NOT NULL);
CREATE TABLE acc_directory (key bigint PRIMARY KEY, shard text NOT NULL);
`

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(m, testenv.Options{Shards: 3, Sections: map[string]string{"db": dbSection, "pool": "  size: 8"}}, createSchema)
	os.Exit(run())
}

// createSchema creates the tables on every shard directly (the directory
// tables on shard0 only).
func createSchema(e *testenv.Env) error {
	return e.ExecOnPrimaries(context.Background(), "app", schema, directorySchema)
}
