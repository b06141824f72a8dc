package sharding

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// onShard runs sql on shard i's primary directly (database app).
func onShard(t *testing.T, i int, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	c, err := env.Cluster.Shards[i].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("shard%d: %s: %v", i, sql, err)
	}
}

// shardInts reads one bigint column from shard i directly.
func shardInts(t *testing.T, i int, sql string) []int64 {
	t.Helper()
	ctx := context.Background()
	c, err := env.Cluster.Shards[i].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, _ := c.Query(ctx, sql)
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("shard%d: %s: %v", i, sql, err)
	}
	return out
}

// admin runs one admin console command and returns its notices.
func admin(t *testing.T, cmd string) ([]string, error) {
	t.Helper()
	cfg, err := pgx.ParseConfig(env.DSN("admin", "admin", "pgrouter"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, cmd)
	return notices, err
}

// homeOf asks the proxy which server holds dir_users row id.
func homeOf(t *testing.T, c *pgx.Conn, table string, id int64) int {
	t.Helper()
	var port int
	if err := c.QueryRow(context.Background(), fmt.Sprintf("select inet_server_port() from %s where user_id = $1", table), id).Scan(&port); err != nil {
		t.Fatalf("locate %s %d: %v", table, id, err)
	}
	return portOf(t, port)
}

func TestDirectoryRowsLandOnTheMappedShard(t *testing.T) {
	ctx := context.Background()
	// keys 1..60: shard = (key / 10) % 3, which is not what hashing would give
	onShard(t, 0, "INSERT INTO pgrouter_directory SELECT g, 'shard' || ((g / 10) % 3) FROM generate_series(1, 60) g")
	want := func(id int64) int { return int(id/10) % 3 }
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}
	for i, mode := range modes {
		c := connect(t, mode)
		for id := int64(1 + 20*i); id <= int64(20+20*i); id++ {
			if id%2 == 0 {
				_, err := c.Exec(ctx, "insert into dir_users (user_id, name) values ($1, $2)", id, "d")
				if err != nil {
					t.Fatalf("%v insert %d: %v", mode, id, err)
				}
			} else if _, err := c.Exec(ctx, fmt.Sprintf("insert into dir_users (user_id, name) values (%d, 'd')", id)); err != nil {
				t.Fatalf("%v literal insert %d: %v", mode, id, err)
			}
		}
	}
	for i := range env.Cluster.Shards {
		ids := shardInts(t, i, "select user_id from dir_users where user_id between 1 and 60 order by 1")
		if len(ids) != 20 {
			t.Errorf("shard%d holds %d of the 60 rows, want 20", i, len(ids))
		}
		for _, id := range ids {
			if want(id) != i {
				t.Errorf("row %d on shard%d, directory says shard%d", id, i, want(id))
			}
		}
	}
	// A multi-row INSERT spanning shards is split by the directory too.
	onShard(t, 0, "INSERT INTO pgrouter_directory VALUES (61, 'shard2'), (62, 'shard1'), (63, 'shard2')")
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	tag, err := c.Exec(ctx, "insert into dir_users (user_id, name) values (61, 'm'), (62, 'm'), (63, 'm')")
	if err != nil || tag.RowsAffected() != 3 {
		t.Fatalf("split insert: %v %v", tag, err)
	}
	if got := shardInts(t, 2, "select user_id from dir_users where name = 'm' order by 1"); fmt.Sprint(got) != "[61 63]" {
		t.Errorf("shard2 holds %v of the split insert, want [61 63]", got)
	}
	if got := shardInts(t, 1, "select user_id from dir_users where name = 'm'"); fmt.Sprint(got) != "[62]" {
		t.Errorf("shard1 holds %v of the split insert, want [62]", got)
	}
}

