package router

import (
	"slices"
	"testing"
)

func TestNormalise(t *testing.T) {
	cases := []struct {
		sql    string
		ok     bool
		want   string
		params []string
	}{
		{"SELECT * FROM t WHERE id = 42", true, "SELECT * FROM t WHERE id = $1", []string{"42"}},
		{"select a from t where b = 'it''s' and c = 1.5e3", true, "select a from t where b = $1 and c = $2", []string{"it's", "1.5e3"}},
		{"SELECT $$x'y$$, $tag$a$$b$tag$", true, "SELECT $1, $2", []string{"x'y", "a$$b"}},
		{"SELECT E'a\\'b', B'101', X'ff', N'n'", true, "SELECT E'a\\'b', B'101', X'ff', N'n'", nil},
		{`SELECT "col 1", t1.x FROM "T" t1`, true, `SELECT "col 1", t1.x FROM "T" t1`, nil},
		{"SELECT 1 -- trailing comment", true, "SELECT $1  ", []string{"1"}},
		{"SELECT /* a /* nested */ c */ 2", true, "SELECT   $1", []string{"2"}},
		{"/* pgrouter: shard=s1 */ SELECT 3", true, "/* pgrouter: shard=s1 */ SELECT $1", []string{"3"}},
		{"SELECT abc1, a$b FROM t2", true, "SELECT abc1, a$b FROM t2", nil},
		{"SELECT 0x1F, 1_000, .5", true, "SELECT $1, $2, $3", []string{"0x1F", "1_000", ".5"}},
		{"WITH x AS (SELECT 1) SELECT * FROM x", true, "WITH x AS (SELECT $1) SELECT * FROM x", []string{"1"}},
		{"SELECT int'5', x", true, "SELECT int $1, x", []string{"5"}},
		{"(SELECT 1)", true, "(SELECT $1)", []string{"1"}},
		{"SET x = 5", false, "", nil},
		{"SELECT * FROM t WHERE a = $1", false, "", nil},
		{"SELECT 'unterminated", false, "", nil},
		{"EXPLAIN SELECT 1", false, "", nil},
	}
	var sc Scratch
	for _, c := range cases {
		ok := normalise(c.sql, &sc)
		if ok != c.ok {
			t.Errorf("normalise(%q) ok = %v", c.sql, ok)
			continue
		}
		if !ok {
			continue
		}
		var got []string
		for _, p := range sc.params {
			got = append(got, string(p))
		}
		if string(sc.buf) != c.want || !slices.Equal(got, c.params) {
			t.Errorf("normalise(%q) = %q %q, want %q %q", c.sql, sc.buf, got, c.want, c.params)
		}
	}
}

// TestRouteSimpleSharesShapes: texts differing only in literals share a plan,
// and texts that cannot be normalised still route right (from the raw text).
func TestRouteSimpleSharesShapes(t *testing.T) {
	r := testRouter(t)
	var sc Scratch
	for i, sql := range []string{
		"SELECT * FROM events WHERE id = 1",
		"SELECT * FROM events WHERE id = 1500",
		"SELECT * FROM events WHERE id = 2500",
	} {
		_, rt, err := r.RouteSimple(sql, Session{}, &sc)
		if err != nil || rt.Shards != Only(i) {
			t.Fatalf("%s: %+v %v", sql, rt, err)
		}
	}
	if st := r.Stats(); st.Misses != 1 || st.Hits != 2 || st.Size != 1 {
		t.Errorf("stats = %+v, want 1 miss, 2 hits, 1 plan", st)
	}
	// A type modifier does not survive lifting (varchar($2) is a syntax
	// error): the raw text is planned instead, once per distinct text.
	sql := "SELECT * FROM events WHERE id = 1500 AND v = 'x'::varchar(10)"
	for i := 0; i < 2; i++ {
		_, rt, err := r.RouteSimple(sql, Session{}, &sc)
		if err != nil || rt.Shards != Only(1) {
			t.Fatalf("%s: %+v %v", sql, rt, err)
		}
	}
	if st := r.Stats(); st.Misses != 3 || st.Hits != 3 {
		t.Errorf("stats = %+v, want 3 misses (shape, raw shape, raw text) and 3 hits", st)
	}
}

// TestRouteSimpleNilScratch: a nil scratch still works (allocating).
func TestRouteSimpleNilScratch(t *testing.T) {
	r := testRouter(t)
	if _, rt, err := r.RouteSimple("SELECT * FROM events WHERE id = 2", Session{}, nil); err != nil || rt.Shards != Only(0) {
		t.Fatalf("%+v %v", rt, err)
	}
}

func TestParseArrayText(t *testing.T) {
	got, ok := parseArrayText([]byte(`{1, "a,b" ,"q\"x",NULL, null }`))
	if !ok || len(got) != 5 || string(got[0]) != "1" || string(got[1]) != "a,b" || string(got[2]) != `q"x` || got[3] != nil || got[4] != nil {
		t.Fatalf("got %q %v", got, ok)
	}
	for _, bad := range []string{"", "{", "{1,2", "{{1}}", "1,2", "{1}x"} {
		if _, ok := parseArrayText([]byte(bad)); ok {
			t.Errorf("parseArrayText(%q) accepted", bad)
		}
	}
	if got, ok := parseArrayText([]byte("{}")); !ok || len(got) != 0 {
		t.Errorf("empty array: %q %v", got, ok)
	}
}

func TestShardSet(t *testing.T) {
	s := Only(3).Add(0).Add(63)
	var seen []int
	s.Each(func(i int) { seen = append(seen, i) })
	if s.Len() != 3 || s.First() != 0 || !s.Has(63) || s.Has(2) || !slices.Equal(seen, []int{0, 3, 63}) {
		t.Fatalf("set ops wrong: %v %v", s, seen)
	}
	if AllShards(3) != 7 || AllShards(64).Len() != 64 || ShardSet(0).First() != -1 {
		t.Fatal("AllShards/First wrong")
	}
}
