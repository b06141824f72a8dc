package router

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

func holdConfig(t *testing.T, h0, h2 string) *config.Config {
	t.Helper()
	yml := fmt.Sprintf(`users: [{name: app, password: pw}]
shards:
  - {name: s0, primary: "127.0.0.1:1", hash: %s}
  - {name: s1, primary: "127.0.0.1:2", hash: [{modulus: 2, remainder: 1}]}
  - {name: s2, primary: "127.0.0.1:3", hash: %s}
databases:
  - name: app
    sharded_tables: [{table: kv, column: id, type: int, function: hash}]
    reference_tables: [plans]
`, h0, h2)
	cfg, err := config.Parse([]byte(yml), "hold.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// keyOf finds a key the move m does (or does not) cover and that lives on
// shard want under the old placement.
func keyOf(t *testing.T, r *Router, m sharding.Move, moving bool, want int) string {
	for id := int64(1); id < 1000; id++ {
		s, _ := r.ShardOfKey("kv", []byte(fmt.Sprint(id)))
		if m.Has(sharding.Key{Int: id}) == moving && s == want {
			return fmt.Sprint(id)
		}
	}
	t.Fatal("no such key")
	return ""
}

// TestHoldGate: with the gate up, writes of moving keys wait and then
// route under the successor; reads, staying keys and exempt sessions do
// not wait; unkeyed writes touching the From shard wait.
func TestHoldGate(t *testing.T) {
	old, next := holdConfig(t, "[{modulus: 2, remainder: 0}]", "[]"), holdConfig(t, "[{modulus: 4, remainder: 0}]", "[{modulus: 4, remainder: 2}]")
	moves, err := sharding.PlanMoves(old, next)
	if err != nil {
		t.Fatal(err)
	}
	h := &Hold{}
	ro, _ := ForConfig(old, &old.Databases[0], WithHold(h))
	rn, _ := ForConfig(next, &next.Databases[0], WithHold(h))
	stay, move := keyOf(t, ro, moves[0], false, 0), keyOf(t, ro, moves[0], true, 0)
	upd, _ := ro.Prepare("UPDATE kv SET v = 1 WHERE id = $1")
	sel, _ := ro.Prepare("SELECT v FROM kv WHERE id = $1")
	all, _ := ro.Prepare("UPDATE kv SET v = 1")
	route := func(p *Plan, key string, id uint32) chan Route {
		ch := make(chan Route, 1)
		go func() {
			rt, err := ro.Route(p, Args{Params: [][]byte{[]byte(key)}}, Session{ID: id})
			if err != nil {
				t.Error(err)
			}
			ch <- rt
		}()
		return ch
	}
	gate, err := h.Raise(moves, old.ShardIndex)
	if err != nil {
		t.Fatal(err)
	}
	gate.Exempt(func(id uint32) bool { return id == 7 })
	immediate := func(ch chan Route, what string) Route {
		select {
		case rt := <-ch:
			return rt
		case <-time.After(5 * time.Second):
			t.Fatalf("%s waited at the gate", what)
		}
		return Route{}
	}
	if rt := immediate(route(upd, stay, 1), "a write of a staying key"); rt.Shards != Only(0) {
		t.Fatalf("staying key: %v", rt.Shards)
	}
	ins, _ := ro.Prepare("INSERT INTO kv (id, v) VALUES ($1, 0)")
	if rt := immediate(route(ins, stay, 1), "an INSERT of a staying key"); rt.Shards != Only(0) {
		t.Fatalf("insert of a staying key: %v", rt.Shards)
	}
	for _, q := range []string{"INSERT INTO kv (id, v) VALUES (" + move + ", 0)", "DELETE FROM kv WHERE id = " + move,
		"UPDATE kv SET v = 2 WHERE id = ANY('{" + stay + "," + move + "}')"} {
		p, _ := ro.Prepare(q)
		ch := route(p, "", 1)
		time.Sleep(20 * time.Millisecond)
		if len(ch) > 0 {
			t.Fatalf("%s went through the gate", q)
		}
		defer func(q string, ch chan Route) {
			if rt := immediate(ch, q); rt.Shards != Only(2) && !strings.HasPrefix(q, "UPDATE") {
				t.Errorf("%s released to %v, want shard 2", q, rt.Shards)
			}
		}(q, ch)
	}
	if rt := immediate(route(sel, move, 1), "a read of a moving key"); rt.Shards != Only(0) {
		t.Fatalf("read: %v", rt.Shards)
	}
	if rt := immediate(route(upd, move, 7), "an exempt session's write"); rt.Shards != Only(0) {
		t.Fatalf("exempt: %v", rt.Shards)
	}
	heldKey, heldAll := route(upd, move, 1), route(all, "", 1)
	time.Sleep(50 * time.Millisecond)
	if len(heldKey) > 0 || len(heldAll) > 0 {
		t.Fatal("a write of a moving key or an unkeyed write went through the gate")
	}
	ro.Follow(rn)
	gate.Release()
	if rt := immediate(heldKey, "a released write"); rt.Shards != Only(2) {
		t.Fatalf("released write routed to %v, want shard 2 (the next placement)", rt.Shards)
	}
	if rt := immediate(heldAll, "a released unkeyed write"); rt.Shards != Only(0)|Only(1)|Only(2) {
		t.Fatalf("released unkeyed write: %v", rt.Shards)
	}
	if g, err := h.Raise(moves, old.ShardIndex); err != nil {
		t.Fatalf("raise after release: %v", err)
	} else {
		g.Release()
	}
}

// TestHoldMarks: a marked shard refuses multi-shard statements over the
// table, not keyed ones, until unmarked.
func TestHoldMarks(t *testing.T) {
	cfg := holdConfig(t, "[{modulus: 4, remainder: 0}]", "[{modulus: 4, remainder: 2}]")
	h := &Hold{}
	r, _ := ForConfig(cfg, &cfg.Databases[0], WithHold(h))
	h.Mark("app", "kv", Only(0))
	_, _, err := r.RouteSimple("SELECT count(*) FROM kv", Session{}, nil)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "shard s0") {
		t.Fatalf("scatter over a marked shard: %v", err)
	}
	if _, rt, err := r.RouteSimple("SELECT * FROM kv WHERE id = 5", Session{}, nil); err != nil || rt.Shards.Len() != 1 {
		t.Fatalf("keyed read: %v %v", rt, err)
	}
	if _, _, err := r.RouteSimple("SELECT * FROM plans", Session{}, nil); err != nil {
		t.Fatalf("reference read: %v", err)
	}
	for _, ddl := range []string{"ALTER TABLE kv ADD COLUMN w int", "TRUNCATE kv", "DROP TABLE plans, kv", "CREATE INDEX ON kv (v)"} {
		_, _, err := r.RouteSimple(ddl, Session{}, nil)
		if !errors.As(err, &pe) || pe.Code != "55000" || !strings.Contains(pe.Message, "being resharded") || pe.Hint == "" {
			t.Errorf("%s while kv is resharded: %v, want 55000 with a hint", ddl, err)
		}
	}
	if _, _, err := r.RouteSimple("ALTER TABLE plans ADD COLUMN w int", Session{}, nil); err != nil {
		t.Errorf("DDL on another table: %v", err)
	}
	h.Unmark("app", "kv", Only(0))
	if _, _, err := r.RouteSimple("ALTER TABLE kv ADD COLUMN w int", Session{}, nil); err != nil {
		t.Errorf("DDL after unmark: %v", err)
	}
	if _, rt, err := r.RouteSimple("SELECT count(*) FROM kv", Session{}, nil); err != nil || rt.Shards != Only(0)|Only(1)|Only(2) {
		t.Fatalf("after unmark: %v %v", rt, err)
	}
}

// TestSpareNotScattered: a shard without hash slots holds no rows of a
// hash-sharded table, so scans skip it; reference tables still reach it.
func TestSpareNotScattered(t *testing.T) {
	cfg := holdConfig(t, "[{modulus: 2, remainder: 0}]", "[]")
	r, err := ForConfig(cfg, &cfg.Databases[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, rt, err := r.RouteSimple("SELECT count(*) FROM kv", Session{}, nil); err != nil || rt.Shards != Only(0)|Only(1) || !rt.Multi {
		t.Fatalf("scan: %+v %v", rt, err)
	}
	for id := 1; id < 200; id++ {
		if _, rt, err := r.RouteSimple(fmt.Sprintf("SELECT * FROM kv WHERE id = %d", id), Session{}, nil); err != nil || rt.Shards == Only(2) {
			t.Fatalf("key %d: %+v %v", id, rt, err)
		}
	}
	if _, rt, err := r.RouteSimple("DELETE FROM plans", Session{}, nil); err == nil && rt.Shards != Only(0)|Only(1)|Only(2) {
		t.Fatalf("reference write: %+v", rt)
	}
}

// TestHoldRefuse: a refusing gate fails the writes waiting at it and
// every later statement, read or write, that touches a moving key, with
// the refusal; staying keys go on; Release ends it.
func TestHoldRefuse(t *testing.T) {
	old, next := holdConfig(t, "[{modulus: 2, remainder: 0}]", "[]"), holdConfig(t, "[{modulus: 4, remainder: 0}]", "[{modulus: 4, remainder: 2}]")
	moves, err := sharding.PlanMoves(old, next)
	if err != nil {
		t.Fatal(err)
	}
	h := &Hold{}
	r, _ := ForConfig(old, &old.Databases[0], WithHold(h))
	stay, move := keyOf(t, r, moves[0], false, 0), keyOf(t, r, moves[0], true, 0)
	upd, _ := r.Prepare("UPDATE kv SET v = 1 WHERE id = $1")
	sel, _ := r.Prepare("SELECT v FROM kv WHERE id = $1")
	gate, err := h.Raise(moves, old.ShardIndex)
	if err != nil {
		t.Fatal(err)
	}
	gate.Exempt(func(uint32) bool { return false })
	waiting := make(chan error, 1)
	go func() {
		_, err := r.Route(upd, Args{Params: [][]byte{[]byte(move)}}, Session{ID: 1})
		waiting <- err
	}()
	time.Sleep(20 * time.Millisecond)
	refusal := errors.New("refused: reshard r1")
	gate.Refuse(refusal)
	select {
	case err := <-waiting:
		if !errors.Is(err, refusal) {
			t.Fatalf("a write waiting at a gate that turned refusing: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting write stayed at a refusing gate")
	}
	for _, p := range []*Plan{upd, sel} {
		if _, err := r.Route(p, Args{Params: [][]byte{[]byte(move)}}, Session{ID: 2}); !errors.Is(err, refusal) {
			t.Errorf("%s of a moving key at a refusing gate: %v", p.text, err)
		}
		if _, err := r.Route(p, Args{Params: [][]byte{[]byte(stay)}}, Session{ID: 2}); err != nil {
			t.Errorf("%s of a staying key at a refusing gate: %v", p.text, err)
		}
	}
	gate.Release()
	if rt, err := r.Route(upd, Args{Params: [][]byte{[]byte(move)}}, Session{ID: 2}); err != nil || rt.Shards != Only(0) {
		t.Fatalf("after release: %v %v", rt, err)
	}
}
