package differential

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestGeneratedQueriesMatchOnePostgres complements the hand-written corpus
// with queries built from a fixed seed (the same every run): random select
// lists, filters, ORDER BY directions and NULLS placement, LIMIT/OFFSET,
// DISTINCT, GROUP BY with aggregates and HAVING. Every ORDER BY ends in
// keys that make the order total, so results compare as lists.
// DIFF_GEN_N and DIFF_GEN_SEED run more or other queries when hunting bugs.
func TestGeneratedQueriesMatchOnePostgres(t *testing.T) {
	n, seed := 250, uint64(2026)
	if v, err := strconv.Atoi(os.Getenv("DIFF_GEN_N")); err == nil {
		n = v
	}
	if v, err := strconv.ParseUint(os.Getenv("DIFF_GEN_SEED"), 10, 64); err == nil {
		seed = v
	}
	rng := rand.New(rand.NewPCG(6, seed))
	qs := make([]query, n)
	for i := range qs {
		switch i % 5 {
		case 0:
			qs[i] = genRows(rng)
		case 1:
			qs[i] = genDistinct(rng)
		case 2:
			qs[i] = genAggregate(rng)
		case 3:
			qs[i] = genJoinRows(rng)
		default:
			qs[i] = genJoinAggregate(rng)
		}
	}
	ctx := context.Background()
	// Every client profile at once, each on its share of the queries.
	eachPair(t, profiles, func(pi int, p pair) {
		single, proxy := p.single, p.proxy
		pass := make([]int, len(modes))
		mine := 0
		for i, q := range qs {
			if i%len(profiles) != pi {
				continue
			}
			mine++
			want, err := runSimple(ctx, single, q)
			if err != nil {
				t.Errorf("generated query %d is invalid: %s: %v", i, q.sql, err)
				return
			}
			for mi, m := range modes {
				w, err := m.run(ctx, single, q, len(want.cols))
				if err != nil {
					t.Errorf("%s [%s] on one Postgres: %v", q.sql, m.name, err)
					return
				}
				got, err := m.run(ctx, proxy, q, len(want.cols))
				if err != nil {
					t.Errorf("%s [%s] profile %s through pgrouter: %v", q.sql, m.name, p.name, err)
					continue
				}
				if d := diff(w, got, q.ordered); d != "" {
					t.Errorf("%s [%s] profile %s: %s", q.sql, m.name, p.name, d)
					continue
				}
				pass[mi]++
			}
		}
		for mi, m := range modes {
			t.Logf("profile %s mode %-16s %d/%d generated queries identical", p.name, m.name, pass[mi], mine)
		}
	})
}

