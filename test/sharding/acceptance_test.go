package sharding

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Issue #5's acceptance: 10,000 users inserted through pgrouter by all
// three write paths — single-row INSERTs (over several connections and
// both protocols), multi-row INSERTs (split per shard) and COPY FROM STDIN
// — into a hash, a range and a directory table; then every row is checked
// on each shard directly against Postgres's own partitioning (hash:
// satisfies_hash_partition; range: a real range-partitioned table) or the
// lookup table (directory), and keyed SELECT/UPDATE/DELETE are shown to
// touch only their shard.

const (
	acceptRows   = 10000
	acceptSingle = 3334
	acceptMulti  = 3333
	acceptCopy   = 3333
)

type acceptTable struct {
	name, column, other string
	keys                []int64 // acceptRows distinct keys
	copyFormat          string  // binary | text | csv
}

func acceptanceTables() []acceptTable {
	keys := func(from int64) []int64 {
		out := make([]int64, acceptRows)
		for i := range out {
			out[i] = from + int64(i)
		}
		return out
	}
	return []acceptTable{
		{name: "acc_users", column: "user_id", other: "name", keys: keys(-5000), copyFormat: "binary"}, // negatives too
		{name: "acc_events", column: "id", other: "what", keys: keys(0), copyFormat: "text"},
		{name: "acc_dir", column: "user_id", other: "name", keys: keys(0), copyFormat: "csv"},
	}
}

func TestAcceptance10000Users(t *testing.T) {
	// The directory of acc_dir: key → shard (g / 7) % 3, unlike hash or range.
	onShard(t, 0, fmt.Sprintf("INSERT INTO acc_directory SELECT g, 'shard' || ((g / 7) %% 3) FROM generate_series(0, %d) g", acceptRows-1))
	for _, tab := range acceptanceTables() {
		t.Run(tab.name, func(t *testing.T) {
			insertSingleRows(t, tab, tab.keys[:acceptSingle])
			insertMultiRows(t, tab, tab.keys[acceptSingle:acceptSingle+acceptMulti])
			insertCopy(t, tab, tab.keys[acceptSingle+acceptMulti:])
			switch tab.name {
			case "acc_users":
				checkPlacement(t, tab.name, tab.column, "hashcheck_int", acceptRows)
			case "acc_events":
				checkRangePlacement(t, tab)
			case "acc_dir":
				checkDirectoryPlacement(t, tab)
			}
			checkKeyedStatements(t, tab)
		})
	}
}

