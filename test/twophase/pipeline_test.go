package twophase

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
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

// hijack connects to dsn and takes over the raw connection (closed at the
// end of the test), for exchanges message by message.
func hijack(t *testing.T, dsn string) *pgconn.HijackedConn {
	t.Helper()
	pc, err := pgconn.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Conn.Close() })
	return h
}

// rawExchange sends msgs on a hijacked connection and returns the kinds of
// the messages received until n ReadyForQuery (or a timeout), with the
// status byte of each ReadyForQuery ("Z:I").
func rawExchange(t *testing.T, fe *pgproto3.Frontend, conn net.Conn, n int, msgs ...pgproto3.FrontendMessage) []string {
	t.Helper()
	for _, m := range msgs {
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var got []string
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for n > 0 {
		m, err := fe.Receive()
		if err != nil {
			return append(got, "timeout")
		}
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			got = append(got, "Z:"+string(m.TxStatus))
			n--
		case *pgproto3.CommandComplete:
			got = append(got, "C:"+string(m.CommandTag))
		case *pgproto3.DataRow:
			got = append(got, "D:"+string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			got = append(got, "E:"+m.Code)
		default:
			got = append(got, fmt.Sprintf("%T", m)[len("*pgproto3."):])
		}
	}
	return got
}

// A simple Query in the middle of a pipeline over shards (before Sync)
// commits what the pipeline did so far and answers on its own, as one
// Postgres does; the messages compare one by one with Postgres's.
func TestQueryInsidePipelineOverShards(t *testing.T) {
	run := func(dsn string, keys []int64) []string {
		h := hijack(t, dsn)
		var got []string
		var msgs []pgproto3.FrontendMessage
		for _, k := range keys {
			msgs = append(msgs, &pgproto3.Parse{Query: "insert into users (user_id, name) values ($1, 'q')"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte(itoa(k))}}, &pgproto3.Execute{})
		}
		msgs = append(msgs, &pgproto3.Flush{})
		got = append(got, rawExchange(t, h.Frontend, h.Conn, 0, msgs...)...)
		got = append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Query{String: fmt.Sprintf(
			"select count(*) from users where user_id in (%d, %d)", keys[0], keys[1])})...)
		return append(got, rawExchange(t, h.Frontend, h.Conn, 1, &pgproto3.Sync{})...)
	}
	a, b := keysOn(t, 0, 420000, 2), keysOn(t, 1, 420000, 1)
	want := run(env.Cluster.Shards[0].Primary.DSN("app"), []int64{a[1], a[1] + 1})
	got := run(env.AppDSN(), []int64{a[0], b[0]})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("through pgrouter %v\n          Postgres %v", got, want)
	}
	t.Logf("as Postgres: %v", got)
	if n0, n1 := countOn(t, 0, "users", a[:1]), countOn(t, 1, "users", b); n0+n1 != 2 {
		t.Fatalf("rows committed by the Query: shard0 %d, shard1 %d", n0, n1)
	}
}

// An error in the middle of a batch over shards: the statements after it
// get no answer and their Parses create no statements (Postgres skips to
// Sync), those before it keep theirs (prepared statements outlive the
// rolled-back transaction); messages compared with Postgres's.
func TestBatchErrorSkipsTheRestLikePostgres(t *testing.T) {
	ins := "insert into users (user_id, name) values ($1, 'e')"
	run := func(dsn string, k1, dup, k3 int64) []string {
		h := hijack(t, dsn)
		bind := func(stmt string, k int64) *pgproto3.Bind {
			return &pgproto3.Bind{PreparedStatement: stmt, Parameters: [][]byte{[]byte(itoa(k))}}
		}
		got := rawExchange(t, h.Frontend, h.Conn, 1,
			&pgproto3.Parse{Name: "s1", Query: ins}, bind("s1", k1), &pgproto3.Execute{},
			&pgproto3.Parse{Name: "s2", Query: ins}, bind("s2", dup), &pgproto3.Execute{},
			&pgproto3.Parse{Name: "s3", Query: ins}, bind("s3", k1+1), &pgproto3.Execute{},
			bind("s1", k3), &pgproto3.Execute{}, &pgproto3.Sync{})
		got = append(got, rawExchange(t, h.Frontend, h.Conn, 1, bind("s3", k3), &pgproto3.Execute{}, &pgproto3.Sync{})...)
		return append(got, rawExchange(t, h.Frontend, h.Conn, 1, bind("s1", k3), &pgproto3.Execute{}, &pgproto3.Sync{})...)
	}
	a, b := keysOn(t, 0, 430000, 4), keysOn(t, 1, 430000, 1)
	takeKey(t, 0, a[1])
	takeKey(t, 1, b[0])
	want := run(env.Cluster.Shards[0].Primary.DSN("app"), a[0], a[1], a[2]) // all on one Postgres
	got := run(env.AppDSN(), a[3], b[0], a[3]+1)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("through pgrouter %v\n          Postgres %v", got, want)
	}
	t.Logf("as Postgres: %v", got)
}
