package sharding

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestSharedErrorsStayUnchanged: the topology hands every session the same
// pre-built *pgconn.PgError for "shard has no reachable primary"; no path
// that answers with it (single-shard, scatter, multi-shard write, both
// protocols, in and out of transactions) may change it. Several
// clients run at once so that -race sees a write as well.
func TestSharedErrorsStayUnchanged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, dsn := startOwn(t, nil)
	conns := make([]*pgx.Conn, 4)
	for i := range conns {
		var err error
		if conns[i], err = pgx.Connect(ctx, dsn); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close(context.Background())
	}
	const banned = 1 // keys of it are found by keyOnShard
	shared := func() *pgconn.PgError {
		_, err := inst.Topology.Snapshot().Primary(banned)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Fatalf("shard %d's primary is banned, yet Primary gives %v", banned, err)
		}
		return pe
	}
	key, other := keyOnShard(t, conns[0], banned), keyOnShard(t, conns[0], 0)
	if err := inst.Topology.Ban(env.Config.Shards[banned].Primary.Name, time.Hour); err != nil {
		t.Fatal(err)
	}
	orig := *shared()
	steps := []struct {
		sql  string
		fail bool // gets the banned shard's 57P03
	}{
		{fmt.Sprintf("select * from users where user_id = %d", key), true},
		{"select count(*) from users", true},
		{"update users set name = name", true},
		{"begin", false},
		{fmt.Sprintf("insert into users (user_id, name) values (%d, 'x')", key), true},
		{"rollback", false},
		{"begin", false},
		{fmt.Sprintf("select * from users where user_id = %d", other), false},
		{fmt.Sprintf("select * from users where user_id = %d", key), true}, // joining the banned shard
		{"rollback", false},
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func(c *pgx.Conn, mode pgx.QueryExecMode) {
			defer wg.Done()
			for _, s := range steps {
				_, err := c.Exec(ctx, s.sql, mode)
				var pe *pgconn.PgError
				if s.fail && (!errors.As(err, &pe) || pe.Code != "57P03") {
					t.Errorf("%s with shard %d's primary banned: %v, want 57P03", s.sql, banned, err)
				}
				if !s.fail && err != nil {
					t.Errorf("%s: %v", s.sql, err)
				}
			}
		}(c, []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement}[i%2])
	}
	wg.Wait()
	if now := *shared(); now.Severity != orig.Severity || now.Code != orig.Code || now.Message != orig.Message ||
		now.Detail != orig.Detail || now.Hint != orig.Hint {
		t.Fatalf("the topology's shared error changed:\nbefore %+v\nafter  %+v", orig, now)
	}
}

// keyOnShard finds a user_id that pgrouter places on shard (Postgres's own
// hash partitioning, which pgrouter's placement follows).
func keyOnShard(t *testing.T, c *pgx.Conn, shard int) int {
	t.Helper()
	for k := 1; k < 1000; k++ {
		var ok bool
		q := fmt.Sprintf("select satisfies_hash_partition('hashcheck_int'::regclass, %d, %d, %d::bigint)", len(env.Cluster.Shards), shard, k)
		if err := c.QueryRow(context.Background(), q, pgx.QueryExecModeSimpleProtocol).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return k
		}
	}
	t.Fatal("no key found")
	return 0
}
