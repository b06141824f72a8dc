// Package reshard tests online resharding on real clusters: the placement
// model and the cutover primitive (placement_test.go, cutover_test.go) and
// the engine built on them.
package reshard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// placementConfig is a config of n shards (hash[i]: shard i's hash slots,
// "" = none) with the sharded tables tables (YAML list items).
func placementConfig(t *testing.T, hash []string, tables string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n  - name: app\n    password: pw\nshards:\n")
	for i, h := range hash {
		fmt.Fprintf(&b, "  - name: shard%d\n    primary: 127.0.0.1:%d\n", i, 15432+i)
		if h != "" {
			fmt.Fprintf(&b, "    hash: %s\n", h)
		}
	}
	b.WriteString("databases:\n  - name: app\n    sharded_tables:\n" + tables)
	cfg, err := config.Parse([]byte(b.String()), "placement.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return cfg
}

// moveCase is one placement change and the tables it moves.
type moveCase struct {
	name      string
	old, next *config.Config
	tables    map[string]string // table → SQL type of its key column k
	keys      map[string][]string
}

// TestMoveWhereMatchesRouter proves, on a real Postgres, that each Move's
// Where selects exactly the rows whose shard the router changes from From
// to To, and that Has agrees, for thousands of int, text and uuid keys:
// a hash split (mixed moduli), a split of a text range and a list move.
func TestMoveWhereMatchesRouter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, conn, err := localpg.StartOne(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	defer conn.Close(context.WithoutCancel(ctx))

	rng := rand.New(rand.NewPCG(15, 7))
	ints, texts, uuids := intKeys(rng, 4000), textKeys(rng, 3000), uuidKeys(rng, 3000)
	hashTables := "      - {table: h_int, column: k, type: int, function: hash}\n" +
		"      - {table: h_text, column: k, type: text, function: hash}\n" +
		"      - {table: h_uuid, column: k, type: uuid, function: hash}\n"
	rangeTable := func(ranges string) string {
		return "      - table: r_text\n        column: k\n        type: text\n        function: range\n        ranges:\n" + ranges
	}
	listTable := func(lists, def string) string {
		return "      - table: l_int\n        column: k\n        type: int\n        function: list\n        lists:\n" + lists + "        default: " + def + "\n"
	}
	cases := []moveCase{
		{
			name:   "hash split 2 to 3",
			old:    placementConfig(t, []string{"[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]"}, hashTables),
			next:   placementConfig(t, []string{"[{modulus: 4, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[{modulus: 4, remainder: 2}]"}, hashTables),
			tables: map[string]string{"h_int": "bigint", "h_text": "text", "h_uuid": "uuid"},
			keys:   map[string][]string{"h_int": ints, "h_text": texts, "h_uuid": uuids},
		},
		{
			name:   "hash default 3 to mixed moduli",
			old:    placementConfig(t, []string{"", "", ""}, hashTables),
			next:   placementConfig(t, []string{"[{modulus: 6, remainder: 0}, {modulus: 6, remainder: 4}]", "[{modulus: 3, remainder: 2}]", "[{modulus: 6, remainder: 1}, {modulus: 6, remainder: 3}]"}, hashTables),
			tables: map[string]string{"h_int": "integer", "h_text": "varchar(100)", "h_uuid": "uuid"},
			keys:   map[string][]string{"h_int": intsIn(ints, -1<<31, 1<<31-1), "h_text": texts, "h_uuid": uuids},
		},
		{
			name: "text range split",
			old: placementConfig(t, []string{"", "", ""}, rangeTable(
				"          - {to: \"m\", shard: shard0}\n          - {from: \"m\", shard: shard1}\n")),
			next: placementConfig(t, []string{"", "", ""}, rangeTable(
				"          - {to: \"G\", shard: shard0}\n          - {from: \"G\", to: \"m\", shard: shard2}\n          - {from: \"m\", to: \"é\", shard: shard1}\n          - {from: \"é\", shard: shard2}\n")),
			tables: map[string]string{"r_text": "text"},
			keys:   map[string][]string{"r_text": texts},
		},
		{
			name: "list move",
			old: placementConfig(t, []string{"", ""}, listTable(
				"          - {values: [\"1\", \"2\", \"3\"], shard: shard0}\n          - {values: [\"4\"], shard: shard1}\n", "shard1")),
			next: placementConfig(t, []string{"", ""}, listTable(
				"          - {values: [\"1\", \"3\"], shard: shard0}\n          - {values: [\"2\", \"4\"], shard: shard1}\n", "shard0")),
			tables: map[string]string{"l_int": "bigint"},
			keys:   map[string][]string{"l_int": intsIn(ints, -50, 50)},
		},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { checkMoveCase(ctx, t, conn, tc) })
	}
}