func TestDirectoryUnknownKeyIsAClearError(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		c := connect(t, mode)
		_, err := c.Exec(ctx, "insert into dir_users (user_id, name) values ($1, 'x')", int64(987654))
		var pe *pgconn.PgError
		if !asPgError(err, &pe) || pe.Code != "22023" || !strings.Contains(pe.Message, `no directory mapping for this shard key of table "dir_users"`) ||
			!strings.Contains(pe.Hint, "auto_assign") || strings.Contains(pe.Message+pe.Hint, "987654") {
			t.Fatalf("%v: unknown key: %v (hint %q)", mode, err, hintOf(err))
		}
		// The session survives the error.
		var one int
		if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("%v: session after the error: %v", mode, err)
		}
	}
	for i := range env.Cluster.Shards {
		if n := shardInts(t, i, "select user_id from dir_users where user_id = 987654"); len(n) != 0 {
			t.Fatalf("shard%d got the unmapped row", i)
		}
	}
}

func TestDirectoryAutoAssign(t *testing.T) {
	ctx := context.Background()
	onShard(t, 0, "INSERT INTO auto_directory VALUES (5000, 'shard1')") // an existing mapping wins
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for id := int64(5000); id < 5150; id++ {
		if _, err := c.Exec(ctx, "insert into auto_users (user_id, name) values ($1, 'auto')", id); err != nil {
			t.Fatalf("insert %d: %v", id, err)
		}
	}
	mapping := map[int64]int{}
	dc, err := env.Cluster.Shards[0].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := dc.Query(ctx, "select key, substr(shard, 6)::int from auto_directory where key between 5000 and 5149")
	for rows.Next() {
		var k int64
		var s int
		rows.Scan(&k, &s)
		mapping[k] = s
	}
	dc.Close(ctx)
	if len(mapping) != 150 || mapping[5000] != 1 {
		t.Fatalf("auto_directory holds %d mappings (key 5000 → shard%d), want 150 and shard1", len(mapping), mapping[5000])
	}
	total := 0
	for i := range env.Cluster.Shards {
		ids := shardInts(t, i, "select user_id from auto_users where name = 'auto'")
		total += len(ids)
		for _, id := range ids {
			if mapping[id] != i {
				t.Errorf("row %d on shard%d, its assigned mapping says shard%d", id, i, mapping[id])
			}
		}
		// Assigned (not pre-existing) keys follow Postgres's own hash partitioning.
		bad := shardInts(t, i, fmt.Sprintf(`select user_id from auto_users where name = 'auto' and user_id <> 5000
			and not satisfies_hash_partition('hashcheck_int'::regclass, 3, %d, user_id)`, i))
		if len(bad) != 0 {
			t.Errorf("shard%d: auto-assigned keys %v are not where PARTITION BY HASH puts them", i, bad)
		}
	}
	if total != 150 {
		t.Fatalf("%d auto_users rows on the shards, want 150", total)
	}
}

// A mapping changed in the lookup table takes effect after INVALIDATE
// DIRECTORY (the cache_ttl of dir_users is an hour).
func TestDirectoryInvalidateFromTheAdminConsole(t *testing.T) {
	ctx := context.Background()
	onShard(t, 0, "INSERT INTO pgrouter_directory VALUES (700, 'shard0'), (701, 'shard0'), (702, 'shard0')")
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for _, id := range []int64{700, 701, 702} {
		if _, err := c.Exec(ctx, "insert into dir_users (user_id, name) values ($1, 'before')", id); err != nil {
			t.Fatal(err)
		}
	}
	// Move the rows and their mappings to shard2 behind pgrouter's back.
	onShard(t, 0, "DELETE FROM dir_users WHERE user_id IN (700, 701, 702)")
	onShard(t, 2, "INSERT INTO dir_users VALUES (700, 'moved'), (701, 'moved'), (702, 'moved')")
	onShard(t, 0, "UPDATE pgrouter_directory SET shard = 'shard2' WHERE key IN (700, 701, 702)")
	var n int
	c.QueryRow(ctx, "select count(*) from dir_users where user_id = $1", int64(700)).Scan(&n)
	if n != 0 {
		t.Fatal("the cached mapping was not used (test premise)")
	}
	notices, err := admin(t, "INVALIDATE DIRECTORY dir_users 700")
	if err != nil || len(notices) != 1 || !strings.Contains(notices[0], "dropped 1 cached") {
		t.Fatalf("INVALIDATE DIRECTORY dir_users 700: %v %q", err, notices)
	}
	if home := homeOf(t, c, "dir_users", 700); home != 2 {
		t.Fatalf("after INVALIDATE key 700 is read from shard%d, want shard2", home)
	}
	c.QueryRow(ctx, "select count(*) from dir_users where user_id = $1", int64(701)).Scan(&n)
	if n != 0 {
		t.Fatal("key 701 was not invalidated but followed the new mapping")
	}
	if _, err := admin(t, "invalidate directory DIR_USERS;"); err != nil {
		t.Fatalf("invalidate a table: %v", err)
	}
	if home := homeOf(t, c, "dir_users", 701); home != 2 {
		t.Fatalf("after INVALIDATE of the table key 701 is read from shard%d", home)
	}
	if _, err := admin(t, "INVALIDATE DIRECTORY"); err != nil {
		t.Fatalf("invalidate all: %v", err)
	}
	tag, err := c.Exec(ctx, "update dir_users set name = 'after' where user_id = $1", int64(702))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("update after INVALIDATE all: %v %v", tag, err)
	}
	if _, err := admin(t, "INVALIDATE DIRECTORY users"); sqlState(err) != "42P01" {
		t.Fatalf("hash table: want 42P01, got %v", err)
	}
	if _, err := admin(t, "INVALIDATE DIRECTORY dir_users abc"); sqlState(err) != "22P02" {
		t.Fatalf("bad key: want 22P02, got %v", err)
	}
	if _, err := admin(t, "INVALIDATE CACHES"); sqlState(err) != "42601" {
		t.Fatalf("INVALIDATE CACHES: want 42601, got %v", err)
	}
}

