package twophase

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var modes = map[string]pgx.QueryExecMode{
	"simple":   pgx.QueryExecModeSimpleProtocol,
	"extended": pgx.QueryExecModeCacheStatement,
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// A transaction writing on both shards commits on both, atomically, and
// leaves no prepared transaction behind; its reads see its own writes on
// every shard it visited.
func TestCommitSpansShards(t *testing.T) {
	ctx := context.Background()
	base := int64(1000)
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			a, b := keysOn(t, 0, base, 3), keysOn(t, 1, base, 3)
			base += 1000
			c := connect(t, mode)
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range a { // alternate shards: the session switches back and forth
				for _, k := range []int64{a[i], b[i]} {
					if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'tx')", k); err != nil {
						t.Fatalf("insert %d: %v", k, err)
					}
				}
			}
			var seen int
			if err := tx.QueryRow(ctx, "select count(*) from users where user_id = $1", b[0]).Scan(&seen); err != nil || seen != 1 {
				t.Fatalf("own write on shard 1 inside the transaction: %d %v", seen, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != 3 || n1 != 3 {
				t.Fatalf("after commit shard0 has %d/3, shard1 %d/3", n0, n1)
			}
			assertNoPrepared(t)
		})
	}
}

func TestRollbackSpansShards(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 5000, 2), keysOn(t, 1, 5000, 2)
	c := connect(t, pgx.QueryExecModeCacheStatement)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(append([]int64{}, a...), b...) {
		if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'rb')", k); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0+n1 != 0 {
		t.Fatalf("rolled back transaction left rows: shard0 %d, shard1 %d", n0, n1)
	}
	// The session goes on normally afterwards.
	if _, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'after')", a[0]); err != nil {
		t.Fatal(err)
	}
	if countOn(t, 0, "users", a[:1]) != 1 {
		t.Fatal("autocommit insert after the rollback is missing")
	}
}

// A participant that cannot prepare (deferred unique violation) makes the
// COMMIT fail with its error, and nothing is committed anywhere.
func TestPrepareFailureRollsBackEveryShard(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 9000, 1), keysOn(t, 1, 9000, 2)
	if _, err := direct(t, 1).Exec(ctx, "insert into ledger (user_id, n) values ($1, 777)", b[1]); err != nil {
		t.Fatal(err)
	}
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into ledger (user_id, n) values ($1, 1)", a[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "insert into ledger (user_id, n) values ($1, 777)", b[0]); err != nil {
		t.Fatal(err) // deferred: not checked yet
	}
	err = tx.Commit(ctx)
	if sqlState(err) != "23505" || !strings.Contains(err.Error(), "shard1") {
		t.Fatalf("commit with a failing participant: want 23505 naming shard1, got %v", err)
	}
	if n := countOn(t, 0, "ledger", a); n != 0 {
		t.Fatalf("shard0 kept %d row(s) of a transaction that failed on shard1", n)
	}
	assertNoPrepared(t)
	assertUsable(t, c, "the failed commit")
}

// What a spanning transaction cannot keep consistent is refused before it runs.
func TestSpanningTransactionRefusals(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 12000, 1), keysOn(t, 1, 12000, 1)
	c := connect(t, pgx.QueryExecModeSimpleProtocol)

	// A savepoint set among other statements of one query cannot be
	// replayed on another shard (lone savepoints can: batch_test.go).
	tx, _ := c.Begin(ctx)
	tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'sp')", a[0])
	if _, err := tx.Exec(ctx, "select 1; savepoint s1"); err != nil {
		t.Fatal(err)
	}
	_, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'sp')", b[0])
	if sqlState(err) != "0A000" || !strings.Contains(err.Error(), "savepoint") {
		t.Fatalf("move after a savepoint: want 0A000, got %v", err)
	}
	tx.Rollback(ctx)

	// SET LOCAL / SET TRANSACTION hold on one shard only: no move after them.
	for _, set := range []string{"set local statement_timeout = '5s'", "set transaction isolation level serializable"} {
		tx, _ = c.Begin(ctx)
		if _, err := tx.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
		tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'sl')", a[0])
		_, err = tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'sl')", b[0])
		if sqlState(err) != "0A000" || !strings.Contains(err.Error(), "SET LOCAL") {
			t.Fatalf("move after %q: want 0A000, got %v", set, err)
		}
		tx.Rollback(ctx)
	}

	// Once spanning: a savepoint among other statements and session SET
	// are refused, COMMIT still works.
	tx, _ = c.Begin(ctx)
	tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'sp')", a[0]+0)
	if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'sp')", b[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1; savepoint s2"); sqlState(err) != "0A000" {
		t.Fatalf("savepoint among other statements in a spanning transaction: want 0A000, got %v", err)
	}
	tx.Rollback(ctx)
	if n := countOn(t, 1, "users", b); n != 0 {
		t.Fatalf("rolled back transaction left %d row(s) on shard1", n)
	}
}

