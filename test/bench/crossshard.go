package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// The cross-shard scenarios (issue 6) read table xs without a shard key:
// through pgrouter the query runs on all 4 shards and is merged (ORDER BY …
// LIMIT: k-way merge of 10 rows per shard; GROUP BY: partial counts
// combined), against the same query on one Postgres holding every row.
const (
	xsShards = 4
	xsRows   = 100000
	xsGroups = 100
)

var xsTable = config.ShardedTable{Table: "xs", Column: "k", Type: "int", Function: "hash"}

const xsSchema = "CREATE TABLE xs (k bigint PRIMARY KEY, g int NOT NULL, x int NOT NULL)"

func xsDBExtras() string {
	return "    sharded_tables:\n      - {table: xs, column: k, type: int, function: hash}"
}

// xsRow is row k of xs: g cycles through the groups, x is a scrambled
// value with ties, so ORDER BY x needs its k tie-breaker.
func xsRow(k int64) []any {
	return []any{k, int32(k % xsGroups), int32((k * 7919) % 50021)}
}

// initXSDirect creates xs with every row on the single node.
func initXSDirect(ctx context.Context, conn *pgx.Conn) error {
	rows := make([][]any, 0, xsRows)
	for k := int64(1); k <= xsRows; k++ {
		rows = append(rows, xsRow(k))
	}
	return loadXS(ctx, conn, rows)
}

func loadXS(ctx context.Context, conn *pgx.Conn, rows [][]any) error {
	if _, err := conn.Exec(ctx, xsSchema); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE INDEX xs_x ON xs (x, k)"); err != nil {
		return err
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"xs"}, []string{"k", "g", "x"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, "VACUUM ANALYZE xs")
	return err
}

// initXSSharded loads each xs row on the shard pgrouter places it on.
func initXSSharded(ctx context.Context, c *localpg.Cluster) error {
	names := make([]string, len(c.Shards))
	for i, s := range c.Shards {
		names[i] = s.Name
	}
	fn, err := sharding.New(&xsTable, names)
	if err != nil {
		return err
	}
	rows := make([][][]any, len(c.Shards))
	for k := int64(1); k <= xsRows; k++ {
		i, err := fn.Shard(sharding.Key{Int: k})
		if err != nil {
			return fmt.Errorf("place k=%d: %w", k, err)
		}
		rows[i] = append(rows[i], xsRow(k))
	}
	for i, s := range c.Shards {
		if err := s.Primary.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
			return err
		}
		conn, err := s.Primary.Connect(ctx, benchDB)
		if err != nil {
			return err
		}
		err = loadXS(ctx, conn, rows[i])
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return nil
}

// crossShardRouter starts the 4-shard cluster and its pgrouter on first use.
func (b *bench) crossShardRouter(ctx context.Context) (*Target, error) {
	if b.xsharded == nil && b.xsRouter.err == nil {
		if b.routerBin == "" {
			b.xsRouter.err = fmt.Errorf("pgrouter not built")
			return nil, b.xsRouter.err
		}
		fmt.Fprintf(os.Stderr, "bench: starting the %d-shard cluster and loading xs\n", xsShards)
		c, err := localpg.Start(ctx, localpg.Options{Shards: xsShards, NoSignalHandler: true})
		if err == nil {
			b.xsharded = c
			err = initXSSharded(ctx, c)
		}
		if err != nil {
			b.xsRouter.err = fmt.Errorf("%d-shard setup: %w", xsShards, err)
			return nil, b.xsRouter.err
		}
		b.xsRouter.spec = routerSpec{bin: b.routerBin, dir: b.workdir, name: "pgrouter-4shards",
			cluster: c, db: benchDB, pool: b.opts.pool, dbExtras: xsDBExtras()}
	}
	return b.routerTarget(ctx, &b.xsRouter)
}
