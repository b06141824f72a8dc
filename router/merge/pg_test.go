package merge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// The differential tests run every query twice on one real Postgres: over
// the whole table (schema "whole"), and as ShardSQL over three schemas s0..s2
// holding the rows with id % 3 = i, merged by the engine. Results must be
// byte-identical (as multisets where the SQL leaves order undefined).

var testNode *localpg.Node

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localpg.Start(ctx, localpg.Options{Shards: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "merge tests need a local Postgres:", err)
		return 1
	}
	defer c.Close()
	testNode = c.Shards[0].Primary
	if err := loadData(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "load test data:", err)
		return 1
	}
	return m.Run()
}

const schemaSQL = `
CREATE SCHEMA whole; CREATE SCHEMA s0; CREATE SCHEMA s1; CREATE SCHEMA s2;
CREATE TABLE whole.t (id int PRIMARY KEY, k int, name text, v int, big int8, num numeric(10,2),
  numx numeric, f float8, r real, flag bool, d date, ts timestamp, tz timestamptz, u uuid,
  w varchar(20), c char(3), s int2);
INSERT INTO whole.t SELECT g,
  CASE WHEN g % 11 = 0 THEN NULL ELSE g % 7 END,
  CASE WHEN g % 13 = 0 THEN NULL ELSE 'name' || (g % 17) END,
  CASE WHEN g % 9 = 0 THEN NULL ELSE (g * 37) % 101 - 20 END,
  CASE WHEN g % 10 = 0 THEN NULL ELSE g::int8 * 1000000007 END,
  CASE WHEN g % 8 = 0 THEN NULL ELSE ((g * 53) % 1000)::numeric / 100 END,
  CASE g % 3 WHEN 0 THEN (g || '.5')::numeric WHEN 1 THEN g::numeric ELSE (g || '.125')::numeric END,
  (g % 23) * 0.25 - 2,
  (g % 5) * 0.5,
  CASE WHEN g % 6 = 0 THEN NULL ELSE g % 4 = 0 END,
  DATE '2020-01-01' + (g % 30),
  TIMESTAMP '2021-06-01 12:00:00' + g * interval '37 minutes 13.5 seconds',
  TIMESTAMPTZ '2021-03-01 00:00:00+00' + g * interval '7 hours 3 minutes',
  md5(g::text)::uuid,
  CASE WHEN g % 5 = 0 THEN 'Zed' ELSE 'w' || (g % 9) END,
  chr(97 + g % 4),
  (g % 9)::int2
FROM generate_series(1, 200) g;
INSERT INTO whole.t (id, k, name, v, f, d, ts, tz) VALUES
  (201, 1, 'special', 5, 'NaN', '-infinity', 'infinity', '0044-03-15 10:00:00+00 BC'),
  (202, 2, 'Émile', -7, 'Infinity', '0099-12-31 BC', '-infinity', 'infinity');
CREATE TABLE s0.t AS SELECT * FROM whole.t WHERE id % 3 = 0;
CREATE TABLE s1.t AS SELECT * FROM whole.t WHERE id % 3 = 1;
CREATE TABLE s2.t AS SELECT * FROM whole.t WHERE id % 3 = 2;
CREATE TABLE whole.e (id int, v int); CREATE TABLE s0.e (id int, v int);
CREATE TABLE s1.e (id int, v int); CREATE TABLE s2.e (id int, v int);
`

