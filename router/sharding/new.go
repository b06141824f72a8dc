package sharding

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/config"
)

// common holds what every sharding function needs to resolve special keys
// and to word its errors.
type common struct {
	table     string
	typ       Type
	nullShard int // -1: NULL keys are an error
}

// null answers for a NULL key.
func (c *common) null() (int, error) {
	if c.nullShard >= 0 {
		return c.nullShard, nil
	}
	return 0, errNullKey(c.table)
}

func newFunc(t *config.ShardedTable, shards []string, slots [][]config.HashSlot) (Func, error) {
	if t == nil {
		return nil, errors.New("sharding: nil table config")
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("sharding: table %q: no shards", t.Table)
	}
	typ, err := ParseType(t.Type)
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", t.Table, err)
	}
	idx := newShardIndex(shards)
	c := common{table: t.Table, typ: typ, nullShard: -1}
	if t.NullShard != "" {
		if c.nullShard, err = idx.lookup(t.NullShard); err != nil {
			return nil, fmt.Errorf("table %q: null_shard: %w", t.Table, err)
		}
	}
	switch strings.ToLower(t.Function) {
	case "", "hash":
		return newHashFunc(c, shards, slots)
	case "range":
		return newRangeFunc(c, t, idx)
	case "list":
		return newListFunc(c, t, idx)
	case "directory":
		return directoryFunc{common: c}, nil
	}
	return nil, fmt.Errorf("table %q: unknown sharding function %q (want hash, range, list or directory)",
		t.Table, t.Function)
}

// shardIndex maps shard names to their positions.
type shardIndex map[string]int

func newShardIndex(shards []string) shardIndex {
	m := make(shardIndex, len(shards))
	for i, s := range shards {
		m[s] = i
	}
	return m
}

func (m shardIndex) lookup(name string) (int, error) {
	i, ok := m[name]
	if !ok {
		return -1, fmt.Errorf("unknown shard %q", name)
	}
	return i, nil
}

// defaultShard resolves the optional `default` shard; -1 means none.
func (m shardIndex) defaultShard(t *config.ShardedTable) (int, error) {
	if t.Default == "" {
		return -1, nil
	}
	i, err := m.lookup(t.Default)
	if err != nil {
		return -1, fmt.Errorf("table %q: default: %w", t.Table, err)
	}
	return i, nil
}

// parseBound parses a configured key value (range bound or list value).
// Keys from configuration own their bytes, so aliasing is not a concern.
func parseBound(t Type, s string) (Key, error) {
	k, err := KeyFromText(t, []byte(s))
	if err != nil {
		return Key{}, fmt.Errorf("value %q is not a valid %s: %w", s, t, err)
	}
	return k, nil
}
