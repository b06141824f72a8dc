package rwsplit

import (
	"strconv"
	"testing"
	"time"
)

// TestTransactionOpenedInOneQueryRunsOnPrimary: issue 12 item 1c. A simple
// Query that opens a transaction ("begin; select …", START TRANSACTION, or a
// BEGIN left open at its end) must run on the primary: the transaction's
// later write would otherwise fail on a replica with a READ ONLY error the
// client never asked for.
func TestTransactionOpenedInOneQueryRunsOnPrimary(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	tp := topoOf(env)
	for _, text := range []string{
		"begin; " + whoSQL,
		"START TRANSACTION ISOLATION LEVEL REPEATABLE READ; " + whoSQL,
		whoSQL + "; begin",
	} {
		c := connect(t, env)
		res, err := c.PgConn().Exec(ctx, text).ReadAll()
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		port := 0
		for _, r := range res {
			if len(r.Rows) == 1 && len(r.Rows[0]) == 2 {
				port, _ = strconv.Atoi(string(r.Rows[0][0]))
			}
		}
		if port != tp.primary {
			t.Errorf("%q ran on %s, want the primary", text, tp.name(port))
		}
		if _, err := c.PgConn().Exec(ctx, "insert into items (v) values ('opened in one query')").ReadAll(); err != nil {
			t.Errorf("%q: write in the transaction: %v", text, err)
		}
		if _, err := c.PgConn().Exec(ctx, "rollback").ReadAll(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoneBeginWithASemicolonInAComment: "BEGIN /* ; */" is one statement,
// deferred like any lone BEGIN; counting semicolons in the text took it for
// several and sent it to a replica, where the transaction's write failed.
func TestLoneBeginWithASemicolonInAComment(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	for _, begin := range []string{"BEGIN /* a; b */", "begin -- why; not\n", "BEGIN ISOLATION LEVEL SERIALIZABLE; -- ;"} {
		c := connect(t, env)
		if _, err := c.PgConn().Exec(ctx, begin).ReadAll(); err != nil {
			t.Fatalf("%q: %v", begin, err)
		}
		if _, err := c.PgConn().Exec(ctx, "insert into items (v) values ('after a lone begin')").ReadAll(); err != nil {
			t.Errorf("%q: write in the transaction: %v", begin, err)
		}
		if _, err := c.PgConn().Exec(ctx, "rollback").ReadAll(); err != nil {
			t.Fatal(err)
		}
	}
}
