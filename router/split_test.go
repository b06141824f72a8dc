package router

import (
	"slices"
	"testing"
)

func TestSplitInsertSimple(t *testing.T) {
	r := testRouter(t)
	sql := "INSERT INTO events (id, v) VALUES (1, 'a'), (1500, 'b(,)'), (2, 'c') ON CONFLICT DO NOTHING RETURNING id"
	_, rt, err := r.RouteSimple(sql, Session{}, &Scratch{})
	if err != nil || !rt.Split || rt.Shards != Only(0)|Only(1) {
		t.Fatalf("route = %+v, %v", rt, err)
	}
	parts, err := r.SplitInsert(sql, Args{}, Session{})
	if err != nil {
		t.Fatal(err)
	}
	want := []InsertPart{
		{Shard: 0, SQL: "INSERT INTO events (id, v) VALUES (1, 'a'), (2, 'c') ON CONFLICT DO NOTHING RETURNING id"},
		{Shard: 1, SQL: "INSERT INTO events (id, v) VALUES (1500, 'b(,)') ON CONFLICT DO NOTHING RETURNING id"},
	}
	if len(parts) != 2 || parts[0].SQL != want[0].SQL || parts[1].SQL != want[1].SQL || parts[0].Shard != 0 || parts[1].Shard != 1 {
		t.Fatalf("parts = %+v", parts)
	}
}

func TestSplitInsertParams(t *testing.T) {
	r := testRouter(t)
	sql := "INSERT INTO events (id, v) VALUES ($1, $2), ($3, $4), ($5, $2)"
	args := Args{
		Params:    [][]byte{[]byte("2500"), []byte("x"), []byte("7"), []byte("y"), []byte("2600")},
		Formats:   []int16{0},
		ParamOIDs: []uint32{20, 25, 20, 25, 20},
	}
	parts, err := r.SplitInsert(sql, args, Session{})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("parts = %+v", parts)
	}
	p0, p2 := parts[0], parts[1]
	if p0.Shard != 0 || p0.SQL != "INSERT INTO events (id, v) VALUES ($1, $2)" ||
		!slices.EqualFunc(p0.Params, [][]byte{[]byte("7"), []byte("y")}, slices.Equal) ||
		!slices.Equal(p0.ParamOIDs, []uint32{20, 25}) || !slices.Equal(p0.Formats, []int16{0}) {
		t.Errorf("shard 0 part = %+v", p0)
	}
	if p2.Shard != 2 || p2.SQL != "INSERT INTO events (id, v) VALUES ($1, $2), ($3, $2)" ||
		!slices.EqualFunc(p2.Params, [][]byte{[]byte("2500"), []byte("x"), []byte("2600")}, slices.Equal) {
		t.Errorf("shard 2 part = %+v", p2)
	}
}

func TestSplitInsertRefusesOthers(t *testing.T) {
	r := testRouter(t)
	for _, sql := range []string{"SELECT 1", "UPDATE events SET v = 1 WHERE id = 1", "INSERT INTO events (v) VALUES (1)"} {
		if _, err := r.SplitInsert(sql, Args{}, Session{}); err == nil {
			t.Errorf("%s: want error", sql)
		}
	}
}
