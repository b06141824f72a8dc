package sharding

// Issue 12 item 1: no hint, comment or session setting may put a write on a
// shard other than its key's. The range table events places ids by config
// alone: < 1000 on shard0, 1000–1999 on shard1, ≥ 2000 on shard2. Every test
// checks each shard directly for where its rows are.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/test/testenv"
)

// connectSimple opens a client through pgrouter that sends every statement
// as one simple Query, exactly as written; params are extra startup GUCs.
func connectSimple(t *testing.T, params map[string]string) *pgx.Conn {
	t.Helper()
	return connectWith(t, pgx.QueryExecModeSimpleProtocol, params)
}

// rawExec sends sql as one Query message and returns the first error.
func rawExec(c *pgx.Conn, sql string) error {
	_, err := c.PgConn().Exec(context.Background(), sql).ReadAll()
	return err
}

// eventHomes lists the shards of e whose primary holds events row id.
func eventHomes(t *testing.T, e *testenv.Env, id int) []int {
	t.Helper()
	ctx := context.Background()
	var homes []int
	for i, s := range e.Cluster.Shards {
		c, err := s.Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = c.QueryRow(ctx, "SELECT count(*) FROM events WHERE id = $1", id).Scan(&n)
		c.Close(ctx)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if n > 0 {
			homes = append(homes, i)
		}
	}
	return homes
}

// wantOnlyOn fails unless row id exists exactly on shard want (-1: nowhere).
func wantOnlyOn(t *testing.T, id, want int) {
	t.Helper()
	homes := eventHomes(t, env, id)
	if (want < 0 && len(homes) > 0) || (want >= 0 && (len(homes) != 1 || homes[0] != want)) {
		t.Fatalf("events row %d is on shards %v, want only shard%d", id, homes, want)
	}
}

func cleanEvents(t *testing.T, ids ...int) {
	t.Helper()
	for i := range env.Cluster.Shards {
		for _, id := range ids {
			onShard(t, i, fmt.Sprintf("DELETE FROM events WHERE id = %d", id))
		}
	}
}

func TestShardHintNeverOverridesTheKeyOfAWrite(t *testing.T) {
	ctx := context.Background()
	cleanEvents(t, 1501, 1502, 1503)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		c := connectSimple(t, nil)
		_, err := c.Exec(ctx, "/* pgrouter: shard=shard0 */ INSERT INTO events (id, what) VALUES ($1, 'hint')", mode, 1501)
		pe := wantPgError(t, err, "22023")
		if !strings.Contains(pe.Message, "shard shard0") || !strings.Contains(pe.Message, "shard shard1") || pe.Hint == "" {
			t.Fatalf("mode %v: error must name the hinted and the key's shard and give a hint: %+v", mode, pe)
		}
	}
	c := connectSimple(t, nil)
	if _, err := c.Exec(ctx, "/* pgrouter: shard=shard1 */ INSERT INTO events (id, what) VALUES (1501, 'hint')"); err != nil {
		t.Fatalf("a hint that agrees with the key: %v", err)
	}
	_, err := c.Exec(ctx, "/* pgrouter: key=5 */ INSERT INTO events (id, what) VALUES (1502, 'hint')")
	wantPgError(t, err, "22023")
	if _, err := c.Exec(ctx, "SET pgrouter.shard = shard2"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Exec(ctx, "INSERT INTO events (id, what) VALUES (1503, 'session shard')")
	wantPgError(t, err, "22023")
	wantOnlyOn(t, 1501, 1)
	wantOnlyOn(t, 1502, -1)
	wantOnlyOn(t, 1503, -1)
}

// attack is the reproduction: with standard_conforming_strings off
// the backend reads the backslash as escaping the quote after it, so the
// literal closes one quote later and the INSERT runs; a router lexing with
// the setting on sees one SELECT (and the INSERT inside a literal).
func attack(id int) string {
	return fmt.Sprintf(`/* pgrouter: role=primary */ select 'x\''; insert into events (id, what) values (%d,$$p$$,1); --'`, id)
}

// attackOn is the mirror for a session whose strings are standard again:
// the backend runs the INSERT, a router still lexing backslashes would not.
func attackOn(id int) string {
	return fmt.Sprintf(`/* pgrouter: role=primary */ select 'x\'; insert into events (id, what) values (%d,$$p$$); --'`, id)
}

