package sharding

import (
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

// intRanges: (-inf,0)→s0, [0,100)→s1, [100,200)→s2, gap [200,300), [300,+inf)→s3.
// Listed out of order on purpose: New sorts them.
func intRanges(def string) *config.ShardedTable {
	return &config.ShardedTable{Table: "orders", Column: "id", Type: "int", Function: "range", Default: def,
		Ranges: []config.RangeBound{
			{From: ptr("300"), Shard: "s3"},
			{From: ptr("0"), To: ptr("100"), Shard: "s1"},
			{To: ptr("0"), Shard: "s0"},
			{From: ptr("100"), To: ptr("200"), Shard: "s2"},
		}}
}

func TestRangeIntBounds(t *testing.T) {
	f := mustNew(t, intRanges(""), 5)
	want := map[int64]int{
		-1 << 63: 0, -1: 0, 0: 1, 1: 1, 99: 1, 100: 2, 199: 2, 300: 3, 301: 3, 1<<63 - 1: 3,
	}
	for k, s := range want {
		got, err := f.Shard(Key{Int: k})
		if err != nil || got != s {
			t.Errorf("key %d: shard %d, %v; want %d", k, got, err, s)
		}
	}
	for _, k := range []int64{200, 250, 299} {
		_, err := f.Shard(Key{Int: k})
		pe := wantCode(t, err, codeInvalidParameterValue)
		if !contains(pe.Message, "orders") || !contains(pe.Message, "int") || contains(pe.Message, "25") {
			t.Errorf("unmatched error %q should name table and type but not the value", pe.Message)
		}
		if !contains(pe.Hint, "add a range covering it or set default") {
			t.Errorf("hint %q", pe.Hint)
		}
	}
	_, err := f.Shard(Key{Null: true})
	wantCode(t, err, codeInvalidParameterValue)
}

func TestRangeDefaultAndNullShard(t *testing.T) {
	tc := intRanges("s4")
	tc.NullShard = "s0"
	f := mustNew(t, tc, 5)
	if s, err := f.Shard(Key{Int: 250}); err != nil || s != 4 {
		t.Errorf("gap key → %d, %v; want default 4", s, err)
	}
	if s, err := f.Shard(Key{Int: 150}); err != nil || s != 2 {
		t.Errorf("covered key → %d, %v; want 2 (default must not win)", s, err)
	}
	if s, err := f.Shard(Key{Null: true}); err != nil || s != 0 {
		t.Errorf("NULL → %d, %v; want null_shard 0", s, err)
	}
	onlyDefault := &config.ShardedTable{Table: "t", Type: "int", Function: "range", Default: "s1"}
	if s, err := mustNew(t, onlyDefault, 2).Shard(Key{Int: 5}); err != nil || s != 1 {
		t.Errorf("default-only range → %d, %v", s, err)
	}
}

func TestRangeTextIsBytewise(t *testing.T) {
	tc := &config.ShardedTable{Table: "people", Type: "text", Function: "range", Ranges: []config.RangeBound{
		{To: ptr("m"), Shard: "s0"},
		{From: ptr("m"), To: ptr("é"), Shard: "s1"}, // "é" is 0xC3 0xA9: above all ASCII
		{From: ptr("é"), Shard: "s2"},
	}}
	f := mustNew(t, tc, 3)
	want := map[string]int{
		"": 0, "Zed": 0, "a": 0, "lzzz": 0, "m": 1, "mallory": 1, "z": 1, "zzzz": 1, "~": 1,
		"é": 2, "émile": 2, "日本": 2,
	}
	for k, s := range want {
		got, err := f.Shard(Key{Bytes: []byte(k)})
		if err != nil || got != s {
			t.Errorf("key %q: shard %d, %v; want %d", k, got, err, s)
		}
	}
}

func TestRangeUUID(t *testing.T) {
	tc := &config.ShardedTable{Table: "t", Type: "uuid", Function: "range", Ranges: []config.RangeBound{
		{To: ptr("80000000-0000-0000-0000-000000000000"), Shard: "s0"},
		{From: ptr("80000000-0000-0000-0000-000000000000"), Shard: "s1"},
	}}
	f := mustNew(t, tc, 2)
	for text, s := range map[string]int{
		"00000000-0000-0000-0000-000000000000": 0,
		"7fffffff-ffff-ffff-ffff-ffffffffffff": 0,
		"80000000-0000-0000-0000-000000000000": 1,
		"ffffffff-ffff-ffff-ffff-ffffffffffff": 1,
	} {
		k, err := KeyFromText(TypeUUID, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.Shard(k); err != nil || got != s {
			t.Errorf("%s: shard %d, %v; want %d", text, got, err, s)
		}
	}
	_, err := f.Shard(Key{Bytes: []byte{1, 2, 3}})
	wantCode(t, err, codeInvalidParameterValue)
}

func TestRangeConfigErrors(t *testing.T) {
	bad := map[string][]config.RangeBound{
		"overlap":        {{From: ptr("0"), To: ptr("10"), Shard: "s0"}, {From: ptr("5"), To: ptr("20"), Shard: "s1"}},
		"two open lower": {{To: ptr("0"), Shard: "s0"}, {To: ptr("5"), Shard: "s1"}},
		"two open upper": {{From: ptr("0"), Shard: "s0"}, {From: ptr("5"), Shard: "s1"}},
		"open contains":  {{Shard: "s0"}, {From: ptr("5"), To: ptr("6"), Shard: "s1"}},
		"empty range":    {{From: ptr("5"), To: ptr("5"), Shard: "s0"}},
		"reversed":       {{From: ptr("9"), To: ptr("5"), Shard: "s0"}},
		"bad bound":      {{From: ptr("five"), Shard: "s0"}},
		"unknown shard":  {{From: ptr("5"), Shard: "nowhere"}},
	}
	for name, ranges := range bad {
		tc := &config.ShardedTable{Table: "t", Type: "int", Function: "range", Ranges: ranges}
		if _, err := New(tc, shardNames(2)); err == nil {
			t.Errorf("%s: New accepted %+v", name, ranges)
		}
	}
	// Adjacent ranges ([0,10) then [10,20)) are fine.
	ok := &config.ShardedTable{Table: "t", Type: "int", Function: "range", Ranges: []config.RangeBound{
		{From: ptr("10"), To: ptr("20"), Shard: "s1"}, {From: ptr("0"), To: ptr("10"), Shard: "s0"}}}
	f := mustNew(t, ok, 2)
	if s, _ := f.Shard(Key{Int: 10}); s != 1 {
		t.Errorf("key 10 → %d, want 1 (lower bound inclusive)", s)
	}
	if _, err := New(&config.ShardedTable{Table: "t", Type: "int", Function: "range"}, shardNames(2)); err == nil {
		t.Error("range without ranges or default accepted")
	}
}
