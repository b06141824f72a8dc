package wire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestMergeDateStyle: a cross-shard ORDER BY or min/max over dates and
// times needs their text in the ISO DateStyle (day/month orders and zone
// abbreviations of the others cannot be ordered safely). Under German or
// SQL DateStyle the client gets 0A000 with a hint, not an internal error
// and never rows in a wrong order; under ISO the rows are those of one
// unsharded database.
func TestMergeDateStyle(t *testing.T) {
	e := shardedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := resetRows(ctx, e); err != nil {
		t.Fatal(err)
	}
	queries := []string{
		"select id, date '2026-01-01' + id::int as d from users order by d desc limit 3",
		"select min(timestamptz '2026-01-01 10:00+00' + id * interval '1 day') from users",
	}
	run := func(dsn, datestyle, sql string) (string, error) {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["DateStyle"] = datestyle
		cfg.RuntimeParams["TimeZone"] = "America/New_York"
		c, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		res, err := c.Exec(ctx, sql).ReadAll()
		var rows []string
		for _, r := range res {
			for _, row := range r.Rows {
				for _, v := range row {
					rows = append(rows, string(v))
				}
			}
		}
		return strings.Join(rows, " "), err
	}
	for _, sql := range queries {
		want, err := run(e.Cluster.Shards[0].Primary.DSN(singleDB), "ISO, MDY", sql)
		if err != nil {
			t.Fatalf("%s on one database: %v", sql, err)
		}
		if got, err := run(proxyDSN(e.Proxy.Addr), "ISO, MDY", sql); err != nil || got != want {
			t.Errorf("%s under ISO: got %q, %v; want %q", sql, got, err, want)
		}
		for _, style := range []string{"German", "SQL, DMY", "Postgres"} {
			_, err := run(proxyDSN(e.Proxy.Addr), style, sql)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Hint, "DateStyle = ISO") {
				t.Errorf("%s under DateStyle %s: err %v; want 0A000 with a DateStyle hint", sql, style, err)
			}
		}
	}
}

// TestMultiShardWriteOnFlush: a write over several shards runs (and
// commits) at its batch's Sync, so executed on Flush it is refused with
// 0A000 and a hint, where it stands in the batch; the session goes on.
func TestMultiShardWriteOnFlush(t *testing.T) {
	e := shardedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := parseScript("write_on_flush", `send
Parse {"Query": "update users set score = score + 1 where score > 50 returning id"}
Bind {}
Execute {}
Flush
until
ErrorResponse
send
Sync
until
ReadyForQuery
send
Query {"String": "select count(*) from users where score > 50"}
until
ReadyForQuery`)
	if err != nil {
		t.Fatal(err)
	}
	tr := play(ctx, proxyDSN(e.Proxy.Addr), shardedProfiles()[0], s, proxyTimeout, nil)
	if len(tr) != 3 || !strings.Contains(strings.Join(tr[0], " "), `"Code":"0A000"`) ||
		!strings.Contains(strings.Join(tr[0], " "), "send Sync after its Execute") ||
		!strings.Contains(strings.Join(tr[1], " "), `"TxStatus":"I"`) || !strings.Contains(strings.Join(tr[2], " "), "DataRow") {
		t.Fatalf("transcript %v", tr)
	}
}