func TestNonStandardStringsAreLexedAsTheBackendDoes(t *testing.T) {
	ids := []int{1601, 1602, 1603, 1604, 1605, 1606}
	cleanEvents(t, ids...)
	// The statement has a third value: fix the attack to the table's two columns.
	att := func(id int) string { return strings.Replace(attack(id), ",$$p$$,1)", ",$$p$$)", 1) }

	c := connectSimple(t, nil)
	run := func(sql string) {
		t.Helper()
		if err := rawExec(c, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	run("SET standard_conforming_strings = off")
	run(att(1601))
	wantOnlyOn(t, 1601, 1)

	// SET LOCAL inside a transaction on shard2: the router sees the INSERT
	// of shard1's row and refuses to move the transaction (a router still
	// lexing backslashes would see a SELECT and run the INSERT on shard2).
	run("BEGIN")
	run("INSERT INTO events (id, what) VALUES (2606, 'tx')")
	run("SET LOCAL standard_conforming_strings = on")
	wantPgError(t, rawExec(c, attackOn(1602)), "0A000")
	run("ROLLBACK")
	wantOnlyOn(t, 1602, -1)
	run(att(1603)) // the transaction ended: back to the session's off
	wantOnlyOn(t, 1603, 1)
	run("RESET standard_conforming_strings")
	run(attackOn(1604))
	wantOnlyOn(t, 1604, 1)

	// From the startup packet: as a parameter, and inside options.
	s := connectSimple(t, map[string]string{"standard_conforming_strings": "off"})
	if err := rawExec(s, att(1605)); err != nil {
		t.Fatal(err)
	}
	wantOnlyOn(t, 1605, 1)
	o := connectSimple(t, map[string]string{"options": "-c standard_conforming_strings=off"})
	if err := rawExec(o, att(1606)); err != nil {
		t.Fatal(err)
	}
	wantOnlyOn(t, 1606, 1)
}

// TestNonStandardStringsPreparedStatements: a statement text prepared on a
// backend while standard_conforming_strings was on must not be reused for
// the same text Parsed after the client turned it off: the backend would
// run the old reading, not the one the router planned.
func TestNonStandardStringsPreparedStatements(t *testing.T) {
	ctx := context.Background()
	const sql = `SELECT $1::int, 'k\e' AS v`
	c := connectSimple(t, nil)
	read := func() string {
		t.Helper()
		var got string
		for i := 0; i < 6; i++ { // unnamed Parse each time; spread over the shards' backends
			var n int
			if err := c.QueryRow(ctx, sql, pgx.QueryExecModeExec, i).Scan(&n, &got); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	if got := read(); got != `k\e` {
		t.Fatalf("standard strings: %q", got)
	}
	if err := rawExec(c, "SET standard_conforming_strings = off"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "ke" {
		t.Fatalf("after SET standard_conforming_strings = off the literal reads %q, want %q", got, "ke")
	}
}

// newRouter is a router over the environment's config, to compute where
// keys belong (its hash is tested against Postgres's in placement_test.go).
func newRouter(t *testing.T) *router.Router {
	t.Helper()
	r, err := env.Router()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestShardHintOnCopyChecksEveryRow: a hinted COPY into a sharded table is
// refused as a whole when a row's key belongs to another shard.
func TestShardHintOnCopyChecksEveryRow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cleanEvents(t, 11, 12, 1511)
	c := connectSimple(t, nil)
	const copySQL = "/* pgrouter: shard=shard0 */ COPY events (id, what) FROM STDIN"
	_, err := c.PgConn().CopyFrom(ctx, strings.NewReader("11\ta\n1511\tb\n"), copySQL)
	pe := wantPgError(t, err, "22023")
	if !strings.Contains(pe.Message, "shard shard1") || !strings.Contains(pe.Message, "shard shard0") {
		t.Fatalf("message must name both shards: %q", pe.Message)
	}
	wantOnlyOn(t, 11, -1)
	wantOnlyOn(t, 1511, -1)
	tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader("11\ta\n12\tb\n"), copySQL)
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("COPY of shard0's own rows under the hint: %v %v", tag, err)
	}
	wantOnlyOn(t, 11, 0)
	wantOnlyOn(t, 12, 0)
}

// TestSQLPrepareOnShardedTableIsRefused: an SQL-level PREPARE pins the
// session to the shard it ran on, and every EXECUTE runs there whatever its
// parameters: a row of another shard would be written there.
func TestSQLPrepareOnShardedTableIsRefused(t *testing.T) {
	cleanEvents(t, 1701)
	c := connectSimple(t, nil)
	err := rawExec(c, "PREPARE ins AS INSERT INTO events (id, what) VALUES ($1, 'prepared')")
	wantPgError(t, err, "0A000")
	if err := rawExec(c, "EXECUTE ins(1701)"); err == nil {
		t.Error("EXECUTE of a refused PREPARE succeeded")
	}
	wantOnlyOn(t, 1701, -1)
	if err := rawExec(c, "PREPARE one AS SELECT 1"); err != nil {
		t.Fatalf("PREPARE without sharded tables: %v", err)
	}
}

// TestUnparseableTextNeverRunsOnAGuessedShard: a text pg_query (PostgreSQL 17
// grammar) rejects but PostgreSQL 15 runs — system_user became a reserved
// word in 16 — used to go whole to the first shard's primary, with the
// INSERT of another shard's row in it.
func TestUnparseableTextNeverRunsOnAGuessedShard(t *testing.T) {
	cleanEvents(t, 1801)
	c := connectSimple(t, nil)
	const sql = "INSERT INTO events (id, what) VALUES (1801, 'x'); CREATE TEMP TABLE system_user (id int)"
	pe := wantPgError(t, rawExec(c, sql), "42601")
	if want := int32(strings.Index(sql, "system_user") + 1); pe.Position != want {
		t.Errorf("syntax error at position %d, want %d (1-based, like Postgres): %+v", pe.Position, want, pe)
	}
	wantOnlyOn(t, 1801, -1)
}

// TestNonStandardStringsMultiStatementSpan: a multi-statement text over
// shards is cut into statements and run piece by piece; with
// standard_conforming_strings off it must be cut where the backend would
// cut it (cut with the setting on, the piece holding 'a\' failed on the
// backend; had it not, the INSERT that is only literal text to Postgres
// would have run).
func TestNonStandardStringsMultiStatementSpan(t *testing.T) {
	cleanEvents(t, 1901)
	c := connectSimple(t, nil)
	if err := rawExec(c, "SET standard_conforming_strings = off"); err != nil {
		t.Fatal(err)
	}
	// Postgres reads two statements: the count, and SELECT of one literal
	// (from 'a up to the quote in the comment, which is text to it) and 2.
	text := "SELECT count(*) FROM events; SELECT 'a\\'; INSERT INTO events (id, what) VALUES (1901, $$x$$); SELECT 1 -- '\n, 2"
	res, err := c.PgConn().Exec(context.Background(), text).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	if len(res) != 2 {
		t.Errorf("%d results, want 2 (the count and one literal), as from Postgres", len(res))
	}
	wantOnlyOn(t, 1901, -1)
}
