package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// Raw protocol exchanges, each played directly against the shard's primary
// and through pgrouter; the transcripts must be identical. A hang shows as
// "TIMEOUT" in the proxy's transcript.

type step = testenv.Step

// Short constructors keep the scripts readable.
func parse(name, sql string, oids ...uint32) *pgproto3.Parse {
	return &pgproto3.Parse{Name: name, Query: sql, ParameterOIDs: oids}
}

func bind(portal, stmt string, params ...string) *pgproto3.Bind {
	b := &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
	for _, p := range params {
		b.Parameters = append(b.Parameters, []byte(p))
	}
	return b
}

func execute(portal string, rows uint32) *pgproto3.Execute {
	return &pgproto3.Execute{Portal: portal, MaxRows: rows}
}

func describeS(name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'S', Name: name}
}
func describeP(name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'P', Name: name}
}
func closeS(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'S', Name: name} }
func query(sql string) *pgproto3.Query   { return &pgproto3.Query{String: sql} }

var (
	sync_ = &pgproto3.Sync{}
	flush = &pgproto3.Flush{}
)

func send(until string, msgs ...pgproto3.FrontendMessage) step {
	return step{Send: msgs, Until: until}
}

type script struct {
	name  string
	setup string // run directly on the primary first (tables)
	steps []step
}

