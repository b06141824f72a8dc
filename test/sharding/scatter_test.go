package sharding

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// rowsOf runs q and renders every row as text, in the order received.
func rowsOf(t *testing.T, c *pgx.Conn, q string, mode ...pgx.QueryExecMode) ([]string, error) {
	t.Helper()
	m := pgx.QueryExecModeSimpleProtocol
	if len(mode) > 0 {
		m = mode[0]
	}
	rows, err := c.Query(context.Background(), q, m)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out, rows.Err()
}

// TestScatterGatherMatchesOnePostgres loads the same rows into a sharded
// table (through pgrouter) and into one plain table (directly), then checks
// that cross-shard SELECTs through pgrouter return exactly what the single
// Postgres returns (as multisets where the SQL leaves the order open).
func TestScatterGatherMatchesOnePostgres(t *testing.T) {
	ctx := context.Background()
	proxy := connect(t, pgx.QueryExecModeCacheStatement)
	single, err := env.Cluster.Shards[0].Primary.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close(ctx)
	if _, err := single.Exec(ctx, "create table if not exists sales (user_id bigint, region text, amount int, at date)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		region := []string{"eu", "us", "apac", "latam"}[i%4]
		var amount any = (i * 37) % 101
		if i%17 == 0 {
			amount = nil
		}
		day := fmt.Sprintf("2026-0%d-%02d", 1+i%9, 1+i%28)
		for _, c := range []*pgx.Conn{proxy, single} {
			if _, err := c.Exec(ctx, "insert into sales (user_id, region, amount, at) values ($1, $2, $3, $4)", i, region, amount, day); err != nil {
				t.Fatalf("insert: %v", err)
			}
		}
	}
	queries := []struct {
		sql     string
		ordered bool
	}{
		{"select user_id, region, amount from sales", false},
		{"select user_id, amount from sales order by amount desc nulls last, user_id limit 20", true},
		{"select user_id from sales order by user_id limit 10 offset 25", true},
		{"select count(*) from sales", true},
		{"select count(amount), sum(amount), min(amount), max(amount) from sales", true},
		{"select avg(amount) from sales", true},
		{"select region, count(*), sum(amount), avg(amount) from sales group by region order by region", true},
		{"select region, count(*) from sales group by region having count(*) > 74 order by 1", true},
		{"select distinct region from sales order by region", true},
		{"select count(distinct region) from sales", true},
		{"select at, count(*) from sales group by at order by at desc limit 5", true},
		{"select user_id, at from sales where amount > 90 order by at, user_id", true},
		{"select region from sales where user_id in (1, 2, 3, 250)", false},
		{"select bool_and(amount > 0), bool_or(amount > 99) from sales", true},
	}
	for _, q := range queries {
		want, err := rowsOf(t, single, q.sql)
		if err != nil {
			t.Fatalf("%s on one Postgres: %v", q.sql, err)
		}
		if !q.ordered {
			sort.Strings(want)
		}
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
			got, err := rowsOf(t, proxy, q.sql, mode)
			if err != nil && mode != pgx.QueryExecModeSimpleProtocol && sqlState(err) == "0A000" && strings.Contains(err.Error(), "binary numeric") {
				continue // documented limit: numeric in binary format is not merged (pgx asks binary when it knows the type)
			}
			if err != nil {
				t.Errorf("%s through pgrouter (%v): %v", q.sql, mode, err)
				continue
			}
			if !q.ordered {
				sort.Strings(got)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s (%v):\n got %d rows %.300v\nwant %d rows %.300v", q.sql, mode, len(got), got, len(want), want)
			}
		}
	}
	// Extended protocol with a parameter, binary results.
	var n int64
	if err := proxy.QueryRow(ctx, "select count(*) from sales where amount > $1", 50).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var m int64
	single.QueryRow(ctx, "select count(*) from sales where amount > $1", 50).Scan(&m)
	if n != m {
		t.Fatalf("extended count: %d through pgrouter, %d on one Postgres", n, m)
	}
	// Unsupported shapes are refused clearly.
	if _, err := rowsOf(t, proxy, "select user_id, rank() over (order by amount) from sales"); sqlState(err) != "0A000" {
		t.Errorf("window function across shards: want 0A000, got %v", err)
	}
}
