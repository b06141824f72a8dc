package sharding

import (
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

func TestListText(t *testing.T) {
	tc := &config.ShardedTable{Table: "accounts", Type: "text", Function: "list", Lists: []config.ListEntry{
		{Values: []string{"eu", "uk", ""}, Shard: "s0"},
		{Values: []string{"us", "ca", "日本"}, Shard: "s1"},
	}}
	f := mustNew(t, tc, 2)
	for k, s := range map[string]int{"eu": 0, "uk": 0, "": 0, "us": 1, "ca": 1, "日本": 1} {
		if got, err := f.Shard(Key{Bytes: []byte(k)}); err != nil || got != s {
			t.Errorf("%q → %d, %v; want %d", k, got, err, s)
		}
	}
	for _, k := range []string{"EU", "eu ", "fr"} {
		_, err := f.Shard(Key{Bytes: []byte(k)})
		pe := wantCode(t, err, codeInvalidParameterValue)
		if !contains(pe.Message, "accounts") || !contains(pe.Hint, "set default") {
			t.Errorf("unmatched error %q / %q", pe.Message, pe.Hint)
		}
	}
	_, err := f.Shard(Key{Null: true})
	wantCode(t, err, codeInvalidParameterValue)
}

func TestListIntDefaultNull(t *testing.T) {
	tc := &config.ShardedTable{Table: "t", Type: "int", Function: "list", Default: "s2", NullShard: "s1",
		Lists: []config.ListEntry{
			{Values: []string{"1", "+2", " 3 "}, Shard: "s0"},
			{Values: []string{"-9223372036854775808"}, Shard: "s1"},
		}}
	f := mustNew(t, tc, 3)
	for k, s := range map[int64]int{1: 0, 2: 0, 3: 0, -1 << 63: 1, 4: 2, 0: 2} {
		if got, err := f.Shard(Key{Int: k}); err != nil || got != s {
			t.Errorf("%d → %d, %v; want %d", k, got, err, s)
		}
	}
	if got, err := f.Shard(Key{Null: true}); err != nil || got != 1 {
		t.Errorf("NULL → %d, %v; want 1", got, err)
	}
}

func TestListUUID(t *testing.T) {
	tc := &config.ShardedTable{Table: "t", Type: "uuid", Function: "list", Lists: []config.ListEntry{
		{Values: []string{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}, Shard: "s1"}}}
	f := mustNew(t, tc, 2)
	k, _ := KeyFromText(TypeUUID, []byte("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}"))
	if got, err := f.Shard(k); err != nil || got != 1 {
		t.Errorf("listed uuid → %d, %v", got, err)
	}
	k.Bytes[15]++
	_, err := f.Shard(k)
	wantCode(t, err, codeInvalidParameterValue)
	_, err = f.Shard(Key{Bytes: []byte("not sixteen")})
	wantCode(t, err, codeInvalidParameterValue)
}

func TestListConfigErrors(t *testing.T) {
	bad := map[string]*config.ShardedTable{
		"two shards": {Type: "int", Lists: []config.ListEntry{{Values: []string{"1"}, Shard: "s0"}, {Values: []string{"01"}, Shard: "s1"}}},
		"bad value":  {Type: "int", Lists: []config.ListEntry{{Values: []string{"one"}, Shard: "s0"}}},
		"bad uuid":   {Type: "uuid", Lists: []config.ListEntry{{Values: []string{"1234"}, Shard: "s0"}}},
		"bad shard":  {Type: "text", Lists: []config.ListEntry{{Values: []string{"x"}, Shard: "s9"}}},
		"bad deflt":  {Type: "text", Default: "s9", Lists: []config.ListEntry{{Values: []string{"x"}, Shard: "s0"}}},
		"empty":      {Type: "text"},
	}
	for name, tc := range bad {
		tc.Table, tc.Function = "t", "list"
		if _, err := New(tc, shardNames(2)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dupSame := &config.ShardedTable{Table: "t", Type: "text", Function: "list",
		Lists: []config.ListEntry{{Values: []string{"x", "x"}, Shard: "s0"}}}
	if _, err := New(dupSame, shardNames(2)); err != nil {
		t.Errorf("value listed twice for one shard rejected: %v", err)
	}
}

func TestNewConfigErrorsAndDirectory(t *testing.T) {
	bad := []*config.ShardedTable{
		{Table: "t", Type: "float"},
		{Table: "t", Type: "int", Function: "consistent"},
		{Table: "t", Type: "int", NullShard: "nowhere"},
	}
	for _, tc := range bad {
		if _, err := New(tc, shardNames(2)); err == nil {
			t.Errorf("New(%+v) accepted", tc)
		}
	}
	if _, err := New(&config.ShardedTable{Table: "t", Type: "int"}, nil); err == nil {
		t.Error("New with no shards accepted")
	}
	if _, err := New(nil, shardNames(2)); err == nil {
		t.Error("New(nil) accepted")
	}
	d := mustNew(t, &config.ShardedTable{Table: "tenants", Type: "text", Function: "directory"}, 2)
	_, err := d.Shard(Key{Bytes: []byte("acme")})
	pe := wantCode(t, err, codeFeatureNotSupported)
	if !contains(pe.Message, "no directory lookup is available") {
		t.Errorf("directory error %q", pe.Message)
	}
}
