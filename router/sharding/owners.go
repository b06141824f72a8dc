package sharding

import (
	"strings"

	"github.com/pgrouter/pgrouter/config"
)

// Owners lists the shards (indexes, ascending) that can hold rows of t:
// for hash, the shards with hash slots (a spare holds none); for range and
// list, the shards named by a range, a list, default or null_shard; for
// directory, every shard. slots are the shards' hash slots (nil = default).
// A statement that is not restricted by the shard key needs only these.
func Owners(t *config.ShardedTable, shards []string, slots [][]config.HashSlot) []int {
	own := make([]bool, len(shards))
	idx := newShardIndex(shards)
	mark := func(name string) {
		if i, ok := idx[name]; ok {
			own[i] = true
		}
	}
	mark(t.NullShard)
	switch strings.ToLower(t.Function) {
	case "", "hash":
		for i := range own {
			own[i] = own[i] || slots == nil || len(slots[i]) > 0
		}
	case "range":
		mark(t.Default)
		for _, r := range t.Ranges {
			mark(r.Shard)
		}
	case "list":
		mark(t.Default)
		for _, l := range t.Lists {
			mark(l.Shard)
		}
	default:
		for i := range own {
			own[i] = true
		}
	}
	var out []int
	for i, o := range own {
		if o {
			out = append(out, i)
		}
	}
	return out
}

// HashSlotsOf is cfg's hash slots as NewPlaced and Owners take them: nil
// when no shard configures any (the default placement).
func HashSlotsOf(cfg *config.Config) [][]config.HashSlot {
	if !cfg.CustomHash() {
		return nil
	}
	return cfg.HashSlots()
}

// ForConfig is the sharding function of table t under cfg's shards and hash
// slots (directory tables get no Directory: see NewWithDirectory).
func ForConfig(cfg *config.Config, t *config.ShardedTable) (Func, error) {
	return NewPlaced(t, cfg.ShardNames(), HashSlotsOf(cfg), nil)
}