var protocolScripts = []script{
	{name: "parse error before flush, then sync and queries", steps: []step{
		send("E", parse("", "selec 1"), flush),
		send("Z", sync_),
		send("Z", query("select 1")),
		send("Z", parse("", "select 2"), bind("", ""), execute("", 0), sync_),
	}},
	{name: "execute error before flush", steps: []step{
		send("E", parse("", "select 1/$1::int"), bind("", "", "0"), execute("", 0), flush),
		send("Z", sync_),
		send("Z", query("select 3")),
	}},
	{name: "messages after an error are skipped until sync", steps: []step{
		send("E", parse("", "selec 1"), flush),
		send("", parse("a", "select 1"), bind("", "a"), execute("", 0), flush),
		send("Z", query("select 'ignored'"), sync_),
		send("Z", parse("a", "select 4"), bind("", "a"), execute("", 0), sync_),
	}},
	{name: "query in the middle of an extended batch", steps: []step{
		send("Z", parse("", "select 5"), bind("", ""), execute("", 0), query("select 6")),
		send("Z", sync_),
	}},
	{name: "flush then execute then sync", steps: []step{
		send("T", parse("f1", "select 7 as x"), describeS("f1"), flush),
		send("Z", bind("", "f1"), execute("", 0), sync_),
		send("Z", closeS("f1"), sync_),
	}},
	{name: "error ordering in a pipeline", steps: []step{
		send("Z", parse("p1", "select 1"), bind("", "nosuch"), execute("", 0), sync_,
			parse("p2", "select 2"), bind("", "p2"), execute("", 0), sync_),
		send("Z", bind("", "p1"), execute("", 0), sync_),
	}},
	{name: "reset all keeps prepared statements", steps: []step{
		send("Z", parse("r1", "select 'reset all'"), sync_),
		send("Z", bind("", "r1"), execute("", 0), sync_),
		send("Z", query("RESET ALL")),
		send("Z", bind("", "r1"), execute("", 0), sync_),
		send("Z", parse("r2", "select 'reset all 2'"), bind("", "r2"), execute("", 0), sync_),
	}},
	{name: "deallocate all via extended protocol", steps: []step{
		send("Z", parse("d1", "select 'dealloc'"), bind("", "d1"), execute("", 0), sync_),
		send("Z", parse("", "DEALLOCATE ALL"), bind("", ""), execute("", 0), sync_),
		send("Z", bind("", "d1"), execute("", 0), sync_),
		send("Z", parse("d1", "select 'dealloc again'"), bind("", "d1"), execute("", 0), sync_),
	}},
	{name: "deallocate name inside a batch", steps: []step{
		send("Z", parse("d2", "select 'd2'"), sync_),
		send("Z", bind("", "d2"), execute("", 0), parse("", "DEALLOCATE d2"), bind("", ""), execute("", 0), sync_),
		send("Z", bind("", "d2"), execute("", 0), sync_),
	}},
	{name: "sql prepare and deallocate", steps: []step{
		send("Z", query("PREPARE q1 AS select 'q1'")),
		send("Z", query("EXECUTE q1")),
		send("Z", query("DEALLOCATE q1")),
		send("Z", query("EXECUTE q1")),
	}},
	{name: "deallocate in a pinned session", steps: []step{
		send("Z", query("PREPARE q2 AS select 'q2'")),
		send("Z", parse("s1", "select 's1'"), parse("s2", "select 's2'"), bind("", "s1"), execute("", 0), sync_),
		send("Z", query("DEALLOCATE s2")),
		send("Z", parse("", "DEALLOCATE ALL"), bind("", ""), execute("", 0), sync_),
		send("Z", query("EXECUTE q2")),
		send("Z", bind("", "s1"), execute("", 0), sync_),
		send("Z", parse("s1", "select 's1 again'"), bind("", "s1"), execute("", 0), sync_),
		send("Z", query("PREPARE q3 AS select 'q3'; DEALLOCATE ALL")),
		send("Z", bind("", "s1"), execute("", 0), sync_),
	}},
	{name: "describe portal after bind and deallocate", steps: []step{
		send("Z", query("BEGIN")),
		send("Z", parse("d3", "select 'd3' as c"), bind("p", "d3"), sync_),
		send("Z", query("DEALLOCATE d3")),
		send("Z", describeP("p"), execute("p", 0), sync_),
		send("Z", query("COMMIT")),
	}},
	{name: "protocol close", steps: []step{
		send("Z", parse("c1", "select 'c1'"), closeS("c1"), sync_),
		send("Z", bind("", "c1"), execute("", 0), sync_),
		send("Z", closeS("nosuch"), &pgproto3.Close{ObjectType: 'P', Name: "nosuch"}, sync_),
	}},
	{name: "named portals across transaction bounds", steps: []step{
		send("Z", query("BEGIN")),
		send("Z", parse("n1", "select generate_series(1,3)"), bind("cur", "n1"), execute("cur", 1), sync_),
		send("Z", execute("cur", 1), sync_),
		send("Z", query("COMMIT")),
		send("Z", execute("cur", 1), sync_),
	}},
	{name: "errors in implicit transactions", steps: []step{
		send("Z", query("select 1; select 1/0; select 2")),
		send("Z", parse("", "select 1/0"), bind("", ""), execute("", 0), parse("", "select 8"), bind("", ""), execute("", 0), sync_),
	}},
	{name: "ddl through the extended protocol", setup: "DROP TABLE IF EXISTS proto_ddl", steps: []step{
		send("Z", parse("", "create table proto_ddl (a int)"), bind("", ""), execute("", 0), sync_),
		send("Z", parse("", "insert into proto_ddl values (1)"), bind("", ""), execute("", 0), sync_),
		send("Z", parse("", "drop table proto_ddl"), bind("", ""), execute("", 0), sync_),
	}},
	{name: "copy from stdin via the extended protocol with sync inside", setup: "DROP TABLE IF EXISTS proto_copy; CREATE TABLE proto_copy (a int)", steps: []step{
		send("G", parse("", "copy proto_copy from stdin"), bind("", ""), execute("", 0), sync_),
		send("", &pgproto3.CopyData{Data: []byte("1\n")}, sync_, flush),
		send("Z", &pgproto3.CopyData{Data: []byte("2\n")}, &pgproto3.CopyDone{}, sync_),
		send("Z", query("select count(*) from proto_copy")),
	}},
	{name: "copy from stdin via the extended protocol with sync before copy done", setup: "DROP TABLE IF EXISTS proto_copy3; CREATE TABLE proto_copy3 (a int)", steps: []step{
		send("G", parse("", "copy proto_copy3 from stdin"), bind("", ""), execute("", 0), sync_),
		send("Z", &pgproto3.CopyData{Data: []byte("1\n")}, flush, &pgproto3.CopyData{Data: []byte("2\n")}, &pgproto3.CopyDone{}, sync_),
		send("Z", query("select count(*) from proto_copy3")),
	}},
	{name: "copy fail during copy in", setup: "DROP TABLE IF EXISTS proto_copy2; CREATE TABLE proto_copy2 (a int)", steps: []step{
		send("G", parse("", "copy proto_copy2 from stdin"), bind("", ""), execute("", 0), flush),
		send("Z", &pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyFail{Message: "client gave up"}, sync_),
		send("G", query("copy proto_copy2 from stdin")),
		send("Z", &pgproto3.CopyData{Data: []byte("5\n")}, &pgproto3.CopyDone{}),
		send("Z", query("select count(*) from proto_copy2")),
	}},
	{name: "copy to stdout in both protocols", steps: []step{
		send("Z", query("copy (select generate_series(1,2)) to stdout")),
		send("Z", parse("", "copy (select 3) to stdout"), bind("", ""), execute("", 0), sync_),
	}},
	{name: "error inside a transaction block then rollback", steps: []step{
		send("Z", query("BEGIN")),
		send("Z", parse("", "selec 1"), sync_),
		send("Z", query("select 1")),
		send("Z", parse("", "select 2"), bind("", ""), execute("", 0), sync_),
		send("Z", sync_),
		send("Z", parse("", "COMMIT"), bind("", ""), execute("", 0), sync_),
	}},
	{name: "unknown statement inside a transaction block", steps: []step{
		send("Z", query("BEGIN; select 1")),
		send("Z", bind("", "nosuch"), execute("", 0), sync_),
		send("Z", query("select 1")),
		send("Z", query("COMMIT")),
	}},
	{name: "bind error inside a transaction block with flush", steps: []step{
		send("Z", query("BEGIN; select 1")),
		send("E", parse("", "select $1::int"), bind("", "", "x"), execute("", 0), flush),
		send("Z", sync_),
		send("Z", query("COMMIT")),
	}},
	{name: "several syncs in one write", steps: []step{
		send("Z", parse("", "select 1"), bind("", ""), execute("", 0), sync_, sync_, bind("", ""), execute("", 0), sync_),
		send("Z"),
		send("Z"),
	}},
	{name: "empty queries", steps: []step{
		send("Z", query("")),
		send("Z", query(";")),
		send("Z", parse("", ""), bind("", ""), describeP(""), execute("", 0), sync_),
	}},
	{name: "multi-statement query failing in the middle", steps: []step{
		send("Z", query("select 1; select 1/0; select 3")),
		send("Z", query("begin; select 1; select 1/0; select 3")),
		send("Z", query("rollback")),
	}},
	{name: "suspended portal then sync", steps: []step{
		send("Z", parse("", "select generate_series(1,5)"), bind("", ""), execute("", 2), execute("", 2), sync_),
		send("Z", execute("", 2), sync_),
	}},
	{name: "suspended portal inside a transaction across syncs", steps: []step{
		send("Z", query("begin")),
		send("Z", parse("", "select generate_series(1,5)"), bind("c", ""), execute("c", 2), sync_),
		send("Z", execute("c", 2), &pgproto3.Close{ObjectType: 'P', Name: "c"}, sync_),
		send("Z", execute("c", 2), sync_),
		send("Z", query("rollback")),
	}},
	{name: "describe of missing statement and portal", steps: []step{
		send("Z", describeS("nosuch"), sync_),
		send("Z", describeP("nosuch"), sync_),
		send("Z", execute("nosuch", 0), sync_),
	}},
	{name: "parse of an existing name", steps: []step{
		send("Z", parse("e1", "select 1"), parse("e1", "select 2"), sync_),
		send("Z", bind("", "e1"), execute("", 0), sync_),
	}},
}