// insertSingleRows: one INSERT per row over four concurrent connections,
// extended protocol with parameters and simple protocol with literals.
func insertSingleRows(t *testing.T, tab acceptTable, keys []int64) {
	ctx := context.Background()
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheDescribe}
	var wg sync.WaitGroup
	for w, mode := range modes {
		c := connect(t, mode)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(keys); i += len(modes) {
				var err error
				if i%2 == 0 {
					_, err = c.Exec(ctx, fmt.Sprintf("insert into %s (%s, %s) values ($1, $2)", tab.name, tab.column, tab.other), keys[i], "single")
				} else {
					_, err = c.Exec(ctx, fmt.Sprintf("insert into %s (%s, %s) values (%d, 'single')", tab.name, tab.column, tab.other, keys[i]))
				}
				if err != nil {
					t.Errorf("%v: insert %d: %v", mode, keys[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// insertMultiRows: INSERTs of 101 rows each (spanning shards, so split),
// alternately with parameters and with literals.
func insertMultiRows(t *testing.T, tab acceptTable, keys []int64) {
	ctx := context.Background()
	ext, simple := connect(t, pgx.QueryExecModeCacheStatement), connect(t, pgx.QueryExecModeSimpleProtocol)
	const batch = 101
	total := int64(0)
	for b := 0; b*batch < len(keys); b++ {
		part := keys[b*batch : min((b+1)*batch, len(keys))]
		var sb strings.Builder
		var args []any
		fmt.Fprintf(&sb, "insert into %s (%s, %s) values ", tab.name, tab.column, tab.other)
		for i, k := range part {
			if i > 0 {
				sb.WriteString(", ")
			}
			if b%2 == 0 {
				fmt.Fprintf(&sb, "($%d, 'multi')", len(args)+1)
				args = append(args, k)
			} else {
				fmt.Fprintf(&sb, "(%d, 'multi')", k)
			}
		}
		c := simple
		if b%2 == 0 {
			c = ext
		}
		tag, err := c.Exec(ctx, sb.String(), args...)
		if err != nil {
			t.Fatalf("multi-row insert %d: %v", b, err)
		}
		total += tag.RowsAffected()
	}
	if total != int64(len(keys)) {
		t.Fatalf("multi-row inserts reported %d rows, want %d", total, len(keys))
	}
}

// insertCopy: one COPY FROM STDIN in the table's format.
func insertCopy(t *testing.T, tab acceptTable, keys []int64) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	var n int64
	var err error
	switch tab.copyFormat {
	case "binary": // pgx CopyFrom sends binary COPY
		rows := make([][]any, len(keys))
		for i, k := range keys {
			rows[i] = []any{k, "copy"}
		}
		n, err = c.CopyFrom(ctx, pgx.Identifier{tab.name}, []string{tab.column, tab.other}, pgx.CopyFromRows(rows))
	default:
		var sb strings.Builder
		sep, opts := "\t", ""
		if tab.copyFormat == "csv" {
			sep, opts = ",", " WITH (FORMAT csv)"
		}
		for _, k := range keys {
			fmt.Fprintf(&sb, "%d%scopy\n", k, sep)
		}
		var tag pgconn.CommandTag
		tag, err = c.PgConn().CopyFrom(ctx, strings.NewReader(sb.String()),
			fmt.Sprintf("COPY %s (%s, %s) FROM STDIN%s", tab.name, tab.column, tab.other, opts))
		n = tag.RowsAffected()
	}
	if err != nil || n != int64(len(keys)) {
		t.Fatalf("COPY (%s): %d rows, %v; want %d", tab.copyFormat, n, err, len(keys))
	}
}

// checkRangePlacement: each shard's rows, inserted into a real table
// partitioned BY RANGE with the config's bounds (rolled back), all land in
// the partition of that shard.
func checkRangePlacement(t *testing.T, tab acceptTable) {
	ctx := context.Background()
	total := 0
	for i, s := range env.Cluster.Shards {
		c, err := s.Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n, wrong int
		err = tx.QueryRow(ctx, fmt.Sprintf(`WITH ins AS (INSERT INTO rangecheck SELECT %s FROM %s RETURNING tableoid::regclass::text AS part)
			SELECT count(*), count(*) FILTER (WHERE part <> 'rangecheck_%d') FROM ins`, tab.column, tab.name, i)).Scan(&n, &wrong)
		tx.Rollback(ctx)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if wrong != 0 || n == 0 {
			t.Errorf("%s: %d of %d %s rows are outside its range partition", s.Name, wrong, n, tab.name)
		}
		total += n
	}
	if total != acceptRows {
		t.Errorf("%s: %d rows on the shards, want %d", tab.name, total, acceptRows)
	}
}

// checkDirectoryPlacement: every row is on the shard the lookup table (read
// from the directory node) names.
func checkDirectoryPlacement(t *testing.T, tab acceptTable) {
	ctx := context.Background()
	dc, err := env.Cluster.Shards[0].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := dc.Query(ctx, "SELECT key, shard FROM acc_directory")
	mapping := map[int64]string{}
	for rows.Next() {
		var k int64
		var s string
		rows.Scan(&k, &s)
		mapping[k] = s
	}
	dc.Close(ctx)
	if len(mapping) != acceptRows {
		t.Fatalf("directory holds %d mappings", len(mapping))
	}
	total := 0
	for i, s := range env.Cluster.Shards {
		ids := shardInts(t, i, fmt.Sprintf("select %s from %s", tab.column, tab.name))
		wrong := 0
		for _, id := range ids {
			if mapping[id] != s.Name {
				wrong++
			}
		}
		if wrong != 0 || len(ids) == 0 {
			t.Errorf("%s: %d of %d %s rows are not where the directory maps them", s.Name, wrong, len(ids), tab.name)
		}
		total += len(ids)
	}
	if total != acceptRows {
		t.Errorf("%s: %d rows on the shards, want %d", tab.name, total, acceptRows)
	}
}

// checkKeyedStatements: for a sample of keys, SELECT runs on the row's
// shard, UPDATE and DELETE change exactly one row there and nothing
// elsewhere.
func checkKeyedStatements(t *testing.T, tab acceptTable) {
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	for j := 0; j < 30; j++ {
		k := tab.keys[j*331]
		var port int
		if err := c.QueryRow(ctx, fmt.Sprintf("select inet_server_port() from %s where %s = $1", tab.name, tab.column), k).Scan(&port); err != nil {
			t.Fatalf("select %d: %v", k, err)
		}
		home := portOf(t, port)
		if n := shardInts(t, home, fmt.Sprintf("select %s from %s where %s = %d", tab.column, tab.name, tab.column, k)); len(n) != 1 {
			t.Fatalf("key %d: SELECT ran on shard%d which does not hold it", k, home)
		}
		tag, err := c.Exec(ctx, fmt.Sprintf("update %s set %s = 'updated' where %s = $1", tab.name, tab.other, tab.column), k)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("update %d: %v %v", k, tag, err)
		}
		tag, err = c.Exec(ctx, fmt.Sprintf("delete from %s where %s = $1 and %s = 'updated'", tab.name, tab.column, tab.other), k)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("delete %d: %v %v", k, tag, err)
		}
	}
	total := 0
	for i := range env.Cluster.Shards {
		total += len(shardInts(t, i, fmt.Sprintf("select %s from %s", tab.column, tab.name)))
		if n := shardInts(t, i, fmt.Sprintf("select %s from %s where %s = 'updated'", tab.column, tab.name, tab.other)); len(n) != 0 {
			t.Errorf("shard%d: updated rows %v left after their DELETE", i, n)
		}
	}
	if total != acceptRows-30 {
		t.Errorf("%s: %d rows after 30 keyed deletes, want %d", tab.name, total, acceptRows-30)
	}
}
