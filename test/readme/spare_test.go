package readme

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
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
	count := func(dsn, sql string) int64 { return countOne(ctx, t, dsn, sql) }
	spare := "postgres://app:app@" + cfg.Shards[2].Primary.Addr + "/app?sslmode=disable"
	if u, p := count(spare, "SELECT count(*) FROM users"), count(spare, "SELECT count(*) FROM plans"); u != 0 || p != 3 {
		t.Fatalf("spare shard: %d users (want 0), %d plans (want 3)", u, p)
	}
	if n := count(d.fields["dsn"], "SELECT count(*) FROM users"); n != 2000 {
		t.Fatalf("users through pgrouter: %d, want 2000", n)
	}
}

// TestDemoReshard is README's three-command flow: `pgrouter demo
// --spare-shards 1`, a write load, and the `pgrouter reshard` command the
// demo screen prints, which splits shard0 into the spare. Every user the
// load touched is then where the new placement says, and none is lost.
func TestDemoReshard(t *testing.T) {
	bin := pgrouterBinary(t)
	d := startDemo(t, bin, "--shards", "2", "--spare-shards", "1", "--replicas", "0")
	cmdline := d.fields["reshard"]
	if cmdline == "" {
		t.Fatalf("the demo screen shows no reshard command:\n%s", d.screen)
	}
	words, err := shellWords(cmdline)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		stop    atomic.Bool
		writes  atomic.Int64
		wg      sync.WaitGroup
		loadErr = make(chan error, 2)
	)
	for w := 0; w < 2; w++ {
		c, err := pgx.Connect(ctx, d.fields["dsn"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				id := int64(1 + (i*2+w)%2000)
				if _, err := c.Exec(ctx, "UPDATE users SET name = 'written' WHERE user_id = $1", id); err != nil {
					loadErr <- err
					return
				}
				writes.Add(1)
			}
		}()
	}
	out, err := exec.CommandContext(ctx, bin, words[1:]...).CombinedOutput()
	stop.Store(true)
	wg.Wait()
	close(loadErr)
	for err := range loadErr {
		t.Errorf("write load: %v", err)
	}
	if err != nil || !strings.Contains(string(out), ": done") {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	cfg, err := config.Load(d.fields["config"])
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Shards[2].Hash) != 1 {
		t.Fatalf("the config file does not name the split placement after the reshard: %v", cfg.HashSlots())
	}
	count := func(dsn, sql string) int64 { return countOne(ctx, t, dsn, sql) }
	shard := func(i int) string { return "postgres://app:app@" + cfg.Shards[i].Primary.Addr + "/app?sslmode=disable" }
	u0, u1, u2 := count(shard(0), "SELECT count(*) FROM users"), count(shard(1), "SELECT count(*) FROM users"), count(shard(2), "SELECT count(*) FROM users")
	if u0+u1+u2 != 2000 || u2 == 0 || u2 >= u0+u2 {
		t.Fatalf("users per shard after the split: %d, %d, %d (want 2000 in all, shard0's split with the spare)", u0, u1, u2)
	}
	if n := count(d.fields["dsn"], "SELECT count(*) FROM orders"); n != 6000 {
		t.Fatalf("orders through pgrouter after the reshard: %d, want 6000", n)
	}
	t.Logf("%s\nusers per shard: %d, %d, %d; %d writes during the reshard", strings.TrimSpace(string(out)), u0, u1, u2, writes.Load())
}

// countOne runs sql (one number) on dsn.
func countOne(ctx context.Context, t *testing.T, dsn, sql string) int64 {
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