func TestDirectoryKeyedStatementsTouchOnlyTheirShard(t *testing.T) {
	ctx := context.Background()
	onShard(t, 0, "INSERT INTO pgrouter_directory VALUES (801, 'shard0'), (802, 'shard1'), (803, 'shard2'), (804, 'shard1')")
	want := map[int64]int{801: 0, 802: 1, 803: 2, 804: 1}
	// The same keys exist on every shard directly: only the mapped shard may be touched.
	for i := range env.Cluster.Shards {
		onShard(t, i, "INSERT INTO dir_users VALUES (801, 'x'), (802, 'x'), (803, 'x'), (804, 'x')")
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		c := connect(t, mode)
		for id, home := range want {
			if got := homeOf(t, c, "dir_users", id); got != home {
				t.Errorf("%v: select %d ran on shard%d, want shard%d", mode, id, got, home)
			}
			tag, err := c.Exec(ctx, "update dir_users set name = name || '+' where user_id = $1", id)
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("%v: update %d: %v %v", mode, id, tag, err)
			}
		}
	}
	for i := range env.Cluster.Shards {
		for id, home := range want {
			var name string
			cc, _ := env.Cluster.Shards[i].Primary.Connect(ctx, "app")
			cc.QueryRow(ctx, "select name from dir_users where user_id = $1", id).Scan(&name)
			cc.Close(ctx)
			if wantName := map[bool]string{true: "x++", false: "x"}[i == home]; name != wantName {
				t.Errorf("shard%d key %d: name %q, want %q", i, id, name, wantName)
			}
		}
	}
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for id := range want {
		if tag, err := c.Exec(ctx, "delete from dir_users where user_id = $1", id); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("delete %d: %v %v", id, tag, err)
		}
	}
	for i := range env.Cluster.Shards {
		left := shardInts(t, i, "select user_id from dir_users where user_id between 801 and 804")
		for _, id := range left {
			if want[id] == i {
				t.Errorf("shard%d: key %d not deleted on its own shard", i, id)
			}
		}
		if wantLeft := 4 - map[int]int{0: 1, 1: 2, 2: 1}[i]; len(left) != wantLeft {
			t.Errorf("shard%d: %d rows left, want %d (DELETE must touch only the mapped shard)", i, len(left), wantLeft)
		}
	}
}

