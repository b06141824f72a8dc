package rwsplit

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var bothModes = []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol}

// TestPrimaryOnlyStatements: statements with side effects run on the primary
// even in autocommit, where a plain SELECT would go to a replica.
func TestPrimaryOnlyStatements(t *testing.T) {
	waitReplicasServing(t, env)
	cases := []struct{ name, sql string }{
		{"for update", whoSQL + " from items where id = 1 for update"},
		{"for share", whoSQL + " from items where id = 2 for share"},
		{"for no key update", whoSQL + " from items where id = 3 for no key update"},
		{"nextval", whoSQL + ", nextval('s')"},
		{"setval", whoSQL + ", setval('s', 1000)"},
		{"txid_current", whoSQL + ", txid_current()"},
		{"advisory xact lock", whoSQL + ", pg_advisory_xact_lock(1)::text"},
		{"writing CTE", "with x as (insert into items (v) values ('cte') returning id) " +
			"select inet_server_port(), pg_is_in_recovery(), x.id from x"},
		{"role=primary hint", "/* pgrouter: role=primary */ " + whoSQL},
		{"role=primary line hint", "-- pgrouter: role=primary\n" + whoSQL},
	}
	tp := topoOf(env)
	for _, mode := range bothModes {
		for _, tc := range cases {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				ctx := testCtx(t, 30*time.Second)
				c := connectMode(t, env, mode) // fresh: no read-your-writes floor
				s := mustWho(t, ctx, c, tc.sql)
				if s.Recovery || s.Port != tp.primary {
					t.Errorf("%q served by %s (in recovery %v); want the primary", tc.sql, tp.name(s.Port), s.Recovery)
				}
			})
		}
	}
}

// TestExplicitTransactionsOnPrimary: BEGIN … COMMIT runs every statement on
// the primary, on one backend, even when they are all reads.
func TestExplicitTransactionsOnPrimary(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	begins := map[string]func(ctx context.Context, c *pgx.Conn) (pgx.Tx, error){
		"pgx Begin": func(ctx context.Context, c *pgx.Conn) (pgx.Tx, error) { return c.Begin(ctx) },
		"START TRANSACTION": func(ctx context.Context, c *pgx.Conn) (pgx.Tx, error) {
			return c.BeginTx(ctx, pgx.TxOptions{BeginQuery: "START TRANSACTION"})
		},
		"BEGIN ISOLATION LEVEL REPEATABLE READ": func(ctx context.Context, c *pgx.Conn) (pgx.Tx, error) {
			return c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		},
	}
	for _, mode := range bothModes {
		for name, begin := range begins {
			t.Run(mode.String()+"/"+name, func(t *testing.T) {
				ctx := testCtx(t, 30*time.Second)
				c := connectMode(t, env, mode)
				tx, err := begin(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx)
				stmts := []string{whoSQL, whoSQL + ", pg_backend_pid()", whoSQL + " from items where id = 1",
					whoSQL + ", pg_advisory_xact_lock(1)::text"}
				pids := map[int32]bool{}
				for _, sql := range stmts {
					s := mustWho(t, ctx, tx, sql)
					if s.Recovery || s.Port != tp.primary {
						t.Errorf("in a transaction, %q served by %s; want the primary", sql, tp.name(s.Port))
					}
					var pid int32
					if err := tx.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
						t.Fatal(err)
					}
					pids[pid] = true
				}
				if len(pids) != 1 {
					t.Errorf("one transaction ran on %d backends: %v", len(pids), pids)
				}
				if err := tx.Commit(ctx); err != nil {
					t.Fatalf("commit: %v", err)
				}
			})
		}
	}
}

// TestReadOnlyTransactionsOnReplica: BEGIN READ ONLY may use a replica, for
// the whole transaction, on one backend.
func TestReadOnlyTransactionsOnReplica(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	begins := map[string][]string{
		"BEGIN READ ONLY":                   {"BEGIN READ ONLY"},
		"START TRANSACTION READ ONLY":       {"START TRANSACTION READ ONLY"},
		"BEGIN ISOLATION LEVEL … READ ONLY": {"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"},
	}
	for _, mode := range bothModes {
		for name, stmts := range begins {
			t.Run(mode.String()+"/"+name, func(t *testing.T) {
				ctx := testCtx(t, 30*time.Second)
				c := connectMode(t, env, mode)
				for _, s := range stmts {
					if _, err := c.Exec(ctx, s); err != nil {
						t.Fatalf("%s: %v", s, err)
					}
				}
				defer c.Exec(context.Background(), "ROLLBACK")
				ports, pids := map[int]bool{}, map[int32]bool{}
				for range 4 {
					s := mustWho(t, ctx, c, whoSQL+" from items where id = 1")
					ports[s.Port] = true
					if !s.Recovery {
						t.Errorf("read-only transaction statement served by %s; want a replica", tp.name(s.Port))
					}
					var pid int32
					if err := c.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
						t.Fatal(err)
					}
					pids[pid] = true
				}
				if len(ports) != 1 || len(pids) != 1 {
					t.Errorf("one read-only transaction moved: nodes %v, backends %v", ports, pids)
				}
				if _, err := c.Exec(ctx, "COMMIT"); err != nil {
					t.Fatalf("commit: %v", err)
				}
			})
		}
	}
}

// TestSessionRoleSetting: SET pgrouter.role = 'primary' sends every later
// read to the primary until SET pgrouter.role = auto (or RESET) restores the
// split. Reads the primary served count as the client's writes for
// read-your-writes, so after going back to auto the reads return to the
// replicas once those have replayed up to the primary's position: the test
// polls for that, then expects every read on a replica.
func TestSessionRoleSetting(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	for _, mode := range bothModes {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			c := connectMode(t, env, mode)
			onPrimary := func() bool {
				s := mustWho(t, ctx, c, whoSQL)
				return !s.Recovery && s.Port == tp.primary
			}
			expect := func(phase string, wantPrimary bool) {
				t.Helper()
				if !wantPrimary {
					eventually(t, 5*time.Second, phase+": reads back on replicas", func() bool { return !onPrimary() })
				}
				for range 6 {
					if got := onPrimary(); got != wantPrimary {
						t.Errorf("%s: read served by the primary = %v; want %v", phase, got, wantPrimary)
					}
				}
			}
			expect("before any SET", false)
			for _, step := range []struct {
				set         string
				wantPrimary bool
			}{
				{"SET pgrouter.role = 'primary'", true},
				{"SET pgrouter.role = auto", false},
				{"SET SESSION pgrouter.role TO 'primary'", true},
				{"RESET pgrouter.role", false},
			} {
				if _, err := c.Exec(ctx, step.set); err != nil {
					t.Fatalf("%s: %v", step.set, err)
				}
				expect("after "+step.set, step.wantPrimary)
			}
		})
	}
}
