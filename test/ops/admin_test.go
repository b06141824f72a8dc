package ops

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Every SHOW through psql, in mixed case and with a trailing ';'.
func TestAdminShowViaPsql(t *testing.T) {
	app := connect(t, env.AppDSN())
	if _, err := app.Exec(context.Background(), "select 1"); err != nil { // makes a pool exist
		t.Fatal(err)
	}
	nodes := adminRows(t, "SHOW NODES")
	if len(nodes) != 2 {
		t.Fatalf("SHOW NODES: %d rows, want primary + replica1: %v", len(nodes), nodes)
	}
	if r := nodeRow(t, primary()); r == nil || r[1] != "shard0" || r[3] != "primary" || r[4] != "primary" || r[5] != "true" || r[6] != "" {
		t.Errorf("SHOW NODES primary row: %v", r)
	}
	if r := nodeRow(t, replica1()); r == nil || r[3] != "replica" || r[4] != "replica" || r[7] == "" || r[8] == "" || r[9] != "true" {
		t.Errorf("SHOW NODES replica row (want lag known, in rotation): %v", r)
	}
	if rows := adminRows(t, "show shards;"); len(rows) != 1 || strings.Join(rows[0], "|") != "0|shard0|"+primary()+"|1|round_robin" {
		t.Errorf("SHOW SHARDS: %v", rows)
	}
	pools := adminRows(t, "Show Pools")
	if len(pools) == 0 || pools[0][0] != "app" || pools[0][1] != "app" || len(pools[0]) != 10 || pools[0][9] != "transaction" {
		t.Errorf("SHOW POOLS: %v", pools)
	}
	if srv := adminRows(t, "SHOW SERVERS"); len(srv) == 0 || srv[0][2] != "app" || atoi(t, srv[0][6]) < 1 {
		t.Errorf("SHOW SERVERS (want a pool with ≥1 backend): %v", srv)
	}
	clients := mustAdmin(t, "SHOW CLIENTS")
	if !strings.Contains(clients, "|app|app|") || !strings.Contains(clients, "|admin|pgrouter|") || !strings.Contains(clients, "|idle|") {
		t.Errorf("SHOW CLIENTS lacks the idle app client or the admin itself:\n%s", clients)
	}
	stats := mustAdmin(t, "SHOW STATS")
	for _, want := range []string{"queries_total|", "plan_cache_hits{database=app}|", "queries_total{kind=single,role=replica,shard=shard0}|",
		"query_duration_seconds_count{role=replica,shard=shard0}|", "route_decisions_total{reason=replica}|", "paused|\n"} {
		if !strings.Contains(stats, want) {
			t.Errorf("SHOW STATS lacks %q:\n%s", want, stats)
		}
	}
	cfg := mustAdmin(t, "SHOW CONFIG")
	if !strings.Contains(cfg, "pool.mode|transaction") || !strings.Contains(cfg, "pool.acquire_timeout|2s") || !strings.Contains(cfg, "file|"+env.Path) {
		t.Errorf("SHOW CONFIG:\n%s", cfg)
	}
	if strings.Contains(strings.ToLower(cfg), "password") || strings.Contains(cfg, env.Cluster.Password+"\n") {
		t.Errorf("SHOW CONFIG shows a password:\n%s", cfg)
	}
	if v := mustAdmin(t, "SHOW VERSION"); !strings.Contains(v, "pgrouter") {
		t.Errorf("SHOW VERSION: %q", v)
	}
	if h := mustAdmin(t, "SHOW HELP"); !strings.Contains(h, "PAUSE [db]") {
		t.Errorf("SHOW HELP: %q", h)
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// adminConn is a pgx connection to the console (pgx sends nothing on its
// own after login, so the simple-protocol mode is enough).
func adminConn(t testing.TB) *pgx.Conn {
	return connect(t, env.DSN("admin", "admin", "pgrouter")+"&default_query_exec_mode=simple_protocol")
}

func pgCode(err error) (string, string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.Hint
	}
	return "", ""
}

// Refusals carry SQLSTATEs, and the console session survives every one.
func TestAdminErrors(t *testing.T) {
	ctx := context.Background()
	c := adminConn(t)
	for cmd, want := range map[string]string{
		"FROBNICATE":                  "42601",
		"SHOW NONSENSE":               "42601",
		"BAN":                         "42601",
		"BAN nosuchnode":              "42704",
		"UNBAN nosuchnode":            "42704",
		"BAN " + replica1() + " soon": "22023",
		"PAUSE nosuchdb":              "3D000",
		"RELOAD please":               "42601",
	} {
		_, err := c.Exec(ctx, cmd)
		code, hint := pgCode(err)
		if code != want {
			t.Errorf("%s: %v (code %q), want %s", cmd, err, code, want)
		}
		if want == "42601" && strings.HasPrefix(cmd, "FROB") && !strings.Contains(hint, "SHOW POOLS") {
			t.Errorf("%s: hint %q does not list the commands", cmd, hint)
		}
	}
	// The extended protocol gets 0A000 and the session goes on.
	err := c.PgConn().ExecParams(ctx, "SHOW NODES", nil, nil, nil, nil).Read().Err
	if code, _ := pgCode(err); code != "0A000" {
		t.Errorf("extended protocol: %v, want 0A000", err)
	}
	var one string
	if err := c.QueryRow(ctx, "SHOW VERSION").Scan(&one); err != nil || !strings.Contains(one, "pgrouter") {
		t.Errorf("console after errors: %q %v", one, err)
	}
	// Only admins reach the console.
	_, err = pgx.Connect(ctx, env.DSN("app", "app", "pgrouter"))
	if code, _ := pgCode(err); code != "28000" {
		t.Errorf("app on the console: %v, want 28000", err)
	}
	if out, err := psqlAs(t, "app", "app", "pgrouter", "SHOW NODES"); err == nil || !strings.Contains(out, "not an admin") {
		t.Errorf("psql as app on the console: %v %s", err, out)
	}
}

// readPorts runs n reads through the proxy and counts the server ports.
func readPorts(t testing.TB, c *pgx.Conn, n int) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for i := 0; i < n; i++ {
		var port int
		if err := c.QueryRow(context.Background(), "select inet_server_port()").Scan(&port); err != nil {
			t.Fatal(err)
		}
		seen[port]++
	}
	return seen
}

func TestAdminBanUnban(t *testing.T) {
	c := connect(t, env.AppDSN())
	r1 := env.Cluster.Shards[0].Replicas[0]
	t.Cleanup(func() { adminPsql(t, "UNBAN "+replica1()) })
	mustAdmin(t, "BAN "+replica1()+" 120")
	if r := nodeRow(t, replica1()); r == nil || r[6] == "" {
		t.Errorf("SHOW NODES after BAN: banned_until empty: %v", r)
	}
	if v, _ := sample(scrape(t), "pgrouter_node_banned", map[string]string{"node": replica1()}); v != 1 {
		t.Errorf("pgrouter_node_banned{node=%s} = %v, want 1", replica1(), v)
	}
	if seen := readPorts(t, c, 20); seen[r1.Port] != 0 {
		t.Fatalf("reads reached the banned replica: %v", seen)
	}
	mustAdmin(t, "UNBAN "+replica1())
	eventually(t, 10*time.Second, "reads back on the unbanned replica", func() error {
		if seen := readPorts(t, c, 5); seen[r1.Port] == 0 {
			return errors.New("no read on replica1")
		}
		return nil
	})
	if r := nodeRow(t, replica1()); r[6] != "" {
		t.Errorf("SHOW NODES after UNBAN: %v", r)
	}
}
