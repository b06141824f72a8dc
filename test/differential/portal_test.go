package differential

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestExecuteRowLimit sends Execute with a row limit (what JDBC's
// setMaxRows does): Postgres answers that many rows and PortalSuspended
// when more were left, CommandComplete otherwise. pgrouter once sent every
// row of a cross-shard query and CommandComplete, ignoring the limit.
func TestExecuteRowLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	single := connect(t, env.Cluster.Shards[0].Primary.DSN(singleDB)).PgConn()
	proxy := connect(t, env.AppDSN()).PgConn()
	for _, sql := range []string{
		"select id, name from users order by id",
		"select region, count(*) from users group by region order by region nulls first",
		"select count(*) from orders",
	} {
		for _, limit := range []uint32{1, 5, 6, 1000} {
			want, err := executeWithLimit(ctx, single, sql, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, err := executeWithLimit(ctx, proxy, sql, limit)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s, Execute limit %d:\n got %s\nwant %s", sql, limit, got, want)
			}
		}
	}
}

// executeWithLimit runs Parse/Bind/Describe/Execute(limit)/Sync and renders
// the answer's message types and rows.
func executeWithLimit(ctx context.Context, c *pgconn.PgConn, sql string, limit uint32) (string, error) {
	fe := c.Frontend()
	fe.Send(&pgproto3.Parse{Query: sql})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Describe{ObjectType: 'P'})
	fe.Send(&pgproto3.Execute{MaxRows: limit})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		return "", err
	}
	var out []string
	for {
		msg, err := c.ReceiveMessage(ctx)
		if err != nil {
			return "", err
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			var cells []string
			for _, v := range m.Values {
				cells = append(cells, string(v))
			}
			out = append(out, "D("+strings.Join(cells, ",")+")")
		case *pgproto3.CommandComplete:
			out = append(out, "C("+string(m.CommandTag)+")")
		case *pgproto3.ErrorResponse:
			out = append(out, "E("+m.Code+" "+m.Message+")")
		case *pgproto3.ReadyForQuery:
			return strings.Join(append(out, "Z"), " "), nil
		default:
			out = append(out, fmt.Sprintf("%T", m)[len("*pgproto3."):])
		}
	}
}
