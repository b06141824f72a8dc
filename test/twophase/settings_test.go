package twophase

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// clientSettings are session settings that differ from the backends'
// defaults and from each other: every statement of one client on a
// backend last used by the other needs the proxy's own state sync first.
var clientSettings = []string{
	"&application_name=app1&client_encoding=UTF8&TimeZone=Asia/Tokyo&DateStyle=SQL,DMY&extra_float_digits=1",
	"&application_name=app2&TimeZone=America/Lima&IntervalStyle=iso_8601&search_path=public,pg_catalog",
}

// rawResults runs sql in the simple protocol, or unnamed in the extended
// one, and returns every result the client received.
func rawResults(ctx context.Context, c *pgconn.PgConn, extended bool, sql string) ([]*pgconn.Result, error) {
	if extended {
		r := c.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
		return []*pgconn.Result{r}, r.Err
	}
	return c.Exec(ctx, sql).ReadAll()
}

// TestMultiShardWritesIgnoreSessionSync: the set_config preamble a shard
// backend gets when its settings differ from the client's answers with
// rows and ReadyForQuery of its own; none of it may reach the client's
// result (it once did: "app1" rows among RETURNING rows, a RowDescription
// with the wrong field count, a "UTF8" row before DELETE's tag).
func TestMultiShardWritesIgnoreSessionSync(t *testing.T) {
	ctx := context.Background()
	var conns []*pgconn.PgConn
	for _, s := range clientSettings {
		conns = append(conns, connectTo(t, env.AppDSN()+s, 0).PgConn())
	}
	base := int64(200000)
	for round := 0; round < 4; round++ {
		for ci, c := range conns {
			extended := round%2 == 1
			a, b := keysOn(t, 0, base, 1)[0], keysOn(t, 1, base, 1)[0]
			base += 1000
			ids := fmt.Sprintf("%d,%d", min(a, b), max(a, b))
			want := []string{ids}
			steps := []struct{ sql, tag, rows string }{
				{fmt.Sprintf("insert into users (user_id, name) values (%d, 'x'), (%d, 'y') returning user_id, name", a, b), "INSERT 0 2", ""},
				{fmt.Sprintf("update users set name = name where user_id in (%d, %d) returning user_id", a, b), "UPDATE 2", ids},
				{fmt.Sprintf("update users set name = 'z' where user_id in (%d, %d)", a, b), "UPDATE 2", "-"},
				{fmt.Sprintf("insert into plans values (%d, 'p') returning id", a), "INSERT 0 1", fmt.Sprint(a)},
				{fmt.Sprintf("delete from plans where id = %d", a), "DELETE 1", "-"},
				{fmt.Sprintf("delete from users where user_id in (%d, %d)", a, b), "DELETE 2", "-"},
			}
			_ = want
			for _, st := range steps {
				rs, err := rawResults(ctx, c, extended, st.sql)
				if err != nil {
					t.Fatalf("client %d extended=%v %s: %v", ci, extended, st.sql, err)
				}
				if len(rs) != 1 {
					t.Fatalf("client %d extended=%v %s: %d results, want 1", ci, extended, st.sql, len(rs))
				}
				r := rs[0]
				if r.CommandTag.String() != st.tag {
					t.Errorf("client %d extended=%v %s: tag %q, want %q", ci, extended, st.sql, r.CommandTag, st.tag)
				}
				var first []string
				for _, row := range r.Rows {
					if len(row) != len(r.FieldDescriptions) {
						t.Fatalf("client %d extended=%v %s: row %q has %d fields, RowDescription %d", ci, extended, st.sql, row, len(row), len(r.FieldDescriptions))
					}
					first = append(first, string(row[0]))
				}
				slices.Sort(first)
				got := strings.Join(first, ",")
				switch {
				case st.rows == "-" && (len(r.Rows) > 0 || len(r.FieldDescriptions) > 0):
					t.Errorf("client %d extended=%v %s: rows %q (fields %d) from a statement without RETURNING", ci, extended, st.sql, got, len(r.FieldDescriptions))
				case st.rows != "" && st.rows != "-" && got != st.rows:
					t.Errorf("client %d extended=%v %s: rows %q, want %q", ci, extended, st.sql, got, st.rows)
				case st.rows == "" && len(r.Rows) != 2:
					t.Errorf("client %d extended=%v %s: %d rows, want 2", ci, extended, st.sql, len(r.Rows))
				}
			}
		}
	}
}

