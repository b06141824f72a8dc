package wire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/proxy"
)

// TestCurrvalAcrossTransactions: currval after a nextval of an earlier
// transaction works on Postgres (session state) but not under transaction
// pooling when the next transaction runs on another backend. pgrouter
// cannot give that one backend without pinning every client that inserts
// (nextval runs from column DEFAULTs), so the client gets Postgres's 55000
// with a hint that says why and what works; inside one transaction, and
// with RETURNING, the values are right.
func TestCurrvalAcrossTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := profiles[0].schema
	if err := resetSchema(ctx, schema); err != nil {
		t.Fatal(err)
	}
	inst, err := proxy.Start(ctx, coldConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	dsn := proxyDSN(inst.Addr) + "&search_path=" + schema
	a := connectT(ctx, t, dsn, true)
	defer a.Close(ctx)
	holder := connectT(ctx, t, dsn, true)
	defer holder.Close(ctx)
	mustExec(ctx, t, a, "create sequence seq_t")
	if got := scalar(ctx, t, a, "begin; select nextval('seq_t'); select currval('seq_t'); commit"); got != "1" {
		t.Errorf("currval in nextval's transaction = %q, want 1", got)
	}
	mustExec(ctx, t, a, "select nextval('seq_t')")
	mustExec(ctx, t, holder, "begin; select 1") // the backend that ran nextval is busy now
	_, err = a.Exec(ctx, "select currval('seq_t')").ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55000" || !strings.Contains(pe.Hint, "pool.mode") {
		t.Fatalf("currval after an earlier transaction's nextval on another backend: err %v; want 55000 with a pooling hint", err)
	}
	t.Logf("%s (hint: %s)", pe.Message, pe.Hint)
	mustExec(ctx, t, holder, "rollback")
}

// scalar runs sql and returns the first column of the last row it returned.
func scalar(ctx context.Context, t *testing.T, c *pgconn.PgConn, sql string) string {
	t.Helper()
	results, err := c.Exec(ctx, sql).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	v := ""
	for _, r := range results {
		for _, row := range r.Rows {
			v = string(row[0])
		}
	}
	return v
}
