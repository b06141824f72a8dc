package twophase

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRecoveryLeavesLiveCommitsAlone: issue 12 item 5. Recovery passes
// (RECOVER on the admin console, the same code as the periodic pass) run
// while clients commit transactions across both shards. Every transaction
// here commits, so recovery must report (and log) that it finished none of
// them: a pass that lists a prepared transaction its session then commits
// must not count or log it as "rolled back".
func TestRecoveryLeavesLiveCommitsAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	const clients, perClient = 3, 60
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	keys := make([][2][]int64, clients)
	for i := range keys {
		keys[i] = [2][]int64{keysOn(t, 0, int64(9_000_000+i*10000), perClient), keysOn(t, 1, int64(9_000_000+i*10000), perClient)}
		for s := range keys[i] { // left by an earlier run
			if _, err := direct(t, s).Exec(ctx, "delete from users where user_id = any($1)", keys[i][s]); err != nil {
				t.Fatal(err)
			}
		}
	}
	done := make(chan struct{})
	for i := 0; i < clients; i++ {
		c := connect(t, pgx.QueryExecModeSimpleProtocol)
		wg.Add(1)
		go func(i int, c *pgx.Conn) {
			defer wg.Done()
			for j := 0; j < perClient; j++ {
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					for _, k := range []int64{keys[i][0][j], keys[i][1][j]} {
						if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'live')", k); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}(i, c)
	}
	go func() { wg.Wait(); close(done) }()

	admin := connectTo(t, env.DSN("admin", "admin", "pgrouter"), pgx.QueryExecModeSimpleProtocol)
	passes, claimed := 0, 0
	for running := true; running; passes++ {
		select {
		case <-done:
			running = false
		default:
		}
		tag, err := admin.Exec(ctx, "RECOVER")
		if err != nil {
			t.Fatalf("RECOVER: %v", err)
		}
		if tag.String() != "RECOVER 0" {
			claimed++
			t.Errorf("pass %d: %q while only live transactions committed", passes, tag)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatalf("client: %v", err)
	}
	for i := range keys {
		if n0, n1 := countOn(t, 0, "users", keys[i][0]), countOn(t, 1, "users", keys[i][1]); n0 != perClient || n1 != perClient {
			t.Fatalf("client %d: shard0 has %d/%d rows, shard1 %d/%d", i, n0, perClient, n1, perClient)
		}
	}
	assertNoPrepared(t)
	t.Logf("%d recovery passes during %d two-phase commits; %d claimed to finish a live transaction",
		passes, clients*perClient, claimed)
	if passes < 10 {
		t.Fatalf("only %d recovery passes overlapped the commits", passes)
	}
}
