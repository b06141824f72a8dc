package sharding

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// TestDatabaseDefaultOfStandardStringsChanges: after ALTER DATABASE … SET
// standard_conforming_strings = off, new backends start with it off while
// the clients already logged in (and logins served from the cached login
// parameters) read text with it on — as in Postgres, where a running
// session keeps its setting. A backend must read each client's text the way
// that client's session (and so the router) does.
func TestDatabaseDefaultOfStandardStringsChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := testenv.Start(ctx, testenv.Options{Shards: 2, Sections: map[string]string{"pool": "  size: 2", "db": `    sharded_tables:
      - table: events
        column: id
        type: int
        function: range
        ranges:
          - {to: "1000", shard: shard0}
          - {from: "1000", shard: shard1}
`}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.ExecOnPrimaries(ctx, "app", "CREATE TABLE events (id bigint PRIMARY KEY, what text)"); err != nil {
		t.Fatal(err)
	}
	open := func() *pgx.Conn {
		cfg, _ := pgx.ParseConfig(e.AppDSN())
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	// Two clients hold one backend of each shard inside transactions.
	holders := []*pgx.Conn{open(), open()}
	for i, id := range []int{10, 1010} {
		if _, err := holders[i].Exec(ctx, "begin"); err != nil {
			t.Fatal(err)
		}
		if _, err := holders[i].Exec(ctx, "select * from events where id = $1", id); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ExecOnPrimaries(ctx, "app", "ALTER DATABASE app SET standard_conforming_strings = off"); err != nil {
		t.Fatal(err)
	}
	// A client logging in now gets the cached (on) parameters; its backends
	// are new ones, which start with the new default (off).
	c := open()
	if got := c.PgConn().ParameterStatus("standard_conforming_strings"); got != "on" {
		t.Logf("login reported standard_conforming_strings = %s", got)
	}
	// The attack: a reader with the setting on sees one SELECT, one
	// with it off runs the INSERT.
	att := strings.Replace(attack(1501), ",$$p$$,1)", ",$$p$$)", 1)
	if _, err := c.PgConn().Exec(ctx, att).ReadAll(); err != nil {
		t.Fatalf("%s: %v", att, err)
	}
	if homes := eventHomes(t, e, 1501); len(homes) > 0 && (len(homes) != 1 || homes[0] != 1) {
		t.Fatalf("events row 1501 is on shards %v; its key belongs to shard1", homes)
	}
}
