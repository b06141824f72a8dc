package twophase

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// batchModes are the ways pgx sends a batch: named prepared statements
// (Parse/Describe first, then Bind/Describe/Execute per query), unnamed
// ones (Parse/Bind/Describe/Execute per query) and the simple protocol
// (all statements joined with ';' in one Query, as psycopg2's
// execute_batch does).
var batchModes = map[string]pgx.QueryExecMode{
	"cache-statement": pgx.QueryExecModeCacheStatement,
	"exec":            pgx.QueryExecModeExec,
	"simple":          pgx.QueryExecModeSimpleProtocol,
}

// insertBatch queues one insert per key (name = tag).
func insertBatch(keys []int64, tag string) *pgx.Batch {
	b := &pgx.Batch{}
	for _, k := range keys {
		b.Queue("insert into users (user_id, name) values ($1, $2)", k, tag)
	}
	return b
}

func interleave(a, b []int64) []int64 {
	var out []int64
	for i := range a {
		out = append(out, a[i], b[i])
	}
	return out
}

// A batch whose statements go to both shards runs as one implicit
// transaction over both, as on one Postgres: every statement answers,
// every row lands on its shard, and nothing is left prepared.
func TestBatchSpanningShardsCommits(t *testing.T) {
	ctx := context.Background()
	base := int64(300000)
	for name, mode := range batchModes {
		t.Run(name, func(t *testing.T) {
			a, b := keysOn(t, 0, base, 3), keysOn(t, 1, base, 3)
			base += 1000
			c := connect(t, mode)
			res := c.SendBatch(ctx, insertBatch(interleave(a, b), "batch"))
			for i := 0; i < 6; i++ {
				tag, err := res.Exec()
				if err != nil || tag.String() != "INSERT 0 1" {
					t.Fatalf("statement %d: tag %q err %v", i, tag, err)
				}
			}
			if err := res.Close(); err != nil {
				t.Fatal(err)
			}
			if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != 3 || n1 != 3 {
				t.Fatalf("after the batch shard0 has %d/3, shard1 %d/3", n0, n1)
			}
			assertNoPrepared(t)
			// Reads of several shards in one batch, and the session afterwards.
			rb := &pgx.Batch{}
			for _, k := range interleave(a, b) {
				rb.Queue("select name from users where user_id = $1", k)
			}
			br := c.SendBatch(ctx, rb)
			for i := 0; i < 6; i++ {
				var name string
				if err := br.QueryRow().Scan(&name); err != nil || name != "batch" {
					t.Fatalf("read %d: %q %v", i, name, err)
				}
			}
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
			assertUsable(t, c, "the batches")
		})
	}
}

// An error in the middle of a spanning batch rolls the whole batch back on
// every shard (Postgres: the implicit transaction up to Sync), the client
// sees the statement's own error, and the session goes on.
func TestBatchSpanningShardsErrorRollsBackAll(t *testing.T) {
	ctx := context.Background()
	base := int64(310000)
	for name, mode := range batchModes {
		t.Run(name, func(t *testing.T) {
			a, b := keysOn(t, 0, base, 2), keysOn(t, 1, base, 2)
			base += 1000
			takeKey(t, 1, b[1])
			c := connect(t, mode)
			err := c.SendBatch(ctx, insertBatch([]int64{a[0], b[0], a[1], b[1]}, "doomed")).Close()
			if sqlState(err) != "23505" {
				t.Fatalf("want 23505 from the duplicate on shard1, got %v", err)
			}
			if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b[:1]); n0+n1 != 0 {
				t.Fatalf("failed batch left rows: shard0 %d, shard1 %d", n0, n1)
			}
			assertNoPrepared(t)
			assertUsable(t, c, "the failed batch")
		})
	}
}

