package integration

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestSimpleQueryThroughProxy(t *testing.T) {
	c := connect(t, env.AppDSN())
	var n int
	if err := c.QueryRow(context.Background(), "select 40 + 2").Scan(&n); err != nil || n != 42 {
		t.Fatalf("select: %v %d", err, n)
	}
	// A multi-statement simple query returns the last result through pgconn.
	res, err := c.PgConn().Exec(context.Background(), "select 1; select 2, 3").ReadAll()
	if err != nil || len(res) != 2 || string(res[1].Rows[0][1]) != "3" {
		t.Fatalf("multi-statement: %v %+v", err, res)
	}
}

func TestAuthMethods(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{env.DSN("app", "app", "app"), env.DSN("md5user", "md5pw", "app"), env.DSN("trusty", "", "app")} {
		c := connect(t, dsn)
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
	}
	for _, dsn := range []string{env.DSN("app", "wrong", "app"), env.DSN("md5user", "wrong", "app"), env.DSN("nobody", "x", "app")} {
		_, err := pgx.Connect(ctx, dsn)
		if sqlState(err) != "28P01" {
			t.Fatalf("%s: want 28P01, got %v", dsn, err)
		}
	}
	_, err := pgx.Connect(ctx, env.DSN("app", "app", "nosuchdb"))
	if sqlState(err) != "3D000" {
		t.Fatalf("unknown database: want 3D000, got %v", err)
	}
}

func TestTLSRequired(t *testing.T) {
	dsn := fmt.Sprintf("postgres://app:app@%s/app?sslmode=require", env.Proxy.Addr)
	c := connect(t, dsn)
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is not TLS: %T", c.PgConn().Conn())
	}
	var ok bool
	if err := c.QueryRow(context.Background(), "select true").Scan(&ok); err != nil || !ok {
		t.Fatalf("query over TLS: %v", err)
	}
}

