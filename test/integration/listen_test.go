package integration

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A LISTENing client gets a NOTIFY while it is idle — it does not have to
// send another statement first.
func TestNotifyReachesIdleListener(t *testing.T) {
	ctx := context.Background()
	listener, err := pgx.Connect(ctx, env.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	if _, err := listener.Exec(ctx, "listen pgrouter_test_ch"); err != nil {
		t.Fatal(err)
	}
	sender, err := pgx.Connect(ctx, env.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close(ctx)
	for i, payload := range []string{"first", "second"} {
		if _, err := sender.Exec(ctx, "select pg_notify('pgrouter_test_ch', $1)", payload); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := listener.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("notification %d not delivered to the idle listener: %v", i, err)
		}
		if n.Channel != "pgrouter_test_ch" || n.Payload != payload {
			t.Fatalf("notification %d = %s/%q, want pgrouter_test_ch/%q", i, n.Channel, n.Payload, payload)
		}
	}
	// The listener's session still works normally afterwards.
	var one int
	if err := listener.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("listener after notifications: %d %v", one, err)
	}
}