func checkMoveCase(ctx context.Context, t *testing.T, conn *pgx.Conn, tc moveCase) {
	moves, err := sharding.PlanMoves(tc.old, tc.next)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := router.ForConfig(tc.old, &tc.old.Databases[0])
	if err != nil {
		t.Fatal(err)
	}
	rn, err := router.ForConfig(tc.next, &tc.next.Databases[0])
	if err != nil {
		t.Fatal(err)
	}
	for table, sqlType := range tc.tables {
		for _, s := range []string{"DROP TABLE IF EXISTS " + table, fmt.Sprintf("CREATE TABLE %s (k %s)", table, sqlType)} {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		ins := fmt.Sprintf("INSERT INTO %s SELECT x::%s FROM unnest($1::text[]) x", table, sqlType)
		if _, err := conn.Exec(ctx, ins, tc.keys[table]); err != nil {
			t.Fatalf("copy into %s: %v", table, err)
		}
	}
	checked, moving := 0, 0
	for _, m := range moves {
		got := map[string]bool{}
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT k::text FROM %s WHERE %s", m.Table, m.Where))
		if err != nil {
			t.Fatalf("%s: %v", m.Where, err)
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			got[k] = true
		}
		if rows.Err() != nil {
			t.Fatalf("%s: %v", m.Where, rows.Err())
		}
		typ := m.Type
		for _, raw := range tc.keys[m.Table] {
			key, err := sharding.KeyFromText(typ, []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			canon := sharding.KeyText(typ, key)
			o, err1 := ro.ShardOfKey(m.Table, []byte(raw))
			n, err2 := rn.ShardOfKey(m.Table, []byte(raw))
			want := err1 == nil && err2 == nil && tc.old.Shards[o].Name == m.From && tc.next.Shards[n].Name == m.To
			if got[canon] != want || m.Has(key) != want {
				t.Fatalf("%s %s→%s key %q: Postgres Where %v, Has %v, router %v", m.Table, m.From, m.To, raw, got[canon], m.Has(key), want)
			}
			if want {
				moving++
			}
			checked++
		}
	}
	if len(moves) == 0 || moving == 0 {
		t.Fatalf("nothing moves: %d moves, %d moving keys", len(moves), moving)
	}
	t.Logf("%d moves; %d (key, move) pairs checked, %d keys move", len(moves), checked, moving)
}

func intKeys(rng *rand.Rand, n int) []string {
	var out []string
	for v := -500; v <= 500; v++ {
		out = append(out, fmt.Sprint(v))
	}
	for _, e := range []int64{-1 << 63, 1<<63 - 1, -1 << 31, 1<<31 - 1, 1 << 32, -(1 << 32)} {
		out = append(out, fmt.Sprint(e))
	}
	for len(out) < n {
		out = append(out, fmt.Sprint(int64(rng.Uint64())), fmt.Sprint(int32(rng.Uint32())))
	}
	return out
}

func intsIn(keys []string, lo, hi int64) []string {
	var out []string
	for _, k := range keys {
		var v int64
		fmt.Sscan(k, &v)
		if v >= lo && v <= hi {
			out = append(out, k)
		}
	}
	return out
}

// textKeys mixes ASCII of both cases, multi-byte UTF-8 (whose bytes sort
// above ASCII in C order but elsewhere in linguistic orders) and lengths
// around lookup3's 12-byte blocks.
func textKeys(rng *rand.Rand, n int) []string {
	out := []string{"", "G", "g", "m", "M", "é", "e", "z", "Z", "日本", "🙂", "it's", `back\slash`}
	alphabet := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_äöüßéñ日本語Ω🙂")
	for len(out) < n {
		r := make([]rune, 1+rng.IntN(30))
		for j := range r {
			r[j] = alphabet[rng.IntN(len(alphabet))]
		}
		out = append(out, string(r))
	}
	return dedupe(out)
}

func uuidKeys(rng *rand.Rand, n int) []string {
	out := []string{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	for len(out) < n {
		var b [16]byte
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		out = append(out, fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
	}
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
