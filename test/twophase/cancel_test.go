package twophase

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// activeSleeps counts statements running pg_sleep on shard i.
func activeSleeps(t *testing.T, i int) int {
	t.Helper()
	var n int
	err := direct(t, i).QueryRow(context.Background(),
		"select count(*) from pg_stat_activity where state = 'active' and query like '%pg_sleep(30)%' and pid <> pg_backend_pid()").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// clientState is the SHOW CLIENTS state of the client whose queries count is
// highest among app users (the test's own busy client).
func showClientStates(t *testing.T, admin *pgx.Conn) []string {
	t.Helper()
	rows, err := admin.Query(context.Background(), "SHOW CLIENTS")
	if err != nil {
		t.Fatal(err)
	}
	table, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range table {
		if r["user"] == "app" {
			states = append(states, r["state"].(string))
		}
	}
	return states
}

// A statement running on several shards is visible as active in SHOW
// CLIENTS, and a client's cancel stops it on every shard.
func TestCancelReachesEveryShard(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 90000, 1), keysOn(t, 1, 90000, 1)
	for i, k := range []int64{a[0], b[0]} {
		if _, err := direct(t, i).Exec(ctx, "insert into users (user_id, name) values ($1, 'sleepy') on conflict (user_id) do update set name = 'sleepy'", k); err != nil {
			t.Fatal(err)
		}
	}
	admin := connectTo(t, env.DSN("admin", "admin", "pgrouter"), pgx.QueryExecModeSimpleProtocol)
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	qctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(qctx, "update users set name = 'woke' where name = 'sleepy' and pg_sleep(30) is not null")
		done <- err
	}()
	waitFor(t, "the keyless UPDATE to run on both shards", 20*time.Second, func() bool {
		return activeSleeps(t, 0) == 1 && activeSleeps(t, 1) == 1
	})
	if states := showClientStates(t, admin); !contains(states, "active") {
		t.Fatalf("SHOW CLIENTS while a multi-shard statement runs: states %v, want one active", states)
	}
	cancel()
	err := <-done
	if err == nil {
		t.Fatal("canceled statement succeeded")
	}
	waitFor(t, "the statement to stop on both shards (it sleeps 30 s unless canceled)", 10*time.Second, func() bool {
		return activeSleeps(t, 0) == 0 && activeSleeps(t, 1) == 0
	})
	for i, k := range []int64{a[0], b[0]} {
		var name string
		direct(t, i).QueryRow(ctx, "select name from users where user_id = $1", k).Scan(&name)
		if name != "sleepy" {
			t.Fatalf("shard%d row changed by a canceled statement: %q", i, name)
		}
	}

	// Between the statements of a transaction the client is idle in transaction.
	c2 := connect(t, pgx.QueryExecModeSimpleProtocol)
	tx, err := c2.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	// The state is published right after the answer is written (as in
	// pg_stat_activity, observers may see it a moment late): poll.
	waitFor(t, "SHOW CLIENTS to show the client idle in transaction", 10*time.Second, func() bool {
		return contains(showClientStates(t, admin), "idle in transaction")
	})
	tx.Rollback(ctx)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
