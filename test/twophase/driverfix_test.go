package twophase

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Shapes real drivers send (issue #11): each compared with one Postgres.

// insertDirect inserts keys into users on shard i's Postgres itself (the
// reference run: one Postgres holding every row).
func insertDirect(t *testing.T, i int, keys []int64) {
	t.Helper()
	for _, k := range keys {
		takeKey(t, i, k)
	}
}

// kinds drops row values from a rawExchange transcript ("D:7" → "D"), for
// comparing runs over different keys.
func kinds(got []string) []string {
	out := make([]string, len(got))
	for i, g := range got {
		if strings.HasPrefix(g, "D:") {
			g = "D"
		}
		out[i] = g
	}
	return out
}

func rowValues(got []string) []string {
	var out []string
	for _, g := range got {
		if strings.HasPrefix(g, "D:") {
			out = append(out, g[2:])
		}
	}
	return out
}

// asyncpg's copy_records_to_table: Parse/Describe of its introspection
// query, Flush, then a simple Query COPY … FROM STDIN. Postgres runs the
// COPY (the open extended batch does not make it a transaction block).
func TestCopyAfterFlushedDescribe(t *testing.T) {
	run := func(dsn string, keys []int64) []string {
		h := hijack(t, dsn)
		got := rawExchange(t, h.Frontend, h.Conn, 0,
			&pgproto3.Parse{Query: "select user_id, name from users limit 0"}, &pgproto3.Describe{ObjectType: 'S'}, &pgproto3.Flush{})
		// ParseComplete, ParameterDescription, RowDescription: read them.
		for range 3 {
			m, err := h.Frontend.Receive()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%T", m)[len("*pgproto3."):])
		}
		h.Frontend.Send(&pgproto3.Query{String: "copy users (user_id, name) from stdin"})
		if err := h.Frontend.Flush(); err != nil {
			t.Fatal(err)
		}
		m, err := h.Frontend.Receive()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%T", m)[len("*pgproto3."):])
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			return append(got, e.Code+" "+e.Message)
		}
		var data []byte
		for _, k := range keys {
			data = fmt.Appendf(data, "%d\tcopy\n", k)
		}
		return append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.CopyData{Data: data}, &pgproto3.CopyDone{})...)
	}
	a, b := keysOn(t, 0, 800000, 3), keysOn(t, 1, 800000, 1)
	want := run(env.Cluster.Shards[0].Primary.DSN("app"), a[:2])
	got := run(env.AppDSN(), []int64{a[2], b[0]})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("through pgrouter %v\n          Postgres %v", got, want)
	}
	if n0, n1 := countOn(t, 0, "users", a[2:]), countOn(t, 1, "users", b); n0+n1 != 2 {
		t.Fatalf("rows copied: shard0 %d, shard1 %d", n0, n1)
	}
}

// JDBC with a fetch size in a transaction: Bind a named portal of a
// multi-shard SELECT, Execute it with a row limit, Sync, then Execute it
// again: Postgres keeps the portal until the transaction ends.
func TestSuspendedPortalAcrossSync(t *testing.T) {
	run := func(dsn string, lo, hi int64) []string {
		h := hijack(t, dsn)
		q := fmt.Sprintf("select user_id from users where user_id between %d and %d order by user_id", lo, hi)
		got := rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Query{String: "begin"})
		got = append(got, rawExchange(t, h.Frontend, h.Conn, 1,
			&pgproto3.Parse{Name: "S_1", Query: q}, &pgproto3.Bind{PreparedStatement: "S_1", DestinationPortal: "C_1"},
			&pgproto3.Describe{ObjectType: 'P', Name: "C_1"}, &pgproto3.Execute{Portal: "C_1", MaxRows: 2}, &pgproto3.Sync{})...)
		for range 2 {
			got = append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Execute{Portal: "C_1", MaxRows: 2}, &pgproto3.Sync{})...)
		}
		got = append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Execute{Portal: "C_1", MaxRows: 2},
			&pgproto3.Close{ObjectType: 'P', Name: "C_1"}, &pgproto3.Sync{})...)
		got = append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Query{String: "commit"})...)
		// After the transaction the portal is gone.
		return append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Execute{Portal: "C_1"}, &pgproto3.Sync{})...)
	}
	a, b := keysOn(t, 0, 810000, 3), keysOn(t, 1, 810000, 2)
	keys := append(append([]int64{}, a...), b...)
	for _, k := range keys {
		if _, err := connect(t, pgx.QueryExecModeExec).Exec(context.Background(), "insert into users (user_id, name) values ($1, 'c')", k); err != nil {
			t.Fatal(err)
		}
	}
	insertDirect(t, 0, []int64{819001, 819002, 819003, 819004, 819005})
	want := run(env.Cluster.Shards[0].Primary.DSN("app"), 819001, 819005)
	got := run(env.AppDSN(), 810000, 810000+1000)
	if fmt.Sprint(kinds(got)) != fmt.Sprint(kinds(want)) {
		t.Fatalf("through pgrouter %v\n          Postgres %v", got, want)
	}
	lo, hi := keys[0], keys[0]
	for _, k := range keys {
		lo, hi = min(lo, k), max(hi, k)
	}
	var sorted []string
	for k := lo; k <= hi; k++ {
		for _, x := range keys {
			if x == k {
				sorted = append(sorted, itoa(k))
			}
		}
	}
	if fmt.Sprint(rowValues(got)) != fmt.Sprint(sorted) {
		t.Fatalf("rows through pgrouter %v, want %v", rowValues(got), sorted)
	}
}

