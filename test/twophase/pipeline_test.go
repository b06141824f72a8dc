package twophase

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipelineInsert sends one insert per key in a pgconn pipeline, a Flush
// after each (reading its result before sending the next, as psycopg 3
// and asyncpg do when they need an answer early), then Sync. It returns
// each statement's result or error, and the error of closing the pipeline.
func pipelineInsert(ctx context.Context, t *testing.T, pc *pgconn.PgConn, keys []int64) ([]string, error) {
	t.Helper()
	p := pc.StartPipeline(ctx)
	var out []string
	for _, k := range keys {
		p.SendQueryParams("insert into users (user_id, name) values ($1, 'pipe')", [][]byte{[]byte(itoa(k))}, nil, nil, nil)
		p.SendFlushRequest()
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		res, err := p.GetResults()
		if err != nil {
			out = append(out, "error "+sqlState(err))
			break
		}
		rr := res.(*pgconn.ResultReader).Read()
		if rr.Err != nil {
			out = append(out, "error "+sqlState(rr.Err))
			break
		}
		out = append(out, rr.CommandTag.String())
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	for {
		res, err := p.GetResults()
		if err != nil {
			continue // the statement error again, or the Sync's
		}
		if _, ok := res.(*pgconn.PipelineSync); ok || res == nil {
			break
		}
	}
	return out, p.Close()
}

// A pipeline that has run statements on one shard (Flush, no Sync) and
// then needs another shard becomes one transaction over both: the first
// shard's open batch is turned into an explicit transaction, so the Sync
// commits both atomically, or an error rolls both back.
func TestPipelineWithFlushSpansShards(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 400000, 3), keysOn(t, 1, 400000, 3)
	c := connect(t, pgx.QueryExecModeExec)
	got, err := pipelineInsert(ctx, t, c.PgConn(), []int64{a[0], b[0], a[1]})
	if fmt.Sprint(got) != "[INSERT 0 1 INSERT 0 1 INSERT 0 1]" || err != nil {
		t.Fatalf("pipeline over two shards: %v %v", got, err)
	}
	if n0, n1 := countOn(t, 0, "users", a[:2]), countOn(t, 1, "users", b[:1]); n0 != 2 || n1 != 1 {
		t.Fatalf("after the pipeline shard0 has %d/2, shard1 %d/1", n0, n1)
	}
	// An error on the second shard rolls back the first shard's part too.
	takeKey(t, 1, b[2])
	got, _ = pipelineInsert(ctx, t, c.PgConn(), []int64{a[2], b[2]})
	if fmt.Sprint(got) != "[INSERT 0 1 error 23505]" {
		t.Fatalf("pipeline with a duplicate on shard1: %v", got)
	}
	if n := countOn(t, 0, "users", a[2:]); n != 0 {
		t.Fatalf("shard0 kept the row of a pipeline that failed on shard1")
	}
	assertNoPrepared(t)
	assertUsable(t, c, "the pipelines")
}

// Without two-phase commit the same pipeline is refused where it moves to
// the second shard (0A000 naming the shards, hint two_phase_commit), and
// the first shard's part is rolled back at Sync, as one Postgres rolls
// back a batch that failed; the session goes on.
func TestPipelineWithFlushWithoutTwoPhaseCommit(t *testing.T) {
	ctx := context.Background()
	a, b := keysOn(t, 0, 410000, 1), keysOn(t, 1, 410000, 1)
	c := connectTo(t, env.DSN("app", "app", "plain"), pgx.QueryExecModeExec)
	got, _ := pipelineInsert(ctx, t, c.PgConn(), []int64{a[0], b[0]})
	if fmt.Sprint(got) != "[INSERT 0 1 error 0A000]" {
		t.Fatalf("pipeline over two shards without 2PC: %v", got)
	}
	if n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b); n0+n1 != 0 {
		t.Fatalf("refused pipeline left rows: shard0 %d, shard1 %d", n0, n1)
	}
	assertUsable(t, c, "the refusal")
}
