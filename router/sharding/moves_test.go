package sharding

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

// placementYAML is a config of shards s0..s(n-1) with the given hash lines
// ("-" = no hash key) and one database "app" with tables.
func placementYAML(hash []string, tables string) string {
	var b strings.Builder
	b.WriteString("users:\n  - name: app\n    password: pw\nshards:\n")
	for i, h := range hash {
		fmt.Fprintf(&b, "  - name: s%d\n    primary: 127.0.0.1:%d\n", i, 5432+i)
		if h != "-" {
			fmt.Fprintf(&b, "    hash: %s\n", h)
		}
	}
	b.WriteString("databases:\n  - name: app\n    sharded_tables:\n" + tables)
	return b.String()
}

func mustParse(t testing.TB, yml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yml), "t.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, yml)
	}
	return cfg
}

const hashTables = "      - {table: users, column: id, type: int, function: hash}\n" +
	"      - {table: tags, column: name, type: text, function: hash}\n"

// checkHas proves Has selects exactly the keys whose shard changes from
// m.From to m.To, comparing with both placements' Funcs.
func checkHas(t *testing.T, old, next *config.Config, m Move, keys []Key) (moving int) {
	t.Helper()
	db := old.Database(m.Database)
	of, _ := ForConfig(old, findTable(db, m.Table))
	nf, _ := ForConfig(next, findTable(next.Database(m.Database), m.Table))
	for _, k := range keys {
		o, err1 := of.Shard(k)
		n, err2 := nf.Shard(k)
		want := err1 == nil && err2 == nil && old.Shards[o].Name == m.From && next.Shards[n].Name == m.To
		if m.Has(k) != want {
			t.Fatalf("%s %s→%s: Has(%v) = %v, want %v", m.Table, m.From, m.To, k, m.Has(k), want)
		}
		if want {
			moving++
		}
	}
	return moving
}

func intKeyRange(n int) []Key {
	ks := make([]Key, n)
	for i := range ks {
		ks[i] = Key{Int: int64(i - n/2)}
	}
	return ks
}

func TestPlanMovesHashSplit(t *testing.T) {
	// 2 shards by default, then a spare appended, then s0 split into s0 + s2.
	def := mustParse(t, placementYAML([]string{"-", "-"}, hashTables))
	spare := mustParse(t, placementYAML([]string{"[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]"}, hashTables))
	split := mustParse(t, placementYAML([]string{"[{modulus: 4, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[{modulus: 4, remainder: 2}]"}, hashTables))
	if ms, err := PlanMoves(def, spare); err != nil || len(ms) != 0 {
		t.Fatalf("appending a spare: %v %v", ms, err)
	}
	ms, err := PlanMoves(spare, split)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Fatalf("want one move per table, got %+v", ms)
	}
	for _, m := range ms {
		if m.From != "s0" || m.To != "s2" || !strings.Contains(m.Where, ") % 4 = 2") {
			t.Fatalf("move %+v", m)
		}
	}
	keys := intKeyRange(10000)
	n := checkHas(t, spare, split, ms[0], keys)
	if n < 2000 || n > 3000 { // a quarter of the keys
		t.Fatalf("%d of %d int keys move", n, len(keys))
	}
	var texts []Key
	for i := 0; i < 5000; i++ {
		texts = append(texts, Key{Bytes: []byte(fmt.Sprintf("tag-%d", i))})
	}
	if n := checkHas(t, spare, split, ms[1], texts); n < 1000 {
		t.Fatalf("%d text keys move", n)
	}
	// Default 3 shards → a custom placement with moduli 3 and 6 moves keys
	// both ways; the common modulus is 6.
	three := mustParse(t, placementYAML([]string{"-", "-", "-"}, hashTables))
	six := mustParse(t, placementYAML([]string{"[{modulus: 6, remainder: 0}, {modulus: 6, remainder: 4}]", "[{modulus: 3, remainder: 2}]", "[{modulus: 6, remainder: 3}, {modulus: 6, remainder: 1}]"}, hashTables))
	ms, err = PlanMoves(three, six)
	if err != nil || len(ms) != 8 { // four (From, To) pairs per table
		t.Fatalf("%+v %v", ms, err)
	}
	for _, m := range ms {
		checkHas(t, three, six, m, keys)
	}
}

