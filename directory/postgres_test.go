package directory

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

var shardNames = []string{"s0", "s1", "s2"}

// pgConfig is a 3-shard config whose shard names matter only as the
// directory's answers; every "shard" is the test server, and s0-primary is
// the directory node.
func pgConfig(tables ...config.ShardedTable) (*config.Config, *config.Database) {
	addr := cluster.Shards[0].Primary.Addr()
	cfg := &config.Config{Users: []config.User{{Name: "postgres", Password: cluster.Password}}}
	for _, s := range shardNames {
		cfg.Shards = append(cfg.Shards, config.Shard{Name: s, Primary: config.Node{Name: s + "-primary", Addr: addr}})
	}
	cfg.Databases = []config.Database{{Name: "app", Dbname: "postgres", ShardedTables: tables}}
	return cfg, &cfg.Databases[0]
}

// dirTable is a directory table reading lookup table lt.
func dirTable(name, typ, lt string, mod func(*config.Directory)) config.ShardedTable {
	d := &config.Directory{Node: "s0-primary", Dbname: "postgres",
		Query:       fmt.Sprintf("SELECT shard FROM %s WHERE key = $1", lt),
		AssignQuery: fmt.Sprintf("INSERT INTO %s (key, shard) VALUES ($1, $2) ON CONFLICT DO NOTHING", lt),
		CacheSize:   1000, CacheTTL: config.Duration(time.Hour), Timeout: config.Duration(5 * time.Second), PoolSize: 2}
	if mod != nil {
		mod(d)
	}
	return config.ShardedTable{Table: name, Column: "k", Type: typ, Function: "directory", Directory: d}
}

func exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if err := cluster.Shards[0].Primary.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func newDir(t *testing.T, tables ...config.ShardedTable) *Directory {
	t.Helper()
	cfg, db := pgConfig(tables...)
	d, err := New(cfg, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func lookupTable(t *testing.T, name, keyType string) {
	t.Helper()
	exec(t, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (key %s PRIMARY KEY, shard text)", name, name, keyType))
}

func intKey(i int64) sharding.Key { return sharding.Key{Int: i} }

func TestLookupOnPostgres(t *testing.T) {
	lookupTable(t, "dir_int", "bigint")
	exec(t, "INSERT INTO dir_int VALUES (1, 's0'), (2, 's2'), (-3, 's1'), (4, 'nowhere'), (5, NULL)")
	lookupTable(t, "dir_text", "text")
	exec(t, "INSERT INTO dir_text VALUES ('acme', 's1'), ('', 's2'), ('it''s', 's0')")
	lookupTable(t, "dir_uuid", "uuid")
	exec(t, "INSERT INTO dir_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 's2')")
	d := newDir(t, dirTable("customers", "int", "dir_int", nil), dirTable("tenants", "text", "dir_text", nil),
		dirTable("devices", "uuid", "dir_uuid", nil))
	ctx := context.Background()
	for key, want := range map[int64]int{1: 0, 2: 2, -3: 1} {
		if s, err := d.Shard(ctx, "customers", intKey(key)); err != nil || s != want {
			t.Errorf("customers %d: shard %d %v, want %d", key, s, err, want)
		}
	}
	for key, want := range map[string]int{"acme": 1, "": 2, "it's": 0} {
		if s, err := d.Shard(ctx, "tenants", sharding.Key{Bytes: []byte(key)}); err != nil || s != want {
			t.Errorf("tenants %q: shard %d %v, want %d", key, s, err, want)
		}
	}
	u, _ := sharding.KeyFromText(sharding.TypeUUID, []byte("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"))
	if s, err := d.Shard(ctx, "devices", u); err != nil || s != 2 {
		t.Errorf("devices: shard %d %v", s, err)
	}
	_, err := d.Shard(ctx, "customers", intKey(99))
	if pgCode(err) != "22023" || !strings.Contains(err.Error(), `no directory mapping for this shard key of table "customers"`) {
		t.Errorf("unknown key: %v", err)
	}
	if pe := asPg(err); pe == nil || !strings.Contains(pe.Hint, "auto_assign") || strings.Contains(pe.Message+pe.Hint, "99") {
		t.Errorf("unknown key hint %+v (must say how to add a mapping and never show the key)", pe)
	}
	if _, err := d.Shard(ctx, "customers", intKey(4)); pgCode(err) != "22023" || !strings.Contains(err.Error(), `unknown shard "nowhere"`) {
		t.Errorf("unknown shard name: %v", err)
	}
	if _, err := d.Shard(ctx, "customers", intKey(5)); pgCode(err) != "22023" {
		t.Errorf("NULL shard name: %v", err)
	}
	if st := d.Stats(); len(st) != 3 || st[0].Table != "customers" || st[0].Lookups != 6 || st[0].LookupErrors != 3 || st[0].Entries != 3 {
		t.Errorf("stats %+v", st)
	}
}

// Concurrent misses of one key run one query on the server: the lookup is
// slowed down so that every caller misses the cache while it runs.
func TestConcurrentMissesRunOneQuery(t *testing.T) {
	lookupTable(t, "dir_slow", "bigint")
	exec(t, "INSERT INTO dir_slow VALUES (7, 's1')")
	d := newDir(t, dirTable("slow", "int", "dir_slow", func(c *config.Directory) {
		c.Query = "SELECT shard FROM dir_slow, pg_sleep(0.5) WHERE key = $1"
	}))
	const n = 30
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if s, err := d.Shard(context.Background(), "slow", intKey(7)); err != nil || s != 1 {
				errs <- fmt.Errorf("shard %d %v", s, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := d.Stats()[0]
	if st.Lookups != 1 {
		t.Fatalf("%d queries for %d concurrent callers (misses %d, hits %d), want 1", st.Lookups, n, st.Misses, st.Hits)
	}
	t.Logf("%d callers: %d misses coalesced into %d query, %d hits", n, st.Misses, st.Lookups, st.Hits)
}

func TestInvalidateSeesAChangedMapping(t *testing.T) {
	lookupTable(t, "dir_move", "bigint")
	exec(t, "INSERT INTO dir_move VALUES (10, 's0'), (11, 's0')")
	d := newDir(t, dirTable("moving", "int", "dir_move", nil))
	ctx := context.Background()
	for _, k := range []int64{10, 11} {
		if s, _ := d.Shard(ctx, "moving", intKey(k)); s != 0 {
			t.Fatalf("key %d: shard %d", k, s)
		}
	}
	exec(t, "UPDATE dir_move SET shard = 's2'")
	if s, _ := d.Shard(ctx, "moving", intKey(10)); s != 0 {
		t.Fatal("cached mapping not used")
	}
	key := "10"
	if n, err := d.Invalidate("moving", &key); n != 1 || err != nil {
		t.Fatalf("invalidate: %d %v", n, err)
	}
	if s, _ := d.Shard(ctx, "moving", intKey(10)); s != 2 {
		t.Fatalf("after INVALIDATE key 10: shard %d, want 2", s)
	}
	if s, _ := d.Shard(ctx, "moving", intKey(11)); s != 0 {
		t.Fatal("key 11 was not invalidated and must still be cached")
	}
	if n, _ := d.Invalidate("", nil); n != 2 {
		t.Fatalf("invalidate all dropped %d", n)
	}
	if s, _ := d.Shard(ctx, "moving", intKey(11)); s != 2 {
		t.Fatalf("after INVALIDATE all: shard %d", s)
	}
	if _, err := d.Invalidate("nosuch", nil); err == nil {
		t.Fatal("unknown table accepted")
	}
}

// Two pgrouters (two Directories) assign the same new keys concurrently:
// every key gets one mapping, to the shard Postgres's hash partitioning
// picks, and both use that mapping.
func TestAutoAssignOnPostgres(t *testing.T) {
	lookupTable(t, "dir_auto", "bigint")
	exec(t, "INSERT INTO dir_auto VALUES (1000, 's0')") // existing mappings win over the hash
	tab := dirTable("auto", "int", "dir_auto", func(c *config.Directory) { c.AutoAssign = "hash"; c.PoolSize = 3 })
	a, b := newDir(t, tab), newDir(t, tab)
	hash, err := sharding.New(&config.ShardedTable{Table: "auto", Type: "int"}, shardNames)
	if err != nil {
		t.Fatal(err)
	}
	const keys = 200
	var wg sync.WaitGroup
	got := [2][keys + 1]int{}
	for di, d := range []*Directory{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys + 1 {
				s, err := d.Shard(context.Background(), "auto", intKey(int64(1000+i)))
				if err != nil {
					t.Error(err)
					return
				}
				got[di][i] = s
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range keys + 1 {
		want, _ := hash.Shard(intKey(int64(1000 + i)))
		if i == 0 {
			want = 0
		}
		if got[0][i] != want || got[1][i] != want {
			t.Fatalf("key %d: routers chose %d and %d, want %d", 1000+i, got[0][i], got[1][i], want)
		}
	}
	var rows int
	var bad int
	row := cluster.Shards[0].Primary.QueryRow(context.Background(), "SELECT count(*), count(*) FILTER (WHERE shard NOT IN ('s0','s1','s2')) FROM dir_auto")
	if err := row.Scan(&rows, &bad); err != nil || rows != keys+1 || bad != 0 {
		t.Fatalf("lookup table holds %d rows (%d bad), want %d: %v", rows, bad, keys+1, err)
	}
	assigned := a.Stats()[0].Assigned + b.Stats()[0].Assigned
	if assigned < keys || assigned > 2*keys {
		t.Fatalf("%d assign statements for %d new keys", assigned, keys)
	}
	// The hash choice matches a real hash-partitioned table.
	exec(t, "DROP TABLE IF EXISTS auto_hash; CREATE TABLE auto_hash (k bigint) PARTITION BY HASH (k)")
	var wrong int
	row = cluster.Shards[0].Primary.QueryRow(context.Background(),
		`SELECT count(*) FROM dir_auto WHERE key <> 1000 AND NOT satisfies_hash_partition('auto_hash'::regclass, 3, substr(shard, 2)::int, key)`)
	if err := row.Scan(&wrong); err != nil || wrong != 0 {
		t.Fatalf("%d auto-assigned keys disagree with PARTITION BY HASH: %v", wrong, err)
	}
}

func TestLookupFailures(t *testing.T) {
	ctx := context.Background()
	d := newDir(t, dirTable("missing", "int", "no_such_table", nil),
		dirTable("slowest", "int", "dir_int", func(c *config.Directory) {
			c.Query = "SELECT 's0' FROM pg_sleep(3) WHERE $1::bigint IS NOT NULL"
			c.Timeout = config.Duration(300 * time.Millisecond)
		}),
		dirTable("down", "int", "dir_int", func(c *config.Directory) { c.Node = "127.0.0.1:1" }))
	if _, err := d.Shard(ctx, "missing", intKey(1)); pgCode(err) != "42P01" || !strings.Contains(err.Error(), `directory lookup for table "missing"`) {
		t.Errorf("missing lookup table: %v", err)
	}
	if _, err := d.Shard(ctx, "slowest", intKey(1)); pgCode(err) != "57014" {
		t.Errorf("slow lookup: %v", err)
	}
	if _, err := d.Shard(ctx, "down", intKey(1)); pgCode(err) != "08001" {
		t.Errorf("node down: %v", err)
	}
	// The connection survives a failed query: the next lookup works.
	lookupTable(t, "dir_after", "bigint")
	exec(t, "INSERT INTO dir_after VALUES (1, 's1')")
	d2 := newDir(t, dirTable("after", "int", "dir_after", func(c *config.Directory) {
		c.Query = "SELECT shard FROM dir_after WHERE key = $1::bigint"
		c.PoolSize = 1
	}))
	if _, err := d2.Shard(ctx, "after", sharding.Key{Int: 1 << 62}); err == nil {
		t.Fatal("unknown key accepted")
	}
	if s, err := d2.Shard(ctx, "after", intKey(1)); err != nil || s != 1 {
		t.Fatalf("after a failed lookup: %d %v", s, err)
	}
}

// Lookups reuse at most pool_size connections.
func TestLookupConnectionsAreBounded(t *testing.T) {
	lookupTable(t, "dir_many", "bigint")
	exec(t, "INSERT INTO dir_many SELECT g, 's' || (g % 3) FROM generate_series(1, 300) g")
	d := newDir(t, dirTable("many", "int", "dir_many", func(c *config.Directory) { c.PoolSize = 2; c.CacheSize = 0 }))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 300; i += 8 {
				s, err := d.Shard(context.Background(), "many", intKey(int64(i+1)))
				if err != nil || s != (i+1)%3 {
					t.Errorf("key %d: %d %v", i+1, s, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var n int
	cluster.Shards[0].Primary.QueryRow(context.Background(),
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgrouter-directory' AND datname = 'postgres'").Scan(&n)
	if n < 1 || n > 2 {
		t.Fatalf("%d directory connections open, want 1..2 (pool_size 2)", n)
	}
	if st := d.Stats()[0]; st.Lookups != 300 {
		t.Fatalf("%d lookups, want 300 with cache_size 0", st.Lookups)
	}
}
