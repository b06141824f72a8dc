package differential

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func corpus(t *testing.T, name string) []query {
	t.Helper()
	qs, err := loadCorpus("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// TestSupportedQueriesMatchOnePostgres runs every corpus query on the
// single database and through pgrouter over three shards, in each protocol
// mode, and requires identical columns and rows: for every client profile
// (profiles_test.go) at once.
func TestSupportedQueriesMatchOnePostgres(t *testing.T) {
	qs := corpus(t, "queries.sql")
	if len(qs) < 200 {
		t.Fatalf("corpus has %d queries, the issue asks for at least 200", len(qs))
	}
	ctx := context.Background()
	eachPair(t, profiles, func(_ int, p pair) {
		single, proxy := p.single, p.proxy
		empty := 0
		ncols := make([]int, len(qs))
		for i, q := range qs {
			if r, err := runSimple(ctx, single, q); err == nil {
				ncols[i] = len(r.cols)
			}
		}
		for _, m := range modes {
			pass := 0
			for i, q := range qs {
				want, err := m.run(ctx, single, q, ncols[i])
				if err != nil {
					t.Errorf("%s [%s] profile %s on one Postgres: %v", q, m.name, p.name, err)
					continue
				}
				if m.name == "simple" && len(want.rows) == 0 {
					empty++
				}
				got, err := m.run(ctx, proxy, q, ncols[i])
				if err != nil {
					t.Errorf("%s [%s] profile %s through pgrouter: %v", q, m.name, p.name, err)
					continue
				}
				if d := diff(want, got, q.ordered); d != "" {
					t.Errorf("%s [%s] profile %s: %s", q, m.name, p.name, d)
					continue
				}
				pass++
			}
			t.Logf("profile %s mode %-16s %d/%d queries identical", p.name, m.name, pass, len(qs))
		}
		// A corpus of empty answers would prove little.
		if empty > len(qs)/10 {
			t.Errorf("%d of %d queries return no rows on one Postgres; the data does not exercise them", empty, len(qs))
		}
	})
}

// TestUnsupportedQueriesAreRefused checks that every query of
// unsupported.sql is valid on one Postgres but refused by pgrouter with
// 0A000 and a message naming the construct, in both protocols.
func TestUnsupportedQueriesAreRefused(t *testing.T) {
	qs := corpus(t, "unsupported.sql")
	if len(qs) == 0 {
		t.Fatal("no unsupported queries listed")
	}
	ctx := context.Background()
	single := connect(t, env.Cluster.Shards[0].Primary.DSN(singleDB))
	proxy := connect(t, env.AppDSN())
	for _, m := range modes[:3] {
		refused := 0
		for _, q := range qs {
			if q.errText == "" {
				t.Fatalf("%s: no @error directive", q)
			}
			if _, err := runMaybeTx(ctx, single, q, m.run); err != nil {
				t.Errorf("%s [%s] is not valid on one Postgres: %v", q, m.name, err)
				continue
			}
			_, err := runMaybeTx(ctx, proxy, q, m.run)
			pe := pgError(err)
			switch {
			case pe == nil:
				t.Errorf("%s [%s]: want 0A000 %q, got %v", q, m.name, q.errText, err)
			case pe.Code != "0A000" || !strings.Contains(pe.Message, q.errText):
				t.Errorf("%s [%s]: want 0A000 %q, got %s %s", q, m.name, q.errText, pe.Code, pe.Message)
			default:
				refused++
			}
		}
		t.Logf("mode %-16s %d/%d unsupported queries refused with their error", m.name, refused, len(qs))
	}
}

// runMaybeTx runs q, inside BEGIN … ROLLBACK when it asks for a transaction.
func runMaybeTx(ctx context.Context, c *pgx.Conn, q query, run func(context.Context, *pgx.Conn, query, int) (*result, error)) (*result, error) {
	if !q.tx {
		// A WITH HOLD cursor outlives its statement: close it for the next mode.
		defer c.Exec(ctx, "CLOSE ALL", pgx.QueryExecModeSimpleProtocol)
		return run(ctx, c, q, 0)
	}
	if _, err := c.Exec(ctx, "BEGIN", pgx.QueryExecModeSimpleProtocol); err != nil {
		return nil, err
	}
	defer c.Exec(ctx, "ROLLBACK", pgx.QueryExecModeSimpleProtocol)
	return run(ctx, c, q, 0)
}

// TestUnsupportedListIsDocumented requires docs/CROSS_SHARD.md to name every
// error the unsupported corpus expects, so the doc and the code agree.
func TestUnsupportedListIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CROSS_SHARD.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range corpus(t, "unsupported.sql") {
		if !strings.Contains(string(doc), q.errText) {
			t.Errorf("docs/CROSS_SHARD.md does not mention %q (%s)", q.errText, q)
		}
	}
}

// TestDataIsSpreadOverShards makes sure the comparison is not trivial: every
// shard holds rows of every sharded table, and together exactly the rows of
// the single database.
func TestDataIsSpreadOverShards(t *testing.T) {
	ctx := context.Background()
	single := connect(t, env.Cluster.Shards[0].Primary.DSN(singleDB))
	for _, table := range []string{"users", "orders", "events"} {
		var want, total int64
		if err := single.QueryRow(ctx, "select count(*) from "+table).Scan(&want); err != nil {
			t.Fatal(err)
		}
		for _, s := range env.Cluster.Shards {
			c := connect(t, s.Primary.DSN("app"))
			var n int64
			if err := c.QueryRow(ctx, "select count(*) from "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 || n == want {
				t.Errorf("%s on %s: %d of %d rows", table, s.Name, n, want)
			}
			total += n
		}
		if total != want || want == 0 {
			t.Errorf("%s: %d rows over the shards, %d in the single database", table, total, want)
		}
	}
}

// TestDiffNoticesDifferences guards the comparison itself: results that
// differ in a row, in order, in a column type or only in numeric display
// scale are reported, and multisets ignore order only when asked to.
func TestDiffNoticesDifferences(t *testing.T) {
	ctx := context.Background()
	single := connect(t, env.Cluster.Shards[0].Primary.DSN(singleDB))
	run := func(sql string) *result {
		r, err := runExtended(ctx, single, query{sql: sql}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	asc, desc := run("select id from users order by id"), run("select id from users order by id desc")
	if diff(asc, desc, true) == "" {
		t.Error("reversed order not noticed in an ordered comparison")
	}
	if diff(asc, desc, false) != "" {
		t.Error("same rows in another order reported in a multiset comparison")
	}
	for _, pair := range [][2]string{
		{"select id from users order by id", "select id from users order by id limit 239"},
		{"select 1.0::numeric", "select 1.00::numeric"},
		{"select 1::int", "select 1::bigint"},
		{"select ''::text", "select null::text"},
		{"select 1 as a", "select 1 as b"},
	} {
		if diff(run(pair[0]), run(pair[1]), false) == "" {
			t.Errorf("%q and %q compare equal", pair[0], pair[1])
		}
	}
}

// TestScatterAfterSessionSync alternates two clients with different
// startup parameters, so the shard backends must be re-synced (a
// set_config preamble that returns rows of its own) before nearly every
// cross-shard query. The preamble's RowDescription once stood in for the
// query's, and the merge refused the shards as "different result columns".
func TestScatterAfterSessionSync(t *testing.T) {
	ctx := context.Background()
	single := connect(t, env.Cluster.Shards[0].Primary.DSN(singleDB))
	var clients []*pgx.Conn
	for _, app := range []string{"diff_a", "diff_b"} {
		clients = append(clients, connect(t, env.AppDSN()+"&application_name="+app))
	}
	qs := []query{
		{sql: "select id, name from users order by id limit 20", ordered: true},
		{sql: "select region, count(*), sum(score) from users group by region"},
		{sql: "select count(*) from orders"},
	}
	for i := 0; i < 12; i++ {
		q := qs[i%len(qs)]
		c := clients[i%2]
		want, err := runExtended(ctx, single, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range modes[:3] {
			got, err := m.run(ctx, c, q, 0)
			if err != nil {
				t.Fatalf("round %d %s [%s]: %v", i, q.sql, m.name, err)
			}
			if m.name == "extended-text" {
				if d := diff(want, got, q.ordered); d != "" {
					t.Fatalf("round %d %s: %s", i, q.sql, d)
				}
			}
		}
	}
}

// TestErrorsMatchOnePostgres: a cross-shard query that fails on one
// Postgres (on some rows only, or everywhere) fails through pgrouter with
// the same SQLSTATE, and the client connection stays usable.
func TestErrorsMatchOnePostgres(t *testing.T) {
	ctx := context.Background()
	single := connect(t, env.Cluster.Shards[0].Primary.DSN(singleDB))
	proxy := connect(t, env.AppDSN())
	for _, sql := range []string{
		"select id, 100 / (age - 30) from users",                                     // 22012 on the rows with age 30
		"select id, name::int from users where name <> ''",                           // 22P02
		"select id, nosuch from users",                                               // 42703 on every shard
		"select sum(100 / (qty + 1)) from orders",                                    // 22012 in an aggregate
		"select id from users order by 1 / (age - 30), id",                           // 22012 in ORDER BY
		"select region, count(*) from users group by region having count(*) > 'x'",   // 22P02
		"select region, count(*) from users group by region having count(*) > '5.5'", // 22P02
	} {
		for _, m := range modes[:4] {
			q := query{sql: sql}
			_, werr := m.run(ctx, single, q, 0)
			_, gerr := m.run(ctx, proxy, q, 0)
			w, g := pgError(werr), pgError(gerr)
			if w == nil {
				t.Fatalf("%s [%s]: no error on one Postgres", sql, m.name)
			}
			if g == nil || g.Code != w.Code {
				t.Errorf("%s [%s]: want SQLSTATE %s (%s), got %v", sql, m.name, w.Code, w.Message, gerr)
			}
			var n int64
			if err := proxy.QueryRow(ctx, "select count(*) from users").Scan(&n); err != nil || n != nUsers {
				t.Fatalf("after %s [%s]: connection not usable: n=%d err=%v", sql, m.name, n, err)
			}
		}
	}
}

// TestShardSchemaDriftIsAnError: when shards describe different result
// columns (here v is int on two shards and bigint on the third), the merge
// must fail, never interleave rows of different types.
func TestShardSchemaDriftIsAnError(t *testing.T) {
	ctx := context.Background()
	proxy := connect(t, env.AppDSN())
	for _, m := range modes[:3] {
		for _, sql := range []string{"select id, v from skew", "select id, v from skew order by v", "select count(*), max(v) from skew"} {
			_, err := m.run(ctx, proxy, query{sql: sql}, 2)
			if pe := pgError(err); pe == nil || !strings.Contains(pe.Message, "different result columns") {
				t.Errorf("%s [%s]: want an error about different result columns, got %v", sql, m.name, err)
			}
		}
	}
}
