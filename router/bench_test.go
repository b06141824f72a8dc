package router

import (
	"strconv"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

const benchPoint = "SELECT * FROM users WHERE id = 42"

// BenchmarkRawParse is the cost the plan cache avoids: one pg_query parse.
func BenchmarkRawParse(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := pg.Parse("SELECT * FROM users WHERE user_id = 42"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouteSimpleHit: a keyed point SELECT whose shape is cached.
func BenchmarkRouteSimpleHit(b *testing.B) {
	r := testRouter(b)
	var sc Scratch
	sql := "SELECT * FROM users WHERE user_id = 42"
	if _, rt, err := r.RouteSimple(sql, Session{}, &sc); err != nil || rt.Shards.Len() != 1 {
		b.Fatalf("%+v %v", rt, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.RouteSimple(sql, Session{}, &sc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouteSimpleHitVarying: the same shape with a new literal each time.
func BenchmarkRouteSimpleHitVarying(b *testing.B) {
	r := testRouter(b)
	var sc Scratch
	sqls := make([]string, 1024)
	for i := range sqls {
		sqls[i] = "SELECT * FROM users WHERE user_id = " + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.RouteSimple(sqls[i%len(sqls)], Session{}, &sc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouteExtended: Route of a prepared plan with a text parameter.
func BenchmarkRouteExtended(b *testing.B) {
	r := testRouter(b)
	p, _ := r.Prepare("SELECT * FROM users WHERE user_id = $1")
	args := Args{Params: [][]byte{[]byte("42")}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Route(p, args, Session{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareMiss: planning a text never seen (parse + analysis).
func BenchmarkPrepareMiss(b *testing.B) {
	r := testRouter(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.Prepare("SELECT * FROM users WHERE user_id = $1 AND n = " + strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRouteSimpleTrivial: one shard, no sharded tables (R/W split only).
func BenchmarkRouteSimpleTrivial(b *testing.B) {
	r, err := New(&configOneShard, []string{"only"})
	if err != nil {
		b.Fatal(err)
	}
	var sc Scratch
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.RouteSimple(benchPoint, Session{}, &sc); err != nil {
			b.Fatal(err)
		}
	}
}