func TestProtocolScriptsMatchPostgres(t *testing.T) {
	for _, sc := range protocolScripts {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			direct := env.Cluster.Shards[0].Primary.DSN("app")
			want := playScript(ctx, t, direct, sc)
			if strings.Contains(strings.Join(want, "\n"), "TIMEOUT") {
				t.Fatalf("the script waits for what Postgres does not send:\n%s", strings.Join(want, "\n"))
			}
			got := playScript(ctx, t, env.AppDSN(), sc)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("through pgrouter:\n%s\n\ndirectly:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// The session (and the backend it used) must serve the next client.
			assertPoolServes(ctx, t)
		})
	}
}

func playScript(ctx context.Context, t *testing.T, dsn string, sc script) []string {
	t.Helper()
	if sc.setup != "" {
		c, err := env.Cluster.Shards[0].Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, sc.setup); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := testenv.DialRaw(dctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.RunScript(sc.steps, 20*time.Second)
}

// assertPoolServes checks that as many clients as the pool has backends
// can each run a statement at once: a backend left behind by a session
// (held, or mid-batch) shows as a client that waits forever.
func assertPoolServes(ctx context.Context, t *testing.T) {
	t.Helper()
	const n = 10 // pool.size in TestMain
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			r, err := testenv.DialRaw(dctx, env.AppDSN())
			if err != nil {
				errs <- err.Error()
				return
			}
			defer r.Close()
			got := r.RunScript([]step{send("Z", query(fmt.Sprintf("select %d, pg_sleep(0.05)", i)))}, 10*time.Second)
			if want := fmt.Sprintf("D %d|", i); len(got) < 3 || got[2] != want {
				errs <- strings.Join(got, " / ")
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("after the script, a client got: %s", e)
	}
}

// A client sees Postgres's own defaults for what it did not set: the
// ParameterStatus set at startup and SHOW (backends log in with
// application_name "pgrouter", which must not show through).
func TestStartupParametersMatchPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	direct, err := testenv.DialRaw(ctx, env.Cluster.Shards[0].Primary.DSN("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxied, err := testenv.DialRaw(ctx, env.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer proxied.Close()
	for k, want := range direct.Params {
		if got := proxied.Params[k]; got != want {
			t.Errorf("ParameterStatus %s = %q through pgrouter, %q directly", k, got, want)
		}
	}
	steps := []step{send("Z", query("SHOW application_name")), send("Z", parse("", "SHOW application_name"), bind("", ""), execute("", 0), sync_)}
	want := strings.Join(direct.RunScript(steps, 20*time.Second), "\n")
	if got := strings.Join(proxied.RunScript(steps, 20*time.Second), "\n"); got != want {
		t.Errorf("through pgrouter:\n%s\ndirectly:\n%s", got, want)
	}
}

// One client's DEALLOCATE (extended or simple protocol, ALL or a name)
// drops its own statements only: another client's statement, which shares
// the server-side name and maybe the backend, keeps working.
func TestDeallocateAffectsOnlyItsClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	deallocs := [][]pgproto3.FrontendMessage{
		{parse("", "DEALLOCATE ALL"), bind("", ""), execute("", 0), sync_},
		{query("DEALLOCATE ALL")},
		{parse("", "DEALLOCATE x1"), bind("", ""), execute("", 0), sync_},
		{query("DISCARD ALL")},
		{query("RESET ALL")},
	}
	b, err := testenv.DialRaw(ctx, env.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.RunScript([]step{send("Z", parse("x1", "select 'shared'"), sync_)}, 5*time.Second); strings.Join(got, " ") != "-- 1 Z I" {
		t.Fatalf("B's Parse: %v", got)
	}
	for round := 0; round < 3; round++ {
		for i, d := range deallocs {
			a, err := testenv.DialRaw(ctx, env.AppDSN())
			if err != nil {
				t.Fatal(err)
			}
			// A prepares the same text under the same name, so both
			// share one server-side statement; B's run puts it on the
			// backend A is likely to get next (the pool's most recent).
			a.RunScript([]step{send("Z", parse("x1", "select 'shared'"), bind("", "x1"), execute("", 0), sync_)}, 5*time.Second)
			b.RunScript([]step{send("Z", bind("", "x1"), execute("", 0), sync_)}, 5*time.Second)
			a.RunScript([]step{send("Z", d...)}, 5*time.Second)
			got := b.RunScript([]step{send("Z", bind("", "x1"), execute("", 0), sync_)}, 5*time.Second)
			if want := "-- 2 D shared C SELECT 1 Z I"; strings.Join(got, " ") != want {
				t.Errorf("round %d, after another client's %d-th DEALLOCATE: B got %q, want %q", round, i, strings.Join(got, " "), want)
			}
			a.Close()
		}
	}
}

// Shutdown ends within its timeout even while a session waits on its
// backend (a long query): the wait is interrupted, the backend discarded.
func TestShutdownInterruptsBackendWait(t *testing.T) {
	ctx := context.Background()
	inst, dsn := startOwnInstance(t, *env.Config)
	c := connect(t, dsn)
	queryDone := make(chan struct{})
	go func() { c.Exec(ctx, "select pg_sleep(30)"); close(queryDone) }()
	defer func() { <-queryDone }() // before the connection's cleanup closes it
	time.Sleep(300 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		inst.Close(sctx)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown still waiting on a session's backend 14s past its 1s timeout")
	}
}
