package sharding

import (
	"fmt"

	"github.com/pgrouter/pgrouter/config"
)

// hashFunc places keys like PARTITION BY HASH (key). By default shard i
// holds REMAINDER i of MODULUS = number of shards; with configured hash slots
// (shards[].hash) owner maps every residue of the largest modulus to the
// shard whose slot contains it — every modulus divides the largest, so the
// residue decides the slot, as in Postgres.
type hashFunc struct {
	common
	modulus uint64
	owner   []int16 // residue → shard; nil: shard = residue; -1: no shard (unvalidated config)
}

// Shard is allocation-free.
func (h *hashFunc) Shard(k Key) (int, error) {
	if k.Null {
		// Postgres would put NULL in remainder 0; we refuse unless configured,
		// because a NULL shard key is almost always an application bug.
		return h.null()
	}
	v, ok := PartitionHash(h.typ, k)
	if !ok {
		return 0, errBadKey(h.table, h.typ)
	}
	r := v % h.modulus
	if h.owner == nil {
		return int(r), nil
	}
	if s := h.owner[r]; s >= 0 {
		return int(s), nil
	}
	return 0, errUnmatched(h.table, h.typ, "hash")
}

// newHashFunc builds the hash function over slots (nil: the default).
func newHashFunc(c common, shards []string, slots [][]config.HashSlot) (*hashFunc, error) {
	if slots == nil {
		return &hashFunc{common: c, modulus: uint64(len(shards))}, nil
	}
	owner, err := hashOwners(slots)
	if err != nil {
		return nil, fmt.Errorf("table %q: %w", c.table, err)
	}
	return &hashFunc{common: c, modulus: uint64(len(owner)), owner: owner}, nil
}

// hashOwners maps each residue of the largest modulus to its shard.
func hashOwners(slots [][]config.HashSlot) ([]int16, error) {
	m := config.HashModulus(slots)
	if m > config.MaxHashModulus {
		return nil, fmt.Errorf("hash modulus %d above %d", m, config.MaxHashModulus)
	}
	owner := make([]int16, m)
	for i := range owner {
		owner[i] = -1
	}
	for shard, ss := range slots {
		for _, s := range ss {
			if s.Modulus < 1 || m%s.Modulus != 0 || s.Remainder < 0 || s.Remainder >= s.Modulus {
				return nil, fmt.Errorf("invalid hash slot (modulus %d, remainder %d) of shard %d", s.Modulus, s.Remainder, shard)
			}
			for r := s.Remainder; r < m; r += s.Modulus {
				if owner[r] >= 0 {
					return nil, fmt.Errorf("hash slot (modulus %d, remainder %d) of shard %d overlaps shard %d", s.Modulus, s.Remainder, shard, owner[r])
				}
				owner[r] = int16(shard)
			}
		}
	}
	return owner, nil
}