// Inside an explicit transaction a spanning batch joins the shards it
// needs; COMMIT commits everything with two-phase commit.
func TestBatchInsideTransaction(t *testing.T) {
	ctx := context.Background()
	base := int64(320000)
	for name, mode := range batchModes {
		t.Run(name, func(t *testing.T) {
			a, b := keysOn(t, 0, base, 2), keysOn(t, 1, base, 2)
			base += 1000
			c := connect(t, mode)
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.SendBatch(ctx, insertBatch(interleave(a, b), "txbatch")).Close(); err != nil {
				t.Fatalf("batch in a transaction: %v", err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != 2 || n1 != 2 {
				t.Fatalf("after commit shard0 has %d/2, shard1 %d/2", n0, n1)
			}
			// A failing batch inside a transaction fails the transaction.
			tx, _ = c.Begin(ctx)
			err = tx.SendBatch(ctx, insertBatch([]int64{a[0] + 7000, b[0]}, "dup")).Close()
			if sqlState(err) != "23505" {
				t.Fatalf("duplicate in a transaction batch: want 23505, got %v", err)
			}
			if _, err := tx.Exec(ctx, "select 1"); sqlState(err) != "25P02" {
				t.Fatalf("statement after a failed batch: want 25P02, got %v", err)
			}
			tx.Rollback(ctx)
			assertNoPrepared(t)
		})
	}
}

// Without two-phase commit a batch that writes on two shards is refused
// before anything runs, with a clear error naming the shards; the session
// stays usable. A batch that only reads several shards still works.
func TestBatchWithoutTwoPhaseCommit(t *testing.T) {
	ctx := context.Background()
	base := int64(330000)
	for name, mode := range batchModes {
		t.Run(name, func(t *testing.T) {
			a, b := keysOn(t, 0, base, 1), keysOn(t, 1, base, 1)
			base += 1000
			c := connectTo(t, env.DSN("app", "app", "plain"), mode)
			err := c.SendBatch(ctx, insertBatch([]int64{a[0], b[0]}, "plain")).Close()
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "shard0") ||
				!strings.Contains(pe.Message, "shard1") || !strings.Contains(pe.Hint, "two_phase_commit") {
				t.Fatalf("want 0A000 naming both shards with a two_phase_commit hint, got %v", err)
			}
			if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0+n1 != 0 {
				t.Fatalf("refused batch wrote: shard0 %d, shard1 %d", n0, n1)
			}
			rb := &pgx.Batch{}
			rb.Queue("select count(*) from users where user_id = $1", a[0])
			rb.Queue("select count(*) from users where user_id = $1", b[0])
			if err := c.SendBatch(ctx, rb).Close(); err != nil {
				t.Fatalf("read-only batch over two shards without 2PC: %v", err)
			}
			assertUsable(t, c, "the refusal")
		})
	}
}

// Savepoints in a transaction that spans shards: SAVEPOINT, RELEASE and
// ROLLBACK TO reach every shard, and a shard joining later gets the
// savepoints replayed, so ROLLBACK TO undoes exactly what one Postgres
// would undo.
func TestSavepointsSpanShards(t *testing.T) {
	ctx := context.Background()
	base := int64(340000)
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			a, b := keysOn(t, 0, base, 3), keysOn(t, 1, base, 3)
			base += 1000
			c := connect(t, mode)
			exec := func(tx pgx.Tx, sql string, args ...any) {
				t.Helper()
				if _, err := tx.Exec(ctx, sql, args...); err != nil {
					t.Fatalf("%s %v: %v", sql, args, err)
				}
			}
			ins := "insert into users (user_id, name) values ($1, 'sp')"
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			exec(tx, ins, a[0])              // shard0 only
			exec(tx, "savepoint s1")         // set on shard0, replayed on shard1 when it joins
			exec(tx, ins, b[0])              // shard1 joins after s1
			exec(tx, "savepoint s2")         // both
			exec(tx, ins, a[1])              //
			exec(tx, "rollback to s2")       // undoes a[1]
			exec(tx, ins, b[1])              //
			exec(tx, "release s2")           //
			exec(tx, "rollback to s1")       // undoes b[0], b[1]
			exec(tx, ins, a[2])              //
			_, err = tx.Exec(ctx, ins, a[2]) // duplicate: fails the transaction
			if sqlState(err) != "23505" {
				t.Fatalf("duplicate: %v", err)
			}
			exec(tx, "rollback to savepoint s1") // recovers it (undoes a[2] too)
			exec(tx, ins, b[2])
			if _, err := tx.Exec(ctx, "release s2"); sqlState(err) != "3B001" {
				t.Fatalf("release of a released savepoint: want 3B001, got %v", err)
			}
			tx.Rollback(ctx)
			tx, _ = c.Begin(ctx)
			exec(tx, ins, a[0])
			exec(tx, "savepoint s1")
			exec(tx, ins, b[0])
			exec(tx, "rollback to s1")
			exec(tx, ins, b[2])
			exec(tx, "release savepoint s1")
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(countOn(t, 0, "users", a), countOn(t, 1, "users", b[:2]), countOn(t, 1, "users", b[2:]))
			if got != "1 0 1" {
				t.Fatalf("rows after commit (shard0 a, shard1 b0 b1, shard1 b2): %s, want 1 0 1", got)
			}
			assertNoPrepared(t)
		})
	}
}

