package sharding

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// TestHashMatchesPostgres is the proof behind doc.go: for every key type and
// several moduli, rows inserted into a real PARTITION BY HASH table land in
// the partition whose REMAINDER equals our Shard(), for keys decoded both
// from the text and from the binary wire format Postgres itself produces.
func TestHashMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, conn, err := localpg.StartOne(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	defer conn.Close(context.WithoutCancel(ctx))

	rng := rand.New(rand.NewPCG(1, 2))
	columns := []struct {
		sqlType string
		typ     Type
		keys    []string
	}{
		{"smallint", TypeInt, intKeys(rng, math.MinInt16, math.MaxInt16)},
		{"integer", TypeInt, intKeys(rng, math.MinInt32, math.MaxInt32)},
		{"bigint", TypeInt, intKeys(rng, math.MinInt64, math.MaxInt64)},
		{"text", TypeText, textKeys(rng)},
		{"varchar(200)", TypeText, textKeys(rng)},
		{"uuid", TypeUUID, uuidKeys(rng)},
	}
	for _, col := range columns {
		for _, modulus := range []int{2, 3, 4, 7} {
			name := fmt.Sprintf("hp_%s_%d", strings.Fields(strings.NewReplacer("(", " ").Replace(col.sqlType))[0], modulus)
			t.Run(name, func(t *testing.T) {
				createHashTable(ctx, t, conn, name, col.sqlType, modulus)
				insertKeys(ctx, t, conn, name, col.sqlType, col.keys)
				n := checkPlacement(ctx, t, conn, name, col.typ, modulus)
				if n < len(col.keys) {
					t.Errorf("checked %d rows, inserted at least %d", n, len(col.keys))
				}
			})
		}
	}
	t.Run("null_goes_to_remainder_0", func(t *testing.T) { checkNullPlacement(ctx, t, conn) })
	t.Run("satisfies_hash_partition_recipe", func(t *testing.T) { checkDocRecipe(ctx, t, conn) })
}

