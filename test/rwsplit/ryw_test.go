package rwsplit

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReadYourWrites: with replica r1's replay paused (so it never has the
// new rows) and r2 replaying normally, a client that inserts a row and reads
// it back at once always sees it, 1,000 times in a row, in autocommit with
// pgx's default (extended, cached statements) and simple protocols, and
// with the insert in an explicit transaction.
func TestReadYourWrites(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	r1 := env.Cluster.Shards[0].Replicas[0]
	ctx := testCtx(t, 3*time.Minute)
	if err := r1.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r1.ResumeReplay(context.Background()) })

	// First, while r1 is paused but only slightly behind (so still in the
	// rotation for clients without writes), the writer's reads must move
	// from the primary to r2 once r2 has replayed the write, and never to r1.
	t.Run("floor lifts to the caught-up replica only", func(t *testing.T) {
		c := connect(t, env)
		other := connect(t, env) // never writes
		base := time.Now().UnixNano()
		counts, otherCounts := map[int]int{}, map[int]int{}
		for i := range int64(20) {
			id := base + i
			if err := insertRow(ctx, c, false, id); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the writer's read-back moves to a replica", func() bool {
				port, rec := readBack(t, ctx, c, id, counts)
				otherCounts[mustWho(t, ctx, other, whoSQL).Port]++
				return rec && port == tp.r2
			})
		}
		t.Logf("writer's read-backs: %s; a non-writing client meanwhile: %s", tp.summary(counts), tp.summary(otherCounts))
		if counts[tp.r1] != 0 {
			t.Errorf("the paused replica r1 served %d of the writer's reads", counts[tp.r1])
		}
		if otherCounts[tp.r1] == 0 {
			t.Errorf("r1 was out of the rotation for everyone (so this did not test read-your-writes): %s", tp.summary(otherCounts))
		}
	})

	variants := []struct {
		name string
		mode pgx.QueryExecMode
		tx   bool
	}{
		{"autocommit/cache_statement", pgx.QueryExecModeCacheStatement, false},
		{"autocommit/simple_protocol", pgx.QueryExecModeSimpleProtocol, false},
		{"explicit tx/cache_statement", pgx.QueryExecModeCacheStatement, true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			c := connectMode(t, env, v.mode)
			base := time.Now().UnixNano()
			counts := map[int]int{}
			for i := range int64(1000) {
				id := base + i
				if err := insertRow(ctx, c, v.tx, id); err != nil {
					t.Fatalf("insert %d: %v", i, err)
				}
				readBack(t, ctx, c, id, counts)
			}
			t.Logf("1000 read-backs served by: %s", tp.summary(counts))
			if counts[tp.r1] != 0 {
				t.Errorf("the paused replica r1 served %d read-backs", counts[tp.r1])
			}
		})
	}
}

// insertRow writes one row of table ryw, in autocommit or in BEGIN … COMMIT.
func insertRow(ctx context.Context, c *pgx.Conn, inTx bool, id int64) error {
	const ins = "insert into ryw (id, client) values ($1, 'ryw')"
	if !inTx {
		_, err := c.Exec(ctx, ins, id)
		return err
	}
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, ins, id)
		return err
	})
}

// readBack selects row id, fails the test unless it is visible, counts the
// node that served the read and returns it.
func readBack(t *testing.T, ctx context.Context, c *pgx.Conn, id int64, counts map[int]int) (port int, recovery bool) {
	t.Helper()
	var p int32
	var n int64
	err := c.QueryRow(ctx, "select inet_server_port(), pg_is_in_recovery(), (select count(*) from ryw where id = $1)", id).
		Scan(&p, &recovery, &n)
	if err != nil {
		t.Fatalf("read back row %d: %v", id, err)
	}
	counts[int(p)]++
	if n != 1 {
		t.Fatalf("own row %d not visible: read served by port %d (in recovery %v); reads so far: %s",
			id, p, recovery, topoOf(env).summary(counts))
	}
	return int(p), recovery
}
