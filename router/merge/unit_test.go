package merge

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// textDesc builds a text-format RowDescription.
func textDesc(cols ...field) []byte {
	return encodeRowDesc(cols)
}

func col(name string, oid uint32) field { return field{name: name, typeOID: oid, typmod: -1} }

// textRow builds a DataRow body; "\\N" is NULL.
func textRow(cells ...string) []byte {
	bs := make([][]byte, len(cells))
	for i, c := range cells {
		if c != `\N` {
			bs[i] = []byte(c)
		}
	}
	return appendRow(nil, bs)
}

// countingSource counts Next calls.
type countingSource struct {
	sliceSource
	calls int
}

func (c *countingSource) Next() ([]byte, bool, error) {
	c.calls++
	return c.sliceSource.Next()
}

func runText(t *testing.T, p *Plan, desc []byte, shards ...[][]byte) [][]string {
	t.Helper()
	var descs [][]byte
	var srcs []Source
	for _, rows := range shards {
		descs = append(descs, desc)
		srcs = append(srcs, &sliceSource{rows: rows})
	}
	var out [][]string
	_, n, err := p.Run(descs, nil, srcs, func(row []byte) error {
		cells, err := splitRow(row, nil)
		if err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, c := range cells {
			if c == nil {
				r = append(r, "NULL")
			} else {
				r = append(r, string(c))
			}
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n != int64(len(out)) {
		t.Fatalf("rows %d, emitted %d", n, len(out))
	}
	return out
}

func rowsOf(rows ...[]byte) [][]byte { return rows }

func TestMergeSortSynthetic(t *testing.T) {
	tests := []struct {
		sql    string
		shards [][][]byte
		want   string
	}{
		{"select a from t order by a", [][][]byte{rowsOf(textRow("1"), textRow("4"), textRow(`\N`)), rowsOf(textRow("2"), textRow("3"))},
			"1,2,3,4,NULL"},
		{"select a from t order by a desc", [][][]byte{rowsOf(textRow(`\N`), textRow("4"), textRow("1")), rowsOf(textRow("3"), textRow("2"))},
			"NULL,4,3,2,1"},
		{"select a from t order by a nulls first", [][][]byte{rowsOf(textRow(`\N`), textRow("1")), rowsOf(textRow(`\N`), textRow("0"))},
			"NULL,NULL,0,1"},
		{"select a from t order by a desc nulls last", [][][]byte{rowsOf(textRow("9"), textRow(`\N`)), rowsOf(textRow("10"), textRow("-1"))},
			"10,9,-1,NULL"},
		{"select a from t order by a limit 2 offset 1", [][][]byte{rowsOf(textRow("1"), textRow("5")), rowsOf(textRow("2"), textRow("3"))},
			"2,3"},
	}
	for _, tc := range tests {
		p, err := Analyze(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		got := runText(t, p, textDesc(col("a", oidInt4)), tc.shards...)
		var flat []string
		for _, r := range got {
			flat = append(flat, r[0])
		}
		if s := strings.Join(flat, ","); s != tc.want {
			t.Errorf("%s: got %s, want %s", tc.sql, s, tc.want)
		}
	}
}

func TestMergeSortTypes(t *testing.T) {
	tests := []struct {
		oid  uint32
		in   [][]string // per shard, each sorted ascending
		want string
	}{
		{oidFloat8, [][]string{{"-Infinity", "1e-05", "NaN"}, {"-0", "2.5", "Infinity"}}, "-Infinity,-0,1e-05,2.5,Infinity,NaN"},
		{oidNumeric, [][]string{{"-1.50", "2", "NaN"}, {"1.999", "10.0", "Infinity"}}, "-1.50,1.999,2,10.0,Infinity,NaN"},
		{oidText, [][]string{{"B", "a", "é"}, {"Z", "b"}}, "B,Z,a,b,é"},
		{oidDate, [][]string{{"-infinity", "0044-03-15 BC", "2020-01-01"}, {"0001-01-01", "10000-01-01", "infinity"}},
			"-infinity,0044-03-15 BC,0001-01-01,2020-01-01,10000-01-01,infinity"},
		{oidTimestamptz, [][]string{{"2021-01-01 00:00:00+05:30", "2021-01-01 00:00:00+00"}, {"2020-12-31 20:00:00-04"}},
			"2021-01-01 00:00:00+05:30,2021-01-01 00:00:00+00,2020-12-31 20:00:00-04"},
		{oidTimestamp, [][]string{{"2021-01-01 00:00:00", "2021-01-01 00:00:00.5"}, {"2021-01-01 00:00:00.25"}},
			"2021-01-01 00:00:00,2021-01-01 00:00:00.25,2021-01-01 00:00:00.5"},
		{oidBool, [][]string{{"f", "t"}, {"t"}}, "f,t,t"},
		{oidBpchar, [][]string{{"a  ", "b  "}, {"a\x01 "}}, "a  ,a\x01 ,b  "},
	}
	for _, tc := range tests {
		p, err := Analyze("select a from t order by a")
		if err != nil {
			t.Fatal(err)
		}
		var shards [][][]byte
		for _, s := range tc.in {
			var rows [][]byte
			for _, v := range s {
				rows = append(rows, textRow(v))
			}
			shards = append(shards, rows)
		}
		got := runText(t, p, textDesc(col("a", tc.oid)), shards...)
		var flat []string
		for _, r := range got {
			flat = append(flat, r[0])
		}
		if s := strings.Join(flat, ","); s != tc.want {
			t.Errorf("%s: got %s, want %s", typeName(tc.oid), s, tc.want)
		}
	}
}

func TestLimitStopsReading(t *testing.T) {
	p, err := Analyze("select a from t order by a limit 2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.ToUpper(p.ShardSQL), "LIMIT 2") {
		t.Fatalf("ShardSQL %q", p.ShardSQL)
	}
	// OFFSET is folded into the shards' LIMIT (and the text deparsed).
	if p2, _ := Analyze("select a from t order by a limit 2 offset 3"); p2.ShardSQL != "SELECT a FROM t ORDER BY a LIMIT 5" {
		t.Fatalf("ShardSQL %q", p2.ShardSQL)
	}
	var srcs []Source
	var counters []*countingSource
	for i := 0; i < 3; i++ {
		c := &countingSource{sliceSource: sliceSource{rows: rowsOf(textRow("1"), textRow("2"), textRow("3"), textRow("4"))}}
		counters = append(counters, c)
		srcs = append(srcs, c)
	}
	d := textDesc(col("a", oidInt4))
	_, n, err := p.Run([][]byte{d, d, d}, nil, srcs, func([]byte) error { return nil })
	if err != nil || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	for i, c := range counters {
		if c.calls > 2 {
			t.Errorf("source %d read %d times for LIMIT 2", i, c.calls)
		}
	}
}

func TestHiddenColumnsStripped(t *testing.T) {
	p, err := Analyze("select name from t order by id desc")
	if err != nil {
		t.Fatal(err)
	}
	if p.ShardSQL != "SELECT name, id AS __pgrouter_1 FROM t ORDER BY id DESC" {
		t.Fatalf("ShardSQL %q", p.ShardSQL)
	}
	d := textDesc(col("name", oidText), col("__pgrouter_1", oidInt4))
	got := runText(t, p, d, rowsOf(textRow("x", "3"), textRow("y", "1")), rowsOf(textRow("z", "2")))
	want := [][]string{{"x"}, {"z"}, {"y"}}
	if len(got) != 3 || got[0][0] != "x" || got[1][0] != "z" || got[2][0] != "y" || len(got[0]) != 1 {
		t.Fatalf("got %v, want %v", got, want)
	}
	cd, err := p.ClientDesc(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := parseRowDesc(cd)
	if len(fs) != 1 || fs[0].name != "name" {
		t.Fatalf("client desc %+v", fs)
	}
}

func TestAggregateSynthetic(t *testing.T) {
	p, err := Analyze("select k, count(*), sum(v), avg(v), min(v), max(v), count(distinct w), bool_and(b) from t group by k having count(*) >= 2 order by k")
	if err != nil {
		t.Fatal(err)
	}
	wantSQL := "SELECT k, count(*), sum(v), sum(v) AS avg, min(v), max(v), w AS count, bool_and(b), count(v) AS __pgrouter_1 FROM t GROUP BY k, w"
	if p.ShardSQL != wantSQL {
		t.Fatalf("ShardSQL\n got %s\nwant %s", p.ShardSQL, wantSQL)
	}
	d := textDesc(col("k", oidInt4), col("count", oidInt8), col("sum", oidInt8), col("avg", oidInt8), col("min", oidInt4),
		col("max", oidInt4), col("count", oidText), col("bool_and", oidBool), col("__pgrouter_1", oidInt8))
	s0 := rowsOf(textRow("1", "2", "3", "3", "1", "2", "x", "t", "2"), textRow("2", "1", `\N`, `\N`, `\N`, `\N`, "x", `\N`, "0"))
	s1 := rowsOf(textRow("1", "1", "4", "4", "4", "4", "y", "f", "1"), textRow("1", "1", `\N`, `\N`, `\N`, `\N`, `\N`, "t", "0"),
		textRow(`\N`, "5", "10", "10", "2", "2", "x", "t", "5"))
	got := runText(t, p, d, s0, s1)
	want := "1 4 7 2.3333333333333333 1 4 2 f|NULL 5 10 2.0000000000000000 2 2 1 t"
	var parts []string
	for _, r := range got {
		parts = append(parts, strings.Join(r, " "))
	}
	if s := strings.Join(parts, "|"); s != want {
		t.Fatalf("got  %s\nwant %s", s, want)
	}
	cd, _ := p.ClientDesc(d, nil)
	fs, _ := parseRowDesc(cd)
	if fs[3].typeOID != oidNumeric || fs[6].typeOID != oidInt8 || fs[6].name != "count" || len(fs) != 8 {
		t.Fatalf("client desc %+v", fs)
	}
}

func TestAggregateEmptyInput(t *testing.T) {
	p, err := Analyze("select count(*), count(distinct x), sum(x), min(x), avg(x) from t")
	if err != nil {
		t.Fatal(err)
	}
	d := textDesc(col("count", oidInt8), col("count", oidInt4), col("sum", oidInt8), col("min", oidInt4),
		col("avg", oidInt8), col("__pgrouter_1", oidInt8))
	got := runText(t, p, d, nil, nil) // count(DISTINCT) makes shards GROUP BY x: no rows at all
	if len(got) != 1 || strings.Join(got[0], " ") != "0 0 NULL NULL NULL" {
		t.Fatalf("got %v", got)
	}
}

func TestNumericAvgScale(t *testing.T) {
	tests := []struct {
		sum  string
		n    int64
		want string
	}{
		{"10", 4, "2.5000000000000000"},
		{"1", 3, "0.33333333333333333333"},
		{"2", 3, "0.66666666666666666667"},
		{"-2", 3, "-0.66666666666666666667"},
		{"10000", 3, "3333.3333333333333333"},
		{"123456789", 7, "17636684.142857142857"},
		{"1.125", 2, "0.56250000000000000000"},
		{"0", 5, "0.00000000000000000000"},
		{"9999", 1, "9999.0000000000000000"},
		{"0.0001", 1, "0.000100000000000000000000"},
		{"NaN", 2, "NaN"},
	}
	for _, tc := range tests {
		d, err := parseNumeric(tc.sum)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.divCount(tc.n).String(); got != tc.want {
			t.Errorf("%s/%d = %s, want %s", tc.sum, tc.n, got, tc.want)
		}
	}
}

func TestFormatFloat(t *testing.T) {
	tests := []struct {
		f    float64
		bits int
		want string
	}{
		{0.1, 64, "0.1"}, {1e15, 64, "1e+15"}, {123456789012345, 64, "123456789012345"},
		{1e-5, 64, "1e-05"}, {0.0001, 64, "0.0001"}, {-2.5, 64, "-2.5"}, {1.0 / 3, 64, "0.3333333333333333"},
		{1e6, 32, "1e+06"}, {123456, 32, "123456"}, {float64(float32(0.1)), 32, "0.1"}, {1e100, 64, "1e+100"},
	}
	for _, tc := range tests {
		if got := formatFloat(tc.f, tc.bits); got != tc.want {
			t.Errorf("formatFloat(%v, %d) = %s, want %s", tc.f, tc.bits, got, tc.want)
		}
	}
}

func TestRowDescriptionMismatch(t *testing.T) {
	p, _ := Analyze("select a from t")
	d1 := textDesc(col("a", oidInt4))
	d2 := textDesc(col("a", oidInt8))
	_, _, err := p.Run([][]byte{d1, d2}, nil, []Source{&sliceSource{}, &sliceSource{}}, func([]byte) error { return nil })
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "different result columns") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmitErrorStops(t *testing.T) {
	p, _ := Analyze("select a from t")
	d := textDesc(col("a", oidInt4))
	boom := errors.New("client gone")
	src := &countingSource{sliceSource: sliceSource{rows: rowsOf(textRow("1"), textRow("2"))}}
	_, _, err := p.Run([][]byte{d}, nil, []Source{src}, func([]byte) error { return boom })
	if !errors.Is(err, boom) || src.calls != 1 {
		t.Fatalf("err=%v calls=%d", err, src.calls)
	}
}

func TestBinaryNumericMerged(t *testing.T) {
	p, _ := Analyze("select a from t order by a")
	d := textDesc(col("a", oidNumeric))
	num := func(s string) []byte {
		v, err := parseNumeric(s)
		if err != nil {
			t.Fatal(err)
		}
		return appendRow(nil, [][]byte{appendNumericBinary(nil, v)})
	}
	var got []string
	_, _, err := p.Run([][]byte{d, d}, []int16{1},
		[]Source{&sliceSource{rows: rowsOf(num("-2.5"), num("10"))}, &sliceSource{rows: rowsOf(num("0.001"), num("9.99"))}},
		func(row []byte) error {
			cells, _ := splitRow(row, nil)
			v, err := parseNumericBinary(cells[0])
			if err != nil {
				return err
			}
			got = append(got, v.String())
			return nil
		})
	if err != nil || strings.Join(got, " ") != "-2.5 0.001 9.99 10" {
		t.Fatalf("got %v, err %v", got, err)
	}
}

func TestUncomparableTypeRefused(t *testing.T) {
	p, _ := Analyze("select a from t order by a")
	d := textDesc(col("a", 3802)) // jsonb
	_, _, err := p.Run([][]byte{d}, nil, []Source{&sliceSource{rows: rowsOf(textRow("{}"))}}, func([]byte) error { return nil })
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "jsonb") {
		t.Fatalf("err = %v", err)
	}
}

func TestShardFormats(t *testing.T) {
	p, _ := Analyze("select a, b from t order by c")
	if got := p.ShardFormats([]int16{1, 0}); len(got) != 3 || got[0] != 1 || got[1] != 0 || got[2] != 0 {
		t.Errorf("per-column: %v", got)
	}
	if got := p.ShardFormats([]int16{1}); len(got) != 1 || got[0] != 1 {
		t.Errorf("one code: %v", got)
	}
	if got := p.ShardFormats(nil); got != nil {
		t.Errorf("nil: %v", got)
	}
}

func TestHavingLiteralOnLeft(t *testing.T) {
	p, err := Analyze("select k from t group by k having 2 < count(*)")
	if err != nil {
		t.Fatal(err)
	}
	d := textDesc(col("k", oidInt4), col("__pgrouter_1", oidInt8))
	got := runText(t, p, d, rowsOf(textRow("1", "2"), textRow("2", "1")), rowsOf(textRow("1", "1"), textRow("3", "5")))
	if len(got) != 2 || got[0][0] != "1" || got[1][0] != "3" {
		t.Fatalf("got %v", got)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct{ sql, names string }{
		{"select a from t union select a from u", "UNION"},
		{"select a from t intersect select a from u", "INTERSECT"},
		{"select a from t except select a from u", "EXCEPT"},
		{"select row_number() over (order by a) from t", "window function row_number()"},
		{"select a, sum(b) over w from t window w as (partition by a)", "window function"},
		{"select distinct on (a) a, b from t", "DISTINCT ON"},
		{"select * from t for update", "FOR UPDATE"},
		{"select (select max(b) from u) from t", "subquery in the select list"},
		{"select sum(a) filter (where b > 0) from t", "FILTER"},
		{"select array_agg(a order by a) from t", "aggregate function array_agg()"},
		{"select string_agg(a, ',') from t", "string_agg"},
		{"select sum(distinct a) from t", "sum(DISTINCT"},
		{"select a, count(*) from t group by grouping sets ((a), ())", "GROUPING SETS"},
		{"select a, count(*) from t group by rollup (a)", "GROUPING SETS"},
		{"select a into newt from t", "SELECT … INTO"},
		{"with c as (select count(*) from t) select * from c", "WITH query with aggregate"},
		{"select * from (select a from t limit 5) s", "LIMIT"},
		{"select a, sum(b) + 1 from t group by a", "expression over aggregate"},
		{"select a from t group by a having sum(b) > avg(b)", "HAVING"},
		{"select a from t group by a having sum(b) > 1 or count(*) > 2", "HAVING"},
		{"select a from t limit $1", "LIMIT"},
		{"select a from t order by a using <", "USING"},
		{`select a from t order by a collate "en_US"`, "collation"},
		{"select * , count(*) from t group by a", "SELECT *"},
		{"select percentile_cont(0.5) within group (order by a) from t", "percentile_cont"},
		{"select a from t order by a fetch first 2 rows with ties", "WITH TIES"},
		{"with recursive r as (select 1) select * from r", "WITH RECURSIVE"},
		{"select count(distinct a), b from t", "count(DISTINCT"},
		{"insert into t values (1)", "statement type"},
	}
	for _, tc := range tests {
		_, err := Analyze(tc.sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Errorf("%s: err = %v, want 0A000", tc.sql, err)
			continue
		}
		if pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, tc.names) {
			t.Errorf("%s: got %s %q, want 0A000 naming %q", tc.sql, pgErr.Code, pgErr.Message, tc.names)
		}
	}
}

func TestDistinctDedupAcrossShards(t *testing.T) {
	p, err := Analyze("select distinct a from t")
	if err != nil {
		t.Fatal(err)
	}
	d := textDesc(col("a", oidNumeric))
	got := runText(t, p, d, rowsOf(textRow("1.0"), textRow("2")), rowsOf(textRow("1.00"), textRow(`\N`)), rowsOf(textRow(`\N`)))
	if len(got) != 3 {
		t.Fatalf("got %v, want 3 distinct values (1.0 = 1.00, NULLs one)", got)
	}
	if !bytes.Equal([]byte(got[0][0]), []byte("1.0")) {
		t.Fatalf("first value %q", got[0][0])
	}
}

// HAVING on text once compared every group with the empty string (the
// literal was read as a value of no kind): min(name) = 'b' kept the groups
// whose min was empty.
func TestHavingTextAndUUIDLiterals(t *testing.T) {
	cases := []struct {
		sql  string
		rows [][]string
		want string
	}{
		{"select g, min(n) from t group by g having min(n) = 'b'",
			[][]string{{"1", ""}, {"2", "b"}, {"3", "c"}}, "2"},
		{"select g, max(n) from t group by g having max(n) > 'a'",
			[][]string{{"1", ""}, {"2", "b"}, {"3", "a"}}, "2"},
		{"select g, u from t group by g, u having u = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",
			[][]string{{"1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, {"2", "b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}}, "1"},
	}
	for _, tc := range cases {
		p, err := Analyze(tc.sql)
		if err != nil {
			t.Fatal(err)
		}
		second := oidText
		if strings.Contains(tc.sql, " u ") {
			second = oidUUID
		}
		d := textDesc(col("g", oidInt4), col("x", uint32(second)))
		var rows [][]byte
		for _, r := range tc.rows {
			rows = append(rows, textRow(r...))
		}
		var got []string
		_, _, err = p.Run([][]byte{d}, nil, []Source{&sliceSource{rows: rows}}, func(row []byte) error {
			cells, _ := splitRow(row, nil)
			got = append(got, string(cells[0]))
			return nil
		})
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("%s: got groups %v (err %v), want %s", tc.sql, got, err, tc.want)
		}
	}
}