// Autocommit statements over several shards commit with 2PC too: a split
// multi-row INSERT and a reference-table write (refused without 2PC).
func TestAutocommitMultiShardWrites(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 15000, 2), keysOn(t, 1, 15000, 2)
	c := connect(t, pgx.QueryExecModeCacheStatement)
	tag, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'm'), ($2, 'm'), ($3, 'm'), ($4, 'm')", a[0], b[0], a[1], b[1])
	if err != nil || tag.RowsAffected() != 4 {
		t.Fatalf("split insert: %v %v", tag, err)
	}
	if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != 2 || n1 != 2 {
		t.Fatalf("split insert placed %d/2 on shard0, %d/2 on shard1", n0, n1)
	}
	if _, err := c.Exec(ctx, "insert into plans (id, name) values (1, 'free')"); err != nil {
		t.Fatalf("reference write with two_phase_commit: %v", err)
	}
	for i := range env.Cluster.Shards {
		var name string
		if err := direct(t, i).QueryRow(ctx, "select name from plans where id = 1").Scan(&name); err != nil || name != "free" {
			t.Fatalf("shard%d plans row: %q %v", i, name, err)
		}
	}
	assertNoPrepared(t)
}

// Without two_phase_commit a transaction may still read on several shards,
// but its write on a second shard is refused (naming both shards) before
// anything is sent there.
func TestWithoutTwoPhaseCommitSecondWriterRefused(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 50000, 1), keysOn(t, 1, 50000, 1)
	if _, err := direct(t, 1).Exec(ctx, "insert into users (user_id, name) values ($1, 'existing')", b[0]); err != nil {
		t.Fatal(err)
	}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			c := connectTo(t, env.DSN("app", "app", "plain"), mode)
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'plain')", a[0]); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := tx.QueryRow(ctx, "select name from users where user_id = $1", b[0]).Scan(&got); err != nil || got != "existing" {
				t.Fatalf("read on the second shard: %q %v", got, err)
			}
			if _, err := tx.Exec(ctx, "update users set name = 'again' where user_id = $1", a[0]); err != nil {
				t.Fatalf("write back on the first shard: %v", err)
			}
			_, err = tx.Exec(ctx, "update users set name = 'no' where user_id = $1", b[0])
			if sqlState(err) != "25000" || !strings.Contains(err.Error(), "shard0") || !strings.Contains(err.Error(), "shard1") {
				t.Fatalf("write on a second shard without 2PC: want 25000 naming both shards, got %v", err)
			}
			tx.Rollback(ctx)
			if countOn(t, 0, "users", a) != 0 {
				t.Fatal("rolled back transaction left its row on shard0")
			}
			var still string
			direct(t, 1).QueryRow(ctx, "select name from users where user_id = $1", b[0]).Scan(&still)
			if still != "existing" {
				t.Fatalf("refused write reached shard1: %q", still)
			}
			// Reads on both shards commit like any read-only transaction.
			tx, _ = c.Begin(ctx)
			var n int
			for _, k := range []int64{a[0], b[0]} {
				if err := tx.QueryRow(ctx, "select count(*) from users where user_id = $1", k).Scan(&n); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("commit of a read-only spanning transaction: %v", err)
			}
		})
	}
}

// cross_shard: deny keeps every transaction on one shard, reads included.
func TestCrossShardDenyKeepsTransactionsOnOneShard(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 60000, 1), keysOn(t, 1, 60000, 1)
	c := connectTo(t, env.DSN("app", "app", "strict"), pgx.QueryExecModeSimpleProtocol)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, "select count(*) from users where user_id = $1", a[0]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	err = tx.QueryRow(ctx, "select count(*) from users where user_id = $1", b[0]).Scan(&n)
	if sqlState(err) != "0A000" || !strings.Contains(err.Error(), "cross_shard") {
		t.Fatalf("second shard with cross_shard deny: want 0A000, got %v", err)
	}
	tx.Rollback(ctx)
}

