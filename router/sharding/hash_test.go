package sharding

import (
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

// Values printed by PostgreSQL 15 on x86-64, e.g.
// SELECT hashtextextended('hello', 8816678312871386365) (the partition seed
// as a signed bigint). pgcompat_test.go checks whole tables against a live
// server; these keep the check when no server is around.
func TestExtendedHashGolden(t *testing.T) {
	uuid := make([]byte, 16)
	if !parseUUID(uuid, []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")) {
		t.Fatal("parseUUID failed")
	}
	cases := []struct {
		name string
		got  uint64
		want int64
	}{
		{"hashint8extended(42)", hashInt8Extended(42, hashPartitionSeed), 7363975540656877951},
		{"hashint8extended(-5)", hashInt8Extended(-5, hashPartitionSeed), 5466844944386338076},
		{"hashint8extended(min)", hashInt8Extended(-1<<63, hashPartitionSeed), -6050265599104649060},
		{"hashtextextended('hello')", hashBytesExtended([]byte("hello"), hashPartitionSeed), -2635279551741001039},
		{"hashtextextended('')", hashBytesExtended(nil, hashPartitionSeed), -5700645584453517373},
		{"hashtextextended(27 bytes)", hashBytesExtended([]byte("abcdefghijklmnopqrstuvwxyzä"), hashPartitionSeed), -664183780054047024},
		{"uuid_hash_extended", hashBytesExtended(uuid, hashPartitionSeed), 424513190990560493},
	}
	for _, c := range cases {
		if int64(c.got) != c.want {
			t.Errorf("%s = %d, Postgres says %d", c.name, int64(c.got), c.want)
		}
	}
}

// Postgres's hashint8extended equals hashint4extended for values in int32
// range; hashint4extended is hash_uint32_extended of the value's bits.
func TestIntWidthsHashAlike(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 42, -42, 1<<31 - 1, -1 << 31} {
		if hashInt8Extended(int64(v), hashPartitionSeed) != hashUint32Extended(uint32(v), hashPartitionSeed) {
			t.Errorf("int8 and int4 hashes of %d differ", v)
		}
	}
}

// Every tail length 0..11 and the 12-byte block boundary go through
// addTail/mix differently; a word-at-a-time reference must agree.
func TestTailAgreesWithWordReference(t *testing.T) {
	buf := []byte("The quick brown fox jumps over the lazy dog, twice over")
	for n := 0; n <= len(buf); n++ {
		if got, want := hashBytesExtended(buf[:n], hashPartitionSeed), refHashBytes(buf[:n], hashPartitionSeed); got != want {
			t.Errorf("len %d: %x, reference %x", n, got, want)
		}
	}
}

// refHashBytes is lookup3 over a zero-padded copy read as little-endian words,
// with the third tail word shifted by one byte (the length byte of c).
func refHashBytes(k []byte, seed uint64) uint64 {
	a := lookup3Init + uint32(len(k))
	b, c := a, a
	a += uint32(seed >> 32)
	b += uint32(seed)
	a, b, c = mix(a, b, c)
	for len(k) >= 12 {
		a += le32(k[0:4])
		b += le32(k[4:8])
		c += le32(k[8:12])
		a, b, c = mix(a, b, c)
		k = k[12:]
	}
	var pad [12]byte
	copy(pad[:], k)
	a += le32(pad[0:4])
	b += le32(pad[4:8])
	c += le32(pad[8:12]) << 8
	_, b, c = final(a, b, c) // Postgres returns b and c only
	return uint64(b)<<32 | uint64(c)
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func TestHashNullAndBadKeys(t *testing.T) {
	f := mustNew(t, &config.ShardedTable{Table: "users", Column: "id", Type: "uuid", Function: "hash"}, 4)
	_, err := f.Shard(Key{Null: true})
	pe := wantCode(t, err, codeInvalidParameterValue)
	if pe.Hint == "" || !contains(pe.Message, "users") {
		t.Errorf("NULL error %q / %q should name the table and hint at null_shard", pe.Message, pe.Hint)
	}
	_, err = f.Shard(Key{Bytes: []byte("short")})
	wantCode(t, err, codeInvalidParameterValue)

	g := mustNew(t, &config.ShardedTable{Table: "users", Type: "int", NullShard: "s2"}, 4)
	if s, err := g.Shard(Key{Null: true}); err != nil || s != 2 {
		t.Errorf("null_shard: got %d, %v; want 2", s, err)
	}
}

// A modulus of 1 always gives shard 0; larger moduli give every shard.
func TestHashSpreadsOverAllShards(t *testing.T) {
	for n := 1; n <= 7; n++ {
		f := mustNew(t, &config.ShardedTable{Table: "t", Type: "int"}, n)
		seen := make([]int, n)
		for v := int64(-500); v < 500; v++ {
			s, err := f.Shard(Key{Int: v})
			if err != nil || s < 0 || s >= n {
				t.Fatalf("n=%d key %d: shard %d, %v", n, v, s, err)
			}
			seen[s]++
		}
		for i, c := range seen {
			if c < 1000/n/2 {
				t.Errorf("n=%d: shard %d got %d of 1000 keys", n, i, c)
			}
		}
	}
}

func TestShardAllocationFree(t *testing.T) {
	uuid := []byte("0123456789abcdef")
	from, to := "100", "200"
	funcs := []struct {
		name string
		f    Func
		k    Key
	}{
		{"hash int", mustNew(t, &config.ShardedTable{Table: "t", Type: "int"}, 4), Key{Int: 42}},
		{"hash text", mustNew(t, &config.ShardedTable{Table: "t", Type: "text"}, 4), Key{Bytes: []byte("alice@example.com")}},
		{"hash uuid", mustNew(t, &config.ShardedTable{Table: "t", Type: "uuid"}, 4), Key{Bytes: uuid}},
		{"range int", mustNew(t, &config.ShardedTable{Table: "t", Type: "int", Function: "range",
			Ranges: []config.RangeBound{{From: &from, To: &to, Shard: "s1"}}}, 2), Key{Int: 150}},
		{"list text", mustNew(t, &config.ShardedTable{Table: "t", Type: "text", Function: "list",
			Lists: []config.ListEntry{{Values: []string{"eu", "us"}, Shard: "s1"}}}, 2), Key{Bytes: []byte("eu")}},
		{"list uuid", mustNew(t, &config.ShardedTable{Table: "t", Type: "uuid", Function: "list",
			Lists: []config.ListEntry{{Values: []string{"30313233-3435-3637-3839-616263646566"}, Shard: "s1"}}}, 2), Key{Bytes: uuid}},
	}
	for _, c := range funcs {
		s, err := c.f.Shard(c.k)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.name[:4] != "hash" && s != 1 {
			t.Errorf("%s: shard %d, want 1", c.name, s)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = c.f.Shard(c.k) }); n != 0 {
			t.Errorf("%s: %v allocations per Shard", c.name, n)
		}
	}
}

func benchShard(b *testing.B, typ string, k Key) {
	f, err := New(&config.ShardedTable{Table: "t", Type: typ, Function: "hash"}, []string{"a", "b", "c", "d"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Shard(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashInt(b *testing.B) { benchShard(b, "int", Key{Int: 1234567890123}) }
func BenchmarkHashText(b *testing.B) {
	benchShard(b, "text", Key{Bytes: []byte("alice.smith@example.com")})
}
func BenchmarkHashUUID(b *testing.B) { benchShard(b, "uuid", Key{Bytes: []byte("0123456789abcdef")}) }
