package twophase

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// An undecided prepared transaction of this pgrouter (as a crash before
// the decision leaves it) is listed by SHOW TRANSACTIONS and rolled back
// by RECOVER; prepared transactions of others are never touched.
func TestAdminListsAndRecovers(t *testing.T) {
	ctx := context.Background()
	id, err := os.ReadFile(filepath.Join(filepath.Dir(env.Path), "pgrouter-data", "instance_id"))
	if err != nil {
		t.Fatal(err)
	}
	admin := connectTo(t, env.DSN("admin", "admin", "pgrouter"), pgx.QueryExecModeSimpleProtocol)
	foreign := "someone_else_1"
	sh := direct(t, 0)
	if _, err := sh.Exec(ctx, "begin; insert into users (user_id, name) values (-1, 'foreign'); prepare transaction '"+foreign+"'"); err != nil {
		t.Fatal(err)
	}
	defer sh.Exec(ctx, "rollback prepared '"+foreign+"'")

	// The background recovery pass (every 5s) may win the race for an
	// orphan; try a few times to observe it through the console first.
	listed := false
	for attempt := 0; attempt < 5 && !listed; attempt++ {
		gid := "pgrouter_" + strings.TrimSpace(string(id)) + "_manual_" + itoa(int64(attempt))
		if _, err := sh.Exec(ctx, "begin; insert into users (user_id, name) values (-2, 'orphan'); prepare transaction '"+gid+"'"); err != nil {
			t.Fatal(err)
		}
		rows, err := admin.Query(ctx, "SHOW TRANSACTIONS")
		if err != nil {
			t.Fatal(err)
		}
		table, err := pgx.CollectRows(rows, pgx.RowToMap)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range table {
			if r["gid"] == foreign {
				t.Fatalf("SHOW TRANSACTIONS lists a prepared transaction pgrouter does not own: %v", r)
			}
			if r["gid"] == gid {
				listed = true
				if r["decision"] != "undecided" || r["shards"] != "shard0" {
					t.Fatalf("orphan row = %v, want decision undecided on shard0", r)
				}
			}
		}
		tag, err := admin.Exec(ctx, "RECOVER")
		if err != nil || !strings.HasPrefix(tag.String(), "RECOVER ") {
			t.Fatalf("RECOVER: %q %v", tag, err)
		}
		if listed && tag.String() != "RECOVER 1" {
			t.Fatalf("RECOVER after listing one orphan: %q", tag)
		}
	}
	if !listed {
		t.Fatal("SHOW TRANSACTIONS never listed the orphan prepared transaction")
	}
	var left []string
	for _, g := range preparedLeft(t) {
		if g != foreign {
			left = append(left, g)
		}
	}
	if len(left) > 0 {
		t.Fatalf("orphans left after RECOVER: %v", left)
	}
	var n int
	if err := sh.QueryRow(ctx, "select count(*) from pg_prepared_xacts where gid = $1", foreign).Scan(&n); err != nil || n != 1 {
		t.Fatalf("foreign prepared transaction was touched: %d %v", n, err)
	}
}

// The 2PC counters are exported and move.
func TestTwoPhaseMetrics(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 40000, 1), keysOn(t, 1, 40000, 1)
	before := scrape(t)
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	if _, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'x'), ($2, 'x')", a[0], b[0]); err != nil {
		t.Fatal(err)
	}
	after := scrape(t)
	if metric(after, "pgrouter_2pc_commits_total") != metric(before, "pgrouter_2pc_commits_total")+1 {
		t.Fatalf("pgrouter_2pc_commits_total did not move by one:\n%s", grep(after, "pgrouter_2pc"))
	}
	if !strings.Contains(after, "pgrouter_2pc_in_doubt 0") || !strings.Contains(after, "pgrouter_2pc_aborts_total") {
		t.Fatalf("2PC gauges missing:\n%s", grep(after, "pgrouter_2pc"))
	}
	// A reference-table write goes to every shard: counted as broadcast.
	bcast := `pgrouter_queries_total{kind="broadcast",role="primary",shard="shard1"}`
	if _, err := c.Exec(ctx, "update plans set name = name where id = -1"); err != nil {
		t.Fatal(err)
	}
	if final := scrape(t); metric(final, bcast) != metric(after, bcast)+1 && !(metric(after, bcast) == -1 && metric(final, bcast) == 1) {
		t.Fatalf("%s did not move by one:\n%s", bcast, grep(final, "pgrouter_queries_total"))
	}
}

func scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + env.Proxy.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func metric(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func grep(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