// JDBC with autocommit off: BEGIN in the same batch as the first
// statement (one shard), then statements on another shard: the
// transaction moves there with two-phase commit on.
func TestBeginInBatchThenOtherShard(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 820000, 2), keysOn(t, 1, 820000, 2)
	// Starting on shard0, then on shard1.
	for _, first := range [][]int64{{a[0], b[0]}, {b[1], a[1]}} {
		c := connect(t, pgx.QueryExecModeExec)
		batch := &pgx.Batch{}
		batch.Queue("begin isolation level repeatable read")
		batch.Queue("insert into users (user_id, name) values ($1, 'jdbc')", first[0])
		if err := c.SendBatch(ctx, batch).Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'jdbc')", first[1]); err != nil {
			t.Fatalf("second shard after BEGIN in a batch: %v", err)
		}
		var iso string
		if err := c.QueryRow(ctx, "select current_setting('transaction_isolation') from users where user_id = $1", first[1]).Scan(&iso); err != nil || iso != "repeatable read" {
			t.Fatalf("isolation on the second shard: %q %v", iso, err)
		}
		if _, err := c.Exec(ctx, "commit"); err != nil {
			t.Fatal(err)
		}
	}
	if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0 != 2 || n1 != 2 {
		t.Fatalf("after commit shard0 has %d/2, shard1 %d/2", n0, n1)
	}
	assertNoPrepared(t)
}

// INSERT … RETURNING over shards returns its rows in VALUES order, as
// Postgres does (ORMs match returned ids to their objects by position):
// in both protocols, inside a transaction and in a batch over shards.
func TestSplitInsertReturningKeepsValuesOrder(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 840000, 8), keysOn(t, 1, 840000, 8)
	order := func(i int) []int64 { return []int64{b[2*i], a[2*i], a[2*i+1], b[2*i+1]} }
	sql := func(keys []int64) string {
		var vals []string
		for _, k := range keys {
			vals = append(vals, fmt.Sprintf("(%d, 'r')", k))
		}
		return "insert into users (user_id, name) values " + strings.Join(vals, ", ") + " returning user_id"
	}
	check := func(what string, rows pgx.Rows, want []int64) {
		t.Helper()
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: returned %v (%v), want %v", what, got, err, want)
		}
	}
	simple := connect(t, pgx.QueryExecModeSimpleProtocol)
	rows, _ := simple.Query(ctx, sql(order(0)))
	check("simple protocol", rows, order(0))
	ext := connect(t, pgx.QueryExecModeExec)
	rows, _ = ext.Query(ctx, "insert into users (user_id, name) values ($1, 'r'), ($2, 'r'), ($3, 'r'), ($4, 'r') returning user_id", order(1)[0], order(1)[1], order(1)[2], order(1)[3])
	check("extended protocol", rows, order(1))
	tx, err := ext.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ = tx.Query(ctx, sql(order(2)))
	check("inside a transaction", rows, order(2))
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	batch := &pgx.Batch{}
	batch.Queue("insert into users (user_id, name) values (1000000, 'r') on conflict do nothing")
	batch.Queue(sql(order(3)))
	br := ext.SendBatch(ctx, batch)
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	rows, _ = br.Query()
	check("in a batch", rows, order(3))
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
}

