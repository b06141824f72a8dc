package reshard

import (
	"reflect"

	"github.com/pgrouter/pgrouter/config"
)

// placement is what of a config decides where rows live: each shard's hash
// slots and each database's sharded tables. The state keeps the running
// placement of when the reshard began, so the moves can be planned again
// after the switch (when the running config already is the next one).
type placement struct {
	Hash   [][]config.HashSlot              `json:"hash"` // per shard, in config order; null = the default slot
	Tables map[string][]config.ShardedTable `json:"tables"`
}

func placementOf(c *config.Config) placement {
	p := placement{Tables: map[string][]config.ShardedTable{}}
	for _, s := range c.Shards {
		p.Hash = append(p.Hash, s.Hash)
	}
	for _, d := range c.Databases {
		p.Tables[d.Name] = d.ShardedTables
	}
	return p
}

// on returns base with this placement.
func (p placement) on(base *config.Config) *config.Config {
	c := *base
	c.Shards = append([]config.Shard(nil), base.Shards...)
	for i := range c.Shards {
		if i < len(p.Hash) {
			c.Shards[i].Hash = p.Hash[i]
		}
	}
	c.Databases = append([]config.Database(nil), base.Databases...)
	for i := range c.Databases {
		if t, ok := p.Tables[c.Databases[i].Name]; ok {
			c.Databases[i].ShardedTables = t
		}
	}
	return &c
}

// samePlacement reports whether a and b place every row alike (as far as
// the config says).
func samePlacement(a, b *config.Config) bool {
	return reflect.DeepEqual(placementOf(a), placementOf(b))
}
