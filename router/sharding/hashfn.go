package sharding

// hashFunc places keys like PARTITION BY HASH (key) with MODULUS = number of
// shards: shard i holds the rows of REMAINDER i.
type hashFunc struct {
	common
	modulus uint64
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
	return int(v % h.modulus), nil
}