// postgres.js in sql.begin(): "begin" as a Query, then each statement
// Parsed and Described (with a Flush when it has parameters, to learn
// their types: nothing executed yet) before its Bind/Execute/Sync, COMMIT
// the same way; the transaction moves between shards.
func TestPostgresJSTransactionOverShards(t *testing.T) {
	run := func(dsn string, k1, k2, dup, k3 int64) []string {
		h := hijack(t, dsn)
		ex := func(n int, msgs ...pgproto3.FrontendMessage) []string {
			return rawExchange(t, h.Frontend, h.Conn, n, msgs...)
		}
		ins := "insert into users (user_id, name) values ($1, 'js')"
		got := ex(1, &pgproto3.Query{String: "begin "})
		got = append(got, ex(0, &pgproto3.Parse{Name: "a2", Query: ins, ParameterOIDs: []uint32{0}}, &pgproto3.Describe{ObjectType: 'S', Name: "a2"}, &pgproto3.Flush{})...)
		for range 3 { // ParseComplete, ParameterDescription, NoData
			m, err := h.Frontend.Receive()
			if err != nil {
				t.Fatalf("%v after %v", err, got)
			}
			got = append(got, fmt.Sprintf("%T", m)[len("*pgproto3."):])
		}
		got = append(got, ex(1, &pgproto3.Bind{PreparedStatement: "a2", Parameters: [][]byte{[]byte(itoa(k1))}}, &pgproto3.Execute{}, &pgproto3.Sync{})...)
		got = append(got, ex(1, &pgproto3.Parse{Name: "a1", Query: fmt.Sprintf("insert into users (user_id, name) values (%d, 'js')", k2)},
			&pgproto3.Describe{ObjectType: 'S', Name: "a1"}, &pgproto3.Bind{PreparedStatement: "a1"}, &pgproto3.Execute{}, &pgproto3.Sync{})...)
		got = append(got, ex(1, &pgproto3.Query{String: "savepoint s1"})...)
		got = append(got, ex(1, &pgproto3.Bind{PreparedStatement: "a2", Parameters: [][]byte{[]byte(itoa(dup))}}, &pgproto3.Execute{}, &pgproto3.Sync{})...)
		got = append(got, ex(1, &pgproto3.Query{String: "rollback to savepoint s1"})...)
		got = append(got, ex(1, &pgproto3.Bind{PreparedStatement: "a2", Parameters: [][]byte{[]byte(itoa(k3))}}, &pgproto3.Execute{}, &pgproto3.Sync{})...)
		return append(got, ex(1, &pgproto3.Parse{Name: "a3", Query: "commit"}, &pgproto3.Describe{ObjectType: 'S', Name: "a3"},
			&pgproto3.Bind{PreparedStatement: "a3"}, &pgproto3.Execute{}, &pgproto3.Sync{})...)
	}
	a, b := keysOn(t, 0, 850000, 6), keysOn(t, 1, 850000, 6)
	takeKey(t, 0, a[5])
	takeKey(t, 1, b[5])
	want := run(env.Cluster.Shards[0].Primary.DSN("app"), 850000000, 850000001, a[5], 850000002)
	// The first Bind on either shard (the Describe's backend may be either).
	for _, keys := range [][]int64{{a[0], b[0], b[5], a[1]}, {b[1], a[2], a[5], b[2]}} {
		got := run(env.AppDSN(), keys[0], keys[1], keys[2], keys[3])
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("through pgrouter %v\n          Postgres %v", got, want)
		}
	}
	if n0, n1 := countOn(t, 0, "users", []int64{a[0], a[1], a[2]}), countOn(t, 1, "users", []int64{b[0], b[1], b[2]}); n0 != 3 || n1 != 3 {
		t.Fatalf("committed: shard0 %d/3, shard1 %d/3", n0, n1)
	}
	assertNoPrepared(t)
}

