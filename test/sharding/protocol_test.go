package sharding

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// A statement that runs on several shards, prepared with Describe(statement)
// as postgres.js does for every query without parameters (in one batch, and
// with Flush before the Bind), answers like Postgres: the description of the
// statement, then the merged result.
func TestDescribeStatementOfMultiShardSelect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	if _, err := c.Exec(ctx, "delete from users where user_id between 700000 and 700999"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := c.Exec(ctx, "insert into users (user_id, name) values ($1, 'd')", 700000+i); err != nil {
			t.Fatal(err)
		}
	}
	const q = "select count(*) from users where user_id between 700000 and 700999"
	want := []string{"1", "t []", "T count:20", "2", fmt.Sprintf("D %d", countOnShards(t, "users where user_id between 700000 and 700999")), "C SELECT 1", "Z I"}
	r, err := testenv.DialRaw(ctx, env.AppDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d := &pgproto3.Describe{ObjectType: 'S', Name: "n1"}
	got := r.RunScript([]testenv.Step{{Send: []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "n1", Query: q}, d,
		&pgproto3.Bind{PreparedStatement: "n1"}, &pgproto3.Execute{}, &pgproto3.Sync{}}, Until: "Z"}}, 10*time.Second)
	if strings.Join(got[1:], "\n") != strings.Join(want, "\n") {
		t.Errorf("Parse, Describe, Bind, Execute, Sync:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	d.Name = "n2"
	got = r.RunScript([]testenv.Step{
		{Send: []pgproto3.FrontendMessage{&pgproto3.Parse{Name: "n2", Query: q}, d, &pgproto3.Flush{}}, Until: "T"},
		{Send: []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "n2"}, &pgproto3.Execute{}, &pgproto3.Sync{}}, Until: "Z"},
	}, 10*time.Second)
	if strings.Join(got, "\n") != "--\n"+strings.Join(want[:3], "\n")+"\n--\n"+strings.Join(want[3:], "\n") {
		t.Errorf("Parse, Describe, Flush; Bind, Execute, Sync:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A client's cancel reaches the backend running its query now, never the
// backends its earlier COPY used, which other clients hold by then.
func TestCancelAfterCopyTargetsOwnQuery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	truncateCopyTables(t)
	a, b := connect(t, pgx.QueryExecModeSimpleProtocol), connect(t, pgx.QueryExecModeSimpleProtocol)
	data, _ := textCopyData(20, 800000)
	if _, err := a.PgConn().CopyFrom(ctx, strings.NewReader(data), "COPY copy_users (user_id, note) FROM STDIN"); err != nil {
		t.Fatal(err)
	}
	// B takes the backends A's COPY gave back (the pools hand out the most
	// recently released first) and runs a query on one of them.
	if _, err := b.Exec(ctx, "begin"); err != nil {
		t.Fatal(err)
	}
	bDone := make(chan error, 1)
	go func() { _, err := b.Exec(ctx, "select pg_sleep(2)"); bDone <- err }()
	aDone := make(chan error, 1)
	time.Sleep(200 * time.Millisecond)
	go func() { _, err := a.Exec(ctx, "select pg_sleep(10)"); aDone <- err }()
	time.Sleep(300 * time.Millisecond)
	if err := a.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-aDone:
		if pe, ok := err.(*pgconn.PgError); !ok || pe.Code != "57014" {
			t.Errorf("A's canceled query: %v, want 57014", err)
		}
	case <-time.After(8 * time.Second):
		t.Errorf("A's cancel did not reach A's query")
		<-aDone
	}
	if err := <-bDone; err != nil {
		t.Errorf("B's query, which nobody canceled: %v", err)
	}
	b.Exec(ctx, "rollback")
}