func createHashTable(ctx context.Context, t *testing.T, conn *pgx.Conn, name, sqlType string, modulus int) {
	t.Helper()
	stmts := []string{fmt.Sprintf("CREATE TABLE %s (k %s) PARTITION BY HASH (k)", name, sqlType)}
	for r := 0; r < modulus; r++ {
		stmts = append(stmts, fmt.Sprintf(
			"CREATE TABLE %s_p%d PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)", name, r, name, modulus, r))
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func insertKeys(ctx context.Context, t *testing.T, conn *pgx.Conn, name, sqlType string, keys []string) {
	t.Helper()
	sql := fmt.Sprintf("INSERT INTO %s SELECT unnest($1::text[])::%s", name, sqlType)
	if _, err := conn.Exec(ctx, sql, keys); err != nil {
		t.Fatalf("insert into %s: %v", name, err)
	}
	if sqlType == "uuid" { // plus server-generated random uuids
		if _, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s SELECT gen_random_uuid() FROM generate_series(1, 1000)", name)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkPlacement reads every row back with its partition and compares the
// remainder with Shard() of the key decoded from binary and from text.
func checkPlacement(ctx context.Context, t *testing.T, conn *pgx.Conn, name string, typ Type, modulus int) int {
	t.Helper()
	f, err := New(&config.ShardedTable{Table: name, Column: "k", Type: typ.String(), Function: "hash"}, shardNames(modulus))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT k, k::text, tableoid::regclass::text FROM %s", name),
		pgx.QueryResultFormats{pgx.BinaryFormatCode, pgx.TextFormatCode, pgx.TextFormatCode})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	oid := rows.FieldDescriptions()[0].DataTypeOID
	n, failures := 0, 0
	for rows.Next() {
		raw := rows.RawValues()
		text := string(raw[1])
		want := partitionRemainder(t, string(raw[2]))
		fromBin, err1 := KeyFromBinary(typ, oid, raw[0])
		fromText, err2 := KeyFromText(typ, raw[1])
		if err1 != nil || err2 != nil {
			t.Fatalf("key %q: binary %v, text %v", text, err1, err2)
		}
		for _, k := range []Key{fromBin, fromText} {
			got, err := f.Shard(k)
			if (err != nil || got != want) && failures < 10 {
				failures++
				t.Errorf("key %q (%s): Shard() = %d, %v; Postgres put it in remainder %d", text, name, got, err, want)
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// partitionRemainder reads REMAINDER r back from a partition named …_p<r>.
func partitionRemainder(t *testing.T, partition string) int {
	i := strings.LastIndex(partition, "_p")
	r, err := strconv.Atoi(partition[i+2:])
	if i < 0 || err != nil {
		t.Fatalf("unexpected partition name %q", partition)
	}
	return r
}

// intKeys covers zero, small values, the int32 and int64 edges and random
// values, limited to [lo, hi] (the column type's range), as SQL text.
func intKeys(rng *rand.Rand, lo, hi int64) []string {
	var vals []int64
	for v := int64(-1500); v <= 1500; v++ {
		vals = append(vals, v)
	}
	for _, e := range []int64{math.MinInt16, math.MaxInt16, math.MinInt32, math.MaxInt32, math.MinInt64, math.MaxInt64} {
		for d := int64(-2); d <= 2; d++ {
			if (d < 0 && e+d > e) || (d > 0 && e+d < e) { // would wrap around
				continue
			}
			vals = append(vals, e+d)
		}
	}
	vals = append(vals, 1<<32, -1<<32, 1<<32+1, -(1<<32 + 1), 1<<40, -1<<40)
	for i := 0; i < 2000; i++ {
		vals = append(vals, int64(rng.Uint64()), int64(int32(rng.Uint32())), int64(int16(rng.Uint32())))
	}
	var keys []string
	for _, v := range vals {
		if v >= lo && v <= hi {
			keys = append(keys, strconv.FormatInt(v, 10))
		}
	}
	return keys
}

// textKeys covers the empty string, every tail length around lookup3's
// 12-byte blocks, multi-byte UTF-8 and random strings.
func textKeys(rng *rand.Rand) []string {
	keys := []string{"", " ", "a", "A", "ä", "é", "日本語", "🙂", "naïve café", "Ω≈ç√∫", "tab\there", "new\nline", "quote'\""}
	alphabet := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_@.äöüßéñ日本語中文한국어Ωπ🙂🚀")
	base := "The quick brown fox jumps over the lazy dog 0123456789"
	for n := 1; n <= len(base); n++ {
		keys = append(keys, base[:n])
	}
	for i := 0; i < 3000; i++ {
		r := make([]rune, rng.IntN(40))
		for j := range r {
			r[j] = alphabet[rng.IntN(len(alphabet))]
		}
		keys = append(keys, string(r))
	}
	for i := 0; i < 500; i++ {
		keys = append(keys, fmt.Sprintf("user%d@example.com", i))
	}
	return keys
}

func uuidKeys(rng *rand.Rand) []string {
	keys := []string{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}
	for i := 0; i < 2000; i++ {
		var b [16]byte
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		keys = append(keys, fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
	}
	return keys
}

// checkNullPlacement backs doc.go's claim that Postgres puts NULL keys in
// remainder 0 (we refuse them unless null_shard is set).
func checkNullPlacement(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	createHashTable(ctx, t, conn, "hp_null", "bigint", 3)
	var part string
	err := conn.QueryRow(ctx, "INSERT INTO hp_null VALUES (NULL) RETURNING tableoid::regclass::text").Scan(&part)
	if err != nil {
		t.Fatal(err)
	}
	if part != "hp_null_p0" {
		t.Errorf("NULL went to %s, doc.go says remainder 0", part)
	}
}

// checkDocRecipe runs the satisfies_hash_partition recipe from doc.go: an
// empty hash-partitioned helper table, any modulus, our remainder → true.
func checkDocRecipe(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	if _, err := conn.Exec(ctx, "CREATE TABLE shardkey_bigint (k bigint) PARTITION BY HASH (k)"); err != nil {
		t.Fatal(err)
	}
	for _, modulus := range []int{2, 5, 16} {
		f := mustNew(t, &config.ShardedTable{Table: "t", Type: "int"}, modulus)
		for _, v := range []int64{0, 42, -42, math.MaxInt64, math.MinInt64} {
			s, err := f.Shard(Key{Int: v})
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			err = conn.QueryRow(ctx, "SELECT satisfies_hash_partition('shardkey_bigint'::regclass, $1, $2, $3::bigint)",
				modulus, s, v).Scan(&ok)
			if err != nil || !ok {
				t.Errorf("satisfies_hash_partition(modulus %d, remainder %d, %d) = %v, %v", modulus, s, v, ok, err)
			}
		}
	}
}