// Inside a transaction, statements over several shards join them too: a
// split INSERT, a keyless UPDATE and a reference-table write, all
// committed (or rolled back) together.
func TestMultiShardStatementsInsideTransaction(t *testing.T) {
	ctx := context.Background()
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			base := int64(70000)
			if name == "extended" {
				base = 80000
			}
			a, b := keysOn(t, 0, base, 2), keysOn(t, 1, base, 2)
			all := append(append([]int64{}, a...), b...)
			c := connect(t, mode)
			for _, commit := range []bool{false, true} {
				tx, err := c.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				tag, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'in'), ($2, 'in'), ($3, 'in'), ($4, 'in')", a[0], b[0], a[1], b[1])
				if err != nil || tag.RowsAffected() != 4 {
					t.Fatalf("split insert in a transaction: %v %v", tag, err)
				}
				tag, err = tx.Exec(ctx, "update users set name = 'upd' where user_id = any($1)", all)
				if err != nil || tag.RowsAffected() != 4 {
					t.Fatalf("keyless update in a transaction: %v %v", tag, err)
				}
				if _, err := tx.Exec(ctx, "insert into plans (id, name) values ($1, 'tx')", base); err != nil {
					t.Fatalf("reference write in a transaction: %v", err)
				}
				if commit {
					err = tx.Commit(ctx)
				} else {
					err = tx.Rollback(ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if commit {
					want = 2
				}
				if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != want || n1 != want {
					t.Fatalf("commit=%v: shard0 has %d, shard1 %d rows; want %d each", commit, n0, n1, want)
				}
				for i := range env.Cluster.Shards {
					var n int
					direct(t, i).QueryRow(ctx, "select count(*) from plans where id = $1", base).Scan(&n)
					if n != want/2 {
						t.Fatalf("commit=%v: shard%d has %d plans rows, want %d", commit, i, n, want/2)
					}
				}
			}
			assertNoPrepared(t)
		})
	}
}

// COPY FROM STDIN into several shards commits with two-phase commit.
func TestCopyCommitsWithTwoPhaseCommit(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 95000, 3), keysOn(t, 1, 95000, 3)
	before := metric(scrape(t), "pgrouter_2pc_commits_total")
	c := connect(t, pgx.QueryExecModeCacheStatement)
	var rows [][]any
	for i := range a {
		rows = append(rows, []any{a[i], "copy"}, []any{b[i], "copy"})
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"user_id", "name"}, pgx.CopyFromRows(rows))
	if err != nil || n != 6 {
		t.Fatalf("copy: %d %v", n, err)
	}
	if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != 3 || n1 != 3 {
		t.Fatalf("copy placed %d/3 on shard0, %d/3 on shard1", n0, n1)
	}
	if after := metric(scrape(t), "pgrouter_2pc_commits_total"); after != before+1 {
		t.Fatalf("pgrouter_2pc_commits_total %v → %v, want +1", before, after)
	}
	assertNoPrepared(t)
}

// A cross-shard SELECT inside a transaction runs on the transaction's own
// backends: it sees the transaction's uncommitted writes on every shard.
func TestCrossShardReadInsideTransaction(t *testing.T) {
	ctx := context.Background()
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			base := int64(110000)
			if name == "extended" {
				base = 120000
			}
			a, b := keysOn(t, 0, base, 1), keysOn(t, 1, base, 1)
			tag := "txread" + name
			for _, db := range []string{"app", "plain"} { // with and without 2PC: reads may span either way
				c := connectTo(t, env.DSN("app", "app", db), mode)
				tx, err := c.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				k := a[0]
				if db == "plain" {
					k = b[0] // one write only: a second writer needs 2PC
				}
				if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, $2)", k, tag); err != nil {
					t.Fatal(err)
				}
				if db == "app" {
					if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, $2)", b[0], tag); err != nil {
						t.Fatal(err)
					}
				}
				var n int
				if err := tx.QueryRow(ctx, "select count(*) from users where name = $1", tag).Scan(&n); err != nil {
					t.Fatalf("%s: cross-shard count inside the transaction: %v", db, err)
				}
				want := 2
				if db == "plain" {
					want = 1
				}
				if n != want {
					t.Fatalf("%s: count inside the transaction = %d, want %d (its own writes)", db, n, want)
				}
				if err := tx.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
				var after int
				if err := c.QueryRow(ctx, "select count(*) from users where name = $1", tag).Scan(&after); err != nil || after != 0 {
					t.Fatalf("%s: after rollback count = %d %v", db, after, err)
				}
			}
		})
	}
}
