package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgxWorkload is the common workload through pgx, in this process: its
// statement cache (named statements, Describe first), batches, CopyFrom
// (binary), nested transactions as savepoints, context cancel (a
// CancelRequest, as configured below), and 200 concurrent clients.
func pgxWorkload(ctx context.Context, to target, suffix string) (string, string) {
	pgxErrors.Lock()
	pgxErrors.Reset()
	pgxErrors.Unlock()
	w := &pgxRun{dsn: to.dsn, trustDSN: to.trustDSN, items: "items_" + suffix, ref: "ref_" + suffix}
	var out strings.Builder
	conn, err := w.connect(ctx, "drv-pgx")
	for _, ch := range w.checks() {
		var res string
		if err != nil {
			res = "no connection: " + err.Error()
		} else {
			cctx, cancel := context.WithTimeout(ctx, checkTimeout(ch.name))
			res = ch.run(cctx, conn)
			expectsErr := strings.HasPrefix(ch.name, "err_") || strings.HasPrefix(ch.name, "cancel")
			if cctx.Err() != nil && !strings.HasPrefix(ch.name, "cancel") {
				res = "TIMEOUT"
			}
			// As in the scripts (clientlib.py): after a timeout, or an error
			// in a check not about one, the next check gets a fresh connection.
			if res == "TIMEOUT" || (strings.HasPrefix(res, "ERROR") && !expectsErr) || conn.IsClosed() {
				conn.Close(ctx)
				conn, err = w.connect(ctx, "drv-pgx")
			}
			cancel()
		}
		fmt.Fprintf(&out, "%s: %s\n", ch.name, strings.ReplaceAll(res, "\n", `\n`))
	}
	if conn != nil {
		conn.Close(ctx)
	}
	pgxErrors.Lock()
	defer pgxErrors.Unlock()
	return out.String(), pgxErrors.String()
}

func checkTimeout(name string) time.Duration {
	if name == "concurrency" {
		return 60 * time.Second
	}
	return 4 * time.Second
}

type pgxRun struct{ dsn, trustDSN, items, ref string }

type pgxCheck struct {
	name string
	run  func(ctx context.Context, c *pgx.Conn) string
}

func (w *pgxRun) connect(ctx context.Context, app string) (*pgx.Conn, error) {
	return w.connectTo(ctx, w.dsn, app)
}

func (w *pgxRun) connectTo(ctx context.Context, dsn, app string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = app
	cfg.RuntimeParams["TimeZone"] = "Asia/Kolkata"
	cfg.RuntimeParams["search_path"] = "public"
	// A canceled context sends a CancelRequest and waits for the answer
	// (pgx's default closes the socket instead).
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 2 * time.Second}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// result renders rows (column names and types, then values with their Go
// types) or an error as "ERROR <SQLSTATE>".
func result(rows pgx.Rows, err error) string {
	if err != nil {
		return errResult(err)
	}
	defer rows.Close()
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID))
	}
	out := []string{strings.Join(cols, ",")}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return errResult(err)
		}
		out = append(out, fmt.Sprintf("%#v", vals))
	}
	if err := rows.Err(); err != nil {
		return errResult(err)
	}
	return strings.Join(out, " | ") + " | " + rows.CommandTag().String()
}

// pgxErrors collects the messages of the errors of one run (runs are
// sequential), the stderr of this in-process workload.
var pgxErrors struct {
	sync.Mutex
	strings.Builder
}

func errResult(err error) string {
	pgxErrors.Lock()
	fmt.Fprintln(&pgxErrors, err)
	pgxErrors.Unlock()
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return "ERROR " + pe.Code
	}
	return "ERROR " + err.Error()
}

func exec1(ctx context.Context, c *pgx.Conn, sql string, args ...any) string {
	tag, err := c.Exec(ctx, sql, args...)
	if err != nil {
		return errResult(err)
	}
	return tag.String()
}