func TestPlanMovesRangeSplit(t *testing.T) {
	tbl := func(ranges string) string {
		return "      - table: events\n        column: id\n        type: int\n        function: range\n        ranges:\n" + ranges
	}
	old := mustParse(t, placementYAML([]string{"-", "-", "-"}, tbl(
		"          - {to: \"1000\", shard: s0}\n          - {from: \"1000\", shard: s1}\n")))
	next := mustParse(t, placementYAML([]string{"-", "-", "-"}, tbl(
		"          - {to: \"500\", shard: s0}\n          - {from: \"500\", to: \"1000\", shard: s2}\n          - {from: \"1000\", shard: s1}\n")))
	ms, err := PlanMoves(old, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].From != "s0" || ms[0].To != "s2" || ms[0].Where != `"id" >= 500 AND "id" < 1000` {
		t.Fatalf("%+v", ms)
	}
	if n := checkHas(t, old, next, ms[0], intKeyRange(4000)); n != 500 {
		t.Fatalf("%d keys move, want 500", n)
	}
	gap := mustParse(t, placementYAML([]string{"-", "-", "-"}, tbl(
		"          - {to: \"500\", shard: s0}\n          - {from: \"1000\", shard: s1}\n        default: s2\n")))
	if _, err := PlanMoves(gap, old); err != nil {
		t.Fatal(err)
	}
	noDefault := *gap.Database("app")
	noDefault.ShardedTables = append([]config.ShardedTable(nil), noDefault.ShardedTables...)
	noDefault.ShardedTables[0].Default = ""
	cfg := *gap
	cfg.Databases = []config.Database{noDefault}
	if _, err := PlanMoves(old, &cfg); err == nil || !strings.Contains(err.Error(), "[500, 1000) without a shard") {
		t.Fatalf("a gap in next: %v", err)
	}
}

func TestPlanMovesListMove(t *testing.T) {
	tbl := func(lists, def string) string {
		return "      - table: shops\n        column: country\n        type: text\n        function: list\n        lists:\n" + lists + def
	}
	old := mustParse(t, placementYAML([]string{"-", "-"}, tbl(
		"          - {values: [de, fr], shard: s0}\n          - {values: [\"it's\"], shard: s1}\n", "        default: s1\n")))
	next := mustParse(t, placementYAML([]string{"-", "-"}, tbl(
		"          - {values: [de], shard: s0}\n          - {values: [fr, \"it's\"], shard: s1}\n", "        default: s0\n")))
	ms, err := PlanMoves(old, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Where != `"country" IN ('fr')` || ms[1].Where != `"country" NOT IN ('de', 'fr', 'it''s')` {
		t.Fatalf("%+v", ms)
	}
	keys := []Key{{Bytes: []byte("de")}, {Bytes: []byte("fr")}, {Bytes: []byte("it's")}, {Bytes: []byte("nl")}}
	if checkHas(t, old, next, ms[0], keys) != 1 || checkHas(t, old, next, ms[1], keys) != 1 {
		t.Fatal("list moves select the wrong keys")
	}
}

func TestPlanMovesRefused(t *testing.T) {
	old := mustParse(t, placementYAML([]string{"-", "-"}, hashTables))
	rangeTbl := mustParse(t, placementYAML([]string{"-", "-"}, "      - {table: users, column: id, type: int, function: range, ranges: [{shard: s0}]}\n"+
		"      - {table: tags, column: name, type: text, function: hash}\n"))
	if _, err := PlanMoves(old, rangeTbl); err == nil || !strings.Contains(err.Error(), "function changed") {
		t.Fatalf("function change: %v", err)
	}
	bad := *old
	bad.Shards = append([]config.Shard(nil), old.Shards...)
	bad.Shards[0].Hash = []config.HashSlot{{Modulus: 4, Remainder: 0}}
	bad.Shards[1].Hash = []config.HashSlot{{Modulus: 2, Remainder: 1}}
	if _, err := PlanMoves(old, &bad); err == nil || !strings.Contains(err.Error(), "remainder 2 of modulus 4 without a shard") {
		t.Fatalf("uncovered slot: %v", err)
	}
	dropped := *old
	dropped.Databases = nil
	if _, err := PlanMoves(old, &dropped); err == nil {
		t.Fatal("a dropped database planned no error")
	}
}
