package ops

import (
	"context"
	"strings"
	"testing"
	"time"
)

// PAUSE waits for running transactions, holds new ones until RESUME.
func TestAdminPauseResume(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { adminPsql(t, "RESUME") })
	running := connect(t, env.AppDSN())
	held := connect(t, env.AppDSN())
	tx, err := running.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil { // now holds a backend
		t.Fatal(err)
	}
	paused := make(chan string, 1)
	go func() {
		out, err := adminPsql(t, "PAUSE app")
		if err != nil {
			out = "error: " + err.Error() + ": " + out
		}
		paused <- out
	}()
	select {
	case out := <-paused:
		t.Fatalf("PAUSE returned while a transaction was running: %q", out)
	case <-time.After(500 * time.Millisecond):
	}
	// The running transaction goes on (it already has its backend) and ends.
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Fatalf("running transaction under PAUSE: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-paused:
		if strings.Contains(out, "error") || strings.Contains(out, "NOTICE") {
			t.Fatalf("PAUSE: %s", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PAUSE did not return after the last transaction ended")
	}
	// A transaction started now waits.
	done := make(chan error, 1)
	go func() {
		tx, err := held.Begin(ctx)
		if err == nil {
			_, err = tx.Exec(ctx, "select 1")
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a transaction ran while paused: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if !strings.Contains(mustAdmin(t, "SHOW STATS"), "clients_paused|1\npaused|app\n") {
		t.Errorf("SHOW STATS while paused:\n%s", mustAdmin(t, "SHOW STATS"))
	}
	if v, _ := sample(scrape(t), "pgrouter_clients_paused", nil); v != 1 {
		t.Errorf("pgrouter_clients_paused = %v, want 1", v)
	}
	mustAdmin(t, "RESUME app")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("held transaction failed after RESUME: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("held transaction did not run after RESUME")
	}
}

// PAUSE gives up waiting after pool.shutdown_timeout (3s here) with a
// NOTICE but stays paused; a client held longer than pool.acquire_timeout
// (2s) gets 53300, counted in pgrouter_errors_total.
func TestAdminPauseTimeouts(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { adminPsql(t, "RESUME") })
	running := connect(t, env.AppDSN())
	tx, err := running.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	before, _ := sample(scrape(t), "pgrouter_errors_total", map[string]string{"sqlstate": "53300"})
	out := mustAdmin(t, "PAUSE")
	if !strings.Contains(out, "NOTICE") || !strings.Contains(out, "1 client(s) still hold a backend") {
		t.Errorf("PAUSE past its timeout: want a NOTICE, got %q", out)
	}
	c := connect(t, env.AppDSN())
	start := time.Now()
	_, err = c.Exec(ctx, "select 1")
	if code, _ := pgCode(err); code != "53300" {
		t.Fatalf("held past acquire_timeout: %v, want 53300", err)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("53300 after %s, before acquire_timeout (2s)", waited)
	}
	after, _ := sample(scrape(t), "pgrouter_errors_total", map[string]string{"sqlstate": "53300"})
	if after != before+1 {
		t.Errorf("pgrouter_errors_total{sqlstate=53300}: %v → %v, want +1", before, after)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("the transaction running before PAUSE could not finish: %v", err)
	}
	mustAdmin(t, "RESUME")
	if _, err := c.Exec(ctx, "select 1"); err != nil {
		t.Fatalf("after RESUME: %v", err)
	}
}
