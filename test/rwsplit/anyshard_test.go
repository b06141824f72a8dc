package rwsplit

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// anyShardDB has a sharded table and a reference table; statements without
// sharded data (SELECT now(), reference reads) may run on any shard.
const anyShardDB = `    sharded_tables:
      - {table: users, column: user_id, type: int, function: hash}
    reference_tables: [plans]
`

// TestAnyShardReadsSpreadOverEveryShard: issue 12 item 4. Reads that need
// no particular shard used to run on shard 0's nodes only; they must be
// spread over the replicas of every shard (and writes must stay on primaries).
func TestAnyShardReadsSpreadOverEveryShard(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	sec := sections()
	sec["db"] = anyShardDB
	e, err := testenv.Start(ctx, testenv.Options{Shards: 2, Replicas: 1, Sections: sec})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.ExecOnPrimaries(ctx, "app", "CREATE TABLE users (user_id bigint PRIMARY KEY); CREATE TABLE plans (id int PRIMARY KEY); INSERT INTO plans VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := e.Cluster.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	replicas := map[int]string{}
	for _, s := range e.Cluster.Shards {
		replicas[s.Replicas[0].Port] = s.Name + "-replica"
	}
	const n = 200
	for _, q := range []string{whoSQL, whoSQL + " FROM plans WHERE id = 1"} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			c := connectMode(t, e, mode)
			counts := map[int]int{}
			for i := 0; i < n; i++ {
				s := mustWho(t, ctx, c, q)
				counts[s.Port]++
			}
			for port, name := range replicas {
				// An even spread gives each replica n/2; a third is far from both
				// that and from "everything on shard 0".
				if counts[port] < n/3 {
					t.Errorf("%q (mode %v): %s served %d of %d reads; all: %v", q, mode, name, counts[port], n, counts)
				}
			}
			for port, k := range counts {
				if _, ok := replicas[port]; !ok {
					t.Errorf("%q (mode %v): %d reads ran on port %d, not a replica", q, mode, k, port)
				}
			}
			c.Close(context.Background())
		}
	}
}
