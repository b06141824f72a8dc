package rwsplit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/test/testenv"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// whoSQL names the node that runs it: its port and whether it is a replica.
const whoSQL = "select inet_server_port(), pg_is_in_recovery()"

// served is where one statement ran.
type served struct {
	Port     int
	Recovery bool
}

// topo maps the ports of one environment's nodes to names (p, r1, r2).
type topo struct {
	primary, r1, r2 int
}

func topoOf(e *testenv.Env) topo {
	s := e.Cluster.Shards[0]
	return topo{primary: s.Primary.Port, r1: s.Replicas[0].Port, r2: s.Replicas[1].Port}
}

func (tp topo) name(port int) string {
	switch port {
	case tp.primary:
		return "p"
	case tp.r1:
		return "r1"
	case tp.r2:
		return "r2"
	}
	return fmt.Sprintf("port%d", port)
}

// summary renders per-node counts as "p=0 r1=100 r2=100".
func (tp topo) summary(counts map[int]int) string {
	var parts []string
	for port, n := range counts {
		parts = append(parts, fmt.Sprintf("%s=%d", tp.name(port), n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// testCtx bounds a whole test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connectMode opens a pgx connection through the proxy in the given mode
// (0 = pgx's default, statement cache) and closes it at cleanup.
func connectMode(t *testing.T, e *testenv.Env, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(e.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	if mode != 0 {
		cfg.DefaultQueryExecMode = mode
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through pgrouter: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func connect(t *testing.T, e *testenv.Env) *pgx.Conn { return connectMode(t, e, 0) }

// queryer is what both *pgx.Conn and pgx.Tx offer.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// who runs sql, whose first two columns must be inet_server_port() and
// pg_is_in_recovery() (further columns are read and ignored), and reports
// where it ran.
func who(ctx context.Context, q queryer, sql string, args ...any) (served, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return served{}, err
	}
	defer rows.Close()
	var s served
	n := 0
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return s, err
		}
		port, ok1 := v[0].(int32)
		rec, ok2 := v[1].(bool)
		if !ok1 || !ok2 {
			return s, fmt.Errorf("first columns are %T, %T; want inet_server_port(), pg_is_in_recovery()", v[0], v[1])
		}
		s = served{Port: int(port), Recovery: rec}
		n++
	}
	if err := rows.Err(); err != nil {
		return s, err
	}
	if n != 1 {
		return s, fmt.Errorf("%d rows, want 1", n)
	}
	return s, nil
}

// mustWho is who that fails the test on error.
func mustWho(t *testing.T, ctx context.Context, q queryer, sql string, args ...any) served {
	t.Helper()
	s, err := who(ctx, q, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReplicasServing waits until a fresh client (no write floor) sees both
// replicas serve reads, so a test starts from a healthy rotation whatever
// the previous test left behind (bans, lag).
func waitReplicasServing(t *testing.T, e *testenv.Env) {
	t.Helper()
	tp := topoOf(e)
	ctx := testCtx(t, 40*time.Second)
	if err := e.Cluster.WaitReplicated(ctx); err != nil {
		t.Fatalf("replicas did not catch up: %v", err)
	}
	c := connect(t, e)
	seen := map[int]bool{}
	eventually(t, 30*time.Second, "both replicas serve reads", func() bool {
		if c.IsClosed() { // a relayed FATAL from a dead backend closes the client
			c = connect(t, e)
		}
		s, err := who(ctx, c, whoSQL)
		if err == nil {
			seen[s.Port] = true
		}
		return seen[tp.r1] && seen[tp.r2]
	})
}

// sqlState is the SQLSTATE of a Postgres error, "" for any other error.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// execApp runs sql on one node's "app" database directly (not through the proxy).
func execApp(ctx context.Context, n *localpg.Node, sql string, args ...any) error {
	c, err := n.Connect(ctx, "app")
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	_, err = c.Exec(ctx, sql, args...)
	return err
}

// batchRow adapts the next result of a pgx batch to queryer (sql ignored).
type batchRow struct{ br pgx.BatchResults }

func (b batchRow) Query(context.Context, string, ...any) (pgx.Rows, error) { return b.br.Query() }
