package rwsplit

import (
	"context"
	"testing"
	"time"
)

// TestDescribeFollowsRoleHint: a batch that only parses and describes (what
// pgx sends to prepare a statement) goes where the statement will run: the
// primary for a write, or where the session's `SET pgrouter.role = primary`
// says. It went to any replica: with replay paused there, a table just
// created on the primary was "not there" (42P01) for an INSERT, or for a
// session that asked for the primary.
func TestDescribeFollowsRoleHint(t *testing.T) {
	waitReplicasServing(t, env)
	ctx := testCtx(t, time.Minute)
	shard := env.Cluster.Shards[0]
	for _, r := range shard.Replicas {
		if err := r.PauseReplay(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.ResumeReplay(context.Background()) })
	}
	if err := execApp(ctx, shard.Primary, "create table describe_hint_t (a int, b text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { execApp(context.Background(), shard.Primary, "drop table if exists describe_hint_t") })
	c := connect(t, env) // pgx's statement cache: Parse + Describe + Sync, then Bind + Execute
	if _, err := c.Exec(ctx, "set pgrouter.role = primary"); err != nil {
		t.Fatal(err)
	}
	rows, err := c.Query(ctx, "select a, b from describe_hint_t where a = $1", 1)
	if err == nil {
		rows.Close()
		err = rows.Err()
	}
	if err != nil {
		t.Fatalf("prepare and run on a table the primary has, under role=primary: %v (SQLSTATE %s)", err, sqlState(err))
	}
	if fields := rows.FieldDescriptions(); len(fields) != 2 {
		t.Errorf("%d columns described; want 2", len(fields))
	}
	w := connect(t, env) // no hint: a write is prepared where it will run
	if _, err := w.Exec(ctx, "insert into describe_hint_t (a, b) values ($1, $2)", 1, "x"); err != nil {
		t.Fatalf("prepare and run an INSERT into a table the primary has: %v (SQLSTATE %s)", err, sqlState(err))
	}
}