func TestAllQueryExecModes(t *testing.T) {
	ctx := context.Background()
	setup := connect(t, env.AppDSN())
	if _, err := setup.Exec(ctx, "create table if not exists modes (id int primary key, name text)"); err != nil {
		t.Fatal(err)
	}
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for i, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgx.ParseConfig(env.AppDSN())
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			// Many rounds so the statement cache is used on different backends.
			for j := 0; j < 30; j++ {
				id := i*1000 + j
				if _, err := c.Exec(ctx, "insert into modes (id, name) values ($1, $2)", id, fmt.Sprint("n", id)); err != nil {
					t.Fatalf("insert %d: %v", id, err)
				}
				var name string
				if err := c.QueryRow(ctx, "select name from modes where id = $1", id).Scan(&name); err != nil || name != fmt.Sprint("n", id) {
					t.Fatalf("select %d: %v %q", id, err, name)
				}
			}
			b := &pgx.Batch{}
			for j := 0; j < 20; j++ {
				b.Queue("select $1::int * 2", j)
			}
			br := c.SendBatch(ctx, b)
			for j := 0; j < 20; j++ {
				var v int
				if err := br.QueryRow().Scan(&v); err != nil || v != 2*j {
					t.Fatalf("batch %d: %v %d", j, err, v)
				}
			}
			if err := br.Close(); err != nil {
				t.Fatal(err)
			}
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "update modes set name = $1 where id = $2", "tx", i*1000); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPipelineMode(t *testing.T) {
	ctx := context.Background()
	c := connect(t, env.AppDSN())
	p := c.PgConn().StartPipeline(ctx)
	for i := 0; i < 10; i++ {
		p.SendQueryParams("select $1::int + 1", [][]byte{[]byte(fmt.Sprint(i))}, nil, nil, nil)
		if i%3 == 2 {
			p.SendPipelineSync()
		}
	}
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		r, err := p.GetResults()
		if err != nil {
			t.Fatal(err)
		}
		if r == nil {
			break
		}
		if rr, ok := r.(*pgconn.ResultReader); ok {
			res := rr.Read()
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if string(res.Rows[0][0]) != fmt.Sprint(got+1) {
				t.Fatalf("result %d = %s", got, res.Rows[0][0])
			}
			got++
		}
		if _, ok := r.(*pgconn.PipelineSync); ok && got == 10 {
			break
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got != 10 {
		t.Fatalf("got %d results", got)
	}
}

func TestSessionSettingsDoNotLeak(t *testing.T) {
	ctx := context.Background()
	a := connect(t, env.AppDSN())
	b := connect(t, env.AppDSN())
	if _, err := a.Exec(ctx, "create schema if not exists leak_a"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := a.Exec(ctx, "set search_path to leak_a, public"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Exec(ctx, fmt.Sprintf("set statement_timeout = '%ds'", 100+i)); err != nil {
			t.Fatal(err)
		}
		var sp, to string
		if err := b.QueryRow(ctx, "select current_setting('search_path'), current_setting('statement_timeout')").Scan(&sp, &to); err != nil {
			t.Fatal(err)
		}
		if sp != `"$user", public` || to != "0" {
			t.Fatalf("client b sees a's settings: search_path=%q statement_timeout=%q", sp, to)
		}
		if err := a.QueryRow(ctx, "select current_setting('search_path'), current_setting('statement_timeout')").Scan(&sp, &to); err != nil {
			t.Fatal(err)
		}
		if sp != "leak_a, public" || to != fmt.Sprintf("%ds", 100+i) {
			t.Fatalf("client a lost its settings: search_path=%q statement_timeout=%q", sp, to)
		}
	}
	// A SET rolled back with its transaction is forgotten, as in Postgres.
	tx, _ := a.Begin(ctx)
	tx.Exec(ctx, "set statement_timeout = '7s'")
	tx.Rollback(ctx)
	var to string
	a.QueryRow(ctx, "select current_setting('statement_timeout')").Scan(&to)
	if to != "119s" {
		t.Fatalf("rolled-back SET kept: %q", to)
	}
}

func TestTempTablePinsSession(t *testing.T) {
	ctx := context.Background()
	c := connect(t, env.AppDSN())
	if _, err := c.Exec(ctx, "create temp table scratch (v int)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.Exec(ctx, "insert into scratch values ($1)", i); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		// Other clients keep working meanwhile (and would take the backend if it were released).
		o := connect(t, env.AppDSN())
		o.Exec(ctx, "select 1")
	}
	var n int
	if err := c.QueryRow(ctx, "select count(*) from scratch").Scan(&n); err != nil || n != 5 {
		t.Fatalf("temp table across transactions: %v %d", err, n)
	}
}

func TestCancelRunningQuery(t *testing.T) {
	ctx := context.Background()
	c := connect(t, env.AppDSN())
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(qctx, "select pg_sleep(10)")
	if err == nil {
		t.Fatal("pg_sleep(10) was not cancelled")
	}
	if el := time.Since(start); el > 9*time.Second {
		t.Fatalf("cancel did not interrupt the query (%v)", el)
	}
	// pgx closes the connection on context cancel; check the SQLSTATE with pgconn's CancelRequest.
	c2 := connect(t, env.AppDSN())
	done := make(chan error, 1)
	go func() {
		_, err := c2.Exec(ctx, "select pg_sleep(10)")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := c2.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if sqlState(err) != "57014" {
			t.Fatalf("want 57014, got %v", err)
		}
	case <-time.After(9 * time.Second):
		t.Fatal("cancel request had no effect")
	}
	var one int
	if err := c2.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatalf("connection unusable after cancel: %v", err)
	}
}

func TestCancelWhenIdleDoesNothing(t *testing.T) {
	ctx := context.Background()
	victim := connect(t, env.AppDSN())
	idle := connect(t, env.AppDSN())
	done := make(chan error, 1)
	go func() {
		_, err := victim.Exec(ctx, "select pg_sleep(1)")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	// The idle client's cancel must not reach the backend of the running one.
	if err := idle.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("another client's cancel hit this query: %v", err)
	}
}

func TestManyClientsShareSmallPool(t *testing.T) {
	const clients = 2000
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	sem := make(chan struct{}, 500) // connect in waves so the listen backlog holds
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			c, err := pgx.Connect(ctx, env.DSN("trusty", "", "app"))
			<-sem
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			for j := 0; j < 3; j++ {
				var v int
				if err := c.QueryRow(ctx, "select $1::int", i).Scan(&v); err != nil || v != i {
					errs <- fmt.Errorf("client %d: %v (%d)", i, err, v)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestClientDisconnectMidTransaction(t *testing.T) {
	ctx := context.Background()
	setup := connect(t, env.AppDSN())
	setup.Exec(ctx, "create table if not exists abandoned (v int)")
	setup.Exec(ctx, "truncate abandoned")
	for i := 0; i < 15; i++ { // more than the pool size: backends must come back
		c, err := pgx.Connect(ctx, env.AppDSN())
		if err != nil {
			t.Fatal(err)
		}
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "insert into abandoned values (1)"); err != nil {
			t.Fatal(err)
		}
		c.PgConn().Conn().Close() // vanish without COMMIT or Terminate
	}
	var n int
	if err := setup.QueryRow(ctx, "select count(*) from abandoned").Scan(&n); err != nil || n != 0 {
		t.Fatalf("abandoned transactions committed or pool stuck: %v n=%d", err, n)
	}
}

func TestDeallocateAndDiscard(t *testing.T) {
	ctx := context.Background()
	c := connect(t, env.AppDSN())
	pc := c.PgConn()
	if _, err := pc.Prepare(ctx, "mine", "select $1::int + 1", nil); err != nil {
		t.Fatal(err)
	}
	res := pc.ExecPrepared(ctx, "mine", [][]byte{[]byte("41")}, nil, nil).Read()
	if res.Err != nil || string(res.Rows[0][0]) != "42" {
		t.Fatalf("exec prepared: %v %v", res.Err, res.Rows)
	}
	if _, err := pc.Exec(ctx, "deallocate mine").ReadAll(); err != nil {
		t.Fatalf("DEALLOCATE of a protocol statement: %v", err)
	}
	if res := pc.ExecPrepared(ctx, "mine", [][]byte{[]byte("1")}, nil, nil).Read(); sqlState(res.Err) != "26000" {
		t.Fatalf("statement still usable after DEALLOCATE: %v", res.Err)
	}
	// DISCARD ALL on a backend must not leave other clients' statements dangling.
	other := connect(t, env.AppDSN())
	for i := 0; i < 5; i++ {
		if _, err := c.Exec(ctx, "discard all"); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := other.QueryRow(ctx, "select $1::int", i).Scan(&v); err != nil || v != i {
			t.Fatalf("prepared statement after another client's DISCARD ALL: %v", err)
		}
	}
}

func TestBackendKilledMidQuery(t *testing.T) {
	ctx := context.Background()
	c := connect(t, env.AppDSN())
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "/* pgrouter: role=primary */ select pg_sleep(5) /* victim */")
		done <- err
	}()
	admin, err := pgx.Connect(ctx, env.Cluster.Shards[0].Primary.DSN("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for killed := false; !killed && time.Now().Before(deadline); {
		admin.QueryRow(ctx, "select count(pg_terminate_backend(pid)) > 0 from pg_stat_activity where query like '%victim%' and pid <> pg_backend_pid()").Scan(&killed)
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("query on a killed backend succeeded")
		}
		if code := sqlState(err); code != "57P01" && code != "08006" {
			t.Fatalf("want 57P01 (forwarded) or 08006, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client hung after its backend was killed")
	}
	// Outside a transaction the client's session survives the loss of its
	// backend (the error is not FATAL), and the pool heals.
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatalf("client connection did not survive its backend's death: %v", err)
	}
	c2 := connect(t, env.AppDSN())
	if err := c2.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

// TestPrepareAgainAfterBackendLost: a batch that Parses a named statement
// and loses its backend fails whole for the client (57P01/08006), so the
// name is free again: drivers prepare again under the same name after a
// failed prepare (pgx's statement cache names statements by their text),
// and a name kept by the proxy failed every retry with 42P05.
func TestPrepareAgainAfterBackendLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := connect(t, env.AppDSN())
	const sql = "/* pgrouter: role=primary */ select pg_sleep(5)::text /* victim_reprepare */"
	done := make(chan error, 1)
	go func() {
		p := c.PgConn().StartPipeline(ctx)
		p.SendPrepare("s_lost", sql, nil)
		p.SendQueryPrepared("s_lost", nil, nil, nil)
		if err := p.Sync(); err != nil {
			done <- err
			return
		}
		var first error
		for first == nil {
			res, err := p.GetResults()
			if err != nil || res == nil {
				first = cmpErr(err, errors.New("pipeline ended without an error"))
				break
			}
			if rr, ok := res.(*pgconn.ResultReader); ok {
				_, first = rr.Close()
			}
			if _, ok := res.(*pgconn.PipelineSync); ok && first == nil {
				first = errors.New("the batch reached its Sync without an error")
			}
		}
		p.Close()
		done <- first
	}()
	admin, err := pgx.Connect(ctx, env.Cluster.Shards[0].Primary.DSN("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for killed := false; !killed && ctx.Err() == nil; {
		admin.QueryRow(ctx, "select count(pg_terminate_backend(pid)) > 0 from pg_stat_activity where query like '%victim_reprepare%' and state = 'active' and pid <> pg_backend_pid()").Scan(&killed)
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err == nil {
		t.Fatal("a batch whose backend was killed succeeded")
	} else if code := sqlState(err); code != "57P01" && code != "08006" {
		t.Fatalf("want 57P01 or 08006 for the killed batch, got %v", err)
	}
	if _, err := c.PgConn().Prepare(ctx, "s_lost", "select 1", nil); err != nil {
		t.Fatalf("Parse of the same name after the failed batch: %v (Postgres would have ended the connection; the proxy kept it, so the name must be free)", err)
	}
	if _, err := c.PgConn().ExecPrepared(ctx, "s_lost", nil, nil, nil).Close(); err != nil {
		t.Fatalf("Execute of the statement prepared again: %v", err)
	}
}

// cmpErr keeps the first error.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func TestGracefulShutdownLetsTransactionsFinish(t *testing.T) {
	ctx := context.Background()
	inst, dsn := startOwnInstance(t, *env.Config)
	c := connect(t, dsn)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		inst.Close(sctx)
		close(closed)
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatal("new connection accepted during shutdown")
	}
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Fatalf("running transaction cut off by shutdown: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit during shutdown: %v", err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish after the transaction ended")
	}
}

func TestMaxClientsAndLoginTimeout(t *testing.T) {
	ctx := context.Background()
	cfg := *env.Config
	cfg.Pool.MaxClients = 2
	cfg.Pool.LoginTimeout = config.Duration(2 * time.Second) // a real login on a busy box must fit
	inst, dsn := startOwnInstance(t, cfg)
	defer inst.Close(ctx)
	connect(t, dsn)
	connect(t, dsn)
	if _, err := pgx.Connect(ctx, dsn); sqlState(err) != "53300" {
		t.Fatalf("third client over max_clients=2: want 53300, got %v", err)
	}
	// A client that opens a socket and never logs in is dropped after login_timeout.
	raw, err := net.Dial("tcp", inst.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	readUntilClosed(t, raw) // fails the test if the proxy keeps the socket open
}

// startOwnInstance starts a pgrouter of its own on the test cluster with
// cfg (own listener, no metrics listener), for tests that shut it down or
// change its limits; it returns the instance and its app DSN.
func startOwnInstance(t *testing.T, cfg config.Config) (*proxy.Instance, string) {
	t.Helper()
	cfg.Listen, cfg.Metrics.Listen = "127.0.0.1:0", "off"
	inst, err := proxy.Start(context.Background(), &cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return inst, fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", inst.Addr)
}