func loadData(ctx context.Context) error {
	conn, err := pgconn.Connect(ctx, testNode.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Exec(ctx, schemaSQL).Close()
}

// connect opens a session with search_path = schema and a time zone with a
// non-whole-hour offset (timestamptz text must be parsed with it).
func connect(ctx context.Context, t *testing.T, schema string) *pgconn.PgConn {
	t.Helper()
	conn, err := pgconn.Connect(ctx, testNode.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := conn.Exec(ctx, "SET search_path = "+schema+"; SET TimeZone = 'Asia/Kolkata'").Close(); err != nil {
		t.Fatal(err)
	}
	return conn
}

// result is one statement's RowDescription body and DataRow bodies.
type result struct {
	desc []byte
	rows [][]byte
}

func query(ctx context.Context, conn *pgconn.PgConn, sql string, params [][]byte, formats []int16) (result, error) {
	rr := conn.ExecParams(ctx, sql, params, nil, nil, formats)
	var res result
	fds := rr.FieldDescriptions()
	fs := make([]field, len(fds))
	for i, fd := range fds {
		fs[i] = field{name: fd.Name, tableOID: fd.TableOID, attnum: int16(fd.TableAttributeNumber),
			typeOID: fd.DataTypeOID, typlen: fd.DataTypeSize, typmod: fd.TypeModifier, format: fd.Format}
	}
	res.desc = encodeRowDesc(fs)
	for rr.NextRow() {
		res.rows = append(res.rows, appendRow(nil, rr.Values()))
	}
	_, err := rr.Close()
	return res, err
}

// sliceSource feeds stored rows.
type sliceSource struct {
	rows [][]byte
	next int
}

func (s *sliceSource) Next() ([]byte, bool, error) {
	if s.next >= len(s.rows) {
		return nil, false, nil
	}
	s.next++
	return s.rows[s.next-1], true, nil
}

// mixedFormats asks runDiff for one format code per result column.
var mixedFormats = []int16{-1}

type diffCase struct {
	sql     string
	ordered bool // ORDER BY fixes the row order completely
	params  []string
}

var diffCases = []diffCase{
	// concatenation
	{sql: "select id, name from t where v > 50"},
	{sql: "select * from t"},
	{sql: "select name, v, s from t where k is null"},
	{sql: "select id, v from t where v > $1", params: []string{"30"}},
	{sql: "select id from t limit 0"},
	// merge sort
	{sql: "select id, name from t order by id", ordered: true},
	{sql: "select id, v from t order by v desc, id", ordered: true},
	{sql: "select id, v from t order by v asc nulls first, id", ordered: true},
	{sql: "select id, v from t order by v desc nulls last, id desc", ordered: true},
	{sql: "select name, id from t order by name, id", ordered: true},
	{sql: "select id from t order by name desc, id", ordered: true},
	{sql: "select id, f from t order by f, id", ordered: true},
	{sql: "select id, r from t order by r desc, id", ordered: true},
	{sql: "select id, num from t order by num desc, id", ordered: true},
	{sql: "select id, d from t order by d, id", ordered: true},
	{sql: "select id, ts from t order by ts desc, id", ordered: true},
	{sql: "select id, tz from t order by tz, id", ordered: true},
	{sql: "select id, u from t order by u", ordered: true},
	{sql: "select id, flag from t order by flag, id", ordered: true},
	{sql: "select id, c from t order by c, id", ordered: true},
	{sql: "select id, s from t order by s desc, id", ordered: true},
	{sql: "select id, v * 2 as dbl from t order by dbl, id", ordered: true},
	{sql: "select id, v + 1 from t order by v + 1, id", ordered: true},
	{sql: "select id, name from t order by 2, 1", ordered: true},
	{sql: "select * from t order by big desc, id limit 10", ordered: true},
	{sql: "select id from t order by id limit 10 offset 5", ordered: true},
	{sql: "select id from t order by id offset 190", ordered: true},
	{sql: "select name from t order by id limit 5", ordered: true},
	{sql: `select id, w from t order by w collate "C", id`, ordered: true},
	{sql: "select id, big from t order by big nulls first, id limit 7 offset 3", ordered: true},
	{sql: "select id, name from t where v > $1 order by id fetch first 4 rows only", ordered: true, params: []string{"10"}},
	// DISTINCT
	{sql: "select distinct k from t"},
	{sql: "select distinct k from t order by k", ordered: true},
	{sql: "select distinct name, flag from t order by name, flag", ordered: true},
	{sql: "select distinct k from t order by k limit 3 offset 1", ordered: true},
	{sql: "select distinct d from t order by d desc", ordered: true},
	// aggregates without GROUP BY
	{sql: "select count(*) from t"},
	{sql: "select count(*), count(v), sum(v), min(v), max(v), avg(v) from t"},
	{sql: "select sum(big), avg(big), min(big), max(big) from t"},
	{sql: "select sum(num), avg(num), min(num), max(num) from t"},
	{sql: "select sum(numx), avg(numx) from t"},
	{sql: "select sum(f), avg(f), min(f), max(f) from t where id < 200"},
	{sql: "select sum(f), max(f), min(f) from t"},
	{sql: "select sum(r), min(r), max(r) from t"},
	{sql: "select sum(s), avg(s), min(s) from t"},
	{sql: "select bool_and(flag), bool_or(flag), every(flag) from t"},
	{sql: "select min(name), max(name), min(d), max(ts), min(tz), min(c) from t"},
	{sql: "select count(*), sum(v), avg(v), max(v), bool_and(flag) from t where id < 0"},
	{sql: "select count(*), sum(v), avg(v) from e"},
	{sql: "select count(distinct k), count(distinct name) from t"},
	{sql: "select count(distinct k) from t where id < 0"},
	{sql: "select avg(v) from t where id < 5"},
	{sql: "select avg(v) as a from t where id between 10 and 12"},
	{sql: "select avg(num) from t where id < 4"},
	{sql: "select max(v) from t having max(v) > 10"},
	{sql: "select count(*) from t having count(*) > 1000"},
	{sql: "select 'label' as l, count(*) from t"},
	// GROUP BY
	{sql: "select k, count(*), sum(v), avg(v), min(name), max(f) from t group by k"},
	{sql: "select k, count(*) from t group by k order by k nulls first", ordered: true},
	{sql: "select k, count(*) from t group by k order by count(*) desc, k", ordered: true},
	{sql: "select k, sum(v) from t group by k having sum(v) >= 200 order by k", ordered: true},
	{sql: "select k, count(*) from t group by k having count(*) > 20 and k <> 3 order by 1", ordered: true},
	{sql: "select flag, count(distinct k), avg(num) from t group by flag order by flag", ordered: true},
	{sql: "select name, count(*) from t group by name order by name limit 5 offset 2", ordered: true},
	{sql: "select k % 3 as m, count(*) from t group by m order by m", ordered: true},
	{sql: "select k, max(v) from t group by 1 order by 2 desc nulls last, 1", ordered: true},
	{sql: "select count(*) from t group by k order by k", ordered: true},
	{sql: "select d, count(*), min(tz) from t group by d order by d", ordered: true},
	{sql: "select u, count(*) from t group by u order by u limit 3", ordered: true},
	{sql: "select distinct count(*) from t group by k order by 1", ordered: true},
	{sql: "select k, avg(f) from t where id < 200 group by k order by avg(f) desc nulls last, k", ordered: true},
	{sql: "select k, bool_or(flag) from t group by k having bool_or(flag) = true order by k", ordered: true},
	{sql: "select k from t group by k order by k", ordered: true},
	{sql: "select k, count(*), count(distinct name) from t group by k order by k", ordered: true},
	{sql: "select c, count(*), sum(s) from t group by c order by c", ordered: true},
	{sql: "select k, sum(big) from t group by k order by sum(big) desc nulls last, k limit 4", ordered: true},
	{sql: "select k, avg(numx) from t group by k order by k", ordered: true},
	{sql: "select numx > 100 as big_x, count(*), min(numx) from t group by 1 order by 1", ordered: true},
	{sql: "select k, count(*) from t where v > $1 group by k having count(*) >= 3 order by k", ordered: true, params: []string{"0"}},
	{sql: "select k, min(v) from t group by k having min(v) < -10 order by min(v), k", ordered: true},
	{sql: "select w, count(*) from t group by w order by w", ordered: true},
}

func TestDifferential(t *testing.T) {
	if len(diffCases) < 40 {
		t.Fatalf("only %d differential queries", len(diffCases))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	whole := connect(ctx, t, "whole")
	shards := []*pgconn.PgConn{connect(ctx, t, "s0"), connect(ctx, t, "s1"), connect(ctx, t, "s2")}
	for _, tc := range diffCases {
		for _, mode := range []struct {
			name    string
			formats []int16
		}{{"text", nil}, {"binary", []int16{1}}, {"mixed", mixedFormats}} {
			t.Run(mode.name+"/"+tc.sql, func(t *testing.T) {
				runDiff(ctx, t, tc, mode.formats, whole, shards)
			})
		}
	}
}

func runDiff(ctx context.Context, t *testing.T, tc diffCase, formats []int16, whole *pgconn.PgConn, shards []*pgconn.PgConn) {
	var params [][]byte
	for _, p := range tc.params {
		params = append(params, []byte(p))
	}
	if len(formats) == 1 && formats[0] == mixedFormats[0] {
		// One code per column, alternating text and binary.
		ref, err := query(ctx, whole, tc.sql, params, nil)
		if err != nil {
			t.Fatalf("reference query: %v", err)
		}
		fs, _ := parseRowDesc(ref.desc)
		formats = make([]int16, len(fs))
		for i := range formats {
			formats[i] = int16(i % 2)
		}
	}
	want, err := query(ctx, whole, tc.sql, params, formats)
	if err != nil {
		t.Fatalf("reference query: %v", err)
	}
	plan, err := Analyze(tc.sql)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	var descs [][]byte
	var srcs []Source
	for i, sh := range shards {
		res, err := query(ctx, sh, plan.ShardSQL, params, plan.ShardFormats(formats))
		if err != nil {
			t.Fatalf("shard %d: %s: %v", i, plan.ShardSQL, err)
		}
		descs = append(descs, res.desc)
		srcs = append(srcs, &sliceSource{rows: res.rows})
	}
	var got [][]byte
	desc, n, err := plan.Run(descs, formats, srcs, func(row []byte) error {
		got = append(got, bytes.Clone(row))
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v (ShardSQL %s)", err, plan.ShardSQL)
	}
	if n != int64(len(got)) {
		t.Errorf("Run reported %d rows, emitted %d", n, len(got))
	}
	assertSameDesc(t, desc, want.desc)
	if !tc.ordered {
		sortRows(got)
		sortRows(want.rows)
	}
	if len(got) != len(want.rows) {
		t.Fatalf("got %d rows, want %d (ShardSQL %s)\ngot  %s\nwant %s", len(got), len(want.rows), plan.ShardSQL,
			showRows(got, formats), showRows(want.rows, formats))
	}
	for i := range got {
		if !bytes.Equal(got[i], want.rows[i]) {
			t.Fatalf("row %d differs (ShardSQL %s)\ngot  %s\nwant %s", i, plan.ShardSQL,
				showRows(got[i:i+1], formats), showRows(want.rows[i:i+1], formats))
		}
	}
}

func assertSameDesc(t *testing.T, got, want []byte) {
	t.Helper()
	g, err := parseRowDesc(got)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := parseRowDesc(want)
	if len(g) != len(w) {
		t.Fatalf("RowDescription has %d columns, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i].name != w[i].name || g[i].typeOID != w[i].typeOID || g[i].typlen != w[i].typlen ||
			g[i].typmod != w[i].typmod || g[i].format != w[i].format {
			t.Fatalf("column %d: got %+v, want %+v", i, g[i], w[i])
		}
	}
}

func sortRows(rows [][]byte) {
	sort.Slice(rows, func(i, j int) bool { return bytes.Compare(rows[i], rows[j]) < 0 })
}

func showRows(rows [][]byte, formats []int16) string {
	var b strings.Builder
	for i, r := range rows {
		if i == 8 {
			fmt.Fprintf(&b, " … (%d rows)", len(rows))
			break
		}
		cells, _ := splitRow(r, nil)
		b.WriteString("[")
		for j, c := range cells {
			if j > 0 {
				b.WriteString(" | ")
			}
			switch {
			case c == nil:
				b.WriteString("NULL")
			case formatOf(formats, j) == 1:
				fmt.Fprintf(&b, "%x", c)
			default:
				b.Write(c)
			}
		}
		b.WriteString("] ")
	}
	return b.String()
}
