package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// waitUntil polls cond every 20ms until it holds or within passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not reached within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// runsVersion reports whether m says it runs config version v, in SHOW
// VERSION and in the pgrouter_config_version metric.
func runsVersion(m *member, v int64) bool {
	rows, err := m.admin("SHOW VERSION")
	if err != nil || len(rows) != 1 || !strings.Contains(rows[0][0], fmt.Sprintf("config version %d ", v)) {
		return false
	}
	return metric(m, "pgrouter_config_version") == fmt.Sprint(v)
}

// scrape reads m's /metrics ("" when it does not answer).
func scrape(m *member) string {
	resp, err := http.Get("http://" + m.metrics + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// TestPushReachesEveryMember: a pushed version is applied by all three
// members, each reports it (SHOW VERSION, metric, SHOW FLEET on any member),
// and a version that does not validate is refused by push with file:line.
func TestPushReachesEveryMember(t *testing.T) {
	out, err := push(fleetYAML(env, "timeouts:\n  query: 30s\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := versionOf(t, out)
	for _, m := range fleet {
		took := waitUntil(t, 10*time.Second, m.name+" runs version "+fmt.Sprint(v), func() bool { return runsVersion(m, v) })
		t.Logf("%s runs version %d after %s", m.name, v, took.Round(time.Millisecond))
	}
	rows, err := fleet[1].admin("SHOW FLEET")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(fleet) {
		t.Fatalf("SHOW FLEET lists %d members, want %d: %v", len(rows), len(fleet), rows)
	}
	for _, r := range rows {
		if r[1] != fmt.Sprint(v) || r[2] != "ok" {
			t.Errorf("SHOW FLEET row %v: want config_version %d, health ok", r, v)
		}
	}
	bad, err := push(fleetYAML(env, "timeouts:\n  query: soon\n"))
	if err == nil || !strings.Contains(bad, ".yaml:") || !strings.Contains(bad, "timeouts.query") {
		t.Fatalf("push of an invalid file: err %v, output %q; want a file:line error naming timeouts.query", err, bad)
	}
}

// TestFleetPauseHoldsWritesEverywhere: FLEET PAUSE on one member holds new
// transactions on all three until FLEET RESUME (sent to another member).
func TestFleetPauseHoldsWritesEverywhere(t *testing.T) {
	ctx := context.Background()
	conns := make([]*pgx.Conn, len(fleet))
	for i, m := range fleet {
		c, err := pgx.Connect(ctx, m.dsn()) // before the pause: a login waits for it too
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		conns[i] = c
	}
	if _, err := fleet[0].admin("FLEET PAUSE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet[0].admin("FLEET RESUME") }) // whatever happens below
	done := make(chan error, len(fleet))
	for i, c := range conns {
		go func() {
			_, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'paused')", 1000+i)
			done <- err
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if n := directCount(t, "select count(*) from users where user_id between 1000 and 1010"); n != 0 {
		t.Fatalf("%d writes went through a paused fleet", n)
	}
	select {
	case err := <-done:
		t.Fatalf("a write finished while the fleet was paused (err %v)", err)
	default:
	}
	if _, err := fleet[2].admin("FLEET RESUME"); err != nil {
		t.Fatal(err)
	}
	for range fleet {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("write after RESUME: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("writes still held after FLEET RESUME")
		}
	}
	if n := directCount(t, "select count(*) from users where user_id between 1000 and 1010"); n != len(fleet) {
		t.Fatalf("%d rows after RESUME, want %d", n, len(fleet))
	}
}

// directCount sums a count(*) over both shards' primaries.
func directCount(t *testing.T, sql string) int {
	t.Helper()
	total := 0
	for _, s := range env.Cluster.Shards {
		c, err := s.Primary.Connect(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = c.QueryRow(context.Background(), sql).Scan(&n)
		c.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// TestBudgetHoldsUnderLoad: 300 clients spread over the three members keep
// every node's backends of (app, app) at or under cluster.pool_budget,
// sampled from pg_stat_activity while they run.
func TestBudgetHoldsUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients = 300
	waitSharesSettled(t)
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		c, err := pgx.Connect(ctx, fleet[i%len(fleet)].dsn())
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		defer c.Close(context.Background())
		conns[i] = c
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Exec(ctx, "select pg_sleep(0.02)"); err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
					return
				}
			}
		}()
	}
	most := sampleBackends(t, ctx, 4*time.Second)
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d clients failed, first: %v", len(errs), errs[0])
	}
	for node, n := range most {
		if n > budget {
			t.Errorf("node %s: %d backends of app/app at once, budget %d", node, n, budget)
		}
		t.Logf("node %s: at most %d backends (budget %d)", node, n, budget)
	}
	for node, n := range most {
		if n < budget/2 { // the load saturates every member's share: far below it, the test measured nothing
			t.Errorf("node %s: at most %d backends under 300 clients; want the budget in use (>= %d)", node, n, budget/2)
		}
	}
	if len(most) != len(env.Cluster.Shards) {
		t.Fatalf("sampled %d nodes, want %d", len(most), len(env.Cluster.Shards))
	}
}

// sampleBackends samples pg_stat_activity on every primary for d and
// returns the most pool backends of user postgres in database app seen at
// once per node (the pools' application_name follows the clients', so only
// the health monitors' sessions are told apart).
func sampleBackends(t *testing.T, ctx context.Context, d time.Duration) map[string]int {
	t.Helper()
	most := map[string]int{}
	var conns []*pgx.Conn
	for _, s := range env.Cluster.Shards {
		c, err := s.Primary.Connect(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		conns = append(conns, c)
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for i, c := range conns {
			var n int
			err := c.QueryRow(ctx, `select count(*) from pg_stat_activity
				where datname = 'app' and usename = 'postgres' and backend_type = 'client backend'
				  and application_name <> 'pgrouter-monitor'`).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			name := env.Cluster.Shards[i].Name
			most[name] = max(most[name], n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return most
}
