package readme

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/config"
)

// TestDemoSpareShards: `pgrouter demo --spare-shards 1` adds an empty shard
// (hash: []) that has the schema and the reference table but no users, and
// that scans through pgrouter do not ask.
func TestDemoSpareShards(t *testing.T) {
	bin := pgrouterBinary(t)
	d := startDemo(t, bin, "--shards", "2", "--spare-shards", "1", "--replicas", "0")
	if !strings.Contains(d.screen, "2 shard(s) + 1 empty spare shard(s)") {
		t.Fatalf("screen does not mention the spare:\n%s", d.screen)
	}
	cfg, err := config.Load(d.fields["config"])
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Shards) != 3 || cfg.Shards[2].Hash == nil || len(cfg.Shards[2].Hash) != 0 || len(cfg.Shards[0].Hash) != 1 {
		t.Fatalf("shards and hash slots: %v", cfg.HashSlots())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	count := func(dsn, sql string) int64 {
		t.Helper()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var n int64
		if err := c.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	spare := "postgres://app:app@" + cfg.Shards[2].Primary.Addr + "/app?sslmode=disable"
	if u, p := count(spare, "SELECT count(*) FROM users"), count(spare, "SELECT count(*) FROM plans"); u != 0 || p != 3 {
		t.Fatalf("spare shard: %d users (want 0), %d plans (want 3)", u, p)
	}
	if n := count(d.fields["dsn"], "SELECT count(*) FROM users"); n != 2000 {
		t.Fatalf("users through pgrouter: %d, want 2000", n)
	}
}
