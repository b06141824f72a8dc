package differential

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// step is one thing a client sends: a statement (simple protocol, or
// extended with text parameters), or a batch (pgx.Batch in the client's
// exec mode: Bind/Execute per statement before one Sync; in the simple
// protocol the statements are joined with ';' into one Query).
type step struct {
	sql      string
	params   []any
	extended bool
	batch    []string // a batch of statements instead of sql
}

// render turns every result a client got (command tag, columns, rows as a
// multiset: rows from several shards come in shard order, and SQL leaves
// the order of RETURNING and unordered SELECT rows undefined) or its error
// SQLSTATE into comparable text.
func render(rs []*pgconn.Result, err error) string {
	var b strings.Builder
	for _, r := range rs {
		if r.Err != nil {
			break
		}
		var rows []string
		for _, row := range r.Rows {
			rows = append(rows, renderRow(row))
		}
		slices.Sort(rows)
		fmt.Fprintf(&b, "%s %v %v; ", r.CommandTag, describe(r.FieldDescriptions), rows)
	}
	if pe := pgError(err); pe != nil {
		fmt.Fprintf(&b, "ERROR %s", pe.Code)
	} else if err != nil {
		fmt.Fprintf(&b, "ERROR %v", err)
	}
	return b.String()
}

func runStep(ctx context.Context, c *pgx.Conn, s step) string {
	pc := c.PgConn()
	switch {
	case s.batch != nil && !s.extended:
		rs, err := pc.Exec(ctx, strings.Join(s.batch, "; ")).ReadAll()
		if err == nil {
			for _, r := range rs {
				if r.Err != nil {
					err = r.Err
				}
			}
		}
		return render(rs, err)
	case s.batch != nil:
		b := &pgx.Batch{}
		for _, q := range s.batch {
			b.Queue(q)
		}
		br := c.SendBatch(ctx, b)
		var out strings.Builder
		for range s.batch {
			tag, err := br.Exec()
			if err != nil {
				fmt.Fprintf(&out, "%s", render(nil, err))
				break
			}
			fmt.Fprintf(&out, "%s; ", tag)
		}
		if err := br.Close(); err != nil {
			fmt.Fprintf(&out, " close: %s", render(nil, err))
		}
		return out.String()
	case s.extended:
		var params [][]byte
		for _, p := range s.params {
			params = append(params, []byte(fmt.Sprint(p)))
		}
		r := pc.ExecParams(ctx, s.sql, params, nil, nil, nil).Read()
		return render([]*pgconn.Result{r}, r.Err)
	}
	rs, err := pc.Exec(ctx, s.sql).ReadAll()
	return render(rs, err)
}

var keyRef = regexp.MustCompile(`\bK(\+[0-9]+)?\b`)