func itemArgs(i int) []any {
	var name, ok any
	if i%7 != 0 {
		name = fmt.Sprintf("item %d é", i)
	}
	if i%5 != 0 {
		ok = i%2 == 0
	}
	tags := []any{fmt.Sprintf("t%d", i)}
	if i%3 == 0 {
		tags = append(tags, nil)
	}
	price := pgtype.Numeric{}
	_ = price.Scan(fmt.Sprintf("%d.%02d", i, i%100))
	at := time.Date(2024, time.Month(1+i%12), 1+i%28, i%24, 30, 15, i*1000000, time.UTC)
	return []any{i, name, i*3 - 10, price, at, ok, tags}
}

func (w *pgxRun) insert() string {
	return "insert into " + w.items + " (id, name, qty, price, at, ok, tags) values ($1, $2, $3, $4, $5, $6, $7)"
}

func (w *pgxRun) checks() []pgxCheck {
	q := func(sql string, args ...any) func(context.Context, *pgx.Conn) string {
		return func(ctx context.Context, c *pgx.Conn) string { return result(c.Query(ctx, sql, args...)) }
	}
	after := q("select $1::int + 1 as x", 1)
	return []pgxCheck{
		{"settings", w.settings},
		{"types", q(typesSQL)},
		{"types_simple", q(typesSQL, pgx.QueryExecModeSimpleProtocol)},
		{"params", q("select $1::int + 1 as a, $2::text || $3::text as b, $4::numeric * 2 as c, $5::timestamptz as d, not $6::bool as e, $7::int as f, $8::int[] as g",
			41, "x", "y", "1.25", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), true, nil, []any{1, nil, 3})},
		{"insert", w.insertRange(1, 10)},
		{"batch", w.batch(seq(11, 30)...)},
		{"prepared", w.prepared},
		{"select_all", q("select * from " + w.items + " order by id")},
		{"aggregates", q("select count(*), sum(qty), min(price), max(at), bool_and(ok) from " + w.items)},
		{"err_syntax", q("selec 1", pgx.QueryExecModeSimpleProtocol)},
		{"after_err_syntax", after},
		{"err_syntax_ext", q("selec $1::int", 1)},
		{"after_err_syntax_ext", after},
		{"err_unique", w.insertRange(1, 1)},
		{"after_err_unique", after},
		{"err_batch_unique", w.batch(31, 32, 1, 33)},
		{"after_err_batch_unique", q("select id from " + w.items + " where id between 31 and 33 order by id")},
		{"err_div", q("select 1 / $1::int", 0)},
		{"after_err_div", after},
		{"err_simple_div", q("select 1; select 1/0; select 2", pgx.QueryExecModeSimpleProtocol)},
		{"after_err_simple_div", after},
		{"tx_commit", w.txCommit},
		{"tx_rollback", w.txRollback},
		{"tx_error", w.txError},
		{"savepoint", w.savepoint},
		{"copy_in", w.copyIn},
		{"copy_out", w.copyOut("copy (select id, name from " + w.ref + " order by id) to stdout")},
		{"copy_out_key", w.copyOut("copy (select * from " + w.items + " where id = 5) to stdout")},
		{"count", q("select count(*) from " + w.items)},
		{"update_returning", w.updateReturning},
		{"delete_multi", func(ctx context.Context, c *pgx.Conn) string {
			return exec1(ctx, c, "delete from "+w.items+" where id >= 55")
		}},
		{"ref_write", func(ctx context.Context, c *pgx.Conn) string {
			return exec1(ctx, c, "insert into "+w.ref+" values ($1, $2)", 4, "four") + " " + result(c.Query(ctx, "select * from "+w.ref+" order by id"))
		}},
		{"select_all_end", q("select * from " + w.items + " order by id")},
		{"cancel", w.cancel},
		{"after_cancel", after},
		{"settings_end", w.settings},
		{"concurrency", w.concurrency},
	}
}

