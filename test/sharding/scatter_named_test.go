package sharding

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestScatterSimpleRepeated runs the same simple-protocol cross-shard read
// many times (pgrouter prepares its shard statement under a name once the
// text repeats), then changes the result type of the table on every shard
// behind pgrouter's back: the statement prepared before must not make the
// next read fail (Postgres: 0A000 cached plan must not change result type),
// as a simple query on Postgres never does.
func TestScatterSimpleRepeated(t *testing.T) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	for i := 1; i <= 60; i++ {
		if _, err := c.Exec(ctx, fmt.Sprintf("insert into named_reads values (%d, %d)", i, (i*7)%31)); err != nil {
			t.Fatal(err)
		}
	}
	const q = "select user_id, v from named_reads order by v, user_id limit 6"
	const want = "31 0,9 1,40 1,18 2,49 2,27 3"
	readRounds := func(when string, n int) {
		t.Helper()
		for round := 0; round < n; round++ {
			got, err := rowsOf(t, c, q)
			if err != nil {
				t.Fatalf("%s, round %d: %v", when, round, err)
			}
			if s := strings.Join(got, ","); s != want {
				t.Fatalf("%s, round %d: got %s, want %s", when, round, s, want)
			}
		}
	}
	readRounds("before", 10)
	if err := env.ExecOnPrimaries(ctx, "app", "ALTER TABLE named_reads ALTER COLUMN v TYPE bigint"); err != nil {
		t.Fatal(err)
	}
	readRounds("after the column's type changed", 3)
}
