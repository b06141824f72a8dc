package differential

import (
	"fmt"
	"strings"
)

// The data is generated, not random: the same rows on every run, chosen to
// have NULLs, duplicates, negative numbers, empty strings and ties in every
// column the queries sort, group or aggregate on.
const (
	nUsers  = 240 // ids -6 … 233
	nEvents = 600
)

// dataInserts returns multi-row INSERTs (literals, so the same text loads
// both sides; pgrouter splits each by shard key).
func dataInserts() []string {
	var out []string
	out = append(out, batched("INSERT INTO users (id, name, email, score, age, balance, created_at, last_login, uid, active, region, plan_id) VALUES ", userRows())...)
	out = append(out, batched("INSERT INTO orders (user_id, order_id, amount, qty, status, placed_at, note) VALUES ", orderRows())...)
	out = append(out, batched("INSERT INTO events (id, kind, val, at, ok, ref) VALUES ", eventRows())...)
	return out
}

func batched(prefix string, rows []string) []string {
	var out []string
	for len(rows) > 0 {
		n := min(50, len(rows))
		out = append(out, prefix+strings.Join(rows[:n], ", "))
		rows = rows[n:]
	}
	return out
}

func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// or returns "NULL" when null, else v.
func or(null bool, v string) string {
	if null {
		return "NULL"
	}
	return v
}

func uuidFor(i int) string {
	return fmt.Sprintf("'%08x-%04x-4%03x-8%03x-%012x'", uint32(i*2654435761), i%65536, i%4096, (i*7)%4096, i*i)
}

func userRows() []string {
	regions := []string{"eu", "us", "apac", "latam", ""}
	var rows []string
	for k := 0; k < nUsers; k++ {
		i := k - 6 // a few negative ids
		a := k + 1000
		name := or(k%29 == 0, lit(fmt.Sprintf("user%02d", (k*7)%53)))
		if k%23 == 0 {
			name = "''"
		}
		email := or(k%7 == 0, lit(fmt.Sprintf("u%d@ex%d.com", k, k%5)))
		score := or(k%11 == 0, fmt.Sprintf("%d.%02d", (a*7919)%20001/100-100, (a*31)%100))
		age := or(k%13 == 0, fmt.Sprint(18+(k*37)%60))
		balance := or(k%31 == 0, fmt.Sprint(int64(a)*1000003%9000000000-4000000000))
		created := or(k%37 == 0, fmt.Sprintf("'2025-01-01 00:00:00'::timestamp + interval '%d hours %d minutes'", (k*7)%500, k%3*20))
		login := or(k%9 == 0, fmt.Sprintf("'2026-03-01 00:00:00+00'::timestamptz + interval '%d hours'", (k*13)%700))
		uid := or(k%41 == 0, uuidFor(k))
		active := or(k%17 == 0, fmt.Sprint(k%3 != 0))
		region := or(k%19 == 0, lit(regions[k%5]))
		plan := or(k%23 == 0, fmt.Sprint(1+k%5)) // 5 has no plan row
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
			i, name, email, score, age, balance, created, login, uid, active, region, plan))
	}
	return rows
}

func orderRows() []string {
	statuses := []string{"new", "paid", "shipped", "cancelled"}
	notes := []string{"gift", "", "rush", "gift"}
	var rows []string
	for k := 0; k < nUsers; k++ {
		uid := k - 6
		for o := 1; o <= k%5; o++ {
			amount := or((k+o)%13 == 0, fmt.Sprintf("%d.%d0", (k*31+o*17)%500-50, (k+o)%10))
			qty := fmt.Sprint((k+o)%7 - 1)
			status := lit(statuses[(k*o)%4])
			placed := fmt.Sprintf("'2026-01-01 00:00:00+00'::timestamptz + interval '%d minutes'", (k*97+o*13)%20000)
			note := or((k*o)%5 == 0, lit(notes[(k+o)%4]))
			rows = append(rows, fmt.Sprintf("(%d, %d, %s, %s, %s, %s, %s)", uid, o, amount, qty, status, placed, note))
		}
	}
	// users with no row in users: orders whose user is gone
	rows = append(rows, "(9001, 1, 10.00, 1, 'paid', '2026-02-02 00:00:00+00', NULL)", "(9002, 1, NULL, 0, 'new', NULL, 'x')")
	return rows
}

func eventRows() []string {
	kinds := []string{"click", "view", "buy", "view"}
	var rows []string
	for k := 0; k < nEvents; k++ {
		id := k*5 - 20 // -20 … 2975, over all three ranges
		kind := or(k%11 == 0, lit(kinds[k%4]))
		val := or(k%15 == 0, fmt.Sprint((k*53)%211-70))
		at := fmt.Sprintf("'2026-05-01 00:00:00'::timestamp + interval '%d seconds'", (k*7919)%86400)
		ok := or(k%10 == 0, fmt.Sprint(k%4 == 1))
		ref := or(k%3 == 0, uuidFor(k%40))
		rows = append(rows, fmt.Sprintf("(%d, %s, %s, %s, %s, %s)", id, kind, val, at, ok, ref))
	}
	return rows
}