// JDBC with autocommit off sends BEGIN in the same batch as the first
// statements (Parse/Bind/Execute of BEGIN, then of each statement, one
// Sync): such a batch over shards opens the client's transaction, which
// COMMIT then ends on every shard.
func TestBatchStartingWithBegin(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 350000, 2), keysOn(t, 1, 350000, 2)
	c := connect(t, pgx.QueryExecModeExec)
	batch := &pgx.Batch{}
	batch.Queue("begin")
	for _, k := range interleave(a, b) {
		batch.Queue("insert into users (user_id, name) values ($1, 'jdbc')", k)
	}
	if err := c.SendBatch(ctx, batch).Close(); err != nil {
		t.Fatalf("BEGIN and inserts over two shards in one batch: %v", err)
	}
	if st := c.PgConn().TxStatus(); st != 'T' {
		t.Fatalf("after the batch the client is in state %c, want T", st)
	}
	if _, err := c.Exec(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != 2 || n1 != 2 {
		t.Fatalf("after commit shard0 has %d/2, shard1 %d/2", n0, n1)
	}
	assertNoPrepared(t)
}

// A batch refused inside a transaction fails the transaction, as an error
// does in Postgres: also when the transaction had not reached a shard yet.
func TestRefusedBatchFailsTheTransaction(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 360000, 1), keysOn(t, 1, 360000, 1)
	c := connectTo(t, env.DSN("app", "app", "plain"), pgx.QueryExecModeExec)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SendBatch(ctx, insertBatch([]int64{a[0], b[0]}, "refused")).Close(); sqlState(err) != "0A000" {
		t.Fatalf("batch writing two shards without 2PC: want 0A000, got %v", err)
	}
	if _, err := tx.Exec(ctx, "select 1"); sqlState(err) != "25P02" {
		t.Fatalf("statement after the refused batch: want 25P02, got %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The same as one Query (statements joined with ';').
	if _, err := c.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Exec(ctx, fmt.Sprintf("insert into users (user_id, name) values (%d, 'r'); insert into users (user_id, name) values (%d, 'r')", a[0], b[0]))
	if sqlState(err) != "0A000" {
		t.Fatalf("query writing two shards without 2PC: want 0A000, got %v", err)
	}
	if _, err := c.Exec(ctx, "select 1"); sqlState(err) != "25P02" {
		t.Fatalf("statement after the refused query: want 25P02, got %v", err)
	}
	if _, err := c.Exec(ctx, "rollback"); err != nil {
		t.Fatal(err)
	}
	assertUsable(t, c, "the rolled back transaction")
}
