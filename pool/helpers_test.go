package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// srv is the one Postgres shared by this package's tests (started in TestMain).
var srv *testServer

func TestMain(m *testing.M) {
	s, err := startTestServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pool tests need a local Postgres:", err)
		if s != nil {
			s.Close()
		}
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

func testConfig(name string) Config {
	return Config{
		Name: name, Addr: srv.Addr(), User: testUser, Password: testPassword, Database: "postgres",
		Size: 3, AcquireTimeout: 20 * time.Second, RuntimeParams: map[string]string{"application_name": name},
	}
}

func newTestPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p := New(cfg)
	t.Cleanup(p.Close)
	return p
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAcquire(t testing.TB, ctx context.Context, p *Pool) *Conn {
	t.Helper()
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return c
}

// simpleQuery runs sql with the simple protocol on the raw socket, the way the
// proxy will, and returns the text of every row.
func simpleQuery(c *Conn, sql string) ([][]string, error) {
	fe := pgproto3.NewFrontend(c.NetConn, c.NetConn)
	fe.Send(&pgproto3.Query{String: sql})
	if err := fe.Flush(); err != nil {
		return nil, err
	}
	return readResult(fe)
}

// readResult reads one simple-protocol response through ReadyForQuery.
func readResult(fe *pgproto3.Frontend) ([][]string, error) {
	var rows [][]string
	var qerr error
	for {
		msg, err := fe.Receive()
		if err != nil {
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			row := make([]string, len(m.Values))
			for i, v := range m.Values {
				row[i] = string(v)
			}
			rows = append(rows, row)
		case *pgproto3.ErrorResponse:
			qerr = &pgconn.PgError{Code: m.Code, Message: m.Message}
		case *pgproto3.ReadyForQuery:
			return rows, qerr
		}
	}
}

// scalar runs sql and returns the single value it produced.
func scalar(t testing.TB, c *Conn, sql string) string {
	t.Helper()
	rows, err := simpleQuery(c, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		t.Fatalf("%s: want one value, got %v", sql, rows)
	}
	return rows[0][0]
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitingIs(p *Pool, n int) func() bool { return func() bool { return p.Stats().Waiting == n } }

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// superConn is a plain pgconn session outside any pool, for spying and killing.
func superConn(t testing.TB, ctx context.Context) *pgconn.PgConn {
	t.Helper()
	c, err := pgconn.Connect(ctx, srv.dsn())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func superScalar(t testing.TB, ctx context.Context, c *pgconn.PgConn, sql string) string {
	t.Helper()
	res, err := c.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("%s: want one row", sql)
	}
	return string(res[0].Rows[0][0])
}
