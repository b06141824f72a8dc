package overload

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// limitsSections: 5 clients in all (+2 for the admin console), 3 per user,
// 4 per database, and a statement rate of 1/s with a bucket of 3 that
// refuses at once (query_rate_wait 0) so counts are deterministic. Slow
// health checks on a busy machine must not take the primary away.
var limitsSections = map[string]string{
	"pool":   "  size: 1\n  max_clients: 5\n  max_waiters: 1\n  acquire_timeout: 30s",
	"limits": "  max_clients_per_user: 3\n  max_clients_per_database: 4\n  admin_reserved: 2\n  user_query_rate: 1\n  user_query_burst: 3\n  query_rate_wait: 0s",
	"health": "  timeout: 5s\n  fail_threshold: 5",
}

// conns opens clients and closes them when the test ends.
type conns struct {
	t *testing.T
	e *testenv.Env
}

func (cs conns) open(user, password, db string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, cs.e.DSN(user, password, db))
	if err == nil {
		cs.t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

func (cs conns) must(user, password, db string) *pgx.Conn {
	cs.t.Helper()
	c, err := cs.open(user, password, db)
	if err != nil {
		cs.t.Fatalf("connect %s@%s: %v", user, db, err)
	}
	return c
}

// wantRefused checks that err is the PgError Postgres would send.
func wantRefused(t *testing.T, err error, code, message string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want SQLSTATE %s %q", err, code, message)
	}
	if pe.Code != code || pe.Message != message || pe.Hint == "" {
		t.Fatalf("got %s %q (hint %q), want %s %q with a hint", pe.Code, pe.Message, pe.Hint, code, message)
	}
}

func TestOverloadLimits(t *testing.T) {
	users := testenv.DefaultUsers("postgres") // localpg's default superuser password
	for i := range users {
		if users[i].Name == "trusty" {
			users[i].Extra = "    max_clients: 1" // overrides limits.max_clients_per_user
		}
	}
	e := startEnv(t, testenv.Options{Sections: limitsSections, Users: users})
	// Each part closes its clients when it ends; the pause lets pgrouter see
	// those closes before the next part counts clients.
	settle := func() { time.Sleep(300 * time.Millisecond) }
	t.Run("per_user_and_database_clients", func(t *testing.T) { clientLimits(t, e) })
	settle()
	t.Run("user_max_clients", func(t *testing.T) { userOverride(t, e) })
	settle()
	t.Run("admin_console_priority", func(t *testing.T) { adminPriority(t, e) })
	settle()
	t.Run("user_query_rate", func(t *testing.T) { queryRate(t, e) })
	settle()
	t.Run("pool_queue_sheds_early", func(t *testing.T) { queueShed(t, e) })
	t.Run("metrics", func(t *testing.T) { limitMetrics(t, e) })
}

// clientLimits: a fourth client of one user and a fifth of one database are
// refused with Postgres' 53300 messages; a freed slot can be used again.
func clientLimits(t *testing.T, e *testenv.Env) {
	cs := conns{t, e}
	a1 := cs.must("app", "app", "app")
	cs.must("app", "app", "app")
	cs.must("app", "app", "app")
	_, err := cs.open("app", "app", "app")
	wantRefused(t, err, "53300", `too many connections for role "app"`)
	a1.Close(context.Background())
	time.Sleep(100 * time.Millisecond) // the server side of the close
	cs.must("app", "app", "app")

	cs.must("md5user", "md5pw", "app") // fourth client of database app
	_, err = cs.open("md5user", "md5pw", "app")
	wantRefused(t, err, "53300", `too many connections for database "app"`)
}

// userOverride: a user's own max_clients (1) beats max_clients_per_user.
func userOverride(t *testing.T, e *testenv.Env) {
	cs := conns{t, e}
	cs.must("trusty", "", "app")
	_, err := cs.open("trusty", "", "app")
	wantRefused(t, err, "53300", `too many connections for role "trusty"`)
}

