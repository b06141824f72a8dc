package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/test/testenv"
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
func runsVersion(m *testenv.Member, v int64) bool {
	rows, err := m.Admin("SHOW VERSION")
	if err != nil || len(rows) != 1 || !strings.Contains(rows[0][0], fmt.Sprintf("config version %d ", v)) {
		return false
	}
	return metric(m, "pgrouter_config_version") == fmt.Sprint(v)
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
		took := waitUntil(t, 10*time.Second, m.Name+" runs version "+fmt.Sprint(v), func() bool { return runsVersion(m, v) })
		t.Logf("%s runs version %d after %s", m.Name, v, took.Round(time.Millisecond))
	}
	rows, err := fleet[1].Admin("SHOW FLEET")
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
		c, err := pgx.Connect(ctx, m.DSN()) // before the pause: a login waits for it too
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		conns[i] = c
	}
	if _, err := fleet[0].Admin("FLEET PAUSE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fleet[0].Admin("FLEET RESUME") }) // whatever happens below
	done := make(chan error, len(fleet))
	for i, c := range conns {
		go func() {
			_, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'paused')", 1000+i)
			done <- err
		}()
	}
	for _, m := range fleet { // each member holds its client's write (not: it has yet to arrive)
		waitUntil(t, 10*time.Second, m.Name+" holds a write", func() bool { return metric(m, "pgrouter_clients_paused") == "1" })
	}
	if n := directCount(t, "select count(*) from users where user_id between 1000 and 1010"); n != 0 {
		t.Fatalf("%d writes went through a paused fleet", n)
	}
	select {
	case err := <-done:
		t.Fatalf("a write finished while the fleet was paused (err %v)", err)
	default:
	}
	if _, err := fleet[2].Admin("FLEET RESUME"); err != nil {
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
// sampled from pg_stat_activity while they run, and while a fourth member
// joins and leaves.
func TestBudgetHoldsUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients = 300
	waitSharesSettled(t)
	conns := make([]*pgx.Conn, clients)
	for i := range conns {
		c, err := pgx.Connect(ctx, fleet[i%len(fleet)].DSN())
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
	// Mid-load a fourth member joins (the others' shares drop from 4 to 3:
	// their saturated pools must shrink first) and then leaves (SIGTERM:
	// its lease is revoked and the shares grow back).
	churn := make(chan string, 1)
	go func() { churn <- joinAndLeave(t) }()
	most := sampleBackends(t, ctx, 8*time.Second)
	if msg := <-churn; msg != "" {
		t.Fatal(msg)
	}
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

// joinAndLeave starts a fourth member, waits until the fleet gave it its
// share of the budget, stops it gracefully and waits until the three took
// the budget back. It returns what went wrong, or "".
func joinAndLeave(t *testing.T) string {
	// Join under load: once every member has clients queued for a backend,
	// its pools are full to its share and must shrink before the joiner gets one.
	deadline := time.Now().Add(20 * time.Second)
	for _, m := range fleet {
		for metricSum(m, "pgrouter_pool_clients_waiting") == 0 {
			if time.Now().After(deadline) {
				return m.Name + ": no client ever waited for a backend: the load does not saturate the budget"
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	joiner, err := startMember(tmp, "joiner", etcd.URL)
	if err != nil {
		return err.Error()
	}
	defer joiner.Kill()
	if !eventuallyShares(budget/4, 4) {
		return "the shares did not move to 3 each with a fourth member"
	}
	joiner.Leave()
	if !eventuallyShares(budget/3, 3) {
		return "the shares did not return to 4 each after the fourth member left"
	}
	return ""
}

// eventuallyShares reports whether, within 20s, SHOW FLEET lists n members
// each holding share.
func eventuallyShares(share, n int) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		rows, err := fleet[0].Admin("SHOW FLEET")
		ok := err == nil && len(rows) == n
		for _, r := range rows {
			ok = ok && r[3] == fmt.Sprint(share)
		}
		if ok {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// sampleBackends samples pg_stat_activity on every primary for d and
// returns the most pool backends of user postgres in database app seen at
// once per node (the pools' application_name follows the clients', so only
// the health monitors' sessions are told apart). The first sample over the
// budget is logged backend by backend, with the member that opened each.
func sampleBackends(t *testing.T, ctx context.Context, d time.Duration) map[string]int {
	t.Helper()
	stop := make(chan struct{})
	time.AfterFunc(d, func() { close(stop) })
	return sampleBackendsUntil(t, ctx, stop)
}

// sampleBackendsUntil is sampleBackends until stop is closed (or ctx ends).
func sampleBackendsUntil(t *testing.T, ctx context.Context, stop <-chan struct{}) map[string]int {
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
	for {
		select {
		case <-stop:
			return most
		case <-ctx.Done():
			return most
		default:
		}
		for i, c := range conns {
			rows, err := c.Query(ctx, `select pid, backend_start::text, coalesce(state, '') from pg_stat_activity
				where datname = 'app' and usename = 'postgres' and backend_type = 'client backend'
				  and application_name <> 'pgrouter-monitor'`)
			if err != nil {
				t.Fatal(err)
			}
			backends, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pgBackend])
			if err != nil {
				t.Fatal(err)
			}
			name := env.Cluster.Shards[i].Name
			if len(backends) > budget && most[name] <= budget {
				t.Logf("node %s over the budget: %d backends", name, len(backends))
				for _, b := range backends {
					t.Logf("  pid %d started %s state %s opened by %s", b.PID, b.Started, b.State, openerOf(b.PID))
				}
			}
			most[name] = max(most[name], len(backends))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pgBackend is one row of pg_stat_activity.
type pgBackend struct {
	PID     int32
	Started string
	State   string
}

// openerOf names the member whose log says it connected backend pid.
func openerOf(pid int32) string {
	needle := fmt.Sprintf("backend_pid=%d ", pid)
	logs, _ := filepath.Glob(filepath.Join(tmp, "*.log"))
	for _, path := range logs {
		out, _ := os.ReadFile(path)
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "backend connected") && strings.Contains(line, needle) {
				return filepath.Base(path) + ": " + line[:min(len(line), 40)]
			}
		}
	}
	return "no member's log"
}

// TestFleetPauseNamesTheMemberThatDidNotAck: with one member frozen
// (SIGSTOP: it neither runs the PAUSE nor renews its lease), FLEET PAUSE
// fails naming it, and the members that paused are resumed; once it
// thaws it runs the PAUSE and the RESUME in order and serves again.
func TestFleetPauseNamesTheMemberThatDidNotAck(t *testing.T) {
	ctx := context.Background()
	frozen := fleet[2]
	if err := frozen.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			frozen.Cmd.Process.Signal(syscall.SIGCONT)
			thawed = true
		}
	}
	defer thaw()
	_, err := fleet[0].Admin("FLEET PAUSE")
	if err == nil || !strings.Contains(err.Error(), frozen.Addr) || !strings.Contains(err.Error(), "were resumed") {
		t.Fatalf("FLEET PAUSE with %s frozen: %v; want an error naming it, the others resumed", frozen.Addr, err)
	}
	t.Logf("FLEET PAUSE: %v", err)
	for _, m := range fleet[:2] {
		c, err := pgx.Connect(ctx, m.DSN())
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = c.Exec(wctx, "select 1 from users limit 1")
		cancel()
		c.Close(ctx)
		if err != nil {
			t.Fatalf("%s after the failed PAUSE: %v (still paused?)", m.Name, err)
		}
	}
	thaw()
	waitUntil(t, 20*time.Second, frozen.Name+" back in the fleet", func() bool {
		rows, err := fleet[0].Admin("SHOW FLEET")
		return err == nil && len(rows) == len(fleet)
	})
	c, err := pgx.Connect(ctx, frozen.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Exec(wctx, "select 1 from users limit 1"); err != nil {
		t.Fatalf("%s after it thawed: %v (left paused?)", frozen.Name, err)
	}
}
