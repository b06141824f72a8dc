package sharding

import (
	"context"
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

type fixedDirectory struct {
	shard int
	got   []string
}

func (f *fixedDirectory) Shard(_ context.Context, table string, k Key) (int, error) {
	f.got = append(f.got, table+"="+KeyText(TypeUUID, k))
	return f.shard, nil
}

func TestDirectoryFuncAsksTheDirectory(t *testing.T) {
	dir := &fixedDirectory{shard: 1}
	ct := &config.ShardedTable{Table: "devices", Type: "uuid", Function: "directory", NullShard: "s0"}
	fn, err := NewWithDirectory(ct, shardNames(2), dir)
	if err != nil {
		t.Fatal(err)
	}
	k, err := KeyFromText(TypeUUID, []byte("{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := fn.Shard(k); err != nil || s != 1 {
		t.Fatalf("shard %d %v", s, err)
	}
	if s, err := fn.Shard(Key{Null: true}); err != nil || s != 0 {
		t.Fatalf("NULL key: shard %d %v, want null_shard 0 without a lookup", s, err)
	}
	if len(dir.got) != 1 || dir.got[0] != "devices=a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" {
		t.Fatalf("lookups %q", dir.got)
	}
	// Other functions ignore the directory.
	h, err := NewWithDirectory(&config.ShardedTable{Table: "u", Type: "int"}, shardNames(2), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*hashFunc); !ok {
		t.Fatalf("hash table got %T", h)
	}
}

func TestKeyTextIsCanonical(t *testing.T) {
	for _, c := range []struct {
		typ       Type
		in, canon string
	}{
		{TypeInt, " +42", "42"}, {TypeInt, "-7", "-7"}, {TypeText, "Ab c", "Ab c"}, {TypeText, "", ""},
		{TypeUUID, "A0EEBC999C0B4EF8BB6D6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
	} {
		k, err := KeyFromText(c.typ, []byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := KeyText(c.typ, k); got != c.canon {
			t.Errorf("KeyText(%s %q) = %q, want %q", c.typ, c.in, got, c.canon)
		}
	}
}