// adminPriority: with pool.max_clients (5) reached, clients are refused but
// the admin console still lets admin_reserved (2) operators in.
func adminPriority(t *testing.T, e *testenv.Env) {
	cs := conns{t, e}
	cs.must("app", "app", "app")
	cs.must("app", "app", "app")
	cs.must("app", "app", "app")
	cs.must("md5user", "md5pw", "app")
	cs.must("admin", "admin", "pgrouter")
	_, err := cs.open("trusty", "", "app")
	wantRefused(t, err, "53300", "sorry, too many clients already")
	for i := range 2 {
		c, err := cs.open("admin", "admin", "pgrouter")
		if err != nil {
			t.Fatalf("admin console login %d at pool.max_clients: %v", i+1, err)
		}
		if _, err := c.Exec(context.Background(), "SHOW CLIENTS", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("admin console at pool.max_clients: SHOW CLIENTS: %v", err)
		}
	}
	_, err = cs.open("admin", "admin", "pgrouter")
	wantRefused(t, err, "53300", "sorry, too many clients already")
}

// queryRate: past the burst, a statement outside a transaction is refused
// with 53400 and the session stays usable; inside a transaction nothing is
// refused. Both protocols.
func queryRate(t *testing.T, e *testenv.Env) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			c := conns{t, e}.must("md5user", "md5pw", "app")
			ctx := context.Background()
			time.Sleep(3 * time.Second) // a full bucket
			ok, refused := 0, 0
			for range 6 {
				_, err := c.Exec(ctx, "select 1", mode)
				switch {
				case err == nil:
					ok++
				case strings.Contains(err.Error(), "53400"):
					wantRefused(t, err, "53400", `query rate limit exceeded for role "md5user"`)
					refused++
				default:
					t.Fatalf("select: %v", err)
				}
			}
			t.Logf("%d statements ran, %d refused (rate 1/s, burst 3)", ok, refused)
			if ok < 3 || refused == 0 {
				t.Errorf("%d ran and %d were refused; want the burst (3) to run and the rest refused", ok, refused)
			}
			time.Sleep(3 * time.Second)
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatalf("begin after the rate recovered: %v", err)
			}
			for i := range 10 {
				if _, err := tx.Exec(ctx, "select 1", mode); err != nil {
					t.Fatalf("statement %d inside a transaction: %v", i+1, err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		})
	}
}

// queueShed: with the pool's one backend busy and max_waiters (1) clients
// already waiting, the next client fails at once with 53300 and a hint
// instead of waiting out acquire_timeout (30s).
func queueShed(t *testing.T, e *testenv.Env) {
	cs := conns{t, e}
	ctx := context.Background()
	holder := cs.must("app", "app", "app")
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	waiter := cs.must("app", "app", "app")
	waited := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, "select pg_sleep(0)")
		waited <- err
	}()
	time.Sleep(300 * time.Millisecond)   // the waiter is queued
	shed := cs.must("app", "app", "app") // same pool (node, user, database)
	_, err = shed.Exec(ctx, "select 2")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" || !strings.Contains(pe.Message, "wait queue is full") || pe.Hint == "" {
		t.Errorf("with the wait queue full: got %v, want 53300 \"pool wait queue is full\" with a hint", err)
	}
	tx.Rollback(ctx)
	if err := <-waited; err != nil {
		t.Errorf("the queued client: %v", err)
	}
}

// limitMetrics: the refusals above are counted per limit, and the shed
// acquire per pool.
func limitMetrics(t *testing.T, e *testenv.Env) {
	body := scrape(t, e)
	for _, limit := range []string{"user_clients", "database_clients", "max_clients", "query_rate"} {
		if v := metric(t, body, `pgrouter_overload_rejected_total{limit="`+limit+`"}`); v == 0 {
			t.Errorf("pgrouter_overload_rejected_total{limit=%q} is 0 after refusals", limit)
		}
	}
	if v := metric(t, body, `pgrouter_pool_queue_full_total{node="shard0-primary",pool="app/app"}`); v == 0 {
		t.Errorf("pgrouter_pool_queue_full_total is 0 after a shed acquire")
	}
}

// scrape reads pgrouter's /metrics.
func scrape(t *testing.T, e *testenv.Env) string {
	t.Helper()
	resp, err := http.Get("http://" + e.Proxy.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// metric is the value of the sample written exactly as series (name and
// labels in exposition order); a missing series fails the test.
func metric(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if name, _, _ := strings.Cut(series, "{"); strings.HasPrefix(line, name) {
			t.Log(line)
		}
	}
	t.Fatalf("metric %s missing", series)
	return 0
}