const typesSQL = "select 42::int as i, 'héllo'::text as t, 12.50::numeric(10,2) as n, " +
	"'2024-02-03 04:05:06.789+00'::timestamptz as ts, true as b, null::int as z, " +
	"array[1,2,3]::int[] as a, 9007199254740993::bigint as big, 1.5::float8 as f"

func (w *pgxRun) settings(ctx context.Context, c *pgx.Conn) string {
	var out []string
	for _, s := range []string{"application_name", "client_encoding", "TimeZone", "search_path"} {
		out = append(out, result(c.Query(ctx, "show "+s)))
	}
	return strings.Join(out, " ; ")
}

func (w *pgxRun) insertRange(first, last int) func(context.Context, *pgx.Conn) string {
	return func(ctx context.Context, c *pgx.Conn) string {
		var out []string
		for i := first; i <= last; i++ {
			out = append(out, exec1(ctx, c, w.insert(), itemArgs(i)...))
		}
		return strings.Join(out, ",")
	}
}

// batch sends the inserts as one pgx batch: one round trip, one Sync.
func (w *pgxRun) batch(ids ...int) func(context.Context, *pgx.Conn) string {
	return func(ctx context.Context, c *pgx.Conn) string {
		b := &pgx.Batch{}
		for _, i := range ids {
			b.Queue(w.insert(), itemArgs(i)...)
		}
		b.Queue("select count(*) from " + w.items)
		br := c.SendBatch(ctx, b)
		var out []string
		for range ids {
			tag, err := br.Exec()
			if err != nil {
				out = append(out, errResult(err))
				break
			}
			out = append(out, tag.String())
		}
		if err := br.Close(); err != nil {
			out = append(out, "close: "+errResult(err))
		}
		return strings.Join(out, ",")
	}
}

func (w *pgxRun) prepared(ctx context.Context, c *pgx.Conn) string {
	sd, err := c.Prepare(ctx, "sel", "select id, name, qty from "+w.items+" where id = $1")
	if err != nil {
		return errResult(err)
	}
	out := []string{fmt.Sprint(sd.ParamOIDs, len(sd.Fields))}
	for _, k := range []int{3, 4, 7, 999} {
		out = append(out, result(c.Query(ctx, "sel", k)))
	}
	if err := c.Deallocate(ctx, "sel"); err != nil {
		out = append(out, "deallocate: "+errResult(err))
	}
	return strings.Join(out, " ; ")
}

func (w *pgxRun) txCommit(ctx context.Context, c *pgx.Conn) string {
	var out []string
	err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		out = append(out, exec1(ctx, c, "update "+w.items+" set name = 'tx' where id = 2"),
			exec1(ctx, c, "update "+w.items+" set name = 'tx' where id = $1", 3))
		return nil
	})
	if err != nil {
		out = append(out, "commit: "+errResult(err))
	}
	return strings.Join(append(out, result(c.Query(ctx, "select id, name from "+w.items+" where id in (2, 3) order by id"))), " ; ")
}

func (w *pgxRun) txRollback(ctx context.Context, c *pgx.Conn) string {
	tx, err := c.Begin(ctx)
	if err != nil {
		return errResult(err)
	}
	a := exec1(ctx, c, "delete from "+w.items+" where id = 4")
	if err := tx.Rollback(ctx); err != nil {
		a += " rollback: " + errResult(err)
	}
	return a + " ; " + result(c.Query(ctx, "select count(*) from "+w.items))
}

func (w *pgxRun) txError(ctx context.Context, c *pgx.Conn) string {
	tx, err := c.Begin(ctx)
	if err != nil {
		return errResult(err)
	}
	out := []string{result(c.Query(ctx, "select 1 / $1::int", 0)), result(c.Query(ctx, "select 1"))}
	if err := tx.Rollback(ctx); err != nil {
		out = append(out, "rollback: "+errResult(err))
	}
	return strings.Join(append(out, result(c.Query(ctx, "select 2"))), " ; ")
}