// writeSteps is one client's script over its own keys (k … k+99): split
// multi-row INSERTs, keyless UPDATE/DELETE broadcast to every shard,
// reference-table writes, RETURNING, scatter reads of what was written,
// batches over shards and their errors, all in and out of transactions.
func writeSteps(k int) []step {
	// f writes the keys: "K+2" becomes k+2 (a literal the router reads).
	f := func(format string) string {
		return keyRef.ReplaceAllStringFunc(format, func(m string) string {
			n, _ := strconv.Atoi(strings.TrimPrefix(m, "K+"))
			return strconv.Itoa(k + n)
		})
	}
	ins := f("insert into wusers (id, name, score, at, since, wait) values " +
		"(K+1, 'a', 1.5, '2025-03-04 05:06:07+00', '2025-03-04', '1 day 02:03:04'), (K+2, 'b', 0.1, '2024-12-31 23:59:59+02', '2024-12-31', '-3 hours'), " +
		"(K+3, NULL, 1e-7, NULL, '2000-01-01', '1 year 2 mons'), (K+4, 'd', -2.25, '1999-01-01 00:00:00+00', NULL, NULL) returning *")
	all := f("select * from wusers where id between K and K+99")
	batch := func(ext bool, qs ...string) step {
		for i := range qs {
			qs[i] = f(qs[i])
		}
		return step{batch: qs, extended: ext}
	}
	var steps []step
	for _, ext := range []bool{false, true} {
		steps = append(steps,
			step{sql: ins, extended: ext},
			step{sql: all, extended: ext},
			step{sql: f("update wusers set score = score * 2, wait = wait + interval '1 minute' where id between K and K+99 returning id, score, wait, since"), extended: ext},
			step{sql: f("update wusers set name = upper(name) where id in (K+1, K+2, K+3)"), extended: ext},
			step{sql: f("insert into wplans values (K, 'p') returning *"), extended: ext},
			step{sql: f("update wplans set name = name || 'q' where id = K returning name"), extended: ext},
			step{sql: f("delete from wusers where id in (K+1, K+4) returning id, at"), extended: ext},
			step{sql: all, extended: ext},
			// Batches whose statements go to different shards.
			batch(ext, "insert into wusers (id, name) values (K+10, 'x')", "insert into wusers (id, name) values (K+11, 'y')",
				"insert into wusers (id, name) values (K+12, 'z')", "update wusers set score = 7 where id = K+11"),
			step{sql: all, extended: ext},
			batch(ext, "insert into wusers (id, name) values (K+20, 'x')", "insert into wusers (id, name) values (K+21, 'y')",
				"insert into wusers (id, name) values (K+10, 'dup')", "insert into wusers (id, name) values (K+22, 'z')"),
			step{sql: all, extended: ext},
			// Statements that need several shards themselves, in a batch.
			batch(ext, "update wusers set score = 1 where id between K and K+99 returning id, score",
				"insert into wplans values (K+5, 'r') returning id", "select count(*), sum(score) from wusers where id between K and K+99",
				"insert into wusers (id, name) values (K+40, 'm'), (K+41, 'n'), (K+42, 'o') returning id", "delete from wplans where id = K+5"),
			batch(ext, "insert into wusers (id, name) values (K+43, 'p'), (K+44, 'q')", "select id from wusers where id between K and K+99 order by id",
				"update wusers set score = 1 / (score - 1) where id between K and K+99", "insert into wusers (id, name) values (K+45, 'never')"),
			step{sql: all, extended: ext},
			// Inside a transaction, committed and rolled back.
			step{sql: "begin"},
			step{sql: f("insert into wusers (id, name) values (K+30, 't'), (K+31, 'u'), (K+32, 'v') returning id"), extended: ext},
			batch(ext, "update wusers set name = 'w' where id = K+30", "update wusers set name = 'w' where id = K+31", "delete from wusers where id = K+32"),
			step{sql: f("select count(*), min(name) from wusers where id between K and K+99"), extended: ext},
			step{sql: "commit"},
			step{sql: "begin"},
			step{sql: f("delete from wusers where id between K and K+99"), extended: ext},
			step{sql: f("insert into wplans values (K+1, 'rolled back')"), extended: ext},
			step{sql: "rollback"},
			step{sql: all, extended: ext},
			// Savepoints in a transaction over shards.
			step{sql: "begin"},
			step{sql: f("insert into wusers (id, name) values (K+50, 's')"), extended: ext},
			step{sql: "savepoint a"},
			step{sql: f("insert into wusers (id, name) values (K+51, 's'), (K+52, 's'), (K+53, 's')"), extended: ext},
			step{sql: "savepoint b"},
			step{sql: f("update wusers set name = 'b' where id between K and K+99"), extended: ext},
			step{sql: "rollback to b"},
			step{sql: f("insert into wusers (id, name) values (K+50, 'dup')"), extended: ext},
			step{sql: f("select count(*) from wusers where id between K and K+99"), extended: ext},
			step{sql: "rollback to savepoint a"},
			step{sql: f("insert into wusers (id, name) values (K+54, 't'), (K+55, 't')"), extended: ext},
			step{sql: "release a"},
			step{sql: "release a"},
			step{sql: "rollback"},
			step{sql: "begin"},
			step{sql: "savepoint c"},
			step{sql: f("insert into wusers (id, name) values (K+56, 'u'), (K+57, 'u'), (K+58, 'u')"), extended: ext},
			step{sql: "release c"},
			step{sql: "commit"},
			step{sql: all, extended: ext},
			step{sql: f("delete from wplans where id between K and K+99"), extended: ext},
			step{sql: f("delete from wusers where id between K and K+99"), extended: ext},
		)
	}
	return steps
}

// TestWritesMatchOnePostgres runs each profile's write script at once
// through pgrouter (three shards) and on the single database, comparing
// every answer.
func TestWritesMatchOnePostgres(t *testing.T) {
	ctx := context.Background()
	eachPair(t, writeProfiles, func(i int, p pair) {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
			p.single.Config().DefaultQueryExecMode = mode
			p.proxy.Config().DefaultQueryExecMode = mode
			k := 1_000_000 * (i + 1)
			pass := 0
			steps := writeSteps(k)
			for n, s := range steps {
				want, got := runStep(ctx, p.single, s), runStep(ctx, p.proxy, s)
				if want != got {
					t.Errorf("profile %s mode %v step %d %q %v:\n want %s\n  got %s", p.name, mode, n, s.sql, s.batch, want, got)
					continue
				}
				pass++
			}
			t.Logf("profile %s mode %v: %d/%d write steps identical", p.name, mode, pass, len(steps))
		}
		want, err := showSettings(ctx, p.single)
		got, err2 := showSettings(ctx, p.proxy)
		if err != nil || err2 != nil || want != got {
			t.Errorf("profile %s: settings %q (%v), through pgrouter %q (%v)", p.name, want, err, got, err2)
		}
	})
}