func TestDirectoryCopy(t *testing.T) {
	ctx := context.Background()
	onShard(t, 0, "INSERT INTO pgrouter_directory SELECT g, 'shard' || (g % 3) FROM generate_series(900, 999) g")
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	var sb strings.Builder
	for id := 900; id < 1000; id++ {
		fmt.Fprintf(&sb, "%d\tcopy\n", id)
	}
	tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader(sb.String()), "COPY dir_users (user_id, name) FROM STDIN")
	if err != nil || tag.RowsAffected() != 100 {
		t.Fatalf("COPY: %v %v", tag, err)
	}
	for i := range env.Cluster.Shards {
		ids := shardInts(t, i, "select user_id from dir_users where name = 'copy'")
		if len(ids) < 30 {
			t.Errorf("shard%d holds %d copied rows", i, len(ids))
		}
		for _, id := range ids {
			if int(id%3) != i {
				t.Errorf("copied row %d on shard%d, directory says shard%d", id, i, id%3)
			}
		}
	}
	// A row with an unmapped key fails the whole COPY on every shard.
	_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("995\tbad\n123456\tbad\n"), "COPY dir_users (user_id, name) FROM STDIN")
	if sqlState(err) != "22023" {
		t.Fatalf("COPY with an unmapped key: want 22023, got %v", err)
	}
	for i := range env.Cluster.Shards {
		if ids := shardInts(t, i, "select user_id from dir_users where name = 'bad'"); len(ids) != 0 {
			t.Fatalf("shard%d kept rows %v of the failed COPY", i, ids)
		}
	}
}

// The directory counters reach /metrics, labelled by database and table.
func TestDirectoryMetrics(t *testing.T) {
	ctx := context.Background()
	onShard(t, 0, "INSERT INTO pgrouter_directory VALUES (1100, 'shard1') ON CONFLICT DO NOTHING")
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for range 5 {
		var n int
		if err := c.QueryRow(ctx, "select count(*) from dir_users where user_id = $1", int64(1100)).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	m := scrape(t)
	for _, name := range []string{"pgrouter_directory_cache_hits_total", "pgrouter_directory_cache_misses_total", "pgrouter_directory_lookups_total", "pgrouter_directory_cache_entries"} {
		if v := m[name+`{database="app",table="dir_users"}`]; v < 1 {
			t.Errorf("%s for dir_users = %v, want ≥ 1", name, v)
		}
	}
	if m[`pgrouter_directory_cache_hits_total{database="app",table="dir_users"}`] < 4 {
		t.Errorf("5 reads of one key: hits %v, want ≥ 4", m[`pgrouter_directory_cache_hits_total{database="app",table="dir_users"}`])
	}
}

func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + env.Proxy.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func asPgError(err error, pe **pgconn.PgError) bool {
	p, ok := err.(*pgconn.PgError)
	if ok {
		*pe = p
	}
	return ok
}

func hintOf(err error) string {
	if p, ok := err.(*pgconn.PgError); ok {
		return p.Hint
	}
	return ""
}

// A reload starts every directory cache empty: sessions from before and
// after it see a mapping changed in the lookup table.
func TestDirectoryReloadDropsTheCache(t *testing.T) {
	onShard(t, 0, "INSERT INTO pgrouter_directory VALUES (1200, 'shard1')")
	onShard(t, 1, "INSERT INTO dir_users VALUES (1200, 'r')")
	onShard(t, 2, "INSERT INTO dir_users VALUES (1200, 'r')")
	old := connect(t, pgx.QueryExecModeCacheStatement)
	if home := homeOf(t, old, "dir_users", 1200); home != 1 {
		t.Fatalf("key 1200 on shard%d, want shard1", home)
	}
	onShard(t, 0, "UPDATE pgrouter_directory SET shard = 'shard2' WHERE key = 1200")
	if home := homeOf(t, old, "dir_users", 1200); home != 1 {
		t.Fatal("the cached mapping was not used (test premise)")
	}
	if _, err := admin(t, "RELOAD"); err != nil {
		t.Fatalf("RELOAD: %v", err)
	}
	if home := homeOf(t, old, "dir_users", 1200); home != 2 {
		t.Errorf("session from before the reload reads key 1200 from shard%d, want shard2", home)
	}
	if home := homeOf(t, connect(t, pgx.QueryExecModeCacheStatement), "dir_users", 1200); home != 2 {
		t.Errorf("new session reads key 1200 from shard%d, want shard2", home)
	}
}