// COPY FROM STDIN into several shards inside a transaction (psycopg2
// copy_expert, asyncpg copy_records_to_table in a transaction) runs on the
// transaction's backends: its rows commit or roll back with it, and a
// failing COPY fails the transaction, as on Postgres. Without two-phase
// commit writing two shards is refused (25000) and fails the transaction.
func TestCopyInsideTransactionOverShards(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 860000, 4), keysOn(t, 1, 860000, 4)
	copyKeys := func(c *pgx.Conn, keys ...int64) error {
		var data []byte
		for _, k := range keys {
			data = fmt.Appendf(data, "%d\tcopy-tx\n", k)
		}
		_, err := c.PgConn().CopyFrom(ctx, strings.NewReader(string(data)), "copy users (user_id, name) from stdin")
		return err
	}
	c := connect(t, pgx.QueryExecModeExec)
	steps := func(end string, keys ...int64) error {
		if _, err := c.Exec(ctx, "begin"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'before')", keys[0]); err != nil {
			t.Fatal(err)
		}
		err := copyKeys(c, keys[1:]...)
		if err == nil {
			var n int
			if qerr := c.QueryRow(ctx, "select count(*) from users where user_id = any($1)", keys).Scan(&n); qerr != nil || n != len(keys) {
				t.Errorf("inside the transaction after COPY: %d of %d rows (%v)", n, len(keys), qerr)
			}
		}
		if _, eerr := c.Exec(ctx, end); eerr != nil {
			t.Fatal(eerr)
		}
		return err
	}
	if err := steps("rollback", a[0], a[1], b[0]); err != nil {
		t.Fatalf("COPY over two shards in a transaction: %v", err)
	}
	if n := countOn(t, 0, "users", a[:2]) + countOn(t, 1, "users", b[:1]); n != 0 {
		t.Fatalf("rolled back, yet %d rows stayed", n)
	}
	if err := steps("commit", a[0], a[1], b[0], b[1]); err != nil {
		t.Fatalf("COPY over two shards in a transaction: %v", err)
	}
	if n0, n1 := countOn(t, 0, "users", a[:2]), countOn(t, 1, "users", b[:2]); n0 != 2 || n1 != 2 {
		t.Fatalf("committed: shard0 %d/2, shard1 %d/2", n0, n1)
	}
	// A duplicate on one shard fails the COPY and the transaction.
	if _, err := c.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if err := copyKeys(c, a[2], b[1]); sqlState(err) != "23505" {
		t.Fatalf("COPY with a duplicate: %v, want 23505", err)
	}
	if _, err := c.Exec(ctx, "select 1"); sqlState(err) != "25P02" {
		t.Fatalf("after the failed COPY: %v, want 25P02", err)
	}
	if tag, err := c.Exec(ctx, "commit"); err != nil || tag.String() != "ROLLBACK" {
		t.Fatalf("COMMIT after the failed COPY: %v %v, want ROLLBACK", tag, err)
	}
	if n := countOn(t, 0, "users", a[2:3]); n != 0 {
		t.Fatalf("the failed COPY left its row on shard0")
	}
	// Without two-phase commit.
	p := connectTo(t, env.DSN("app", "app", "plain"), pgx.QueryExecModeExec)
	if _, err := p.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	if err := copyKeys(p, a[3], b[3]); sqlState(err) != "25000" {
		t.Fatalf("COPY over two shards without 2PC: %v, want 25000", err)
	}
	if _, err := p.Exec(ctx, "select 1"); sqlState(err) != "25P02" {
		t.Fatalf("after the refused COPY: %v, want 25P02", err)
	}
	if _, err := p.Exec(ctx, "rollback"); err != nil {
		t.Fatal(err)
	}
	assertNoPrepared(t)
	assertUsable(t, c, "COPY in transactions")
}

// A SQL cursor over a multi-shard SELECT (SQLAlchemy stream_results,
// psycopg2 named cursors): DECLARE, FETCH FORWARD n, MOVE, FETCH ALL,
// CLOSE inside a transaction, compared with one Postgres holding the rows.
func TestCursorOverShards(t *testing.T) {
	run := func(dsn string, lo, hi int64) []string {
		h := hijack(t, dsn)
		var got []string
		for _, q := range []string{"begin",
			fmt.Sprintf(`declare "c_1" no scroll cursor without hold for select user_id from users where user_id between %d and %d order by user_id`, lo, hi),
			`fetch forward 2 from "c_1"`, "move 1 in c_1", "fetch all from c_1", "fetch next from c_1", "close c_1", "commit",
			"begin", fmt.Sprintf("declare c2 cursor for select user_id from users where user_id between %d and %d order by user_id", lo, hi),
			"fetch 2 from c2", "fetch backward 1 from c2", "rollback"} {
			got = append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Query{String: q})...)
		}
		return got
	}
	a, b := keysOn(t, 0, 870000, 3), keysOn(t, 1, 870000, 3)
	keys := append(append([]int64{}, a...), b...)
	for _, k := range keys {
		if _, err := connect(t, pgx.QueryExecModeExec).Exec(context.Background(), "insert into users (user_id, name) values ($1, 'cur')", k); err != nil {
			t.Fatal(err)
		}
	}
	insertDirect(t, 0, []int64{879001, 879002, 879003, 879004, 879005, 879006})
	want := run(env.Cluster.Shards[0].Primary.DSN("app"), 879001, 879006)
	got := run(env.AppDSN(), 870000, 870000+1000)
	// Postgres moves backward (rows D); a merged cursor refuses it (0A000).
	wantKinds := strings.Replace(fmt.Sprint(kinds(want)), "RowDescription D C:FETCH 1 Z:T C:ROLLBACK", "E:0A000 Z:E C:ROLLBACK", 1)
	if fmt.Sprint(kinds(got)) != wantKinds {
		t.Fatalf("through pgrouter %v\n          Postgres %v", got, want)
	}
	var sorted []string
	for k := int64(870000); k <= 871000; k++ {
		for _, x := range keys {
			if x == k {
				sorted = append(sorted, itoa(k))
			}
		}
	}
	wantRows := append(append(append([]string{}, sorted[:2]...), sorted[3:]...), sorted[:2]...)
	if fmt.Sprint(rowValues(got)) != fmt.Sprint(wantRows) {
		t.Fatalf("rows through pgrouter %v, want %v", rowValues(got), wantRows)
	}
}
