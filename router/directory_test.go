package router

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func directoryRouter(t *testing.T) (*Router, *memDirectory) {
	t.Helper()
	g := loadGolden(t, "testdata/directory.yaml")
	d := newMemDirectory(&g.Database, g.Shards, g.Directory)
	r, err := New(&g.Database, g.Shards, WithDirectory(d))
	if err != nil {
		t.Fatal(err)
	}
	return r, d
}

// A cached plan asks the directory on every execution, so a changed mapping
// (after INVALIDATE DIRECTORY in the proxy) takes effect without replanning:
// for parameters, lifted literals, raw constants and key hints alike.
func TestDirectoryCachedPlansFollowMappingChanges(t *testing.T) {
	r, d := directoryRouter(t)
	var sc Scratch
	texts := []string{
		"SELECT * FROM customers WHERE cid = 3",
		"/* pgrouter: key=3 */ SELECT * FROM customers",
		"UPDATE customers SET name = 'n' WHERE cid = 3",
	}
	for _, sql := range texts {
		d.set("customers", "3", "s2")
		for _, want := range []int{2, 2, 0, 0, 1} {
			if want == 0 {
				d.set("customers", "3", "s0")
			} else if want == 1 {
				d.set("customers", "3", "s1")
			}
			_, rt, err := r.RouteSimple(sql, Session{}, &sc)
			if err != nil || rt.Shards != Only(want) {
				t.Fatalf("%s: route %+v err %v, want shard %d", sql, rt, err, want)
			}
		}
	}
	p, err := r.Prepare("SELECT * FROM customers WHERE cid = $1")
	if err != nil {
		t.Fatal(err)
	}
	d.set("customers", "4", "s0")
	before := d.lookups.Load()
	rt, err := r.Route(p, Args{Params: [][]byte{[]byte("4")}}, Session{})
	if err != nil || rt.Shards != Only(0) {
		t.Fatalf("route %+v %v", rt, err)
	}
	d.set("customers", "4", "s2")
	rt, _ = r.Route(p, Args{Params: [][]byte{[]byte("4")}}, Session{})
	if rt.Shards != Only(2) {
		t.Fatalf("prepared plan kept the old mapping: %+v", rt)
	}
	if n := d.lookups.Load() - before; n != 2 {
		t.Fatalf("%d lookups for 2 executions, want 2 (one per key per execution)", n)
	}
	if st := r.Stats(); st.Misses == 0 || st.Hits == 0 {
		t.Fatalf("plans not cached: %+v", st)
	}
}

func TestDirectorySplitInsertCopyAndShardOfKey(t *testing.T) {
	r, d := directoryRouter(t)
	d.set("customers", "10", "s0")
	d.set("customers", "11", "s2")
	d.set("customers", "12", "s0")
	sql := "INSERT INTO customers (cid, name) VALUES (10, 'a'), (11, 'b'), (12, 'c')"
	var sc Scratch
	_, rt, err := r.RouteSimple(sql, Session{}, &sc)
	if err != nil || !rt.Split || rt.Shards != Only(0)|Only(2) {
		t.Fatalf("route %+v %v", rt, err)
	}
	parts, err := r.SplitInsert(sql, Args{}, Session{})
	if err != nil || len(parts) != 2 {
		t.Fatalf("split: %v %+v", err, parts)
	}
	if parts[0].Shard != 0 || parts[0].SQL != "INSERT INTO customers (cid, name) VALUES (10, 'a'), (12, 'c')" ||
		parts[1].Shard != 2 || parts[1].SQL != "INSERT INTO customers (cid, name) VALUES (11, 'b')" {
		t.Fatalf("parts %+v", parts)
	}
	p, rt, err := r.RouteSimple("COPY customers (name, cid) FROM STDIN", Session{}, &sc)
	if err != nil || p.Copy == nil || !rt.Copy {
		t.Fatalf("copy: %+v %+v %v", p.Copy, rt, err)
	}
	if s, err := p.Copy.Shard([]byte("11"), false); err != nil || s != 2 {
		t.Fatalf("copy row shard %d %v", s, err)
	}
	if _, err := p.Copy.Shard([]byte("999"), false); sqlstate(err) != "22023" {
		t.Fatalf("copy row with unknown key: %v", err)
	}
	if s, err := r.ShardOfKey("customers", []byte("12")); err != nil || s != 0 {
		t.Fatalf("ShardOfKey %d %v", s, err)
	}
}

// Without a directory (pgrouter explain, a router built without
// WithDirectory) directory keys fail clearly instead of guessing.
func TestDirectoryWithoutLookupIsAClearError(t *testing.T) {
	g := loadGolden(t, "testdata/directory.yaml")
	r, err := New(&g.Database, g.Shards)
	if err != nil {
		t.Fatal(err)
	}
	var sc Scratch
	_, _, err = r.RouteSimple("SELECT * FROM customers WHERE cid = 1", Session{}, &sc)
	if sqlstate(err) != "0A000" {
		t.Fatalf("want 0A000, got %v", err)
	}
	_, rt, err := r.RouteSimple("INSERT INTO tenants (slug) VALUES (NULL)", Session{}, &sc)
	if err != nil || rt.Shards != Only(1) {
		t.Fatalf("NULL key with null_shard needs no lookup: %+v %v", rt, err)
	}
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
