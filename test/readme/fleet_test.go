package readme

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDemoFleet: `pgrouter demo --fleet 2` starts a local etcd and two
// pgrouters on the one cluster; both serve the sample data, SHOW FLEET on
// the first lists both at config version 1, and every command the screen
// suggests works (its `config push` reaches both members).
func TestDemoFleet(t *testing.T) {
	bin := pgrouterBinary(t)
	logPath := filepath.Join(t.TempDir(), "demo.log")
	d := startDemo(t, bin, "--shards", "2", "--replicas", "0", "--fleet", "2", "--log-file", logPath)
	if d.fields["etcd"] == "" || d.fields["member 2"] == "" {
		t.Fatalf("the screen names no etcd or second member:\n%s", d.screen)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, dsn := range []string{d.fields["dsn"], d.fields["member 2"]} {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		err = c.QueryRow(ctx, "select count(*) from users").Scan(&n)
		c.Close(ctx)
		if err != nil || n != 2000 {
			t.Fatalf("%s: count(users) = %d, %v; want the 2000 sample users", dsn, n, err)
		}
	}
	cfg, err := pgx.ParseConfig(d.fields["admin"])
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SHOW FLEET")
	if err != nil {
		t.Fatal(err)
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		v, err := r.Values()
		if err != nil {
			return "", err
		}
		return v[0].(string) + " v" + v[1].(string), nil
	})
	if err != nil || len(members) != 2 || !strings.HasSuffix(members[0], " v1") || !strings.HasSuffix(members[1], " v1") {
		t.Fatalf("SHOW FLEET: %v %v; want the two members at version 1", members, err)
	}
	r := &runner{bin: bin, demo: d, configDir: t.TempDir()}
	pushes := 0
	for _, c := range d.try {
		r.runCommand(t, 0, c)
		if len(c) > 2 && c[1] == "config" && c[2] == "push" {
			pushes++
		}
	}
	if pushes != 1 {
		t.Errorf("the fleet demo's screen suggests %d config push commands, want 1:\n%s", pushes, d.screen)
	}
	// Ctrl-C (to the demo's whole process group) must let both members leave
	// the fleet, their leases revoked, before the demo's etcd stops.
	d.stop(t)
	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logs), "joined the fleet"); n != 2 || strings.Contains(string(logs), "lease not revoked") {
		t.Errorf("demo log: %d members joined (want 2), lease not revoked: %v", n, strings.Contains(string(logs), "lease not revoked"))
	}
}
