package wire

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/proxy"
)

// TestResetToStartupValues: with pgx, as a pooled driver does on release,
// RESET ALL / DISCARD ALL / RESET x bring the session back to the values
// of its startup packet, and the driver's ParameterStatus view follows,
// directly and through pgrouter, while another client with other startup
// values shares the backends.
func TestResetToStartupValues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := proxy.Start(ctx, coldConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	for _, reset := range []string{"reset all", "discard all", "reset timezone; reset datestyle; reset application_name"} {
		want := resetView(ctx, t, env.Cluster.Shards[0].Primary.DSN("app"), reset)
		for round := 0; round < 2; round++ { // cold, then warm backends that served the other client
			if got := resetView(ctx, t, proxyDSN(inst.Addr), reset); got != want {
				t.Errorf("%q, round %d:\npostgres: %s\npgrouter: %s", reset, round, want, got)
			}
		}
	}
}

// resetView changes settings on a client with startup values, resets them,
// and returns what the driver and SHOW then say, and what a second client
// (no startup values) sees on the same server.
func resetView(ctx context.Context, t *testing.T, dsn, reset string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["TimeZone"] = "America/New_York"
	cfg.RuntimeParams["DateStyle"] = "SQL, DMY"
	cfg.RuntimeParams["application_name"] = "reset-app"
	a, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	for _, sql := range []string{"set timezone = 'Asia/Tokyo'", "set datestyle = 'German'", "set application_name = 'pgrouter'",
		"begin", "select 1", "commit", reset} {
		if _, err := a.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var tz, ds, app, otherTZ string
	if err := a.QueryRow(ctx, "select current_setting('TimeZone'), current_setting('DateStyle'), current_setting('application_name')").Scan(&tz, &ds, &app); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "show timezone").Scan(&otherTZ); err != nil {
		t.Fatal(err)
	}
	pc := a.PgConn()
	return fmt.Sprintf("show: %s | %s | %s; ParameterStatus: %s | %s | %s; other client: %s", tz, ds, app,
		pc.ParameterStatus("TimeZone"), pc.ParameterStatus("DateStyle"), pc.ParameterStatus("application_name"), otherTZ)
}
