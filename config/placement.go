package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// MaxHashModulus bounds the moduli of shards[].hash: coverage is proven
// (and keys are placed) through a table with one entry per residue of the
// largest modulus.
const MaxHashModulus = 1 << 16

// CustomHash reports whether any shard gives its hash slots (shards[].hash);
// otherwise shard i holds remainder i of modulus len(shards).
func (c *Config) CustomHash() bool {
	for i := range c.Shards {
		if c.Shards[i].Hash != nil {
			return true
		}
	}
	return false
}

// HashSlots returns every shard's hash slots, in shard order: the configured
// ones, or the default (shard i: modulus len(shards), remainder i).
func (c *Config) HashSlots() [][]HashSlot {
	out := make([][]HashSlot, len(c.Shards))
	custom := c.CustomHash()
	for i := range c.Shards {
		if custom {
			out[i] = append([]HashSlot(nil), c.Shards[i].Hash...)
		} else {
			out[i] = []HashSlot{{Modulus: len(c.Shards), Remainder: i}}
		}
	}
	return out
}

// HashModulus is the largest modulus of slots: the residues of it decide
// every key's slot, because every modulus divides it (validated).
func HashModulus(slots [][]HashSlot) int {
	m := 1
	for _, ss := range slots {
		for _, s := range ss {
			m = max(m, s.Modulus)
		}
	}
	return m
}

// validateHash proves the hash slots of the shards cover every key exactly
// once, with Postgres's rules for PARTITION BY HASH: every modulus is a
// factor of the next larger one, and every residue of the largest modulus
// belongs to exactly one slot.
func (c *checker) validateHash(cfg *Config) {
	if !cfg.CustomHash() {
		return
	}
	ok := true
	moduli := map[int]string{} // modulus → key of its first use
	for i := range cfg.Shards {
		key := idx("shards", i) + ".hash"
		if cfg.Shards[i].Hash == nil {
			c.errf(key, "missing: when one shard gives hash slots every shard must (write hash: [] for a spare that holds no hash keys)")
			ok = false
		}
		for j, s := range cfg.Shards[i].Hash {
			sk := idx(key, j)
			switch {
			case s.Modulus < 1 || s.Modulus > MaxHashModulus:
				c.errf(sk+".modulus", "must be between 1 and %d, got %d", MaxHashModulus, s.Modulus)
				ok = false
			case s.Remainder < 0 || s.Remainder >= s.Modulus:
				c.errf(sk+".remainder", "must be ≥ 0 and below the modulus %d, got %d", s.Modulus, s.Remainder)
				ok = false
			default:
				if _, seen := moduli[s.Modulus]; !seen {
					moduli[s.Modulus] = sk + ".modulus"
				}
			}
		}
	}
	if ok && c.hashModuliChain(moduli) {
		c.hashCoverage(cfg)
	}
}

// hashModuliChain checks Postgres's rule that each modulus divides the next
// larger one (so that a key's slot follows from its residue of the largest).
func (c *checker) hashModuliChain(moduli map[int]string) bool {
	ms := make([]int, 0, len(moduli))
	for m := range moduli {
		ms = append(ms, m)
	}
	sort.Ints(ms)
	for i := 1; i < len(ms); i++ {
		if ms[i]%ms[i-1] != 0 {
			c.errf(moduli[ms[i]], "modulus %d is not a multiple of modulus %d (first at %s): every modulus must be a factor of the next larger one, as in PARTITION BY HASH",
				ms[i], ms[i-1], c.where(moduli[ms[i-1]]))
			return false
		}
	}
	return true
}

// hashCoverage reports residues of the largest modulus claimed twice or
// by no shard.
func (c *checker) hashCoverage(cfg *Config) {
	slots := cfg.HashSlots()
	m := HashModulus(slots)
	owner := make([]string, m) // residue → key of the slot that claims it
	for i, ss := range slots {
		for j, s := range ss {
			sk := idx(idx("shards", i)+".hash", j)
			for r := s.Remainder; r < m; r += s.Modulus {
				if prev := owner[r]; prev != "" {
					c.errf(sk, "hash slot (modulus %d, remainder %d) overlaps the slot at %s: keys with remainder %d of modulus %d would belong to two shards",
						s.Modulus, s.Remainder, c.where(prev), r, m)
					return
				}
				owner[r] = sk
			}
		}
	}
	var missing []string
	for r, o := range owner {
		if o == "" {
			missing = append(missing, fmt.Sprint(r))
		}
	}
	if len(missing) > 0 {
		if len(missing) > 8 {
			missing = append(missing[:8], "…")
		}
		c.errf("shards", "hash slots leave keys without a shard: remainders %s of modulus %d belong to no shard",
			strings.Join(missing, ", "), m)
	}
}

// PlacementChange reports why some row would live on another shard under
// next than under prev (nil: none would). Shards may be appended as spares
// (no hash slots) without moving rows; renaming, removing or reordering
// shards, changing hash slots, or changing a sharded table of a database
// present in both configs moves rows.
func PlacementChange(prev, next *Config) error {
	pn, nn := prev.ShardNames(), next.ShardNames()
	if len(nn) < len(pn) || !slicesEqual(pn, nn[:len(pn)]) {
		return fmt.Errorf("shards %v → %v", pn, nn)
	}
	ps, ns := prev.HashSlots(), next.HashSlots()
	for i := range ns {
		var was []HashSlot
		if i < len(ps) {
			was = ps[i]
		}
		if !slicesEqual(was, ns[i]) {
			return fmt.Errorf("hash slots of shard %s: %v → %v", nn[i], was, ns[i])
		}
	}
	for _, pd := range prev.Databases {
		if nd := next.Database(pd.Name); nd != nil && !shardedTablesEqual(pd.ShardedTables, nd.ShardedTables) {
			return fmt.Errorf("sharded_tables of database %q changed", pd.Name)
		}
	}
	return nil
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func shardedTablesEqual(a, b []ShardedTable) bool { return reflect.DeepEqual(a, b) }