func (w *pgxRun) savepoint(ctx context.Context, c *pgx.Conn) string {
	var out []string
	err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		out = append(out, exec1(ctx, c, w.insert(), itemArgs(40)...))
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { // SAVEPOINT
			_, err := sp.Exec(ctx, w.insert(), itemArgs(1)...)
			return err
		})
		out = append(out, errResult(err))
		for i := 41; i <= 43; i++ {
			out = append(out, exec1(ctx, c, w.insert(), itemArgs(i)...))
		}
		return nil
	})
	if err != nil {
		out = append(out, "commit: "+errResult(err))
	}
	return strings.Join(append(out, result(c.Query(ctx, "select id, name from "+w.items+" where id >= 40 order by id"))), " ; ")
}

func (w *pgxRun) copyIn(ctx context.Context, c *pgx.Conn) string {
	var rows [][]any
	for i := 50; i < 60; i++ {
		rows = append(rows, itemArgs(i))
	}
	n, err := c.CopyFrom(ctx, pgx.Identifier{w.items}, []string{"id", "name", "qty", "price", "at", "ok", "tags"}, pgx.CopyFromRows(rows))
	if err != nil {
		return errResult(err)
	}
	return fmt.Sprint(n)
}

func (w *pgxRun) copyOut(sql string) func(context.Context, *pgx.Conn) string {
	return func(ctx context.Context, c *pgx.Conn) string {
		var buf bytes.Buffer
		tag, err := c.PgConn().CopyTo(ctx, &buf, sql)
		if err != nil {
			return errResult(err)
		}
		return tag.String() + " " + buf.String()
	}
}

func (w *pgxRun) updateReturning(ctx context.Context, c *pgx.Conn) string {
	rows, err := c.Query(ctx, "update "+w.items+" set qty = qty + 1 where id <= 6 returning id, qty")
	if err != nil {
		return errResult(err)
	}
	var pairs [][2]int32
	for rows.Next() {
		var p [2]int32
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			return errResult(err)
		}
		pairs = append(pairs, p)
	}
	if rows.Err() != nil {
		return errResult(rows.Err())
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	return fmt.Sprint(pairs, rows.CommandTag())
}

func (w *pgxRun) cancel(ctx context.Context, c *pgx.Conn) string {
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := c.Exec(cctx, "select pg_sleep(3)")
	return errResult(err)
}

// concurrency: 200 clients at once, each with its own settings, a prepared
// statement and an error, over pools of poolSize backends. They log in
// without SCRAM (trustDSN): 200 client-side SCRAM exchanges under the race
// detector would time out logins, not test pgrouter.
func (w *pgxRun) concurrency(ctx context.Context, _ *pgx.Conn) string {
	const n = 200
	res := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := w.connectTo(ctx, w.trustDSN, fmt.Sprintf("c%d", i%7))
			if err != nil {
				res[i] = "connect: " + errResult(err)
				return
			}
			defer c.Close(ctx)
			var v int
			if err := c.QueryRow(ctx, "select $1::int * 2", i).Scan(&v); err != nil || v != 2*i {
				res[i] = fmt.Sprint("query: ", v, err)
				return
			}
			e := exec1(ctx, c, "select 1 / $1::int", 0)
			var app string
			if err := c.QueryRow(ctx, "show application_name").Scan(&app); err != nil {
				res[i] = "show: " + errResult(err)
				return
			}
			res[i] = e + " " + strings.TrimPrefix(app, fmt.Sprintf("c%d", i%7))
		}()
	}
	wg.Wait()
	counts := map[string]int{}
	for _, r := range res {
		counts[r]++
	}
	return fmt.Sprint(counts)
}

func seq(first, last int) []int {
	var out []int
	for i := first; i <= last; i++ {
		out = append(out, i)
	}
	return out
}