var (
	genCols  = []string{"id", "name", "email", "score", "age", "balance", "created_at", "last_login", "uid", "active", "region", "plan_id"}
	genExprs = []string{"age + 1", "score * 2", "upper(name)", "created_at::date", "coalesce(region, '-')", "-balance", "age::float8 / 4", "length(email)"}
	genWhere = []string{"", "", "age > 40", "score < 0", "region is null", "active", "name like 'user1%'",
		"created_at < '2025-01-12'", "last_login is not null", "balance between -1000000000 and 2000000000", "plan_id in (1, 3)", "email is null or age < 25"}
	genGroups = []string{"region", "active", "plan_id", "age / 10", "created_at::date", "name", "score > 0"}
	genAggs   = []string{"count(*)", "count(email)", "sum(age)", "sum(score)", "sum(balance)", "min(name)", "max(name)", "min(score)", "max(created_at)",
		"min(last_login)", "avg(age)", "avg(score)", "avg(balance)", "bool_and(active)", "bool_or(active)", "count(distinct region)", "count(distinct age)", "max(age::float8)"}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func orderItem(rng *rand.Rand, expr string) string {
	dir := pick(rng, []string{"", " asc", " desc"})
	nulls := pick(rng, []string{"", "", " nulls first", " nulls last"})
	return expr + dir + nulls
}

func where(rng *rand.Rand) string {
	if w := pick(rng, genWhere); w != "" {
		return " where " + w
	}
	return ""
}

func limitClause(rng *rand.Rand) string {
	switch rng.IntN(4) {
	case 0:
		return fmt.Sprintf(" limit %d", rng.IntN(30))
	case 1:
		return fmt.Sprintf(" limit %d offset %d", 1+rng.IntN(20), rng.IntN(40))
	case 2:
		return fmt.Sprintf(" offset %d", rng.IntN(50))
	}
	return ""
}

// genRows: plain rows, ORDER BY random keys (selected or not) then id.
func genRows(rng *rand.Rand) query {
	var sel []string
	for range 1 + rng.IntN(4) {
		if rng.IntN(4) == 0 {
			sel = append(sel, pick(rng, genExprs))
		} else {
			sel = append(sel, pick(rng, genCols))
		}
	}
	var order []string
	for range rng.IntN(3) {
		order = append(order, orderItem(rng, pick(rng, append(genCols, genExprs...))))
	}
	order = append(order, orderItem(rng, "id"))
	return query{ordered: true, sql: "select " + strings.Join(sel, ", ") + " from users" + where(rng) +
		" order by " + strings.Join(order, ", ") + limitClause(rng)}
}

// genDistinct: SELECT DISTINCT, ordered by every selected column.
func genDistinct(rng *rand.Rand) query {
	seen := map[string]bool{}
	var sel, order []string
	for range 1 + rng.IntN(3) {
		c := pick(rng, []string{"region", "active", "plan_id", "age", "name", "created_at::date", "score", "age / 10", "uid"})
		if !seen[c] {
			seen[c] = true
			sel = append(sel, c)
			order = append(order, orderItem(rng, c))
		}
	}
	return query{ordered: true, sql: "select distinct " + strings.Join(sel, ", ") + " from users" + where(rng) +
		" order by " + strings.Join(order, ", ") + limitClause(rng)}
}

// genAggregate: GROUP BY 0–2 keys with 1–3 aggregates, optional HAVING,
// ordered by every group key (groups are unique, so the order is total).
func genAggregate(rng *rand.Rand) query {
	seen := map[string]bool{}
	var keys []string
	for range rng.IntN(3) {
		if k := pick(rng, genGroups); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sel := append([]string(nil), keys...)
	for range 1 + rng.IntN(3) {
		sel = append(sel, pick(rng, genAggs))
	}
	sql := "select " + strings.Join(sel, ", ") + " from users" + where(rng)
	if len(keys) == 0 {
		return query{ordered: true, sql: sql}
	}
	sql += " group by " + strings.Join(keys, ", ")
	if rng.IntN(3) == 0 {
		sql += pick(rng, []string{" having count(*) > 2", " having max(age) >= 50", " having min(name) < 'user3'",
			" having sum(score) > 0", " having avg(age) < 50 and count(*) > 1"})
	}
	var order []string
	for _, k := range keys {
		order = append(order, orderItem(rng, k))
	}
	if rng.IntN(3) == 0 {
		order = append([]string{orderItem(rng, pick(rng, []string{"count(*)", "max(age)", "min(name)", "sum(score)"}))}, order...)
	}
	return query{ordered: true, sql: sql + " order by " + strings.Join(order, ", ") + limitClause(rng)}
}

// The co-located join: users' and orders' column names do not clash.
var (
	genJoins     = []string{"users join orders on orders.user_id = users.id", "users left join orders on orders.user_id = users.id"}
	genOrderCols = []string{"order_id", "amount", "qty", "status", "placed_at", "note"}
	genOrderAggs = []string{"sum(amount)", "avg(amount)", "avg(qty)", "min(placed_at)", "max(status)", "count(distinct status)", "count(order_id)", "sum(qty)"}
)

// genJoinRows: joined rows ordered by random keys, then (id, order_id).
func genJoinRows(rng *rand.Rand) query {
	var sel []string
	for range 1 + rng.IntN(4) {
		sel = append(sel, pick(rng, append(genCols, genOrderCols...)))
	}
	var order []string
	for range rng.IntN(3) {
		order = append(order, orderItem(rng, pick(rng, append(genCols, genOrderCols...))))
	}
	order = append(order, orderItem(rng, "id"), orderItem(rng, "order_id"))
	return query{ordered: true, sql: "select " + strings.Join(sel, ", ") + " from " + pick(rng, genJoins) + where(rng) +
		" order by " + strings.Join(order, ", ") + limitClause(rng)}
}

// genJoinAggregate: aggregates over the join, grouped by users' or orders'
// columns, ordered by every group key.
func genJoinAggregate(rng *rand.Rand) query {
	seen := map[string]bool{}
	var keys []string
	for range 1 + rng.IntN(2) {
		if k := pick(rng, append(genGroups, "status", "qty")); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sel := append([]string(nil), keys...)
	for range 1 + rng.IntN(3) {
		sel = append(sel, pick(rng, append(genAggs, genOrderAggs...)))
	}
	var order []string
	for _, k := range keys {
		order = append(order, orderItem(rng, k))
	}
	return query{ordered: true, sql: "select " + strings.Join(sel, ", ") + " from " + pick(rng, genJoins) + where(rng) +
		" group by " + strings.Join(keys, ", ") + " order by " + strings.Join(order, ", ") + limitClause(rng)}
}
