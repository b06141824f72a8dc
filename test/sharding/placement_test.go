package sharding

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func connect(t *testing.T, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	return connectWith(t, mode, nil)
}

// connectWith opens a client through pgrouter in the given mode with extra
// startup parameters, closed at cleanup.
func connectWith(t *testing.T, mode pgx.QueryExecMode, params map[string]string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(env.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// checkPlacement asserts, on every shard directly, that each key of table
// satisfies Postgres's hash partitioning for remainder = shard index, and
// that the total count is want.
func checkPlacement(t *testing.T, table, column, hashcheck string, want int) {
	t.Helper()
	ctx := context.Background()
	total := 0
	for i, s := range env.Cluster.Shards {
		var n, wrong int
		q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE NOT satisfies_hash_partition('%s'::regclass, %d, %d, %s))
			FROM %s`, hashcheck, len(env.Cluster.Shards), i, column, table)
		c, err := s.Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		err = c.QueryRow(ctx, q).Scan(&n, &wrong)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if wrong != 0 {
			t.Errorf("%s: %d of %d %s rows do not belong to remainder %d", s.Name, wrong, n, table, i)
		}
		if n == 0 {
			t.Errorf("%s holds no %s rows: keys are not spread", s.Name, table)
		}
		total += n
	}
	if total != want {
		t.Errorf("%s: %d rows on the shards, want %d", table, total, want)
	}
}

func TestSingleRowInsertsLandWherePostgresHashes(t *testing.T) {
	ctx := context.Background()
	const n = 3000
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	for i := 0; i < n; i++ {
		c := connect(t, modes[i%len(modes)])
		id := int64(i) - n/3 // negatives too
		if _, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, $2)", id, fmt.Sprint("u", id)); err != nil {
			t.Fatalf("insert %d: %v", id, err)
		}
		if i%len(modes) != 0 {
			c.Close(ctx)
		}
	}
	checkPlacement(t, "users", "user_id", "hashcheck_int", n+countMulti(t))
}

func TestTextAndUUIDKeys(t *testing.T) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	words := []string{"", "a", "b", "ü", "日本語", "with space", "x'quote"}
	for i := 0; i < 300; i++ {
		words = append(words, fmt.Sprintf("tag-%d", i))
	}
	for i, w := range words {
		if _, err := c.Exec(ctx, "insert into tags (name, n) values ($1, $2)", w, i); err != nil {
			t.Fatalf("insert tag %q: %v", w, err)
		}
	}
	checkPlacement(t, "tags", "name", "hashcheck_text", len(words))
	for i := 0; i < 300; i++ {
		var u [16]byte
		rand.Read(u[:])
		u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
		if _, err := c.Exec(ctx, "insert into accounts (id, v) values ($1, $2)", u, i); err != nil {
			t.Fatalf("insert uuid: %v", err)
		}
	}
	checkPlacement(t, "accounts", "id", "hashcheck_uuid", 300)
}

func TestRangeSharding(t *testing.T) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for _, id := range []int64{-5, 0, 999, 1000, 1999, 2000, 1 << 40} {
		if _, err := c.Exec(ctx, "insert into events (id, what) values ($1, 'e')", id); err != nil {
			t.Fatalf("insert event %d: %v", id, err)
		}
	}
	want := map[int]string{0: "-5,0,999", 1: "1000,1999", 2: "2000,1099511627776"}
	for i, s := range env.Cluster.Shards {
		var got string
		cc, err := s.Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		cc.QueryRow(ctx, "select coalesce(string_agg(id::text, ',' order by id), '') from events").Scan(&got)
		cc.Close(ctx)
		if got != want[i] {
			t.Errorf("%s holds events %q, want %q", s.Name, got, want[i])
		}
	}
}

// portOf maps a server port to its shard index.
func portOf(t *testing.T, port int) int {
	for i, s := range env.Cluster.Shards {
		if s.Primary.Port == port {
			return i
		}
	}
	t.Fatalf("port %d is no shard primary", port)
	return -1
}

func TestKeyedStatementsTouchOnlyTheirShard(t *testing.T) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for _, id := range []int64{1, 2, 3, 42, 1000, -7} {
		c.Exec(ctx, "insert into orders (user_id, order_id, amount) values ($1, 1, 10) on conflict do nothing", id)
		var port int
		if err := c.QueryRow(ctx, "select inet_server_port() from orders where user_id = $1", id).Scan(&port); err != nil {
			t.Fatalf("select %d: %v", id, err)
		}
		home := portOf(t, port)
		tag, err := c.Exec(ctx, "update orders set amount = amount + 1 where user_id = $1", id)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("update %d: %v %v", id, err, tag)
		}
		// The row exists on exactly one shard, the one that served the SELECT.
		for i, s := range env.Cluster.Shards {
			cc, err := s.Primary.Connect(ctx, "app")
			if err != nil {
				t.Fatal(err)
			}
			var n int
			cc.QueryRow(ctx, "select count(*) from orders where user_id = $1 and amount = 11", id).Scan(&n)
			cc.Close(ctx)
			if (i == home) != (n == 1) {
				t.Errorf("key %d: shard %d has %d updated rows (home shard %d)", id, i, n, home)
			}
		}
		tag, err = c.Exec(ctx, "delete from orders where user_id = $1", id)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("delete %d: %v %v", id, err, tag)
		}
	}
}

func TestUnroutableStatementsAreRefused(t *testing.T) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	_, err := c.Exec(ctx, "select u.name from users u join accounts a on a.v = u.user_id")
	if sqlState(err) != "0A000" {
		t.Fatalf("join of tables sharded differently: want 0A000, got %v", err)
	}
	var n int
	if err := c.QueryRow(ctx, "select count(*) from plans").Scan(&n); err != nil || n != 2 {
		t.Fatalf("reference table read: %v %d", err, n)
	}
	// A transaction may not move to a second shard: refused before anything is sent there.
	var a, b int64 = 1, 2
	for shardOf(t, c, a) == shardOf(t, c, b) {
		b++
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "update users set name = 'tx' where user_id = $1", a); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, "update users set name = 'tx' where user_id = $1", b)
	if sqlState(err) != "25000" {
		t.Fatalf("second shard in a transaction: want 25000, got %v", err)
	}
	tx.Rollback(ctx)
	var name string
	c.QueryRow(ctx, "select name from users where user_id = $1", a).Scan(&name)
	if name == "tx" {
		t.Fatal("rolled back transaction left a write")
	}
}

func shardOf(t *testing.T, c *pgx.Conn, id int64) int {
	t.Helper()
	var port int
	if err := c.QueryRow(context.Background(), "select inet_server_port() from users where user_id = $1", id).Scan(&port); err != nil {
		t.Fatalf("locate %d: %v", id, err)
	}
	return portOf(t, port)
}

func TestMultiRowInsertIsSplitPerShard(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		c := connect(t, mode)
		base := 100000 * (int64(mode) + 1)
		var sb strings.Builder
		var args []any
		sb.WriteString("insert into users (user_id, name) values ")
		for i := int64(0); i < 50; i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "($%d, 'multi')", len(args)+1)
			args = append(args, base+i)
		}
		sb.WriteString(" returning user_id")
		rows, err := c.Query(ctx, sb.String(), args...)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		got := map[int64]bool{}
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			got[id] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if tag := rows.CommandTag(); tag.RowsAffected() != 50 || len(got) != 50 {
			t.Fatalf("%v: tag %v, %d distinct ids returned", mode, tag, len(got))
		}
		// Inline literals (simple protocol path of the router) with a bad row: nothing lands anywhere.
		_, err = c.Exec(ctx, fmt.Sprintf("insert into users (user_id, name) values (%d, 'a'), (%d, 'b'), (%d, 'dup')", base+1000, base+1001, base))
		if sqlState(err) != "23505" {
			t.Fatalf("%v: duplicate key in a split insert: want 23505, got %v", mode, err)
		}
	}
	var n int
	for _, s := range env.Cluster.Shards {
		cc, _ := s.Primary.Connect(ctx, "app")
		var k int
		cc.QueryRow(ctx, "select count(*) from users where name in ('multi', 'a', 'b')").Scan(&k)
		cc.Close(ctx)
		n += k
	}
	if n != 150 {
		t.Fatalf("%d split rows on the shards, want 150 (and none of the failed insert)", n)
	}
}

// countMulti counts users rows written by the multi-row test (it may run first).
func countMulti(t *testing.T) int {
	n := 0
	for _, s := range env.Cluster.Shards {
		cc, err := s.Primary.Connect(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		var k int
		cc.QueryRow(context.Background(), "select count(*) from users where name <> '' and name not like 'u%'").Scan(&k)
		cc.Close(context.Background())
		n += k
	}
	return n
}

func TestKeylessWriteRunsOnEveryShard(t *testing.T) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for i := int64(0); i < 30; i++ {
		if _, err := c.Exec(ctx, "insert into orders (user_id, order_id, amount) values ($1, 99, 5)", 7000+i); err != nil {
			t.Fatal(err)
		}
	}
	tag, err := c.Exec(ctx, "update orders set amount = amount + $1 where order_id = 99", 1)
	if err != nil || tag.RowsAffected() != 30 || tag.String() != "UPDATE 30" {
		t.Fatalf("key-less update: %v, tag %q (want UPDATE 30 summed over shards)", err, tag)
	}
	rows, err := c.Query(ctx, "delete from orders where order_id = 99 and amount = 6 returning user_id")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if rows.Err() != nil || n != 30 || rows.CommandTag().RowsAffected() != 30 {
		t.Fatalf("key-less delete returning: %v, %d rows, tag %v", rows.Err(), n, rows.CommandTag())
	}
	// A failure on one shard rolls back every shard.
	c.Exec(ctx, "insert into orders (user_id, order_id, amount) values (1, 98, 1), (2, 98, 1), (3, 98, 1)")
	if _, err := c.Exec(ctx, "update orders set amount = 1 / (user_id - 2) where order_id = 98"); sqlState(err) != "22012" {
		t.Fatalf("want division by zero from one shard, got %v", err)
	}
	var changed int
	for _, s := range env.Cluster.Shards {
		cc, _ := s.Primary.Connect(ctx, "app")
		var k int
		cc.QueryRow(ctx, "select count(*) from orders where order_id = 98 and amount <> 1").Scan(&k)
		cc.Close(ctx)
		changed += k
	}
	if changed != 0 {
		t.Fatalf("%d rows changed although the statement failed on one shard", changed)
	}
}