// A script broadcast to every shard answers each of its statements, as
// one Postgres does (it once answered only the last): with two-phase
// commit statement by statement in one transaction, without it as before
// in a transaction per shard.
func TestBroadcastScriptAnswersEveryStatement(t *testing.T) {
	ctx := context.Background()
	for _, db := range []string{"app", "plain"} {
		c := connectTo(t, env.DSN("app", "app", db)+clientSettings[0], 0).PgConn()
		for _, step := range [][2]string{
			{"create index script_1 on ledger (n); create index script_2 on ledger (user_id)", "[CREATE INDEX/0 CREATE INDEX/0]"},
			{"update users set name = name where user_id < 0 returning user_id; update ledger set n = n where user_id < 0", "[UPDATE 0/0 UPDATE 0/0]"},
			{"drop index script_1; drop index script_2", "[DROP INDEX/0 DROP INDEX/0]"},
		} {
			rs, err := c.Exec(ctx, step[0]).ReadAll()
			if err != nil {
				t.Fatalf("%s: %s: %v", db, step[0], err)
			}
			var tags []string
			for _, r := range rs {
				tags = append(tags, fmt.Sprintf("%s/%d", r.CommandTag, len(r.Rows)))
			}
			if got := fmt.Sprint(tags); got != step[1] {
				t.Errorf("%s: %s: answers %s, want %s", db, step[0], got, step[1])
			}
		}
	}
}

// The issue's own reproductions, with the clients that showed them: psql
// with application_name (its rows once read "app1 / 1 / 2 / app1 / 3")
// and asyncpg, which sends client_encoding at startup (its DELETE once
// got a "UTF8" row before "DELETE 0").
func TestSessionSyncWithPsqlAndAsyncpg(t *testing.T) {
	psql := "/usr/lib/postgresql/15/bin/psql"
	a, b := keysOn(t, 0, 700000, 2), keysOn(t, 1, 700000, 1)
	ids := fmt.Sprintf("%d, %d, %d", a[0], b[0], a[1])
	dsn := env.AppDSN() + "&application_name=app1"
	out, err := exec.Command(psql, env.AppDSN()+"&application_name=app2", "-XAt", "-c", "insert into users (user_id, name) values ("+
		strings.ReplaceAll(ids, ", ", ", 'p'), (")+", 'p') returning user_id").CombinedOutput()
	if err != nil {
		t.Fatalf("psql insert: %v: %s", err, out)
	}
	out, err = exec.Command(psql, dsn, "-XAt", "-c", "update users set name = name where user_id in ("+ids+") returning user_id").CombinedOutput()
	var got []string // the rows; psql prints the command tag after them
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f != "UPDATE 3" {
			got = append(got, f)
		}
	}
	slices.Sort(got)
	want := []string{itoa(a[0]), itoa(a[1]), itoa(b[0])}
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("psql update … returning: %q (%v), want the rows %v", out, err, want)
	}
	script := `
import asyncio, sys, asyncpg
async def main():
    c = await asyncpg.connect(sys.argv[1])
    print(await c.execute("delete from users where user_id < 0"))
    print(await c.fetch("delete from users where user_id in (` + ids + `) returning user_id"))
    await c.close()
asyncio.run(main())
`
	out, err = exec.Command("/usr/bin/python3", "-c", script, env.AppDSN()).CombinedOutput()
	if err != nil {
		t.Fatalf("asyncpg (run `make deps` as root; Debian package python3-asyncpg): %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] != "DELETE 0" || strings.Count(lines[1], "<Record user_id=") != 3 {
		t.Fatalf("asyncpg deletes: %q", out)
	}
}

// COPY into the sharded table after the session sync: the sync's answers
// precede each shard's CopyInResponse and must stay the proxy's.
func TestCopyAfterSessionSync(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 710000, 3), keysOn(t, 1, 710000, 3)
	for i, s := range clientSettings {
		c := connectTo(t, env.AppDSN()+s, pgx.QueryExecModeCacheStatement)
		keys := []int64{a[i], b[i]}
		n, err := c.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"user_id", "name"},
			pgx.CopyFromRows([][]any{{keys[0], "copy"}, {keys[1], "copy"}}))
		if err != nil || n != 2 {
			t.Fatalf("client %d: COPY: %d rows, %v", i, n, err)
		}
		if n0, n1 := countOn(t, 0, "users", keys[:1]), countOn(t, 1, "users", keys[1:]); n0 != 1 || n1 != 1 {
			t.Fatalf("client %d: COPY rows on shard0 %d, shard1 %d", i, n0, n1)
		}
	}
}

// A broadcast statement with ';' inside a literal is one statement: in
// the extended protocol it keeps its binary result format.
func TestBroadcastWithSemicolonInLiteral(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 720000, 1), keysOn(t, 1, 720000, 1)
	c := connectTo(t, env.AppDSN(), pgx.QueryExecModeCacheStatement)
	if _, err := c.Exec(ctx, fmt.Sprintf("insert into users (user_id, name) values (%d, 'x'), (%d, 'y')", a[0], b[0])); err != nil {
		t.Fatal(err)
	}
	sql := fmt.Sprintf("update users set name = 'a;b' where user_id in (%d, %d) returning user_id", a[0], b[0])
	r := c.PgConn().ExecParams(ctx, sql, nil, nil, nil, []int16{1}).Read()
	if r.Err != nil || len(r.Rows) != 2 || len(r.Rows[0][0]) != 8 || r.FieldDescriptions[0].Format != 1 {
		t.Fatalf("binary RETURNING of a broadcast with ';' in a literal: %v %q", r.Err, r.Rows)
	}
}
